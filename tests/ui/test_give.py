"""Transfer / donate by touch: the chosen partner or charity is highlighted, and a transfer
to a partner carries the member's account number there (typed on an on-screen keyboard,
checked, shown in the confirmation, recorded with the sale)."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from kivy.uix.behaviors import ToggleButtonBehavior

from pos_client.demo import DEMO_MEMBERS
from tests.ui.conftest import run_ui, ui_settings
from tests.ui.test_flows import dialog, dialog_open, dialog_text, to_member
from ui import i18n
from ui.demo import on
from ui.dialogs import AccountDialog, shown_dialog
from ui.touch import TouchError, find_widget, tap, tap_keys

ANNA = DEMO_MEMBERS[0]


def account_dialog() -> Any:
    return shown_dialog(AccountDialog)


def test_the_chosen_target_is_highlighted_and_a_transfer_needs_an_account(
    tmp_path: Path,
) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        program = app.running.terminal.program
        miles, fund = (
            i18n.give_target_label("en", program, program.give_target(target))
            for target in ("sky-miles", "skin-cancer-fund")
        )

        def states() -> tuple[str, str]:
            return tuple(  # type: ignore[return-value]
                find_widget(text=label, kind=ToggleButtonBehavior).state for label in (miles, fund)
            )

        yield from to_member(app, ANNA)
        yield from tap(text=tr("member.give"))
        yield on(app, "give")
        give = app.sm.get_screen("give")
        seen["first"] = states()
        yield from tap(text=fund, kind=ToggleButtonBehavior)
        seen["fund"] = states()
        try:  # a donation has no account number
            find_widget(text=tr("give.enter_account"))
        except TouchError:
            seen["no_account_for_fund"] = True
        yield from tap(text=miles, kind=ToggleButtonBehavior)
        seen["miles"] = states()
        yield from tap(text=tr("give.confirm"))
        seen["missing"] = (give.info_text, dialog() is None)
        yield from tap(text=tr("give.enter_account"))
        yield lambda: account_dialog() is not None
        yield from tap(text=tr("common.done"), within=account_dialog())
        seen["empty"] = account_dialog().error
        yield from tap_keys("SM12X<34", within=account_dialog())
        seen["typed"] = account_dialog().value
        yield from tap(text=tr("common.done"), within=account_dialog())
        yield lambda: account_dialog() is None
        seen["shown"] = find_widget(id="account_text").text
        yield from tap(text=tr("give.confirm"))
        yield dialog_open
        seen["question"] = dialog_text()
        yield from tap(text=tr("confirm.ok"), within=dialog())
        yield on(app, "receipt")
        outbox = app.running.terminal.outbox
        seen["body"] = outbox.get(app.sm.get_screen("receipt").key_text).body

    run_ui(ui_settings(tmp_path), script)
    assert seen["first"] == ("down", "normal")
    assert seen["fund"] == ("normal", "down")
    assert seen.get("no_account_for_fund")
    assert seen["miles"] == ("down", "normal")
    assert seen["missing"] == ("Enter your account number at Sky Miles first", True)
    assert seen["empty"] == "Enter your account number at Sky Miles first"
    assert seen["typed"] == "SM1234"
    assert seen["shown"] == "Account number at the partner: SM1234"
    assert "To account: SM1234" in seen["question"].splitlines()
    assert seen["body"]["partner_account"] == "SM1234"
    assert seen["body"]["target_id"] == "sky-miles"
