from __future__ import annotations

from typing import Any

from kivy.properties import StringProperty

from ui.screens.base import PosScreen


class PhoneScreen(PosScreen):
    """A large keypad; the number formats as it is typed and is validated before lookup."""

    display = StringProperty("")
    error = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.digits = ""

    def refresh(self) -> None:
        self.digits = ""
        self.display = ""
        self.error = ""

    def key(self, key: str) -> None:
        if key == "back":
            self.digits = self.digits[:-1]
        elif key == "+" and not self.digits:
            self.digits = "+"
        elif key.isdigit() and len(self.digits) < 16:
            self.digits += key
        self.error = ""
        self.display = self.pos_app.member.format_phone_as_typed(self.digits)

    def find(self) -> None:
        problem = self.pos_app.member.lookup_phone(self.digits)
        self.error = problem or ""
