"""The field-test scenario played on the real screens, with a screenshot of each step.

`make demo` runs it when there is no display (offscreen SDL), writing demo-output/*.png.
Every step is real input, as a person and the devices give it: taps as touch events through
the Window (ui/touch.py), keys through the Window, cards and scans through the simulated
reader driver (the same path as hardware).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from pos_client.demo import DEMO_MEMBERS, demo_card_message
from ui.dialogs import ConfirmDialog, shown_dialog
from ui.script import Step
from ui.touch import find_widget, tap, tap_keys, tappable, type_into

ANNA, BOB = DEMO_MEMBERS[0], DEMO_MEMBERS[1]


def simulated(app: Any) -> Any:
    for reader in app.running.readers:
        if getattr(reader, "kind", "") == "simulated":
            return reader
    raise RuntimeError("the demo needs a simulated reader in the config")


def on(app: Any, screen: str) -> Any:
    def predicate() -> bool:
        return bool(app.sm.current == screen)

    predicate.__name__ = f"screen {screen}"
    return predicate


def field_test(app: Any) -> Generator[Step, None, None]:
    from kivy.uix.behaviors import ToggleButtonBehavior

    sim = simulated(app)
    tr = app.tr
    yield "01-idle"
    sim.inject({"cmd": "tap", "value": ANNA.card_uid})
    yield on(app, "member")
    yield "02-member-by-nfc"
    yield from tap(text=tr("member.earn"))
    yield from tap_keys("40.00")
    yield from tap(text="Cosmetics", kind=ToggleButtonBehavior)
    yield from tap(text=tr("earn.add_line"))
    yield from tap_keys("25")
    yield from tap(text=tr("earn.no_category"), kind=ToggleButtonBehavior)
    yield "03-earn-preview"
    yield from tap(text=tr("earn.confirm"))
    yield on(app, "receipt")
    yield lambda: bool(app.sm.get_screen("receipt").synced)
    yield "04-receipt-synced"
    yield from tap(text=tr("common.done"))
    sim.inject({"cmd": "scan", "value": "]E0" + BOB.card_number})
    yield on(app, "member")
    yield "05-member-by-barcode"
    yield from tap(text=tr("common.done"))
    keys_file = app.settings.backend.card_keys_file
    if keys_file:  # Anna's secure card, then a clone of it replaying what it answered
        message = demo_card_message(keys_file, ANNA, 7)
        uid = ANNA.card_uid or ""
        sim.inject({"cmd": "sun", "value": message, "uid": uid})
        yield on(app, "member")
        yield "05b-member-by-secure-card"
        yield from tap(text=tr("common.done"))
        yield on(app, "idle")
        sim.inject({"cmd": "sun", "value": message, "uid": uid})
        yield lambda: app.message == tr("error.card_replayed")
        yield "05c-secure-card-clone-refused"
    yield from tap(text=tr("idle.phone"))
    yield from tap_keys(ANNA.phone)
    yield "06-phone-entry"
    yield from tap(text=tr("phone.find"))
    yield on(app, "member")
    yield from tap(text=tr("member.redeem"))
    yield "07-redeem"
    options = [b for b in reversed(find_widget(id="rewards").children) if tappable(b)]
    yield from tap(options[0])  # the first reward this member can have
    yield lambda: shown_dialog(ConfirmDialog) is not None
    yield "07b-redeem-confirm"
    yield from tap(text=tr("confirm.ok"))
    yield on(app, "receipt")
    yield "08-receipt-redeemed"
    sim.inject({"cmd": "offline"})
    yield lambda: not app.status_online
    yield from tap(text=tr("common.done"))
    sim.inject({"cmd": "tap", "value": ANNA.card_uid})
    yield on(app, "member")
    yield "09-member-offline"
    yield from tap(text=tr("member.earn"))
    yield from tap_keys("12.50")
    yield from tap(text=tr("earn.confirm"))
    yield on(app, "receipt")
    yield "10-receipt-pending-offline"
    yield from tap(text=tr("common.done"))
    yield from tap(text=tr("idle.phone"))
    yield from tap_keys("+16502530042")
    yield from tap(text=tr("phone.find"))
    yield on(app, "enroll")
    enroll = app.sm.get_screen("enroll")
    yield from type_into(id="first_name", text="Dana")
    yield from tap(text=tr("enroll.next"))
    yield from tap(id="consent")
    yield "11-enroll"
    yield from tap(text=tr("enroll.join"))
    yield lambda: bool(enroll.card_number)
    yield 0.3
    yield "12-enrolled-card"
    yield from tap(text=tr("common.done"))
    yield on(app, "member")
    yield from tap(text=tr("member.give"))
    yield "13-give"
    sim.inject({"cmd": "online"})
    yield lambda: bool(app.status_online and app.status_pending == 0)
    yield from tap(text=tr("common.back"))
    yield from tap(text=tr("common.done"))
    for language, button in (("ru", "РУ"), ("uk", "УК"), ("el", "ΕΛ")):
        yield from tap(text=button)
        yield f"14-idle-{language}"
    yield from tap(text="EN")
    yield from tap(text=tr("admin.title"))
    yield from tap_keys(app.settings.admin.pin)
    yield from tap(text=app.tr("admin.unlock"))
    yield "15-admin"
    yield from tap(text=tr("common.back"))
    yield "16-idle-end"
