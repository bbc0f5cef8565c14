"""A PIN checked against its row (a member's PIN, a staff member's): one logic for both.

The slow hash runs outside any transaction; the count is then taken under the row's lock,
so two tills trying at once count two failures; five wrong in a row lock it for a while.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, select

from pos_client import pins


def check_pin_row(
    writer: Engine, table: Table, where: ColumnElement[bool], row: Any, pin: str, now: datetime
) -> pins.PinCheck:
    """`pin` against `row` (read before, outside the transaction; the row of `table` that
    `where` selects): ok (failures forgotten), wrong (one failure more; the fifth in a row
    locks it), or locked (refused unchecked); `no_pin` if it changed or went meanwhile."""
    if row.locked_until is not None and row.locked_until > now:
        return pins.PinCheck(False, locked_until=row.locked_until)
    matched = pins.pin_matches(pin, row.pin_hash)
    with writer.begin() as conn:
        now_row = conn.execute(select(table).where(where).with_for_update()).first()
        if now_row is None or now_row.pin_hash != row.pin_hash:
            return pins.PinCheck(False, no_pin=now_row is None)  # changed meanwhile
        if now_row.locked_until is not None and now_row.locked_until > now:
            return pins.PinCheck(False, locked_until=now_row.locked_until)
        if matched:
            if now_row.failures:
                conn.execute(table.update().where(where).values(failures=0, locked_until=None))
            return pins.PinCheck(True)
        failures = now_row.failures + 1
        locked = pins.lock_after(failures, now)
        conn.execute(table.update().where(where).values(failures=failures, locked_until=locked))
    remaining = pins.FAILURES_BEFORE_LOCK - failures % pins.FAILURES_BEFORE_LOCK
    return pins.PinCheck(
        False,
        remaining=0 if locked else remaining,
        locked_until=locked,
        locked_now=locked is not None,
    )
