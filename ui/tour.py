"""A tour of every screen and notable state, as a `ui.script` script.

`tour(app, language)` brings a freshly started app (demo members seeded, a simulated reader
configured) to each state and yields the state's name there, like a screenshot step:

    idle, phone-digits, phone-error, member-rewards, rewards, purchase-lines, receipt,
    member-birthday, give, enroll, enrolled, message, receipt-pending, member-offline,
    staff-locked, staff-wrong-pin, staff-unlocked, staff-lockout

Cards, scans and the backend going away are done through the simulated reader (the device
path). What a person does on the screen goes through `Person`, one small method per action,
so the tour reads as the person's steps and the way they are carried out lives in one place.

Uses of the tour:
- the layout check (tests/ui/test_layout.py) replaces each state name by checks at every
  window size: `at_each_state(tour(app, lang), visit)`;
- a gallery (`gallery`) replaces each state name by screenshots at a few sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import Any

from pos_client.demo import DEMO_MEMBERS
from ui.i18n import LANGUAGE_NAMES
from ui.script import Step

Steps = Generator[Step, None, None]
ANNA, OLENA = DEMO_MEMBERS[0], DEMO_MEMBERS[3]
NEW_PHONE = "+16502530042"
STATES = (
    "idle",
    "phone-digits",
    "phone-error",
    "member-rewards",
    "rewards",
    "purchase-lines",
    "receipt",
    "member-birthday",
    "give",
    "enroll",
    "enrolled",
    "message",
    "receipt-pending",
    "member-offline",
    "staff-locked",
    "staff-wrong-pin",
    "staff-unlocked",
    "staff-lockout",
)


def simulated(app: Any) -> Any:
    for reader in app.running.readers:
        if getattr(reader, "kind", "") == "simulated":
            return reader
    raise RuntimeError("the tour needs a simulated reader in the config")


def on(app: Any, screen: str) -> Callable[[], bool]:
    def predicate() -> bool:
        return bool(app.sm.current == screen)

    predicate.__name__ = f"screen {screen}"
    return predicate


class Person:
    """What a person does on the screen.

    Until the real-input harness (ui.touch) lands these call the screens' handlers; each
    method then becomes a tap on the widget a person would touch (the text is given in
    `app.tr(...)` form next to each call), without the tour changing.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def screen(self, name: str) -> Any:
        return self.app.sm.get_screen(name)

    def choose_language(self, language: str) -> Steps:
        # tap LANGUAGE_NAMES[language] ("EN", "РУ", "УК", "ΕΛ") on the idle screen
        assert LANGUAGE_NAMES[language]
        self.app.set_language(language)
        yield 0

    def open_phone(self) -> Steps:
        self.app.go("phone")  # tap app.tr("idle.phone")
        yield on(self.app, "phone")

    def keypad(self, screen: str, keys: str) -> Steps:
        target = self.screen(screen)
        for key in keys:  # tap each key of the on-screen keypad; "<" is backspace
            target.key("back" if key == "<" else key)
        yield 0

    def find_phone(self) -> Steps:
        self.screen("phone").find()  # tap app.tr("phone.find")
        yield 0

    def open_from_member(self, screen: str) -> Steps:
        # tap app.tr("member.earn" / "member.redeem" / "member.give")
        self.app.go(screen)
        yield on(self.app, screen)

    def back_to_member(self) -> Steps:
        self.app.go("member")  # tap app.tr("common.back")
        yield on(self.app, "member")

    def done(self) -> Steps:
        self.app.go_idle()  # tap app.tr("common.done") / app.tr("common.back")
        yield on(self.app, "idle")

    def category(self, category: str) -> Steps:
        self.screen("earn").pick_category(category)  # tap the category's toggle
        yield 0

    def add_line(self) -> Steps:
        self.screen("earn").add_line()  # tap app.tr("earn.add_line")
        yield 0

    def confirm_purchase(self) -> Steps:
        self.screen("earn").confirm()  # tap app.tr("earn.confirm")
        yield on(self.app, "receipt")

    def type_name(self, name: str) -> Steps:
        self.screen("enroll").ids.first_name.text = name  # tap the field, type on a keyboard
        yield 0

    def accept_terms(self) -> Steps:
        self.screen("enroll").ids.consent.active = True  # tap the consent box
        yield 0

    def join(self) -> Steps:
        self.screen("enroll").join()  # tap app.tr("enroll.join")
        yield 0

    def open_staff(self) -> Steps:
        self.app.go("admin")  # tap app.tr("admin.title") on idle
        yield on(self.app, "admin")

    def submit_pin(self) -> Steps:
        self.screen("admin").submit()  # tap "OK"
        yield 0


