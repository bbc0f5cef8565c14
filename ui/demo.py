"""The field-test scenario played on the real screens, with a screenshot of each step.

`make demo` runs it when there is no display (offscreen SDL), writing demo-output/*.png.
Taps and scans go through the simulated reader driver, the same path as hardware.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from pos_client.demo import DEMO_MEMBERS
from ui.script import Step

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
    sim = simulated(app)
    yield "01-idle"
    sim.inject({"cmd": "tap", "value": ANNA.card_uid})
    yield on(app, "member")
    yield "02-member-by-nfc"
    app.nav.go("earn")
    earn = app.sm.get_screen("earn")
    for key in "40.00":
        earn.key(key)
    earn.pick_category("cosmetics")
    earn.add_line()
    for key in "25":
        earn.key(key)
    earn.pick_category("")
    earn.update_preview()
    yield "03-earn-preview"
    earn.confirm()
    yield on(app, "receipt")
    yield lambda: bool(app.sm.get_screen("receipt").synced)
    yield "04-receipt-synced"
    app.nav.go_idle()
    sim.inject({"cmd": "scan", "value": "]E0" + BOB.card_number})
    yield on(app, "member")
    yield "05-member-by-barcode"
    app.nav.go_idle()
    app.nav.go("phone")
    phone = app.sm.get_screen("phone")
    for key in ANNA.phone:
        phone.key(key)
    yield "06-phone-entry"
    phone.find()
    yield on(app, "member")
    app.nav.go("redeem")
    yield "07-redeem"
    redeem = app.sm.get_screen("redeem")
    option = next(o for o in app.sale.redemption_options() if o["enabled"])
    redeem._choose(option)
    from kivy.core.window import Window

    from ui.dialogs import ConfirmDialog

    yield lambda: any(isinstance(w, ConfirmDialog) for w in Window.children)
    yield "07b-redeem-confirm"
    next(w for w in Window.children if isinstance(w, ConfirmDialog)).confirm()
    yield on(app, "receipt")
    yield "08-receipt-redeemed"
    sim.inject({"cmd": "offline"})
    yield lambda: not app.status_online
    app.nav.go_idle()
    sim.inject({"cmd": "tap", "value": ANNA.card_uid})
    yield on(app, "member")
    yield "09-member-offline"
    app.nav.go("earn")
    for key in "12.50":
        app.sm.get_screen("earn").key(key)
    app.sm.get_screen("earn").confirm()
    yield on(app, "receipt")
    yield "10-receipt-pending-offline"
    app.nav.go_idle()
    app.nav.go("phone")
    for key in "+16502530042":
        phone.key(key)
    phone.find()
    yield on(app, "enroll")
    enroll = app.sm.get_screen("enroll")
    enroll.ids.first_name.text = "Dana"
    enroll.ids.consent.active = True
    yield "11-enroll"
    enroll.join()
    yield lambda: bool(enroll.card_number)
    yield 0.3
    yield "12-enrolled-card"
    app.nav.go("give")
    yield "13-give"
    sim.inject({"cmd": "online"})
    yield lambda: bool(app.status_online and app.status_pending == 0)
    app.nav.go_idle()
    for language in ("ru", "uk", "el"):
        app.nav.set_language(language)
        yield f"14-idle-{language}"
    app.nav.set_language("en")
    app.nav.go("admin")
    admin = app.sm.get_screen("admin")
    for key in app.settings.admin.pin:
        admin.key(key)
    admin.submit()
    yield "15-admin"
    app.nav.go_idle()
    yield "16-idle-end"
