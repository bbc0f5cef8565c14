"""Flows people expect, driven only by real input (taps through the Window, keys, the
simulated reader): nothing is spent before the customer confirms, the receipt says what
happened and what is left, enrollment works by touch, and kiosks keep staff out of sight."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pos_client.demo import DEMO_MEMBERS, demo_key
from pos_client.settings import Settings
from tests.conftest import make_settings
from tests.ui.conftest import run_ui, ui_settings
from ui import i18n
from ui.demo import on, simulated
from ui.dialogs import ConfirmDialog, shown_dialog
from ui.touch import TouchError, tap, tap_keys

ANNA, BOB = DEMO_MEMBERS[0], DEMO_MEMBERS[1]


def settings_for(tmp_path: Path, program: str = "category_tiers", **changes: Any) -> Settings:
    if program == "category_tiers":
        return ui_settings(tmp_path, **changes)
    settings = make_settings(tmp_path, program=program)
    return replace(
        settings,
        sync=replace(settings.sync, interval_s=0.2, backoff_base_s=0.1, backoff_cap_s=0.5),
        terminal=replace(settings.terminal, **changes),
    )


def recorded(app: Any) -> int:
    """Every operation the terminal ever wrote to its outbox (sent or not)."""
    return len(app.running.terminal.outbox.entries(limit=100_000))


def balance(app: Any, member: Any) -> int:
    record = app.running.terminal.ledger.member(demo_key(f"member:{member.handle}"))
    return int(record.balance)


def dialog() -> ConfirmDialog | None:
    return shown_dialog(ConfirmDialog)  # type: ignore[no-any-return]


def dialog_open() -> bool:
    return dialog() is not None


def dialog_closed() -> bool:
    return dialog() is None


def dialog_text() -> str:
    shown = dialog()
    assert shown is not None, "no confirmation dialog is open"
    return f"{shown.title}\n{shown.body}"


def points(language: str, app: Any, count: int) -> str:
    return i18n.format_points(language, app.running.terminal.program, count)


def to_member(app: Any, member: Any) -> Generator[Any, None, None]:
    simulated(app).inject({"cmd": "tap", "value": member.card_uid})
    yield on(app, "member")


def test_a_reward_is_confirmed_first_cancel_records_nothing(tmp_path: Path) -> None:
    """Redeeming used to commit on the first tap."""
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from to_member(app, ANNA)
        seen["balance"] = balance(app, ANNA)
        before = recorded(app)
        yield from tap(text=tr("member.redeem"))
        yield on(app, "redeem")
        yield from tap(text=f"$25 gift card — {points('en', app, 5000)}")
        yield dialog_open
        seen["question"] = dialog_text()
        try:  # the dialog really blocks what is under it
            yield from tap(text=tr("common.back"))
        except TouchError as exc:
            seen["blocked"] = str(exc)
        seen["screen_under"] = app.sm.current
        yield from tap(text=tr("confirm.cancel"))
        yield dialog_closed
        yield 0.5  # time for anything wrongly recorded to show
        seen["after_cancel"] = (recorded(app) - before, balance(app, ANNA), app.sm.current)
        yield from tap(text=f"$25 gift card — {points('en', app, 5000)}")
        yield dialog_open
        yield from tap(text=tr("confirm.ok"))
        yield on(app, "receipt")
        yield lambda: bool(app.sm.get_screen("receipt").synced)
        seen["after_confirm"] = (recorded(app) - before, balance(app, ANNA))
        seen["receipt"] = app.sm.get_screen("receipt").summary_text

    run_ui(ui_settings(tmp_path), script)
    assert seen["balance"] == 5700
    assert seen["question"].splitlines() == [
        "Get “$25 gift card”?",
        "Points spent: 5,000 points",
        "Balance after: 700 points",
    ]
    assert "never reached it" in seen["blocked"], seen["blocked"]
    assert seen["screen_under"] == "redeem"
    assert seen["after_cancel"] == (0, 5700, "redeem")
    assert seen["after_confirm"] == (1, 700)
    # A reward alone: its name and the balance after; no "To pay: $0.00".
    assert seen["receipt"].splitlines() == [
        "Spent 5,000 points on “$25 gift card”",
        "Balance after: 700 points",
    ]


def test_points_plus_cash_says_what_is_left_to_pay(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from to_member(app, ANNA)
        yield from tap(text=tr("member.redeem"))
        yield on(app, "redeem")
        yield from tap(text=f"$25 gift card — {points('en', app, 2500)} + $12.50")
        yield dialog_open
        seen["question"] = dialog_text()
        yield from tap(text=tr("confirm.ok"))
        yield on(app, "receipt")
        seen["receipt"] = app.sm.get_screen("receipt").summary_text

    run_ui(ui_settings(tmp_path), script)
    assert seen["question"].splitlines() == [
        "Get “$25 gift card”?",
        "Points spent: 2,500 points",
        "You pay: $12.50",
        "You earn: 50 points",  # Platinum: 4 points a dollar on the $12.50 paid
        "Balance after: 3,250 points",
    ]
    assert seen["receipt"].splitlines() == [
        "Earned: +50 points",
        "Spent 2,500 points on “$25 gift card”",
        "To pay: $12.50",
        "Balance after: 3,250 points",
    ]


def test_points_as_money_blocks_are_confirmed_first(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from to_member(app, ANNA)
        start = balance(app, ANNA)
        before = recorded(app)
        yield from tap(text=tr("member.redeem"))
        yield on(app, "redeem")
        label = tr("redeem.blocks", blocks=1, value="$5.00", points=points("en", app, 5000))
        yield from tap(text=label)
        yield dialog_open
        seen["question"] = dialog_text()
        yield from tap(text=tr("confirm.cancel"))
        yield dialog_closed
        yield 0.5
        seen["after_cancel"] = (recorded(app) - before, balance(app, ANNA) - start)
        yield from tap(text=label)
        yield dialog_open
        yield from tap(text=tr("confirm.ok"))
        yield on(app, "receipt")
        yield lambda: bool(app.sm.get_screen("receipt").synced)
        seen["after_confirm"] = (recorded(app) - before, balance(app, ANNA) - start)
        seen["start"] = start
        seen["receipt"] = app.sm.get_screen("receipt").summary_text

    run_ui(settings_for(tmp_path, "wellness_blocks"), script)
    after = f"{seen['start'] - 5000:,} points"
    assert seen["question"].splitlines() == [
        "Use 5,000 points for $5.00 off?",
        "Points spent: 5,000 points",
        f"Balance after: {after}",
    ]
    assert seen["after_cancel"] == (0, 0)
    assert seen["after_confirm"] == (1, -5000)
    assert seen["receipt"].splitlines() == [
        "Spent 5,000 points on “$5.00 off”",
        f"Balance after: {after}",
    ]


@pytest.mark.parametrize(
    ("target", "question", "result", "receipt"),
    [
        (
            "sky-miles",
            "Transfer points to Sky Miles?",
            "You receive: 10 miles",
            "Transferred 1,000 points to Sky Miles: 10 miles",
        ),
        (
            "skin-cancer-fund",
            "Donate to “Skin cancer research”?",
            "Donation: $10.00",
            "Donated 1,000 points to “Skin cancer research”: $10.00",
        ),
    ],
)
def test_a_transfer_or_donation_is_confirmed_first(
    tmp_path: Path, target: str, question: str, result: str, receipt: str
) -> None:
    """Transfers and donations used to commit on the first tap."""
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from to_member(app, ANNA)
        before = recorded(app)
        yield from tap(text=tr("member.give"))
        yield on(app, "give")
        from kivy.uix.button import Button

        program = app.running.terminal.program
        label = i18n.give_target_label("en", program, program.give_target(target))
        yield from tap(text=label, kind=Button)
        if app.sm.get_screen("give").points < 1000:
            yield from tap(text="+")
        seen["points"] = app.sm.get_screen("give").points
        if target == "sky-miles":  # a transfer goes to the member's account at the partner
            from ui.dialogs import AccountDialog, shown_dialog

            yield from tap(text=tr("give.enter_account"))
            yield lambda: shown_dialog(AccountDialog) is not None
            yield from tap_keys("SM77", within=shown_dialog(AccountDialog))
            yield from tap(text=tr("common.done"), within=shown_dialog(AccountDialog))
            yield lambda: shown_dialog(AccountDialog) is None
        yield from tap(text=tr("give.confirm"))
        yield dialog_open
        seen["question"] = dialog_text()
        yield from tap(text=tr("confirm.cancel"))
        yield dialog_closed
        yield 0.5
        seen["after_cancel"] = (recorded(app) - before, balance(app, ANNA), app.sm.current)
        yield from tap(text=tr("give.confirm"))
        yield dialog_open
        yield from tap(text=tr("confirm.ok"))
        yield on(app, "receipt")
        yield lambda: bool(app.sm.get_screen("receipt").synced)
        seen["after_confirm"] = (recorded(app) - before, balance(app, ANNA))
        seen["receipt"] = app.sm.get_screen("receipt").summary_text

    run_ui(ui_settings(tmp_path), script)
    assert seen["points"] == 1000
    account = ["To account: SM77"] if target == "sky-miles" else []
    assert seen["question"].splitlines() == [
        question,
        "Points spent: 1,000 points",
        result,
        *account,
        "Balance after: 4,700 points",
    ]
    assert seen["after_cancel"] == (0, 5700, "give")
    assert seen["after_confirm"] == (1, 4700)
    assert seen["receipt"].splitlines() == [receipt, "Balance after: 4,700 points"]
