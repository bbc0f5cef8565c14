from __future__ import annotations

from typing import Any

from kivy.properties import StringProperty

from ui.screens.base import PosScreen


class PinScreen(PosScreen):
    """The member found by phone types their PIN (shown as dots) to spend."""

    pin_display = StringProperty("")
    error = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pin = ""

    def refresh(self) -> None:
        self.pin = ""
        self.pin_display = ""
        self.error = ""

    def key(self, key: str) -> None:
        if key == "back":
            self.pin = self.pin[:-1]
        elif key.isdigit() and len(self.pin) < 8:
            self.pin += key
        self.pin_display = "•" * len(self.pin)
        self.error = ""

    def submit(self) -> None:
        pin, self.pin, self.pin_display = self.pin, "", ""
        self.pos_app.member.verify_pin(pin, self.show_error)

    def show_error(self, text: str) -> None:
        self.error = text
