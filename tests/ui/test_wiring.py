"""Issue 16, the member, staff and status defects and the translation wiring, each shown by
real input: taps through the Window (ui.touch), keys through the Window, cards and scans
through the simulated reader. No screen or controller handler is called here."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pos_client.demo import DEMO_MEMBERS
from pos_client.events import ReaderStatus
from pos_client.settings import Settings
from tests.ui.conftest import run_ui, ui_settings
from ui import i18n
from ui.demo import on, simulated
from ui.touch import find_widget, press_key, shown_text, tap, tap_keys, type_into, walk

ANNA, BOB = DEMO_MEMBERS[0], DEMO_MEMBERS[1]
LANGUAGE_BUTTONS = {"en": "EN", "ru": "РУ", "uk": "УК", "el": "ΕΛ"}


def with_program(settings: Settings, program: str) -> Settings:
    return replace(settings, program=program)


def visible_texts() -> list[str]:
    """Every text a person can read on the window now (labels and field hints)."""
    from ui.touch import hidden_because

    texts = []
    for widget in walk():
        text = shown_text(widget)
        if text and text.strip() and hidden_because(widget) is None:
            texts.append(text)
    return texts


def english_left(language: str, allowed: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{text!r}: {words}"
        for text in visible_texts()
        if (words := i18n.english_words(text, language, allowed))
    ]


def drawn_bars() -> list[Any]:
    """The progress bars drawn now (the theme's Meter, or a Kivy ProgressBar)."""
    from kivy.uix.progressbar import ProgressBar

    from ui.themed import Meter
    from ui.touch import hidden_because

    return [w for w in walk() if isinstance(w, Meter | ProgressBar) and hidden_because(w) is None]


def shows(text: str) -> bool:
    return text in visible_texts()


def unlock_staff(app: Any) -> Generator[Any, None, None]:
    yield from tap(text=app.tr("admin.title"))
    yield on(app, "admin")
    yield from tap_keys(app.settings.admin.pin)
    yield from tap(text=app.tr("admin.unlock"))


# ------------------------------------------------------------------ member screen


def test_after_enrolling_online_the_member_screen_is_not_offline_and_shows_the_next_level(
    tmp_path: Path,
) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield lambda: bool(app.status_online)
        yield from tap(text=app.tr("idle.phone"))
        yield from tap_keys("+306900000077")
        yield from tap(text=app.tr("phone.find"))
        yield on(app, "enroll")
        yield from type_into(id="first_name", text="Nikos")
        yield from tap(text=app.tr("enroll.next"))
        yield from tap(id="consent")
        yield from tap(text=app.tr("enroll.join"))
        yield lambda: bool(app.sm.get_screen("enroll").card_number)
        yield from tap(text=app.tr("common.done"))
        yield on(app, "member")
        yield 0.1
        seen["texts"] = visible_texts()
        seen["status_online"] = app.status_online

    run_ui(ui_settings(tmp_path), script)
    texts = seen["texts"]
    assert seen["status_online"]
    assert i18n.translate("en", "member.offline") not in texts
    assert i18n.translate("en", "member.top_tier") not in texts
    # category_tiers: spend-based levels, so the way to Platinum is money, with its currency
    assert "$3,500.00 to Platinum" in texts, [t for t in texts if "to" in t]


def test_spend_to_the_next_level_is_money_with_its_currency(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        simulated(app).inject({"cmd": "tap", "value": BOB.card_uid})
        yield on(app, "member")
        yield 0.1
        seen["texts"] = visible_texts()

    run_ui(ui_settings(tmp_path), script)
    progress = [t for t in seen["texts"] if t.endswith("to Platinum")]
    assert progress and progress[0].startswith("$"), seen["texts"]


def test_a_one_level_programme_never_says_top_level_reached(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        simulated(app).inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        yield 0.1
        seen["texts"] = visible_texts()
        seen["bars"] = len(drawn_bars())

    run_ui(with_program(ui_settings(tmp_path), "wellness_blocks"), script)
    assert i18n.translate("en", "member.top_tier") not in seen["texts"]
    assert seen["bars"] == 1  # the reward bar only: there is no level to progress to


def test_a_reward_behind_a_higher_level_is_said_not_drawn_as_a_full_bar(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        simulated(app).inject({"cmd": "tap", "value": BOB.card_uid})
        yield on(app, "member")
        yield 0.1
        seen["texts"] = visible_texts()
        seen["bars"] = [bar.value for bar in drawn_bars()]

    run_ui(with_program(ui_settings(tmp_path), "stars"), script)
    assert "Next reward “Free drink” unlocks at level “Gold”" in seen["texts"], seen["texts"]
    assert 1 not in seen["bars"] and len(seen["bars"]) == 1  # only the level bar is drawn
    assert any(t.endswith("to “Green”") or t.endswith("to Green") for t in seen["texts"])


def test_the_member_screen_reads_fully_in_each_language(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        for language in ("ru", "uk", "el"):
            yield from tap(text=LANGUAGE_BUTTONS[language])
            simulated(app).inject({"cmd": "tap", "value": ANNA.card_uid})
            yield on(app, "member")
            yield 0.1
            seen[language] = (english_left(language, ("Anna K.",)), visible_texts(), app.title)
            yield from tap(text=app.tr("common.done"))
            yield on(app, "idle")

    run_ui(ui_settings(tmp_path), script)
    assert seen["ru"][0] == [] and seen["uk"][0] == [] and seen["el"][0] == [], seen
    assert "5 700 баллов" in [t.replace("\u00a0", " ") for t in seen["ru"][1]]
    assert any("Платина" in t for t in seen["ru"][1])
    assert seen["ru"][2].endswith("Баллы красоты")
    assert seen["el"][2].endswith("Πόντοι ομορφιάς")


def test_stars_are_stars_in_every_language(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield from tap(text="РУ")
        simulated(app).inject({"cmd": "tap", "value": BOB.card_uid})
        yield on(app, "member")
        yield 0.1
        seen["texts"], seen["english"] = visible_texts(), english_left("ru", ("Bob S.",))

    run_ui(with_program(ui_settings(tmp_path), "stars"), script)
    assert seen["english"] == []
    assert "2 звезды" in seen["texts"], seen["texts"]  # Bob: two purchases, two stars
    assert any("«Бесплатный напиток»" in t and "«Золотой»" in t for t in seen["texts"])


# ------------------------------------------------------------------ errors said in words


def test_core_errors_reach_the_screen_translated(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        sim = simulated(app)
        yield from tap(text="РУ")
        sim.inject({"cmd": "error", "value": "the card did not answer"})
        yield lambda: bool(app.message)
        seen["reader"] = app.message
        sim.inject({"cmd": "scan", "value": "]E02900000000019"})
        yield lambda: app.message != seen["reader"]
        seen["check_digit"] = app.message
        sim.inject({"cmd": "tap", "value": "04:11:22:33"})
        yield lambda: app.message != seen["check_digit"]
        seen["unknown"] = app.message
        yield from tap(text=app.tr("idle.phone"))
        yield from tap_keys("123")
        yield from tap(text=app.tr("phone.find"))
        seen["phone"] = app.sm.get_screen("phone").error
        seen["english"] = english_left("ru")

    run_ui(ui_settings(tmp_path), script)
    ru = lambda key, **v: i18n.translate("ru", key, **v)  # noqa: E731
    assert seen["reader"] == ru("error.card_reader")
    assert seen["check_digit"] == ru("error.check_digit")
    assert seen["unknown"] == ru("error.unknown")
    assert seen["phone"] == i18n.error_text("ru", "phone_invalid", {"region": "US"})
    assert "Соединенные Штаты" in seen["phone"]
    assert seen["english"] == []


# ------------------------------------------------------------------ status bar


def test_the_readers_state_is_words_in_the_language_shown(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        seen["en"] = shows(i18n.translate("en", "status.readers", state="ready"))
        yield from tap(text="УК")
        seen["uk"] = shows("Зчитувачі: готові")
        # a reader reports a fault, as a driver does, on the terminal's bus
        app.running.terminal.bus.publish(ReaderStatus("sim:sim", "error", "USB unplugged"))
        yield lambda: "sim" in app.status_readers and "готові" not in app.status_readers
        seen["fault"] = app.status_readers
        seen["message"] = app.message
        seen["english"] = english_left("uk", allowed=("sim",))

    run_ui(ui_settings(tmp_path), script)
    assert seen["en"] and seen["uk"]
    assert seen["fault"] == "sim: помилка"
    assert seen["message"] == i18n.translate("uk", "error.card_reader")
    assert seen["english"] == []


# ------------------------------------------------------------------ staff screen


def test_switching_language_on_the_staff_screen_keeps_it_unlocked_and_translates_it(
    tmp_path: Path,
) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield from unlock_staff(app)
        yield from tap(text="EN")  # the language button shows the language now: on to РУ
        yield 0.1
        seen["lang"] = app.lang
        seen["unlocked"] = app.sm.get_screen("admin").unlocked
        find_widget(text=app.tr("admin.retry"))  # the staff actions are still there
        seen["texts"] = visible_texts()
        seen["english"] = english_left("ru", allowed=("sim",))

    run_ui(ui_settings(tmp_path), script)
    assert seen["lang"] == "ru" and seen["unlocked"]
    assert "Не отправлено: 0 · Ошибки: 0 · Доставлено: 0" in seen["texts"]
    assert "sim: готовы" in seen["texts"]
    assert seen["english"] == []


def test_escape_follows_the_mode_switched_on_the_staff_screen(tmp_path: Path) -> None:
    seen: dict[str, Any] = {"quit_asked": 0}

    def script(app: Any) -> Generator[Any, None, None]:
        from kivy.core.window import Window

        def quit_asked(*_args: Any, **_kwargs: Any) -> bool:
            seen["quit_asked"] += 1
            return True  # keep the test's window: Escape asked to quit, that is enough

        Window.bind(on_request_close=quit_asked)
        try:
            yield from unlock_staff(app)
            yield from tap(contains=app.tr("admin.mode"))
            seen["mode"] = app.mode
            press_key(27, 41)  # Escape
            yield 0.2
            seen["kiosk_escape"] = seen["quit_asked"]
            yield from tap(contains=app.tr("admin.mode"))
            seen["back_to"] = app.mode
            press_key(27, 41)
            yield 0.2
            seen["cashier_escape"] = seen["quit_asked"]
        finally:
            Window.unbind(on_request_close=quit_asked)

    settings = ui_settings(tmp_path)  # a PIN of its own: no kiosk runs on the default one
    run_ui(replace(settings, admin=replace(settings.admin, pin="97531")), script)
    assert seen["mode"] == "kiosk" and seen["kiosk_escape"] == 0
    assert seen["back_to"] == "cashier" and seen["cashier_escape"] == 1


# ------------------------------------------------------------------ purchase keypad


def test_the_purchase_keypad_types_the_languages_decimal_separator(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield from tap(text="РУ")
        simulated(app).inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        yield from tap(text=app.tr("member.earn"))
        yield on(app, "earn")
        seen["dot_key"] = [t for t in visible_texts() if t == "."]
        yield from tap_keys("12,5")
        seen["amount"] = shows("12,5")
        yield from tap(text="Косметика")
        yield from tap(text=app.tr("earn.add_line"))
        seen["texts"] = visible_texts()

    run_ui(ui_settings(tmp_path), script)
    assert seen["dot_key"] == [] and seen["amount"]
    assert any("Косметика" in t and "12,50" in t for t in seen["texts"]), seen["texts"]
    assert "Категория: Косметика" in seen["texts"]
