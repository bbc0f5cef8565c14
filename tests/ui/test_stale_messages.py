"""Messages go away when what they say is no longer true: the consent error once the
customer ticks consent, and the receipt's "pending" note once the sale has synced."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from pos_client.demo import DEMO_MEMBERS
from tests.ui.conftest import run_ui, ui_settings
from ui.demo import on, simulated
from ui.touch import tap, tap_keys, type_into

ANNA = DEMO_MEMBERS[0]


def test_the_consent_error_clears_when_consent_is_ticked(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from tap(text=tr("idle.phone"))
        yield from tap_keys("+306900000077")
        yield from tap(text=tr("phone.find"))
        yield on(app, "enroll")
        enroll = app.sm.get_screen("enroll")
        yield from type_into(id="first_name", text="Nikos")
        yield from tap(text=tr("enroll.next"))
        yield from tap(text=tr("enroll.join"))
        seen["no_consent"] = enroll.error
        yield from tap(id="consent")
        seen["ticked"] = enroll.error
        yield from tap(id="consent")  # unticked again: no error until Join is tapped
        seen["unticked"] = enroll.error

    run_ui(ui_settings(tmp_path), script)
    assert seen["no_consent"] == "Please accept the programme terms to join"
    assert seen["ticked"] == ""
    assert seen["unticked"] == ""


def test_an_offline_receipt_stops_saying_pending_once_synced(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        sim = simulated(app)
        sim.inject({"cmd": "tap", "value": ANNA.card_uid})  # known to this terminal now
        yield on(app, "member")
        yield from tap(text=app.tr("common.done"))
        sim.inject({"cmd": "offline"})
        yield lambda: not app.status_online
        sim.inject({"cmd": "tap", "value": ANNA.card_uid})  # identified offline
        yield on(app, "member")
        yield from tap(text=app.tr("member.earn"))
        yield from tap_keys("10.00")
        yield from tap(text=app.tr("earn.confirm"))
        yield on(app, "receipt")
        receipt = app.sm.get_screen("receipt")
        yield 0.3
        seen["offline"] = receipt.summary_text
        sim.inject({"cmd": "online"})
        yield lambda: bool(receipt.synced)
        yield 0
        seen["synced"] = receipt.summary_text

    run_ui(ui_settings(tmp_path), script)
    assert seen["offline"].splitlines() == [
        "Earned: +40 points",
        "To pay: $10.00",
        "Balance after: pending until the terminal is back online",
    ]
    assert seen["synced"].splitlines() == [
        "Earned: +40 points",
        "To pay: $10.00",
        "Balance after: 5,740 points",
    ]
