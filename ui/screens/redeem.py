from __future__ import annotations

from functools import partial
from typing import Any

from kivy.properties import NumericProperty, StringProperty

from ui.controllers.sale import Proposal
from ui.dialogs import ask
from ui.pool import Shown, WidgetPool
from ui.screens.base import PosScreen


class RedeemScreen(PosScreen):
    """The member's rewards: the ones within reach are buttons; the others say what is
    still missing ("300 more points"). Choosing one asks for confirmation first."""

    info_text = StringProperty("")
    locked_text = StringProperty("")  # "28 more stars to “Free drink”": a level opens it
    locked_progress = NumericProperty(0.0)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rows: WidgetPool | None = None

    def refresh(self) -> None:
        if self._rows is None:
            self._rows = WidgetPool(self.ids.rewards)
        options = self.pos_app.sale.redemption_options()
        self._rows.show(
            Shown("BigButton", {"text": option["label"]}, partial(self._choose, option))
            if option["enabled"]
            else Shown("OutOfReach", {"text": f"{option['label']}\n{option['missing']}"})
            for option in options
        )
        # Nothing to choose yet, but a reward waits behind a higher level: say how far it is
        # (never "no rewards" while the programme has one).
        locked = None if any(o["enabled"] for o in options) else self.pos_app.sale.locked_progress()
        self.locked_text, self.locked_progress = locked or ("", 0.0)
        self.info_text = "" if options or locked else self.tr("redeem.none")

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
