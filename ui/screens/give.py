from __future__ import annotations

from functools import partial
from typing import Any

from kivy.properties import BooleanProperty, NumericProperty, StringProperty

from ui.controllers.sale import Proposal
from ui.dialogs import AccountDialog, ask
from ui.pool import Shown, WidgetPool
from ui.screens.base import PosScreen


class GiveScreen(PosScreen):
    """Transfer points to a partner programme (to the member's account number there) or
    donate them, where the programme allows; the chosen target is highlighted; Send asks for
    confirmation first."""

    points = NumericProperty(0)
    target_text = StringProperty("")
    info_text = StringProperty("")
    needs_account = BooleanProperty(False)  # the chosen target is a partner
    account = StringProperty("")  # the member's account number at that partner

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target: dict[str, Any] | None = None
        self._rows: WidgetPool | None = None

    def refresh(self) -> None:
        if self._rows is None:
            self._rows = WidgetPool(self.ids.targets)
        targets = self.pos_app.sale.give_targets()
        chosen = self.target["id"] if self.target else None
        same = [t for t in targets if t["id"] == chosen]
        self.target = same[0] if same else (targets[0] if targets else None)
        if not same:
            self.points = self.target["step"] if self.target else 0
            self.account = ""
        current = self.target["id"] if self.target else None
        self._rows.show(
            Shown(
                "CategoryToggle",
                {
                    "text": target["label"],
                    "group": "give_target",
                    "state": "down" if target["id"] == current else "normal",
                    "allow_no_selection": False,
                },
                partial(self.choose, target),
            )
            for target in targets
        )
        self._show_target()
        self.info_text = "" if targets else self.tr("give.none")

    def _show_target(self) -> None:
        self.target_text = self.target["label"] if self.target else ""
        self.needs_account = bool(self.target and self.target["kind"] == "partner")

    def on_leave(self, *_args: Any) -> None:
        self.target = None  # the next member starts from the first target
        self.account = ""

    def choose(self, target: dict[str, Any], *_args: Any) -> None:
        if self.target is None or self.target["id"] != target["id"]:
            self.account = ""  # an account number belongs to one partner
        self.target = target
        self._show_target()
        self.points = max(self.points, target["step"])
        self.info_text = ""

    def change(self, steps: int) -> None:
        if self.target is not None:
            self.points = max(self.target["step"], self.points + steps * self.target["step"])

    def enter_account(self) -> None:
        """The on-screen keyboard for the account number at the chosen partner."""
        if self.target is None:
            return
        target_id = self.target["id"]
        title = self.tr("account.title", target=self.target["name"])

        def check(account: str) -> str | None:
            return self.pos_app.sale.account_problem(target_id, account)

        def entered(account: str) -> None:
            self.account = account
            self.info_text = ""

        AccountDialog(title, self.account, check, entered).open(animation=False)

    def confirm(self) -> None:
        if self.target is None:
            return
        sale, target_id, points = self.pos_app.sale, self.target["id"], int(self.points)
        account = self.account if self.needs_account else None
        proposal = sale.propose_give(target_id, points, account)
        if not isinstance(proposal, Proposal):
            self.info_text = proposal
            return
        self.info_text = ""

        def confirmed() -> None:
            self.info_text = sale.confirm_give(target_id, points, account) or ""

        ask(proposal.title, proposal.lines, confirmed)
