"""A tour of every screen and notable state, as a `ui.script` script.

`tour(app, language)` brings a freshly started app (demo members seeded, a simulated reader
configured) to each state and yields the state's name there, like a screenshot step:

    idle, phone-digits, phone-error, member-rewards, rewards, confirm, purchase-lines,
    receipt, member-birthday, give, rewards-out-of-reach, enroll, enroll-consent, terms,
    enrolled, message, receipt-pending, member-offline, staff-locked, staff-wrong-pin,
    staff-unlocked, staff-message, staff-exit, staff-lockout

Cards, scans and the backend going away are done through the simulated reader (the device
path). What a person does on the screen goes through `Person`, one small method per action,
each a real tap or key through the Window (ui.touch), so the tour reads as the person's steps
and the way they are carried out lives in one place.

Uses of the tour:
- the layout check (tests/ui/test_layout.py) replaces each state name by checks at every
  window size: `at_each_state(tour(app, lang), visit)`;
- a gallery (`gallery`) replaces each state name by screenshots at a few sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import Any

from kivy.uix.behaviors import ButtonBehavior, ToggleButtonBehavior

from pos_client.demo import DEMO_MEMBERS
from ui.i18n import LANGUAGE_NAMES, category_label, decimal_separator
from ui.script import Step
from ui.touch import TouchError, find_widget, tap, tap_keys, walk

Steps = Generator[Step, None, None]
ANNA, BOB, OLENA = DEMO_MEMBERS[0], DEMO_MEMBERS[1], DEMO_MEMBERS[3]
NEW_PHONE = "+16502530042"
NEW_NAME = "Dana"
# The new member types a name on the keyboard of the screen's language.
NEW_NAMES = {"en": NEW_NAME, "ru": "Даша", "uk": "Даша", "el": "Δανάη"}
STATES = (
    "idle",
    "phone-digits",
    "phone-error",
    "member-rewards",
    "rewards",
    "confirm",
    "purchase-lines",
    "receipt",
    "member-birthday",
    "give",
    "give-account",
    "rewards-out-of-reach",
    "enroll",
    "enroll-consent",
    "terms",
    "enrolled",
    "message",
    "receipt-pending",
    "member-offline",
    "staff-locked",
    "staff-wrong-pin",
    "staff-unlocked",
    "staff-message",
    "staff-exit",
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
    """What a person does on the screen: each action a tap (or keys) through the Window, by
    the real-input harness (ui.touch), on the widget a person would touch, found by its
    visible text in the screen's language or by its kv id."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def screen(self, name: str) -> Any:
        return self.app.sm.get_screen(name)

    def tr(self, key: str) -> str:
        return str(self.app.tr(key))

    def choose_language(self, language: str) -> Steps:
        yield from tap(text=LANGUAGE_NAMES[language])  # "EN", "РУ", "УК", "ΕΛ" on idle
        yield lambda: bool(self.app.lang == language)

    def open_phone(self) -> Steps:
        yield from tap(text=self.tr("idle.phone"))
        yield on(self.app, "phone")

    def keypad(self, keys: str) -> Steps:
        """Tap each key of the on-screen keypad ("<" is backspace); "." is the decimal key,
        whatever the language writes it as."""
        keys = keys.replace(".", decimal_separator(str(self.app.lang)))
        yield self._seen(keys[0])  # a screen just shown is laid out on the next frame
        yield from tap_keys(keys)

    def find_phone(self) -> Steps:
        yield from tap(text=self.tr("phone.find"))

    def open_from_member(self, screen: str) -> Steps:
        yield from tap(text=self.tr(f"member.{screen}"))  # member.earn / .redeem / .give
        yield on(self.app, screen)

    def back_to_member(self) -> Steps:
        yield from tap(text=self.tr("common.back"))
        yield on(self.app, "member")

    def done(self) -> Steps:
        """Done (or Back) until the idle screen is shown, as a person leaves."""
        for _step in range(4):
            if self.app.sm.current == "idle":
                return
            before = self.app.sm.current
            try:
                target = find_widget(text=self.tr("common.done"), kind=ButtonBehavior)
            except TouchError:
                target = find_widget(text=self.tr("common.back"), kind=ButtonBehavior)
            yield from tap(target)
            yield self._left(before)
        yield on(self.app, "idle")

    def _seen(self, text: str) -> Callable[[], bool]:
        def seen() -> bool:
            try:
                find_widget(text=text, kind=ButtonBehavior)
            except TouchError:
                return False
            return True

        seen.__name__ = f"a visible {text!r} button"
        return seen

    def _left(self, screen: str) -> Callable[[], bool]:
        def left() -> bool:
            return bool(self.app.sm.current != screen)

        left.__name__ = f"leaving screen {screen}"
        return left

    def category(self, category: str) -> Steps:
        program = self.app.running.terminal.program
        label = category_label(str(self.app.lang), program, category)
        yield from tap(text=label, kind=ToggleButtonBehavior)

    def next_line(self) -> Steps:
        yield from tap(text=self.tr("earn.add_line"))

    def confirm_purchase(self) -> Steps:
        yield from tap(text=self.tr("earn.confirm"))
        yield on(self.app, "receipt")

    def type_name(self, name: str) -> Steps:
        """On the on-screen keyboard (capitals come by themselves at a name's start)."""
        yield self._seen(name[0])
        yield from tap_keys(name)

    def next_step(self) -> Steps:
        yield from tap(text=self.tr("enroll.next"))

    def read_terms(self) -> Steps:
        from ui.dialogs import TermsDialog, shown_dialog

        yield from tap(text=self.tr("enroll.terms"))
        yield lambda: shown_dialog(TermsDialog) is not None

    def close_terms(self) -> Steps:
        from ui.dialogs import TermsDialog, shown_dialog

        yield from tap(text=self.tr("common.close"))
        yield lambda: shown_dialog(TermsDialog) is None

    def accept_terms(self) -> Steps:
        yield from tap(text=self.tr("enroll.consent"))  # the label toggles too

    def choose_reward(self) -> Steps:
        """The first reward within reach: a confirmation is asked first."""
        from ui.dialogs import ConfirmDialog, shown_dialog

        rewards = self.screen("redeem").ids.rewards
        button = next(w for w in reversed(rewards.children) if isinstance(w, ButtonBehavior))
        yield from tap(button)
        yield lambda: shown_dialog(ConfirmDialog) is not None

    @staticmethod
    def dialog_shown() -> bool:
        from ui.dialogs import ConfirmDialog, shown_dialog

        return shown_dialog(ConfirmDialog) is not None

    def cancel(self) -> Steps:
        from ui.dialogs import ConfirmDialog, shown_dialog

        yield from tap(text=self.tr("confirm.cancel"))
        yield lambda: shown_dialog(ConfirmDialog) is None

    def enter_account(self, account: str) -> Steps:
        """The account number at the partner, on the dialog's keyboard."""
        from ui.dialogs import AccountDialog, shown_dialog

        yield from tap(text=self.tr("give.enter_account"))
        yield lambda: shown_dialog(AccountDialog) is not None
        yield from tap_keys(account, within=shown_dialog(AccountDialog))

    def close_account(self) -> Steps:
        from ui.dialogs import AccountDialog, shown_dialog

        yield from tap(text=self.tr("common.done"), within=shown_dialog(AccountDialog))
        yield lambda: shown_dialog(AccountDialog) is None

    def sign_up(self) -> Steps:
        yield from tap(text=self.tr("enroll.join"))

    def dismiss_message(self) -> Steps:
        from ui.widgets import MessageBar

        if self.app.message:  # unless it went by itself meanwhile (after a few seconds)
            yield from tap(next(w for w in walk() if isinstance(w, MessageBar)))
        yield lambda: not self.app.message

    def open_staff(self) -> Steps:
        yield from tap(text=self.tr("admin.title"))  # on idle
        yield on(self.app, "admin")

    def staff_action(self, key: str) -> Steps:
        yield from tap(text=self.tr(key))  # admin.sync, admin.retry, admin.exit…

    def submit_pin(self) -> Steps:
        yield from tap(text=self.tr("admin.unlock"))


