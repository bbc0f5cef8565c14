from __future__ import annotations

from functools import partial
from typing import Any

from kivy.factory import Factory
from kivy.properties import StringProperty

from ui.screens.base import PosScreen


class RedeemScreen(PosScreen):
    """The catalogue for this member (affordable ones enabled), points + cash, blocks."""

    info_text = StringProperty("")

    def refresh(self) -> None:
        box = self.ids.rewards
        box.clear_widgets()
        for option in self.pos_app.sale.redemption_options():
            button = Factory.BigButton(text=option["label"], disabled=not option["enabled"])
            button.bind(on_release=partial(self._choose, option))
            box.add_widget(button)
        self.info_text = ""

    def _choose(self, option: dict[str, Any], *_args: Any) -> None:
        self.info_text = self.pos_app.sale.confirm_redemption(option) or ""
