"""Enrollment by touch (on-screen keyboard, large consent toggles with tappable labels,
terms to read, a welcome with the card) and kiosk mode (no Staff button for customers, a
deliberate long press for staff; rewards out of reach say what is missing), and the
spending confirmation and receipt in Russian — all by real input."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from kivy.uix.scrollview import ScrollView
from PIL import Image

from pos_client.demo import DEMO_MEMBERS
from pos_client.settings import Mode
from tests.ui.conftest import run_ui, ui_settings
from tests.ui.test_flows import dialog_closed, dialog_open, dialog_text, recorded
from ui import i18n
from ui.demo import on, simulated
from ui.dialogs import TermsDialog
from ui.forms import LETTERS
from ui.touch import TouchError, find_widget, long_press, tap, tap_keys, window_rect

ANNA, BOB = DEMO_MEMBERS[0], DEMO_MEMBERS[1]
NEW_PHONE = "+306900000077"


def luminance(rgb: tuple[int, ...]) -> float:
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(first: tuple[int, ...], second: tuple[int, ...]) -> float:
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def best_contrast(tmp_path: Path, name: str, widget: Any) -> float:
    """The strongest contrast inside the widget's rectangle against the screen background
    (the most common colour there), from a real screenshot."""
    from kivy.core.window import Window

    written = Window.screenshot(name=str(tmp_path / f"{name}.png"))
    image = Image.open(written).convert("RGB")
    x, y, w, h = window_rect(widget)
    crop = image.crop((int(x), int(Window.height - y - h), int(x + w), int(Window.height - y)))
    colours = sorted(crop.getcolors(maxcolors=1_000_000) or [], reverse=True)
    background = colours[0][1]
    return max(contrast(colour, background) for _n, colour in colours)


def to_enroll(app: Any, language: str = "EN") -> Generator[Any, None, None]:
    if language != "EN":
        yield from tap(text=language)
    yield from tap(text=app.tr("idle.phone"))
    yield on(app, "phone")
    yield from tap_keys(NEW_PHONE)
    yield from tap(text=app.tr("phone.find"))
    yield on(app, "enroll")


def test_enrolling_by_touch_keyboard_toggles_terms_and_welcome(tmp_path: Path) -> None:
    """No on-screen keyboard, 16 px dark checkboxes with untappable labels, a consent error
    repeating the label, no terms, and "not a member yet" after joining: all fixed."""
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from to_enroll(app)
        enroll = app.sm.get_screen("enroll")
        seen["not_found_before"] = bool(find_widget(contains=tr("enroll.not_found")))
        yield from tap_keys("Dana")
        yield from tap(text=tr("keyboard.space"))
        yield from tap_keys("Marx")
        yield from tap(text="<")
        yield from tap_keys("y-Jo")
        seen["typed"] = enroll.ids.first_name.text
        yield from tap(text=tr("enroll.next"))
        consent, marketing = enroll.ids.consent, enroll.ids.marketing
        box = consent.ids.box.__self__
        seen["box_size"] = window_rect(box)[2:]
        seen["off_contrast"] = best_contrast(tmp_path, "off", box)
        yield from tap(text=tr("enroll.join"))
        seen["no_consent"] = enroll.error
        yield from tap(text=tr("enroll.consent"))  # the label, not the box
        seen["label_toggles"] = consent.active
        yield 0.1
        seen["on_contrast"] = best_contrast(tmp_path, "on", box)
        yield from tap(box)
        seen["box_toggles"] = consent.active
        yield from tap(box)
        yield from tap(text=tr("enroll.marketing"))
        seen["marketing"] = marketing.active
        yield from tap(text=tr("enroll.terms"))
        yield 0.2
        terms = find_widget(id="terms_text")
        seen["terms"] = terms.text
        seen["terms_scrolls"] = isinstance(terms.parent, ScrollView) and terms.height > 0
        try:  # the terms are modal too
            yield from tap(text=tr("enroll.join"))
        except TouchError:
            seen["terms_modal"] = True
        yield from tap(text=tr("common.close"))
        from kivy.core.window import Window

        seen["terms_closed"] = not any(isinstance(w, TermsDialog) for w in Window.children)
        yield from tap(text=tr("enroll.join"))
        yield lambda: bool(enroll.card_number)
        yield 0.2
        seen["welcome"] = find_widget(text=tr("enroll.welcome", name="Dana Mary-Jo")).text
        try:
            find_widget(contains=tr("enroll.not_found"))
            seen["not_found_after"] = True
        except TouchError:
            seen["not_found_after"] = False
        seen["card_caption"] = find_widget(contains=enroll.card_number).text
        yield from tap(text=tr("common.done"))
        yield on(app, "member")
        seen["member"] = app.sm.get_screen("member").name_text

    run_ui(ui_settings(tmp_path), script)
    assert seen["typed"] == "Dana Mary-Jo"
    assert min(seen["box_size"]) >= 48
    assert seen["off_contrast"] >= 4.5 and seen["on_contrast"] >= 4.5, seen
    assert seen["no_consent"] == "Please accept the programme terms to join"
    assert seen["label_toggles"] is True and seen["box_toggles"] is False
    assert seen["marketing"] is True
    assert seen["terms"] == i18n.translate("en", "enroll.terms_text")
    assert seen["terms_scrolls"] and seen["terms_modal"] and seen["terms_closed"]
    assert seen["not_found_before"] and not seen["not_found_after"]
    assert seen["welcome"] == "Welcome, Dana Mary-Jo!"
    assert seen["card_caption"].startswith("Your new card: 2")
    assert seen["member"].startswith("Dana Mary-Jo")


@pytest.mark.parametrize(
    ("button", "language", "name"),
    [("РУ", "ru", "Анна"), ("УК", "uk", "Ґалина Її’єнко"), ("ΕΛ", "el", "Ελένη")],
)
def test_the_keyboard_has_the_letters_of_the_language(
    tmp_path: Path, button: str, language: str, name: str
) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield from to_enroll(app, button)
        enroll = app.sm.get_screen("enroll")
        for char in name:
            if char == " ":
                yield from tap(text=app.tr("keyboard.space"))
            else:
                yield from tap(text=char)
        seen["typed"] = enroll.ids.first_name.text
        seen["space"] = app.tr("keyboard.space")

    run_ui(ui_settings(tmp_path), script)
    assert seen["typed"] == name
    assert seen["space"] == i18n.translate(language, "keyboard.space")
    if language == "uk":
        assert set("ієїґ") <= set("".join(LETTERS["uk"]))


def test_kiosk_never_offers_staff_a_long_corner_press_does(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        try:
            find_widget(text=tr("admin.title"))
            seen["staff_button"] = True
        except TouchError:
            seen["staff_button"] = False
        corner = find_widget(id="staff_corner")
        seen["corner"] = window_rect(corner)
        yield from tap(corner)  # a customer's tap
        yield 0.3
        seen["after_tap"] = app.sm.current
        yield from long_press(id="staff_corner", seconds=1.0)  # not long enough
        yield 0.3
        seen["after_short_hold"] = app.sm.current
        yield from long_press(id="staff_corner", seconds=2)
        yield on(app, "admin")
        seen["after_long_press"] = app.sm.current

    run_ui(ui_settings(tmp_path, mode=Mode.KIOSK), script)
    assert seen["staff_button"] is False
    assert seen["after_tap"] == seen["after_short_hold"] == "idle"
    assert seen["after_long_press"] == "admin"
    from kivy.core.window import Window

    x, _y, w, h = seen["corner"]
    assert x + w >= Window.width - 1 and w <= 100 and h <= 100  # small, in the corner


def test_cashier_keeps_a_visible_staff_button(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield from tap(text=app.tr("admin.title"))
        yield on(app, "admin")
        seen["screen"] = app.sm.current

    run_ui(ui_settings(tmp_path), script)
    assert seen["screen"] == "admin"


def test_a_kiosk_member_short_of_points_sees_what_is_missing(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        simulated(app).inject({"cmd": "tap", "value": BOB.card_uid})
        yield on(app, "member")
        seen["balance"] = app.customer.session.spendable
        yield from tap(text=app.tr("member.redeem"))
        yield on(app, "redeem")
        seen["rows"] = [
            find_widget(contains=f"{cost:,} points").text.splitlines() for cost in (5000, 2500)
        ]

    run_ui(ui_settings(tmp_path, mode=Mode.KIOSK), script)
    balance = seen["balance"]
    assert 0 < balance < 2500
    assert seen["rows"] == [
        ["$25 gift card — 5,000 points", f"{5000 - balance:,} more points"],
        ["$25 gift card — 2,500 points + $12.50", f"{2500 - balance:,} more points"],
    ]


def test_confirmation_and_receipt_in_russian(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield from tap(text="РУ")
        simulated(app).inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        before = recorded(app)
        yield from tap(text=app.tr("member.redeem"))
        yield on(app, "redeem")
        yield from tap(text="Подарочная карта на 25 $ — 5\xa0000 баллов")
        yield dialog_open
        seen["question"] = dialog_text()
        yield from tap(text=app.tr("confirm.cancel"))
        yield dialog_closed
        yield 0.3
        seen["cancelled"] = recorded(app) - before
        yield from tap(text="Подарочная карта на 25 $ — 5\xa0000 баллов")
        yield dialog_open
        yield from tap(text=app.tr("confirm.ok"))
        yield on(app, "receipt")
        seen["receipt"] = app.sm.get_screen("receipt").summary_text
        seen["recorded"] = recorded(app) - before

    run_ui(ui_settings(tmp_path), script)
    ru = "ru"
    assert seen["question"].splitlines() == [
        i18n.translate(ru, "confirm.reward_title", reward="Подарочная карта на 25 $"),
        i18n.translate(ru, "confirm.spend", points="5\xa0000 баллов"),
        i18n.translate(ru, "sale.balance_after", points="700 баллов"),
    ]
    assert seen["question"].splitlines()[0] == "Получить «Подарочная карта на 25 $»?"
    assert (seen["cancelled"], seen["recorded"]) == (0, 1)
    assert seen["receipt"].splitlines() == [
        "Списано 5\xa0000 баллов: «Подарочная карта на 25 $»",
        "Осталось на счёте: 700 баллов",  # done: not "Останется" (will remain)
    ]


def test_an_offline_receipt_says_the_balance_is_pending(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        sim = simulated(app)
        sim.inject({"cmd": "tap", "value": ANNA.card_uid})  # known here from now on
        yield on(app, "member")
        yield from tap(text=app.tr("common.done"))
        sim.inject({"cmd": "offline"})
        yield lambda: not app.status_online
        sim.inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        yield from tap(text=app.tr("member.redeem"))
        yield on(app, "redeem")
        yield from tap(text="$25 gift card — 2,500 points + $12.50")
        yield dialog_open
        yield from tap(text=app.tr("confirm.ok"))
        yield on(app, "receipt")
        seen["receipt"] = app.sm.get_screen("receipt").summary_text

    run_ui(ui_settings(tmp_path), script)
    assert seen["receipt"].splitlines() == [
        "Earned: +50 points",
        "Spent 2,500 points on “$25 gift card”",
        "To pay: $12.50",
        "Balance after: pending until the terminal is back online",
    ]
