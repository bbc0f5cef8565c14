"""The staff screen by touch (an outside review): the PIN shows dots and its problems where
staff can read them, every staff button answers with what it did, Exit asks first, and a
mode switched by staff survives a restart. Real input only: taps and the simulated reader."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Generator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pos_client.bootstrap import build_app, build_terminal, run_terminal
from pos_client.configfile import ConfigError
from pos_client.demo import DEMO_MEMBERS, seed_demo_members
from pos_client.domain import Purchase
from pos_client.settings import Mode, Settings
from pos_client.staff import MODE_FILE
from tests.conftest import damage_stored_entry
from tests.ui.conftest import run_ui, ui_settings
from ui.demo import on, simulated
from ui.dialogs import ConfirmDialog, shown_dialog
from ui.touch import TouchError, find_widget, hidden_because, tap, tap_keys, walk, window_rect

ANNA = DEMO_MEMBERS[0]
OWN_PIN = "97531"


def own_pin(settings: Settings) -> Settings:
    return replace(settings, admin=replace(settings.admin, pin=OWN_PIN))


def status_bar_bottom() -> float:
    from ui.widgets import StatusBar

    bar = next(w for w in walk() if isinstance(w, StatusBar))
    return window_rect(bar)[1]


def readable_below_the_status_bar(text: str) -> bool:
    """The text is on screen, visible, and wholly below the status bar (not under it)."""
    widget = find_widget(text=text)
    _x, y, _w, h = window_rect(widget)
    return hidden_because(widget) is None and y + h <= status_bar_bottom() + 0.5


def toast_shown(app: Any, text: str) -> bool:
    """The message toast says `text`, visible, below the status bar."""
    from ui.widgets import MessageBar

    if app.message != text:
        return False
    bar = next(w for w in walk() if isinstance(w, MessageBar))
    _x, y, _w, h = window_rect(bar)
    return hidden_because(bar) is None and y + h <= status_bar_bottom() + 0.5


def unlock(app: Any) -> Generator[Any, None, None]:
    yield from tap(text=app.tr("admin.title"))
    yield on(app, "admin")
    yield from tap_keys(app.settings.admin.pin)
    yield from tap(text=app.tr("admin.unlock"))
    yield lambda: bool(app.sm.get_screen("admin").unlocked)


def test_the_pin_shows_dots_never_digits_and_its_problems_below_the_status_bar(
    tmp_path: Path,
) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        from kivy.core.window import Window

        expected = (  # three wrong PINs, each at another window size: then the lockout
            app.tr("admin.wrong_pin", left=2),
            app.tr("admin.wrong_pin", left=1),
            app.tr("admin.locked", seconds=60),
        )
        for size, problem in zip(((1024, 600), (800, 480), (1080, 1920)), expected, strict=True):
            Window.size = size
            yield 0.3
            yield from tap(text=app.tr("admin.title"))
            yield on(app, "admin")
            yield from tap_keys("8642")
            yield 0.1
            find_widget(text="••••")  # one dot a digit, visible
            seen.setdefault("digits", []).extend(
                t for w in walk() if (t := getattr(w, "text", "")) and "86" in str(t)
            )
            yield from tap(text=app.tr("admin.unlock"))
            yield 0.1
            seen.setdefault("shown", []).append(readable_below_the_status_bar(problem))
            yield from tap(text=app.tr("common.back"))
            yield on(app, "idle")
        Window.size = (1024, 600)
        yield 0.3

    run_ui(ui_settings(tmp_path), script)
    assert seen["digits"] == []
    assert seen["shown"] == [True, True, True]


def test_every_staff_button_works_and_says_what_it_did(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from unlock(app)
        yield from tap(text=tr("admin.sync"))
        seen["sync_nothing"] = toast_shown(app, "Nothing pending: every sale is sent")
        yield from tap(text=tr("admin.retry"))
        seen["retry_nothing"] = toast_shown(app, "No failed sales: nothing to resend")
        yield from tap(text="EN")
        yield lambda: app.lang == "ru"
        yield from tap(text="РУ")
        yield from tap(text="УК")
        yield from tap(text="ΕΛ")
        yield lambda: app.lang == "en"
        yield from tap(contains=tr("admin.mode"))
        seen["mode"] = (app.mode, toast_shown(app, "Switched to kiosk mode"))
        yield from tap(contains=tr("admin.mode"))
        seen["mode_back"] = (app.mode, toast_shown(app, "Switched to cashier mode"))
        # A sale recorded while the store server is away waits in the queue...
        sim = simulated(app)
        yield from tap(text=tr("common.back"))
        sim.inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        sim.inject({"cmd": "offline"})
        yield lambda: not app.status_online
        yield from tap(text=tr("member.earn"))
        yield from tap_keys("10.00")
        yield from tap(text=tr("earn.confirm"))
        yield on(app, "receipt")
        yield from tap(text=tr("common.done"))
        yield on(app, "idle")
        yield from unlock(app)
        yield from tap(text=tr("admin.sync"))  # ...and "sync now" says it is sent now
        seen["sync_one"] = toast_shown(app, "Sending 1 sale now")
        # A sale the server refused for good is resent by "Resend failed".
        outbox = app.running.terminal.outbox
        dead = outbox.add({"type": "action", "key": "0-test-refused", "member_id": "m"})
        outbox.mark_dead(dead.key, "invalid", "refused in the test")
        yield from tap(text=tr("admin.retry"))
        seen["retry_one"] = toast_shown(app, "1 failed sale sent again")

    run_ui(own_pin(ui_settings(tmp_path)), script)
    assert seen["sync_nothing"] and seen["retry_nothing"]
    assert seen["mode"] == ("kiosk", True)
    assert seen["mode_back"] == ("cashier", True)
    assert seen["sync_one"] and seen["retry_one"]


def test_exit_asks_first_and_cancel_keeps_the_terminal_running(tmp_path: Path) -> None:
    seen: dict[str, Any] = {"stopped": 0}

    def script(app: Any) -> Generator[Any, None, None]:
        app.bind(on_stop=lambda *_a: seen.__setitem__("stopped", seen["stopped"] + 1))
        yield from unlock(app)
        yield from tap(text=app.tr("admin.exit"))
        yield 0.3
        dialog = shown_dialog(ConfirmDialog)
        seen["asked"] = (dialog.title, dialog.body) if dialog else None
        seen["stopped_after_tap"] = seen["stopped"]
        try:  # the question blocks the staff screen under it
            yield from tap(text=app.tr("admin.retry"))
        except TouchError:
            seen["blocked"] = True
        yield from tap(text=app.tr("confirm.cancel"))
        yield lambda: shown_dialog(ConfirmDialog) is None
        seen["after_cancel"] = (app.sm.current, seen["stopped"])
        yield from tap(text=app.tr("admin.exit"))
        yield from tap(text=app.tr("confirm.ok"))
        yield 1.0  # the app stops: this step is never resumed
        seen["still_running"] = True

    run_ui(ui_settings(tmp_path), script)
    assert seen["asked"] == (
        "Close the terminal app?",
        "Recorded sales are kept; it stays closed until someone starts it again.",
    )
    assert seen["stopped_after_tap"] == 0 and seen["blocked"]
    assert seen["after_cancel"] == ("admin", 0)
    assert seen["stopped"] >= 1 and "still_running" not in seen


def test_a_mode_switched_by_staff_survives_a_restart(tmp_path: Path) -> None:
    settings = own_pin(ui_settings(tmp_path))  # configured as a cashier desk
    seen: dict[str, Any] = {}

    def switch(app: Any) -> Generator[Any, None, None]:
        yield from unlock(app)
        yield from tap(contains=app.tr("admin.mode"))
        seen["switched"] = app.mode

    def after_restart(app: Any) -> Generator[Any, None, None]:
        yield 0.2
        seen["restarted"] = app.mode
        try:  # a kiosk shows customers no staff button
            find_widget(text=app.tr("admin.title"))
            seen["staff_button"] = True
        except TouchError:
            seen["staff_button"] = False

    run_ui(settings, switch)
    state = settings.storage.data_dir / MODE_FILE
    assert seen["switched"] == "kiosk"
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    assert json.loads(state.read_text(encoding="utf-8")) == {"mode": "kiosk"}
    run_ui(settings, after_restart)
    assert seen["restarted"] == "kiosk" and seen["staff_button"] is False


def test_a_damaged_mode_file_falls_back_to_the_configured_mode(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = own_pin(ui_settings(tmp_path))
    settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.storage.data_dir / MODE_FILE).write_text('{"mode": "kio', encoding="utf-8")
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield 0.1
        seen["mode"] = app.mode

    with caplog.at_level(logging.WARNING, logger="pos_client.staff"):
        run_ui(settings, script)
    assert seen["mode"] == "cashier"
    assert any("terminal mode" in r.getMessage() for r in caplog.records), caplog.text


def test_a_saved_kiosk_mode_still_refuses_the_default_pin(tmp_path: Path) -> None:
    settings = ui_settings(tmp_path)  # a cashier desk on the default PIN
    assert settings.terminal.mode is Mode.CASHIER
    settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.storage.data_dir / MODE_FILE).write_text('{"mode": "kiosk"}', encoding="utf-8")
    with run_terminal(settings) as running:
        assert running.terminal.settings.terminal.mode is Mode.KIOSK
        with pytest.raises(ConfigError, match="default staff PIN") as refused:
            build_app(settings, running)
    # The config file says cashier: the message names the file that says kiosk.
    assert MODE_FILE in str(refused.value) and "configured cashier mode" in str(refused.value)


def test_a_message_in_one_language_does_not_stay_after_the_language_changes(
    tmp_path: Path,
) -> None:
    """Switch mode to kiosk on the default PIN is refused with a message; changing the
    language then must not leave that English sentence on a Russian screen."""
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield from unlock(app)
        yield from tap(contains=app.tr("admin.mode"))
        seen["refused"] = toast_shown(app, app.tr("admin.kiosk_pin"))
        yield from tap(text="EN")
        yield lambda: app.lang == "ru"
        seen["after"] = app.message

    run_ui(ui_settings(tmp_path), script)
    assert seen["refused"] is True and seen["after"] == ""


def test_a_sale_damaged_on_this_terminal_is_said_so_and_not_resent_in_a_loop(
    tmp_path: Path,
) -> None:
    """An entry damaged in the outbox file goes to the failed list; the staff screen says it
    is damaged here (not "refused by the server"), and Resend says it cannot be resent."""
    settings = ui_settings(tmp_path)
    keys: list[str] = []
    with build_terminal(settings) as terminal:  # no sync thread: the sales stay pending
        assert terminal.ledger is not None
        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        session = terminal.checkout.identify(ANNA.card_number)
        for amount in ("10.00", "20.00"):
            keys.append(terminal.checkout.earn(session, Purchase.of_amount(Decimal(amount))).key)
        terminal.outbox.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        path = terminal.outbox.path
    damage_stored_entry(path, keys[0])
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield lambda: app.running.terminal.outbox.stats().dead == 1
        yield from unlock(app)
        seen["report"] = app.sm.get_screen("admin").outbox_text
        yield from tap(text=app.tr("admin.retry"))
        seen["said"] = app.message
        yield 1.0
        seen["after"] = app.sm.get_screen("admin").outbox_text
        seen["dead"] = app.running.terminal.outbox.stats().dead

    run_ui(settings, script)
    assert "damaged on this terminal" in seen["report"], seen["report"]
    assert "refused by the server" not in seen["report"]
    assert seen["said"] == "The failed sales left are damaged on this terminal and cannot be resent"
    assert seen["dead"] == 1 and "Failed: 1" in seen["after"], seen["after"]