def tour(app: Any, language: str = "en", person: Person | None = None) -> Steps:
    """Every screen and notable state, each announced by yielding its name."""
    person = person or Person(app)
    sim = simulated(app)
    yield on(app, "idle")
    yield from person.choose_language(language)
    yield "idle"

    yield from person.open_phone()
    yield from person.keypad("+7912")
    yield "phone-digits"
    yield from person.keypad("<<<<<123")
    yield from person.find_phone()
    yield lambda: bool(person.screen("phone").error)
    yield "phone-error"
    sim.inject({"cmd": "tap", "value": ANNA.card_uid})  # the card also works on this screen
    yield on(app, "member")
    yield "member-rewards"

    yield from person.open_from_member("redeem")
    yield "rewards"
    yield from person.choose_reward()
    yield "confirm"
    yield from person.cancel()
    yield from person.back_to_member()
    yield from person.open_from_member("earn")
    yield from person.keypad("40.00")
    yield from person.category("cosmetics")
    yield from person.next_line()
    yield from person.keypad("25")
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
    yield from person.enter_account("SM4417")
    yield "give-account"
    yield from person.close_account()
    yield from person.done()

    sim.inject({"cmd": "tap", "value": BOB.card_uid})  # short of every reward
    yield on(app, "member")
    yield from person.open_from_member("redeem")
    yield "rewards-out-of-reach"
    yield from person.done()

    yield from person.open_phone()
    yield from person.keypad(NEW_PHONE)
    yield from person.find_phone()
    yield on(app, "enroll")
    yield from person.type_name(NEW_NAMES.get(language, NEW_NAME))
    yield "enroll"
    yield from person.next_step()
    yield lambda: bool(person.screen("enroll").step == "consent")
    yield from person.accept_terms()
    yield "enroll-consent"
    yield from person.read_terms()
    yield "terms"
    yield from person.close_terms()
    yield from person.sign_up()
    enroll = person.screen("enroll")
    yield lambda: bool(enroll.card_number)
    yield 0.2
    yield "enrolled"
    yield from person.done()

    sim.inject({"cmd": "offline"})
    yield lambda: not app.status_online and bool(app.message)
    yield "message"  # "the loyalty server cannot be reached"
    yield from person.dismiss_message()
    sim.inject({"cmd": "tap", "value": ANNA.card_uid})
    yield on(app, "member")
    yield from person.open_from_member("earn")
    yield from person.keypad("12.50")
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
    yield from person.keypad("0000")
    yield from person.submit_pin()
    yield "staff-wrong-pin"
    yield from person.keypad(app.settings.admin.pin)
    yield from person.submit_pin()
    yield lambda: bool(admin.unlocked)
    yield "staff-unlocked"
    yield from person.staff_action("admin.sync")
    yield lambda: bool(app.message)
    yield "staff-message"  # "Nothing pending: every sale is sent"
    yield from person.dismiss_message()
    yield from person.staff_action("admin.exit")
    yield person.dialog_shown
    yield "staff-exit"  # "Close the terminal app?" (cancelled: the tour goes on)
    yield from person.cancel()
    yield from person.done()
    yield from person.open_staff()
    for _attempt in range(3):
        yield from person.keypad("0000")
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
            Pixels.read(side=max(size)).save(folder / picture_name(name, language, size))

    yield from at_each_state(tour(app, language, person), shots)