def tour(app: Any, language: str = "en", person: Person | None = None) -> Steps:
    """Every screen and notable state, each announced by yielding its name."""
    person = person or Person(app)
    sim = simulated(app)
    yield on(app, "idle")
    yield from person.choose_language(language)
    yield "idle"

    yield from person.open_phone()
    yield from person.keypad("phone", "+7912")
    yield "phone-digits"
    yield from person.keypad("phone", "<<<<<123")
    yield from person.find_phone()
    yield lambda: bool(person.screen("phone").error)
    yield "phone-error"
    sim.inject({"cmd": "tap", "value": ANNA.card_uid})  # the card also works on this screen
    yield on(app, "member")
    yield "member-rewards"

    yield from person.open_from_member("redeem")
    yield "rewards"
    yield from person.back_to_member()
    yield from person.open_from_member("earn")
    yield from person.keypad("earn", "40.00")
    yield from person.category("cosmetics")
    yield from person.add_line()
    yield from person.keypad("earn", "25")
    yield from person.category("")
    yield "purchase-lines"
    yield from person.confirm_purchase()
    receipt = person.screen("receipt")
    yield lambda: bool(receipt.synced)
    yield "receipt"
    yield from person.done()

    sim.inject({"cmd": "tap", "value": OLENA.card_uid})
    yield on(app, "member")
    yield "member-birthday"
    yield from person.open_from_member("give")
    yield "give"
    yield from person.done()

    yield from person.open_phone()
    yield from person.keypad("phone", NEW_PHONE)
    yield from person.find_phone()
    yield on(app, "enroll")
    yield from person.type_name("Dana")
    yield "enroll"
    yield from person.accept_terms()
    yield from person.join()
    enroll = person.screen("enroll")
    yield lambda: bool(enroll.card_number)
    yield 0.2
    yield "enrolled"
    yield from person.done()

    sim.inject({"cmd": "offline"})
    yield lambda: not app.status_online and bool(app.message)
    yield "message"  # "the loyalty server cannot be reached"
    yield lambda: not app.message
    sim.inject({"cmd": "tap", "value": ANNA.card_uid})
    yield on(app, "member")
    yield from person.open_from_member("earn")
    yield from person.keypad("earn", "12.50")
    yield from person.confirm_purchase()
    yield "receipt-pending"
    yield from person.done()
    sim.inject({"cmd": "tap", "value": ANNA.card_uid})
    yield on(app, "member")
    yield "member-offline"
    yield from person.done()
    sim.inject({"cmd": "online"})
    yield lambda: bool(app.status_online and app.status_pending == 0)

    admin = person.screen("admin")
    yield from person.open_staff()
    yield "staff-locked"
    yield from person.keypad("admin", "0000")
    yield from person.submit_pin()
    yield "staff-wrong-pin"
    yield from person.keypad("admin", app.settings.admin.pin)
    yield from person.submit_pin()
    yield lambda: bool(admin.unlocked)
    yield "staff-unlocked"
    yield from person.done()
    yield from person.open_staff()
    for _attempt in range(3):
        yield from person.keypad("admin", "0000")
        yield from person.submit_pin()
    yield "staff-lockout"
    yield from person.done()


def at_each_state(steps: Iterable[Step], visit: Callable[[str], Iterable[Step]]) -> Steps:
    """The same script, with each state name replaced by the steps `visit(name)` yields."""
    for step in steps:
        if isinstance(step, str):
            yield from visit(step)
        else:
            yield step


def resize(size: tuple[int, int]) -> Steps:
    """Resize the window and wait until it took and the next frames are drawn."""
    from kivy.core.window import Window

    Window.size = size

    def took() -> bool:
        return tuple(Window.size) == tuple(size)

    took.__name__ = f"window size {size[0]}x{size[1]}"
    yield took
    for _frame in range(2):  # layout and fitted text settle
        yield 0


def gallery(
    app: Any,
    language: str,
    sizes: Iterable[tuple[int, int]],
    folder: Path,
    person: Person | None = None,
) -> Steps:
    """The tour, with a picture `<folder>/<state>-<language>-<w>x<h>.png` of each state.

    Pictures are drawn offscreen at full size (`ui.layout_check.Pixels`): after a resize the
    offscreen window's own buffer may still hold an older frame."""
    from ui.layout_check import Pixels

    sizes = list(sizes)
    folder.mkdir(parents=True, exist_ok=True)

    def shots(name: str) -> Steps:
        for size in sizes:
            yield from resize(size)
            Pixels.read(side=max(size)).save(folder / f"{name}-{language}-{size[0]}x{size[1]}.png")

    yield from at_each_state(tour(app, language, person), shots)
