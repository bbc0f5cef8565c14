"""The age gate by touch (issue 11, mechanic 3): under a programme for adults, joining asks
for the birthday on the keypad; a child under the guardian age is told why and cannot go
on; a minor from it joins only once the parent's or guardian's consent is ticked, and the
enrollment records it."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pos_client.ledger.schema import members
from tests.ui.conftest import run_ui, ui_settings
from tests.ui.test_enroll_kiosk import to_enroll
from ui.demo import on
from ui.touch import tap, tap_keys

PROGRAM = """
id = "adults"
name = "Adults"
currency = "EUR"
[earn]
rate = 1
[tiers]
[[tiers.levels]]
id = "member"
name = "Member"
[membership]
min_age = 18
guardian_from_age = 13
"""


def test_a_minor_joins_by_touch_only_with_a_guardians_consent(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from to_enroll(app)
        enroll = app.sm.get_screen("enroll")
        yield from tap_keys("Kim")
        yield from tap(text=tr("enroll.next"))
        seen["step"] = enroll.step
        yield from tap_keys("0103")
        seen["half_typed"] = enroll.birthday_text
        yield from tap(text=tr("enroll.next"))
        seen["half_error"] = enroll.error
        yield from tap_keys("2016")  # ten years old
        yield from tap(text=tr("enroll.next"))
        seen["too_young"] = (enroll.step, enroll.error)
        yield from tap_keys("<<<<")
        yield from tap_keys("2011")  # fifteen
        yield from tap(text=tr("enroll.next"))
        seen["consent_step"] = (enroll.step, enroll.guardian_needed)
        yield from tap(text=tr("enroll.consent"))
        yield from tap(text=tr("enroll.join"))
        yield lambda: bool(enroll.error)
        seen["no_guardian"] = enroll.error
        yield from tap(text=tr("enroll.guardian"))
        yield from tap(text=tr("enroll.join"))
        yield lambda: bool(enroll.card_number)
        yield from tap(text=tr("common.done"))
        yield on(app, "member")
        ledger = app.running.terminal.ledger
        app.running.terminal.sync.drain()
        with ledger.engine.connect() as conn:
            seen["recorded"] = conn.execute(
                select(members.c.first_name, members.c.birthday, members.c.guardian_consent)
            ).all()

    path = tmp_path / "adults.toml"
    path.write_text(PROGRAM)
    run_ui(replace(ui_settings(tmp_path), program=str(path)), script)
    assert seen["step"] == "birthday"
    assert seen["half_typed"] == "01.03.____"
    assert seen["half_error"] == "Type the whole birthday: day, month and year"
    assert seen["too_young"] == ("birthday", "Members must be at least 18")
    assert seen["consent_step"] == ("consent", True)
    assert seen["no_guardian"] == "Under 18: a parent or guardian must consent"
    (kim,) = [row for row in seen["recorded"] if row[0] == "Kim"]
    assert str(kim[1]) == "2011-03-01" and kim[2] is True
