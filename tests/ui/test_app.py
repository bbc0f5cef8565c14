"""The running app, driven only as a person and the devices would: taps through the Window,
keys through the Window, cards and scans through the simulated reader driver."""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops

from pos_client.demo import DEMO_MEMBERS
from pos_client.settings import Mode
from tests.ui.conftest import run_ui, ui_settings
from ui import i18n
from ui.demo import on, simulated
from ui.touch import press_key, tap, tap_keys, type_into, type_keys

ANNA, BOB = DEMO_MEMBERS[0], DEMO_MEMBERS[1]


def test_a_simulated_tap_shows_the_member_masked(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        simulated(app).inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        screen = app.sm.get_screen("member")
        seen.update(name=screen.name_text, balance=screen.balance_text)

    run_ui(ui_settings(tmp_path), script)
    assert seen["name"].startswith("Anna K.") and "Karenina" not in seen["name"]
    assert "912" not in seen["name"] and seen["name"].endswith("89")
    assert seen["balance"] == "5,700 points"


def test_a_wedge_speed_burst_identifies_and_slow_typing_does_not(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        type_keys(BOB.card_number, gap_s=0.2)  # a person: far slower than a scanner
        yield 1.0
        seen["after_typing"] = app.sm.current
        type_keys("]E0" + BOB.card_number, gap_s=0.008)  # a wedge scanner
        yield on(app, "member")
        seen["member"] = app.sm.get_screen("member").name_text

    run_ui(ui_settings(tmp_path), script)
    assert seen["after_typing"] == "idle"
    assert seen["member"].startswith("Bob S.")


def test_phone_entry_finds_a_member_and_enrolls_an_unknown_number(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield from tap(text=app.tr("idle.phone"))
        phone = app.sm.get_screen("phone")
        yield from tap_keys("123")
        yield from tap(text=app.tr("phone.find"))
        seen["invalid"] = phone.error
        yield from tap_keys("<<<")
        yield from tap_keys("+16502530000")
        seen["formatted"] = phone.display
        yield from tap(text=app.tr("phone.find"))
        yield on(app, "member")
        seen["found"] = app.sm.get_screen("member").name_text
        yield from tap(text=app.tr("common.done"))
        yield from tap(text=app.tr("idle.phone"))
        yield from tap_keys("+306900000077")
        yield from tap(text=app.tr("phone.find"))
        yield on(app, "enroll")
        enroll = app.sm.get_screen("enroll")
        yield from type_into(id="first_name", text="Nikos")
        seen["typed"] = enroll.ids.first_name.text
        yield from tap(text=app.tr("enroll.next"))
        yield from tap(text=app.tr("enroll.join"))
        seen["no_consent"] = enroll.error
        yield from tap(id="consent")
        yield from tap(text=app.tr("enroll.join"))
        yield lambda: bool(enroll.card_number)
        seen["card"] = enroll.card_number
        seen["image"] = enroll.card_image

    run_ui(ui_settings(tmp_path), script)
    assert seen["invalid"].startswith("Not a valid number for United States")
    assert seen["formatted"] == "+1 650-253-0000"
    assert seen["typed"] == "Nikos"
    assert seen["found"].startswith("Bob S.")
    assert seen["no_consent"] == "Please accept the programme terms to join"
    assert len(seen["card"]) == 13 and seen["card"].startswith("2")
    import zxingcpp

    decoded = zxingcpp.read_barcodes(Image.open(seen["image"]))
    assert [d.text for d in decoded] == [seen["card"]]


def test_an_earn_is_pending_while_the_backend_is_down_and_synced_after(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        sim = simulated(app)
        sim.inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        sim.inject({"cmd": "offline"})
        yield lambda: not app.status_online
        yield from tap(text=app.tr("member.earn"))
        earn = app.sm.get_screen("earn")
        yield from tap_keys("10.00")
        seen["preview"] = earn.preview_text
        yield from tap(text=app.tr("earn.confirm"))
        yield on(app, "receipt")
        receipt = app.sm.get_screen("receipt")
        yield 0.5
        seen["pending"] = (receipt.synced, app.status_pending)
        sim.inject({"cmd": "online"})
        yield lambda: bool(receipt.synced)
        yield lambda: app.status_pending == 0
        seen["synced"] = (receipt.synced, app.status_online)

    run_ui(ui_settings(tmp_path), script)
    assert seen["preview"] == "$10.00: Earns 40 points"
    assert seen["pending"] == (False, 1)
    assert seen["synced"] == (True, True)


def test_admin_pin_locks_out_after_repeated_failures(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield from tap(text=app.tr("admin.title"))
        admin = app.sm.get_screen("admin")
        errors = []
        for _ in range(3):
            yield from tap_keys("0000")
            yield from tap(text=app.tr("admin.unlock"))
            errors.append(admin.error)
        yield from tap_keys(app.settings.admin.pin)  # the right PIN, but locked out now
        yield from tap(text=app.tr("admin.unlock"))
        errors.append(admin.error)
        seen["errors"], seen["unlocked"] = errors, admin.unlocked

    run_ui(ui_settings(tmp_path), script)
    assert seen["errors"][:2] == ["Wrong PIN: 2 tries left", "Wrong PIN: 1 try left"]
    assert seen["errors"][2].startswith("Locked: try again in 60 s")
    assert seen["errors"][3].startswith("Locked") and not seen["unlocked"]


def test_admin_unlocks_with_the_right_pin(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield from tap(text=app.tr("admin.title"))
        admin = app.sm.get_screen("admin")
        yield from tap_keys(app.settings.admin.pin)
        yield from tap(text=app.tr("admin.unlock"))
        seen["unlocked"], seen["outbox"] = admin.unlocked, admin.outbox_text

    run_ui(ui_settings(tmp_path), script)
    assert seen["unlocked"] and seen["outbox"].startswith("Unsent: 0 · Failed: 0")


def test_inactivity_timeout_returns_to_idle_and_forgets_the_member(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        simulated(app).inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        seen["before"] = app.customer.session is not None
        yield on(app, "idle")
        seen["after"] = app.customer.session

    run_ui(ui_settings(tmp_path, mode=Mode.KIOSK, inactivity_s=1.0), script)
    assert seen["before"] and seen["after"] is None


def test_kiosk_hides_the_cashier_earn_button_and_ignores_escape(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        from kivy.config import Config

        simulated(app).inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        seen["mode"] = app.mode
        seen["escape_exits"] = Config.get("kivy", "exit_on_escape")
        press_key(27, 41)  # Escape, as SDL delivers it
        yield 0.3
        seen["still_running"] = app.sm.current == "member"

    run_ui(ui_settings(tmp_path, mode=Mode.KIOSK), script)
    assert seen == {"mode": "kiosk", "escape_exits": "0", "still_running": True}


def test_each_language_renders_its_strings(tmp_path: Path) -> None:
    seen: dict[str, str] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        buttons = {"en": "EN", "ru": "РУ", "uk": "УК", "el": "ΕΛ"}
        for language in ("en", "ru", "uk", "el"):
            yield from tap(text=buttons[language])
            yield 0.1
            seen[f"{language}-lang"] = app.lang
            labels = [w.text for w in app.sm.get_screen("idle").walk() if hasattr(w, "text")]
            seen[language] = " | ".join(labels)

    run_ui(ui_settings(tmp_path), script)
    for language in ("en", "ru", "uk", "el"):
        assert seen.pop(f"{language}-lang") == language
    for language in ("en", "ru", "uk", "el"):
        assert i18n.translate(language, "idle.title") in seen[language]
        assert i18n.translate(language, "idle.phone") in seen[language]
        assert not i18n.missing_keys(language)
    assert len({seen[lang] for lang in seen}) == 4


def test_unknown_card_and_reader_errors_are_shown(tmp_path: Path) -> None:
    seen: list[str] = []

    def script(app: Any) -> Generator[Any, None, None]:
        sim = simulated(app)
        sim.inject({"cmd": "tap", "value": "04:11:22:33"})
        yield lambda: bool(app.message)
        seen.append(app.message)
        sim.inject({"cmd": "error", "value": "the card did not answer"})
        yield lambda: app.message != seen[0]
        seen.append(app.message)
        sim.inject({"cmd": "scan", "value": "]E02900000000019"})
        yield lambda: app.message != seen[1]
        seen.append(app.message)
        seen.append(app.sm.current)

    run_ui(ui_settings(tmp_path), script)
    assert seen == [
        "We don't know this card or phone",
        "The card could not be read, please tap it again",
        "The code did not scan correctly, please scan again",
        "idle",
    ]


def test_key_screens_are_drawn_and_differ(tmp_path: Path, shots_dir: Path) -> None:
    def script(app: Any) -> Generator[Any, None, None]:
        yield "idle"
        simulated(app).inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        yield "member"
        yield from tap(text=app.tr("member.earn"))
        yield from tap_keys("42")
        yield "earn"
        yield from tap(text=app.tr("common.back"))
        yield from tap(text=app.tr("member.redeem"))
        yield "redeem"
        yield from tap(text=app.tr("common.back"))
        yield from tap(text=app.tr("common.done"))
        yield from tap(text=app.tr("idle.phone"))
        yield "phone"

    runner = run_ui(ui_settings(tmp_path), script, shots_dir)
    images = {path.stem: Image.open(path).convert("RGB") for path in runner.screenshots}
    assert set(images) == {"idle", "member", "earn", "redeem", "phone"}
    for name, image in images.items():
        colours = image.getcolors(maxcolors=1_000_000) or []
        assert len(colours) > 20, f"{name} looks blank"
    names = sorted(images)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            difference = ImageChops.difference(images[first], images[second]).getbbox()
            assert difference is not None, f"{first} and {second} look the same"


def test_a_spinner_shows_past_one_second_and_the_link_dropping_is_said(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        changes: list[tuple[float, bool]] = []
        app.bind(busy=lambda _app, value: changes.append((time.monotonic(), bool(value))))
        sim = simulated(app)
        assert sim.inject({"cmd": "latency", "seconds": 1.6})["ok"]  # a slow link
        started = time.monotonic()
        sim.inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        seen["shown"] = time.monotonic() - started
        yield 0.1
        seen["changes"] = [(at - started, value) for at, value in changes]
        sim.inject({"cmd": "latency", "seconds": 0})
        sim.inject({"cmd": "offline"})
        yield lambda: not app.status_online
        seen["message"] = app.message

    run_ui(ui_settings(tmp_path), script)
    changes = seen["changes"]
    # The clock never fires early: the spinner appears no sooner than 1 s into the wait,
    # and goes away when the member is shown.
    assert [value for _at, value in changes] == [True, False]
    assert changes[0][0] >= 1.0 and seen["shown"] >= 1.6
    assert changes[1][0] >= 1.6  # not before the slow lookup answered
    assert seen["message"] == "The loyalty server cannot be reached"
