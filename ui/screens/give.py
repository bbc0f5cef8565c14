from __future__ import annotations

from functools import partial
from typing import Any

from kivy.properties import NumericProperty, StringProperty

from ui.controllers.sale import Proposal
from ui.dialogs import ask
from ui.pool import Shown, WidgetPool
from ui.screens.base import PosScreen


class GiveScreen(PosScreen):
    """Transfer points to a partner programme or donate them, where the programme allows;
    Send asks for confirmation first."""

    points = NumericProperty(0)
    target_text = StringProperty("")
    info_text = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target: dict[str, Any] | None = None
        self._rows: WidgetPool | None = None

    def refresh(self) -> None:
        if self._rows is None:
            self._rows = WidgetPool(self.ids.targets)
        targets = self.pos_app.sale.give_targets()
        chosen = self.target["id"] if self.target else None
        self._rows.show(
            Shown("QuietButton", {"text": target["label"]}, partial(self.choose, target))
            for target in targets
        )
        same = [t for t in targets if t["id"] == chosen]
        self.target = same[0] if same else (targets[0] if targets else None)
        if not same:
            self.points = self.target["step"] if self.target else 0
        self.target_text = self.target["label"] if self.target else ""
        self.info_text = "" if targets else self.tr("give.none")

    def on_leave(self, *_args: Any) -> None:
        self.target = None  # the next member starts from the first target

    def choose(self, target: dict[str, Any], *_args: Any) -> None:
        self.target = target
        self.target_text = target["label"]
        self.points = max(self.points, target["step"])

    def change(self, steps: int) -> None:
        if self.target is not None:
            self.points = max(self.target["step"], self.points + steps * self.target["step"])

    def confirm(self) -> None:
        if self.target is None:
            return
        sale, target_id, points = self.pos_app.sale, self.target["id"], int(self.points)
        proposal = sale.propose_give(target_id, points)
        if not isinstance(proposal, Proposal):
            self.info_text = proposal
            return
        self.info_text = ""

        def confirmed() -> None:
            self.info_text = sale.confirm_give(target_id, points) or ""

        ask(proposal.title, proposal.lines, confirmed)
