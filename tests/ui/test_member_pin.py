"""A kiosk member found by a typed phone number spends after typing their PIN: real taps on
the member screen's "Enter PIN" button and the PIN keypad; a wrong PIN says how many tries
are left and spends nothing."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from pos_client.settings import Mode
from tests.ui.conftest import run_ui, ui_settings
from tests.ui.test_kiosk_spending import (
    ANNA,
    TAP_OR_SCAN,
    by_phone,
    try_the_gift_card,
    visible_texts,
)
from ui.demo import on
from ui.touch import tap, tap_keys

ENTER_PIN = "Enter PIN to spend"


def test_a_kiosk_member_found_by_phone_spends_after_typing_their_pin(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        ledger = app.running.terminal.ledger  # set-up: Anna chose her PIN at the desk
        anna = ledger.find_member_id("card_number", ANNA.card_number)
        ledger.set_member_pin(anna, "4071")
        yield from by_phone(app, ANNA.phone)
        seen["by_phone"] = visible_texts()
        yield from tap(text=ENTER_PIN)
        yield on(app, "pin")
        yield from tap_keys("1397")
        yield from tap(text=app.tr("pin.check"))
        yield lambda: bool(app.sm.get_screen("pin").error)
        seen["wrong"] = app.sm.get_screen("pin").error
        seen["wrong_display"] = app.sm.get_screen("pin").pin_display
        yield from tap_keys("4071")
        seen["typed"] = app.sm.get_screen("pin").pin_display
        yield from tap(text=app.tr("pin.check"))
        yield on(app, "member")
        yield 0.1
        seen["after_pin"] = visible_texts()
        yield from try_the_gift_card(app, seen, "with_pin")

    run_ui(ui_settings(tmp_path, mode=Mode.KIOSK), script)
    assert TAP_OR_SCAN in seen["by_phone"] and ENTER_PIN in seen["by_phone"]
    assert seen["wrong"] == "Wrong PIN. Tries left: 4" and seen["wrong_display"] == ""
    assert seen["typed"] == "••••"
    assert "Identified by phone number and PIN" in seen["after_pin"]
    assert TAP_OR_SCAN not in seen["after_pin"] and ENTER_PIN not in seen["after_pin"]
    assert seen["with_pin"]["asked"] is True
