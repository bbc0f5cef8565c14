"""An outside review of the kiosk: a phone number is not a secret, so at a kiosk a member
found by a typed number alone earns but does not spend (the screen says to tap or scan the
card); a cashier may spend by phone. And a stars member with nothing to redeem yet sees the
reward a higher level opens and how far it is, never "no rewards". Real input only."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pos_client.demo import DEMO_MEMBERS
from pos_client.settings import Mode
from tests.conftest import make_settings
from tests.ui.conftest import run_ui, ui_settings
from ui.demo import on, simulated
from ui.dialogs import ConfirmDialog, shown_dialog
from ui.touch import find_widget, hidden_because, shown_text, tap, tap_keys, walk

ANNA, BOB = DEMO_MEMBERS[0], DEMO_MEMBERS[1]
GIFT_CARD = "$25 gift card — 5,000 points"
TAP_OR_SCAN = "To spend, tap your card or scan it"


def visible_texts() -> list[str]:
    return [
        text
        for widget in walk()
        if (text := shown_text(widget)) and text.strip() and hidden_because(widget) is None
    ]


def recorded(app: Any) -> int:
    return len(app.running.terminal.outbox.entries(limit=100_000))


def by_phone(app: Any, phone: str) -> Generator[Any, None, None]:
    yield from tap(text=app.tr("idle.phone"))
    yield on(app, "phone")
    yield from tap_keys(phone)
    yield from tap(text=app.tr("phone.find"))
    yield on(app, "member")
    yield 0.1


def try_the_gift_card(app: Any, seen: dict[str, Any], name: str) -> Generator[Any, None, None]:
    yield from tap(text=app.tr("member.redeem"))
    yield on(app, "redeem")
    before = recorded(app)
    yield from tap(text=GIFT_CARD)
    yield 0.3
    dialog = shown_dialog(ConfirmDialog)
    seen[name] = {
        "asked": dialog is not None,
        "said": app.sm.get_screen("redeem").info_text,
        "recorded": recorded(app) - before,
    }
    if dialog is not None:
        yield from tap(text=app.tr("confirm.cancel"))
        yield lambda: shown_dialog(ConfirmDialog) is None
    yield from tap(text=app.tr("common.back"))
    yield on(app, "member")


def test_a_kiosk_spends_only_after_the_card_not_on_a_typed_phone(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield from by_phone(app, ANNA.phone)
        seen["note_by_phone"] = TAP_OR_SCAN in visible_texts()
        yield from try_the_gift_card(app, seen, "by_phone")
        yield from tap(text=app.tr("member.give"))  # a donation is spending too
        yield on(app, "give")
        seen["give_screen"] = visible_texts()
        yield from tap(text=app.tr("common.back"))
        yield on(app, "member")
        # The customer scans the card: now the points are theirs to spend.
        simulated(app).inject({"cmd": "scan", "value": ANNA.card_number})
        yield lambda: TAP_OR_SCAN not in visible_texts()
        yield from try_the_gift_card(app, seen, "by_card")

    run_ui(ui_settings(tmp_path, mode=Mode.KIOSK), script)
    assert seen["note_by_phone"] is True
    assert seen["by_phone"] == {"asked": False, "said": TAP_OR_SCAN, "recorded": 0}
    assert seen["by_card"] == {"asked": True, "said": "", "recorded": 0}


SCAN_THE_CARD = "To spend, scan the barcode on your card"


def test_a_kiosk_where_tags_do_not_spend_says_to_scan_the_card_for_tag_and_phone(
    tmp_path: Path,
) -> None:
    """The kiosk example: a bare tag does not spend (redeem_on_uid = false) and neither does a
    typed phone; the screen must not send the customer from one to the other."""
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        simulated(app).inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        yield 0.1
        seen["by_tag"] = [t for t in visible_texts() if t.startswith("To spend")]
        yield from try_the_gift_card(app, seen, "tag_redeem")
        yield from tap(text=app.tr("common.done"))
        yield on(app, "idle")
        yield from by_phone(app, ANNA.phone)
        seen["by_phone"] = [t for t in visible_texts() if t.startswith("To spend")]
        simulated(app).inject({"cmd": "scan", "value": ANNA.card_number})
        yield lambda: not [t for t in visible_texts() if t.startswith("To spend")]
        yield from try_the_gift_card(app, seen, "by_card")

    settings = ui_settings(tmp_path, mode=Mode.KIOSK)
    run_ui(replace(settings, offline=replace(settings.offline, redeem_on_uid=False)), script)
    assert seen["by_tag"] == [SCAN_THE_CARD] and seen["by_phone"] == [SCAN_THE_CARD]
    assert seen["tag_redeem"] == {"asked": False, "said": SCAN_THE_CARD, "recorded": 0}
    assert seen["by_card"]["asked"] is True


def test_a_kiosk_may_spend_by_phone_when_the_store_allows_it(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield from by_phone(app, ANNA.phone)
        seen["note"] = TAP_OR_SCAN in visible_texts()
        yield from try_the_gift_card(app, seen, "by_phone")

    settings = ui_settings(tmp_path, mode=Mode.KIOSK)
    run_ui(replace(settings, kiosk=replace(settings.kiosk, spend_by_phone=True)), script)
    assert seen["note"] is False and seen["by_phone"]["asked"] is True


def test_a_cashier_may_spend_by_phone(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield from by_phone(app, ANNA.phone)
        seen["note"] = TAP_OR_SCAN in visible_texts()
        yield from try_the_gift_card(app, seen, "by_phone")

    run_ui(ui_settings(tmp_path), script)
    assert seen["note"] is False
    assert seen["by_phone"] == {"asked": True, "said": "", "recorded": 0}


def test_a_stars_kiosk_shows_the_locked_reward_and_how_far_it_is(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        from ui.themed import Meter

        simulated(app).inject({"cmd": "tap", "value": BOB.card_uid})
        yield on(app, "member")
        yield from tap(text=app.tr("member.redeem"))
        yield on(app, "redeem")
        yield 0.1
        seen["texts"] = visible_texts()
        seen["bars"] = [
            round(w.value, 3)
            for w in walk()
            if isinstance(w, Meter) and hidden_because(w) is None and w.height > 0
        ]
        find_widget(text="28 more stars to “Free drink”")

    settings = make_settings(tmp_path, program="stars")
    settings = replace(
        settings,
        terminal=replace(settings.terminal, mode=Mode.KIOSK),
        admin=replace(settings.admin, pin="97531"),
    )
    run_ui(settings, script)
    assert "This programme has no rewards yet" not in seen["texts"], seen["texts"]
    assert "28 more stars to “Free drink”" in seen["texts"], seen["texts"]
    assert seen["bars"] == [round(2 / 30, 3)]


def test_the_new_kiosk_texts_fit_in_every_language_and_size(tmp_path: Path) -> None:
    """The layout walk's checks on the two kiosk states the tour (a cashier's) never shows:
    the member screen found by phone (the "tap or scan" note) and a stars member's locked
    reward with its progress."""
    from tests.ui.test_layout import SIZES
    from ui.i18n import english_words
    from ui.layout_check import check_window
    from ui.layout_check import visible_texts as layout_texts
    from ui.tour import resize

    problems: list[str] = []

    def checks(where: str, language: str, allowed: tuple[str, ...]) -> Generator[Any, None, None]:
        from kivy.core.window import Window

        for size in SIZES:
            yield from resize(size)
            problems.extend(str(p) for p in check_window(f"{where} {language} {size}"))
        problems.extend(
            f"{where} {language}: {words}"
            for _widget, text in layout_texts()
            if (words := english_words(text, language, allowed))
        )
        Window.size = (1024, 600)
        yield 0.2

    def by_phone_script(app: Any) -> Generator[Any, None, None]:
        for language, button in (("en", "EN"), ("ru", "РУ"), ("uk", "УК"), ("el", "ΕΛ")):
            if language != "en":
                yield from tap(text=button)
            yield from by_phone(app, ANNA.phone)
            yield from checks("member by phone", language, ("Anna K.", app.settings.store.name))
            yield from tap(text=app.tr("member.enter_pin"))  # the PIN screen, with an error
            yield on(app, "pin")
            yield from tap_keys("1397")
            yield from tap(text=app.tr("pin.check"))
            yield lambda: bool(app.sm.get_screen("pin").error)
            yield from checks("member PIN", language, ("PIN", app.settings.store.name))
            yield from tap(text=app.tr("common.back"))
            yield on(app, "member")
            yield from tap(text=app.tr("common.done"))
            yield on(app, "idle")

    def stars_script(app: Any) -> Generator[Any, None, None]:
        for language, button in (("en", "EN"), ("ru", "РУ"), ("uk", "УК"), ("el", "ΕΛ")):
            if language != "en":
                yield from tap(text=button)
            simulated(app).inject({"cmd": "tap", "value": BOB.card_uid})
            yield on(app, "member")
            yield from tap(text=app.tr("member.redeem"))
            yield on(app, "redeem")
            yield from checks("stars locked reward", language, (app.settings.store.name,))
            yield from tap(text=app.tr("common.back"))
            yield on(app, "member")
            yield from tap(text=app.tr("common.done"))
            yield on(app, "idle")

    run_ui(ui_settings(tmp_path / "phone", mode=Mode.KIOSK), by_phone_script)
    settings = make_settings(tmp_path / "stars", program="stars")
    settings = replace(
        settings,
        terminal=replace(settings.terminal, mode=Mode.KIOSK),
        admin=replace(settings.admin, pin="97531"),
    )
    run_ui(settings, stars_script)
    assert problems == [], "\n".join(problems[:40])
