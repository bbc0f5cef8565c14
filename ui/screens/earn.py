from __future__ import annotations

from functools import partial
from typing import Any

from kivy.properties import ListProperty, StringProperty

from ui import i18n
from ui.dialogs import ask
from ui.pool import Shown, WidgetPool
from ui.screens.base import PosScreen


class EarnScreen(PosScreen):
    """Cashier: amount keypad or lines with categories, live points preview, confirm.

    The amount is kept as typed with "." inside (`amount_text`); the keypad's decimal key and
    what is shown follow the language ("12,5" in ru, uk, el). Where the programme earns by
    units (miles flown, nights), two toggles pick what the keypad types: the line's amount or
    its units (`units_text`)."""

    amount_text = StringProperty("")
    units_text = StringProperty("")
    entry = StringProperty("amount")  # what the keypad types: "amount" or "units"
    units_name = StringProperty("")  # "Miles flown"; "" when the programme has no units
    category = StringProperty("")
    categories = ListProperty([])
    lines_text = StringProperty("")
    preview_text = StringProperty("")
    breakdown_text = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lines: list[tuple[str, str, str]] = []  # (amount, category, units) added
        self._category_rows: WidgetPool | None = None

    def refresh(self) -> None:
        self.lines = []
        self.amount_text = ""
        self.units_text = ""
        self.entry = "amount"
        self.units_name = self.pos_app.sale.units_name() or ""
        self.categories = self.pos_app.sale.program_categories()
        self.category = ""
        self._category_buttons()
        self.update_preview()

    def language_changed(self) -> None:
        """Same purchase, said in the new language: nothing typed is lost."""
        self.units_name = self.pos_app.sale.units_name() or ""
        self._category_buttons()
        self.update_preview()

    def category_label(self, category: str) -> str:
        return i18n.category_label(self.pos_app.lang, self.pos_app.texts.program, category)

    def _category_buttons(self) -> None:
        # Made once and reused on every visit (a pool): Kivy widgets are costly to make.
        if self._category_rows is None:
            self._category_rows = WidgetPool(self.ids.category_buttons)
        self._category_rows.show(
            Shown(
                "CategoryToggle",
                {
                    "text": self.category_label(category),
                    "group": "category",
                    "state": "down" if category == self.category else "normal",
                    "allow_no_selection": False,
                },
                partial(self._picked, category),
            )
            for category in self.categories
        )

    def _picked(self, category: str, *_args: Any) -> None:
        self.pick_category(category)

    def pick_entry(self, entry: str) -> None:
        """The keypad types the line's amount, or its units."""
        self.entry = entry if entry == "units" and self.units_name else "amount"

    def key(self, key: str) -> None:
        if self.entry == "units":
            decimals = self.pos_app.sale.units_decimals()
            self.units_text = typed(self.units_text, key, self.pos_app.lang, decimals=decimals)
        else:
            self.amount_text = typed(self.amount_text, key, self.pos_app.lang, decimals=2)
        self.update_preview()

    def pick_category(self, category: str) -> None:
        self.category = category
        self.update_preview()

    def add_line(self) -> None:
        problem = self.pos_app.sale.line_problem(self.amount_text)
        if problem is not None:  # nothing typed, or zero: say so rather than do nothing
            self.pos_app.nav.show_message(problem)
            return
        self.lines.append((self.amount_text, self.category, self.units_text))
        self.amount_text = self.units_text = ""
        self.entry = "amount"
        self.update_preview()

    def remove_line(self) -> None:
        """Take back the last line added (a slip on the keypad)."""
        if not self.lines:
            self.pos_app.nav.show_message(self.pos_app.tr("earn.no_line_to_remove"))
            return
        self.lines.pop()
        self.update_preview()

    def all_lines(self) -> list[tuple[str, str] | tuple[str, str, str]]:
        pending = [(self.amount_text, self.category, self.units_text)] if self.amount_text else []
        return [*self.lines, *pending]

    def _line_text(self, amount: str, category: str, units: str) -> str:
        value = i18n.parse_amount(amount, "en")
        shown = self.pos_app.texts.money(value) if value is not None else amount
        carried = self.pos_app.sale.units_text(units)
        return f"{shown}  {self.category_label(category)}" + (f"  · {carried}" if carried else "")

    def update_preview(self) -> None:
        self.lines_text = "\n".join(self._line_text(*line) for line in self.lines)
        self.preview_text, self.breakdown_text = self.pos_app.sale.preview_lines(self.all_lines())

    def confirm(self) -> None:
        sale, lines = self.pos_app.sale, self.all_lines()
        question = sale.propose_large_earn(lines)
        if question is None:
            sale.confirm_earn(lines)
            return
        ask(question.title, question.lines, lambda: sale.confirm_earn(lines))


def typed(text: str, key: str, language: str, decimals: int) -> str:
    """`text` after a keypad key: a digit (7 whole digits and `decimals` after the point at
    most), the point once, or back."""
    if key == "back":
        return text[:-1]
    if key in (".", i18n.decimal_separator(language)):
        return text if "." in text or not decimals else text + "."
    if key.isdigit():
        whole, dot, fraction = text.partition(".")
        if (dot and len(fraction) < decimals) or (not dot and len(whole) < 7):
            return text + key
    return text
