"""Text in the app's current language: translations, numbers, money, points, moments, and
the programme's own names (tiers, rewards, categories) in that language."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from pos_client.rules import Program
from ui import i18n


class Texts:
    def __init__(self, language: Callable[[], str], program: Program, timezone: str) -> None:
        self._language = language
        self._program = program
        self._timezone = timezone

    @property
    def language(self) -> str:
        return self._language()

    @property
    def program(self) -> Program:
        return self._program

    def use_program(self, program: Program) -> None:
        self._program = program

    def tr(self, key: str, **values: object) -> str:
        return i18n.translate(self.language, key, **values)

    def number(self, value: int | float | Decimal) -> str:
        return i18n.format_number(int(value) if isinstance(value, float) else value, self.language)

    def money(self, amount: Decimal) -> str:
        return i18n.format_money(amount, self._program.currency, self.language)

    def points(self, value: int) -> str:
        """ "5 700 баллов", "1 star": the number with the programme's unit, plural right."""
        return i18n.format_points(self.language, self._program, value)

    def day(self, when: date) -> str:
        """A store day as the language writes it ("10 July", "10 июля")."""
        return i18n.format_day(when, self.language)

    def moment(self, when: datetime) -> str:
        return i18n.format_moment(when, self._timezone, self.language)

    def error(self, error: BaseException) -> str:
        """A core error (coded) as a sentence in the current language."""
        return i18n.describe_error(self.language, error, self._program)

    def title(self, store: str) -> str:
        """The window title: the store and the programme's name in this language."""
        return f"{store} · {self._program.display_name(self.language)}"
