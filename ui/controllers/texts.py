"""Text in the app's current language: translations, numbers, money, points, moments."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
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

    def tr(self, key: str, **values: object) -> str:
        return i18n.translate(self.language, key, **values)

    def number(self, value: int | float | Decimal) -> str:
        return i18n.format_number(int(value) if isinstance(value, float) else value, self.language)

    def money(self, amount: Decimal) -> str:
        return i18n.format_money(amount, self._program.currency, self.language)

    def points(self, value: int) -> str:
        return f"{self.number(value)} {self._program.unit_name}"

    def moment(self, when: datetime) -> str:
        return i18n.format_moment(when, self._timezone, self.language)