GALLERY_SIZES = ((1024, 600), (1080, 1920))  # a common landscape panel, a portrait kiosk
GALLERY_LANGUAGES = ("en", "ru", "uk", "el")


def picture_name(state: str, language: str, size: tuple[int, int]) -> str:
    return f"{state}-{language}-{size[0]}x{size[1]}.png"


def write_gallery_index(
    folder: Path,
    languages: Iterable[str] = GALLERY_LANGUAGES,
    sizes: Iterable[tuple[int, int]] = GALLERY_SIZES,
) -> Path:
    """`<folder>/index.html`: one row per state, one picture per language and size (only
    the pictures that exist)."""
    from html import escape

    languages, sizes = list(languages), list(sizes)
    head = "".join(
        f"<th>{escape(LANGUAGE_NAMES[lang])} {w}x{h}</th>" for lang in languages for w, h in sizes
    )
    rows = []
    for state in STATES:
        cells = []
        for language in languages:
            for size in sizes:
                name = picture_name(state, language, size)
                if (folder / name).exists():
                    cells.append(
                        f'<td><a href="{name}"><img src="{name}" loading="lazy" '
                        f'alt="{escape(state)} {language} {size[0]}x{size[1]}"></a></td>'
                    )
                else:
                    cells.append("<td>-</td>")
        rows.append(f"<tr><th>{escape(state)}</th>{''.join(cells)}</tr>")
    body = "\n".join(rows)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Terminal screens: gallery</title>
<style>
body {{ font-family: sans-serif; background: #12141c; color: #f5f7fa; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: 4px; vertical-align: top; }}
img {{ max-width: 240px; max-height: 240px; border: 1px solid #3b4252; }}
a {{ color: #6fb1ff; }}
</style></head><body>
<h1>Every screen, four languages, {len(sizes)} sizes</h1>
<p>Written by <code>make demo</code> (no display): the screen tour (ui/tour.py) played by
real taps, a picture of each state. Click a picture for full size.</p>
<table><tr><th>state</th>{head}</tr>
{body}
</table></body></html>
"""
    index = folder / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
