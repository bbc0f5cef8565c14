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
            self.pos_app.sale.enroll(
                self.ids.first_name.text, self.ids.consent.active, self.ids.marketing.active
            )
            or ""
        )

    def leave(self) -> None:
        """Done (to the new member) once joined, else back to idle."""
        if self.card_number:
            self.pos_app.nav.go("member")
        else:
            self.pos_app.nav.go_idle()
