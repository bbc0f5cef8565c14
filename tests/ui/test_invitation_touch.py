"""Joining by invitation, by touch (issue 11, mechanic 3): under a programme joined by
invitation, the enroll screen first asks for the inviting member's phone on the keypad; an
unknown number is said and goes no further; a member's number names them and the new member
joins, the invitation counted."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pos_client.demo import DEMO_MEMBERS
from tests.ui.conftest import run_ui, ui_settings
from tests.ui.test_enroll_kiosk import to_enroll
from ui.demo import on
from ui.touch import tap, tap_keys

ANNA = DEMO_MEMBERS[0]
PROGRAM = """
id = "club"
name = "Club"
currency = "EUR"
[earn]
rate = 1
[tiers]
[[tiers.levels]]
id = "member"
name = "Member"
[membership]
invitation = true
invitations_per_member = 3
"""


def test_a_new_member_joins_by_touch_invited_by_a_member(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from to_enroll(app)
        enroll = app.sm.get_screen("enroll")
        seen["first_step"] = enroll.step
        yield from tap_keys("+12025550199")  # nobody's
        yield from tap(text=tr("enroll.next"))
        yield lambda: bool(enroll.error)
        seen["unknown"] = (enroll.step, enroll.error)
        yield from tap_keys("<" * 12)
        yield from tap_keys(ANNA.phone)
        yield from tap(text=tr("enroll.next"))
        yield lambda: enroll.step == "name"
        yield from tap_keys("Kim")
        yield from tap(text=tr("enroll.next"))
        seen["invited"] = enroll.invited_text
        yield from tap(text=tr("enroll.consent"))
        yield from tap(text=tr("enroll.join"))
        yield lambda: bool(enroll.card_number)
        yield from tap(text=tr("common.done"))
        yield on(app, "member")
        terminal = app.running.terminal
        terminal.sync.drain()
        anna = terminal.checkout.identify(ANNA.card_number)
        seen["left"] = anna.view.invitations_left

    path = tmp_path / "club.toml"
    path.write_text(PROGRAM)
    run_ui(replace(ui_settings(tmp_path), program=str(path)), script)
    assert seen["first_step"] == "inviter"
    assert seen["unknown"] == (
        "inviter",
        "No member with this number: ask the member who invites you",
    )
    assert seen["invited"] == "Invited by Anna K."
    assert seen["left"] == 2
