"""Plural rules of the languages the terminal speaks (gettext Plural-Forms, CLDR-equivalent).

The core needs them to validate programme files (a unit name carries one form per plural
category of its language) and to pick a form; the UI's gettext catalogs carry the same
expressions in their headers (a test keeps the two equal).
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from functools import cache

_SLAVIC = (
    "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
    "(n%100<10 || n%100>=20) ? 1 : 2);"
)
PLURAL_FORMS: dict[str, str] = {
    "en": "nplurals=2; plural=(n != 1);",
    "ru": _SLAVIC,
    "uk": _SLAVIC,
    "el": "nplurals=2; plural=(n != 1);",
}
LANGUAGES = tuple(PLURAL_FORMS)
DEFAULT_LANGUAGE = "en"


def plural_count(language: str) -> int:
    header = PLURAL_FORMS.get(language, PLURAL_FORMS[DEFAULT_LANGUAGE])
    return int(header.split(";")[0].split("=")[1])


@cache
def _rule(language: str) -> Callable[[int], int]:
    header = PLURAL_FORMS.get(language, PLURAL_FORMS[DEFAULT_LANGUAGE])
    expression = header.split("plural=", 1)[1].rstrip(";").strip()
    return gettext.c2py(expression)


def plural_index(language: str, count: int) -> int:
    """Which plural form a whole number takes: 0..plural_count(language)-1."""
    return _rule(language)(abs(int(count)))
