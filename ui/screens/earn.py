from __future__ import annotations

from functools import partial
from typing import Any

from kivy.factory import Factory
from kivy.properties import ListProperty, StringProperty

from ui.screens.base import PosScreen


class EarnScreen(PosScreen):
    """Cashier: amount keypad or lines with categories, live points preview, confirm."""

    amount_text = StringProperty("")
    category = StringProperty("")
    categories = ListProperty([])
    lines_text = StringProperty("")
    preview_text = StringProperty("")
    breakdown_text = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lines: list[tuple[str, str]] = []  # (amount, category) already added

    def refresh(self) -> None:
        self.lines = []
        self.amount_text = ""
        self.categories = self.pos_app.program_categories()
        self.category = ""
        box = self.ids.category_buttons
        box.clear_widgets()
        for category in self.categories:
            button = Factory.CategoryToggle(
                text=category or "-",
                group="category",
                state="down" if not category else "normal",
                allow_no_selection=False,
            )
            button.bind(on_release=partial(self._picked, category))
            box.add_widget(button)
        self.update_preview()

    def _picked(self, category: str, *_args: Any) -> None:
        self.pick_category(category)

    def key(self, key: str) -> None:
        if key == "back":
            self.amount_text = self.amount_text[:-1]
        elif key == "." and "." not in self.amount_text:
            self.amount_text += "."
        elif key.isdigit():
            whole, _dot, cents = self.amount_text.partition(".")
            if len(cents) < 2 and len(whole) < 7:
                self.amount_text += key
        self.update_preview()

    def pick_category(self, category: str) -> None:
        self.category = category
        self.update_preview()

    def add_line(self) -> None:
        if self.amount_text:
            self.lines.append((self.amount_text, self.category))
            self.amount_text = ""
        self.update_preview()

    def all_lines(self) -> list[tuple[str, str]]:
        pending = [(self.amount_text, self.category)] if self.amount_text else []
        return self.lines + pending

    def update_preview(self) -> None:
        self.lines_text = "\n".join(
            f"{amount}  {category or '-'}" for amount, category in self.lines
        )
        self.preview_text, self.breakdown_text = self.pos_app.preview_lines(self.all_lines())

    def confirm(self) -> None:
        self.pos_app.confirm_earn(self.all_lines())
