"""What an outside tester found a kiosk customer or a passer-by could do, now refused;
driven by real input only (keys and taps through the Window, the simulated reader)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from pos_client.demo import DEMO_MEMBERS
from pos_client.settings import Mode
from tests.ui.conftest import run_ui, ui_settings
from ui.demo import on, simulated
from ui.touch import press_key, tap, tap_keys, walk

ANNA = DEMO_MEMBERS[0]
F1 = 282  # Kivy's key code for F1, which opens Kivy's own settings panel by default


def test_f1_opens_no_settings_panel_on_a_kiosk(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        from kivy.uix.settings import Settings

        press_key(F1)
        yield 0.3
        seen["panels"] = [type(w).__name__ for w in walk() if isinstance(w, Settings)]
        seen["screen"] = app.sm.current

    run_ui(ui_settings(tmp_path, mode=Mode.KIOSK), script)
    assert seen == {"panels": [], "screen": "idle"}


def test_staff_cannot_switch_to_kiosk_on_the_default_pin(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield from tap(text=app.tr("admin.title"))
        yield from tap_keys(app.settings.admin.pin)  # the default PIN: fine for a cashier
        yield from tap(text=app.tr("admin.unlock"))
        yield from tap(contains=app.tr("admin.mode"))
        seen["mode"], seen["message"] = app.mode, app.message

    run_ui(ui_settings(tmp_path), script)
    assert seen["mode"] == "cashier"
    assert (
        seen["message"]
        == "A kiosk needs a staff PIN of its own: set one in the configuration first"
    )


def test_a_cashier_mid_sale_is_not_reset_by_the_kiosk_timeout(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        simulated(app).inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        yield from tap(text=app.tr("member.earn"))
        yield from tap_keys("25")
        yield 2.5  # past the 1 s inactivity limit a kiosk would use
        seen["screen"] = app.sm.current
        seen["amount"] = app.sm.get_screen("earn").amount_text

    run_ui(ui_settings(tmp_path, inactivity_s=1.0), script)
    assert seen == {"screen": "earn", "amount": "25"}


def test_a_refused_scan_says_why_on_screen(tmp_path: Path) -> None:
    """Scanner garbage, another script's digits and an over-long code each get their own
    sentence, not a generic "did not read correctly"."""
    seen: dict[str, str] = {}
    scans = {
        "garbage": "29000\x0700018",
        "foreign": "\u0662\u0669\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0661\u0668",
        "long": "9" * 300,
    }

    def script(app: Any) -> Generator[Any, None, None]:
        for name, value in scans.items():
            before = app.message  # each refusal has its own sentence: wait for the change
            simulated(app).inject({"cmd": "scan", "value": value})
            yield lambda before=before: app.message not in ("", before)
            seen[name] = app.message
        yield 0.1

    run_ui(ui_settings(tmp_path), script)
    assert seen == {
        "garbage": "The scanner sent unreadable characters: please scan again",
        "foreign": "Only digits 0–9 and letters A–Z can be read here",
        "long": "Too long for a card or a phone number",
    }
