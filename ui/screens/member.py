from __future__ import annotations

from dataclasses import asdict

from kivy.properties import BooleanProperty, NumericProperty, StringProperty

from ui.screens.base import PosScreen


class MemberScreen(PosScreen):
    """Masked name, tier, balance, pending, progress to the next reward and tier, rewards."""

    name_text = StringProperty("")
    tier_text = StringProperty("")
    balance_text = StringProperty("")
    pending_text = StringProperty("")
    reward_progress_text = StringProperty("")
    reward_progress = NumericProperty(0)
    reward_bar = BooleanProperty(False)
    tier_progress_text = StringProperty("")
    tier_progress = NumericProperty(0)
    tier_bar = BooleanProperty(False)
    rewards_text = StringProperty("")
    offline = BooleanProperty(False)
    birthday = BooleanProperty(False)
    spend_note = StringProperty("")
    expiring_text = StringProperty("")
    identified_text = StringProperty("")
    pin_offer = BooleanProperty(False)
    offers_text = StringProperty("")

    def refresh(self) -> None:
        lines = self.pos_app.member.present()
        if lines is not None:
            for name, value in asdict(lines).items():
                setattr(self, name, value)
