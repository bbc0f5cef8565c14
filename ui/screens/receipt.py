from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty

from ui.screens.base import PosScreen


class ReceiptScreen(PosScreen):
    """What happened, with the sale's key as a barcode; pending turns to synced live."""

    summary_text = StringProperty("")
    key_text = StringProperty("")
    key_image = StringProperty("")
    synced = BooleanProperty(False)
    when_text = StringProperty("")

    def refresh(self) -> None:
        """The language changed: the same receipt in the new language."""
        self.summary_text = self.pos_app.sale.receipt_text()
