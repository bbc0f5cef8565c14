"""The console's four languages, as the terminal's: English is the key, and each other
language a table of its translations (`catalog.py`); a string not translated shows in
English (a test keeps every catalog complete)."""

from __future__ import annotations

from collections.abc import Callable

from loyalty_server.console.catalog import TRANSLATIONS

LANGUAGES = ("en", "ru", "uk", "el")

# Notices after a change, by the code in the redirect's query (never text from the URL).
NOTICES = {
    "adjusted": "Points adjusted.",
    "blocked": "Cards blocked.",
    "no-card": "This member has no card to block.",
    "linked": "Card linked.",
}


def pick(cookie: str | None, accept_language: str | None) -> str:
    """The language chosen in the console (cookie), else the browser's first we speak."""
    if cookie in LANGUAGES:
        return cookie
    for part in (accept_language or "")[:200].split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"


def translator(language: str) -> Callable[[str], str]:
    table = TRANSLATIONS.get(language, {})

    def translate(text: str) -> str:
        return table.get(text, text)

    return translate
