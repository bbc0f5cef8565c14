"""Staff who award points, and their audit trail (issue 11's staff awards).

A staff member is an id, a name and a PIN of their own (its salted scrypt hash only, as a
member's PIN; five wrong in a row lock it). An award above the programme's `approval_over`
needs a second staff member's PIN. Awards are applied online only, by the ledger that
checks the PINs (the store server, or a terminal's own embedded ledger), so no PIN is ever
written to a terminal's queue; every award is kept with who gave and who approved it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from pos_client import pins
from pos_client.domain import text_problem, utcnow
from pos_client.ledger.pin_rows import check_pin_row
from pos_client.ledger.schema import staff_awards, staff_members

STAFF_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
MAX_REASON = 200


def staff_id_problem(staff_id: str) -> str | None:
    if not STAFF_ID.fullmatch(staff_id):
        return "a staff id: up to 32 of a-z, 0-9, '-' and '_'"
    return None


def reason_problem(reason: str) -> str | None:
    if not reason.strip() or len(reason) > MAX_REASON:
        return f"a reason of 1 to {MAX_REASON} characters"
    return text_problem(reason)


def add_staff(writer: Engine, staff_id: str, name: str, pin: str) -> bool:
    """Add a staff member, or give one a new PIN (and name); True if they existed. A bad
    id, name or PIN raises ValueError with the reason."""
    problem = (
        staff_id_problem(staff_id)
        or ("a name of 1 to 80 characters" if not name.strip() or len(name) > 80 else None)
        or text_problem(name)
        or pins.pin_problem(pin)
    )
    if problem:
        raise ValueError(problem)
    with writer.connect() as reader:
        others = reader.execute(
            select(staff_members.c.pin_hash).where(
                staff_members.c.id != staff_id, staff_members.c.removed_at.is_(None)
            )
        ).all()
    # Two staff members with one PIN would let one approve their own awards as the other.
    if any(pins.pin_matches(pin, other) for (other,) in others):
        raise ValueError("another staff member has this PIN: choose another")
    digest = pins.hash_pin(pin)  # slow on purpose: outside the transaction
    now = utcnow()
    with writer.begin() as conn:
        found = conn.execute(
            select(staff_members.c.id).where(staff_members.c.id == staff_id).with_for_update()
        ).first()
        values = {
            "name": name.strip(),
            "pin_hash": digest,
            "failures": 0,
            "locked_until": None,
            "removed_at": None,
        }
        if found is None:
            conn.execute(staff_members.insert().values(id=staff_id, added_at=now, **values))
        else:
            conn.execute(
                staff_members.update().where(staff_members.c.id == staff_id).values(**values)
            )
    return found is not None


def remove_staff(writer: Engine, staff_id: str) -> bool:
    """Their PIN no longer works; their past awards stay in the audit trail."""
    with writer.begin() as conn:
        result = conn.execute(
            staff_members.update()
            .where(staff_members.c.id == staff_id, staff_members.c.removed_at.is_(None))
            .values(removed_at=utcnow())
        )
    return bool(result.rowcount)


def check_staff_pin(writer: Engine, staff_id: str, pin: str, now: datetime) -> pins.PinCheck:
    """A staff member's PIN: ok, wrong (one failure more, the fifth in a row locks it), or
    locked; `no_pin` for no such staff member (or removed). The slow hash runs outside the
    transaction; the count is taken under the row's lock."""
    with writer.connect() as reader:
        row = reader.execute(
            select(staff_members).where(
                staff_members.c.id == staff_id, staff_members.c.removed_at.is_(None)
            )
        ).first()
    if row is None:
        pins.pin_matches(pin, pins.hash_pin("000000"))  # the same time as a real check
        return pins.PinCheck(False, no_pin=True)
    return check_pin_row(writer, staff_members, staff_members.c.id == staff_id, row, pin, now)


def describe_pin_refusal(check: pins.PinCheck, whose: str) -> str:
    """Why a staff PIN was refused, never which part was wrong (an id or a PIN)."""
    if check.locked_until is not None:
        return f"the {whose}'s PIN is locked after wrong tries; try later"
    return f"the {whose}'s id or PIN is wrong"


@dataclass(frozen=True)
class AwardRecord:
    key: str
    member_id: str
    points: int
    reason: str
    staff_id: str
    approver_id: str | None
    terminal_id: str
    awarded_at: datetime


def awards_since(engine: Engine, since: datetime) -> list[AwardRecord]:
    """The audit trail: every award from `since`, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(staff_awards)
            .where(staff_awards.c.awarded_at >= since)
            .order_by(staff_awards.c.awarded_at, staff_awards.c.key)
        ).all()
    return [AwardRecord(**dict(row._mapping)) for row in rows]
