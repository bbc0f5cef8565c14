from __future__ import annotations

from kivy.properties import StringProperty

from ui.screens.base import PosScreen


class EnrollScreen(PosScreen):
    """Phone not found: offer to join, record consent, show the new card as a barcode."""

    phone_hint = StringProperty("")
    error = StringProperty("")
    card_image = StringProperty("")
    card_number = StringProperty("")

    def refresh(self) -> None:
        self.error = ""
        self.card_image = ""
        self.card_number = ""
        self.ids.first_name.text = ""
        self.ids.consent.active = False
        self.ids.marketing.active = False

    def join(self) -> None:
        self.error = (
            self.pos_app.enroll(
                self.ids.first_name.text, self.ids.consent.active, self.ids.marketing.active
            )
            or ""
        )
