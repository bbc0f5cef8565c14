from __future__ import annotations

from functools import partial
from typing import Any

from kivy.factory import Factory
from kivy.properties import StringProperty

from ui.controllers.sale import Proposal
from ui.dialogs import ask
from ui.screens.base import PosScreen


class RedeemScreen(PosScreen):
    """The member's rewards: the ones within reach are buttons; the others say what is
    still missing ("300 more points"). Choosing one asks for confirmation first."""

    info_text = StringProperty("")

    def refresh(self) -> None:
        box = self.ids.rewards
        box.clear_widgets()
        options = self.pos_app.sale.redemption_options()
        for option in options:
            if option["enabled"]:
                button = Factory.BigButton(text=option["label"])
                button.bind(on_release=partial(self._choose, option))
                box.add_widget(button)
            else:
                box.add_widget(Factory.OutOfReach(text=f"{option['label']}\n{option['missing']}"))
        self.info_text = "" if options else self.tr("redeem.none")

    def _choose(self, option: dict[str, Any], *_args: Any) -> None:
        sale = self.pos_app.sale
        proposal = sale.propose_redemption(option)
        if not isinstance(proposal, Proposal):
            self.info_text = proposal
            return
        self.info_text = ""

        def confirmed() -> None:
            self.info_text = sale.confirm_redemption(option) or ""

        ask(proposal.title, proposal.lines, confirmed)
