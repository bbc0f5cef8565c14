"""Form widgets for customers: an on-screen keyboard for names, and large consent toggles.

`NameKeyboard`: the letters of the current language, space, hyphen, apostrophe (’) and
backspace. Letters are capitals at the start of a name part (after a space or a hyphen) and
small otherwise, as a phone keyboard's automatic shift does. Dispatches `on_key(text)` with
the letter as shown, " ", or "back".

`ConsentToggle`: a 56 dp row, a box drawn with a light border in both states (filled with a
tick when on) and its label; the box and the label each toggle it. Layout in forms.kv.
"""

from __future__ import annotations

from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

from kivy.factory import Factory
from kivy.lang import Builder
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.widget import Widget

KV = str(Path(__file__).with_name("forms.kv"))
BACKSPACE = "<"
APOSTROPHE = "’"  # U+2019, the apostrophe of Ukrainian and English names (Zhanna D’Arc)

# Letter rows per language, in the order of that language's standard keyboard.
LETTERS: dict[str, tuple[str, ...]] = {
    "en": ("qwertyuiop", "asdfghjkl", "zxcvbnm"),
    "ru": ("йцукенгшщзхъ", "фывапролджэ", "ячсмитьбюё"),
    "uk": ("йцукенгшщзхї", "фівапролджє", "ґячсмитьбю"),
    "el": ("ςερτυθιοπέί", "ασδφγηξκλάή", "ζχψωβνμόύώ"),
}
NO_CAPITAL = {"ς"}  # final sigma ends a word: never a capital (Σ is σ's)


def starts_word(text: str) -> bool:
    """The next letter starts a name part: capital."""
    return not text or text[-1] in " -"


def shown(letter: str, capital: bool) -> str:
    return letter.upper() if capital and letter not in NO_CAPITAL else letter


class NameKeyboard(BoxLayout):
    language = StringProperty("en")
    capital = BooleanProperty(True)

    def __init__(self, **kwargs: Any) -> None:
        self.register_event_type("on_key")
        super().__init__(**kwargs)
        self._letter_keys: list[tuple[Any, str]] = []
        self.bind(language=self._build, capital=self._relabel)
        self._build()

    def on_key(self, key: str) -> None:
        pass

    def _build(self, *_args: Any) -> None:
        self.clear_widgets()
        self._letter_keys = []
        for row in LETTERS.get(self.language, LETTERS["en"]):
            line = Factory.KeyRow()
            for letter in row:
                button = Factory.LetterKey(text=shown(letter, self.capital))
                button.bind(on_release=partial(self._letter, letter))
                self._letter_keys.append((button, letter))
                line.add_widget(button)
            self.add_widget(line)
        last = Factory.KeyRow()
        for text, key in ((APOSTROPHE, APOSTROPHE), ("-", "-")):
            button = Factory.LetterKey(text=text)
            button.bind(on_release=partial(self._send, key))
            last.add_widget(button)
        space = Factory.SpaceKey()
        space.bind(on_release=partial(self._send, " "))
        last.add_widget(space)
        back = Factory.LetterKey(text=BACKSPACE)
        back.bind(on_release=partial(self._send, "back"))
        last.add_widget(back)
        self.add_widget(last)

    def _relabel(self, *_args: Any) -> None:
        for button, letter in self._letter_keys:
            button.text = shown(letter, self.capital)

    def _letter(self, letter: str, *_args: Any) -> None:
        self.dispatch("on_key", shown(letter, self.capital))

    def _send(self, key: str, *_args: Any) -> None:
        self.dispatch("on_key", key)


class AccountKeyboard(BoxLayout):
    """Digits and Latin capitals (an account number at a partner programme) and backspace;
    dispatches `on_key(text)` with the character or "back"."""

    ROWS = ("1234567890", "QWERTYUIOP", "ASDFGHJKL", "ZXCVBNM")

    def __init__(self, **kwargs: Any) -> None:
        self.register_event_type("on_key")
        super().__init__(**kwargs)
        for index, row in enumerate(self.ROWS):
            line = Factory.KeyRow()
            for char in row:
                button = Factory.LetterKey(text=char)
                button.latin_on_purpose = True  # ASCII in every language (layout check)
                button.bind(on_release=partial(self._send, char))
                line.add_widget(button)
            if index == len(self.ROWS) - 1:
                back = Factory.LetterKey(text=BACKSPACE)
                back.bind(on_release=partial(self._send, "back"))
                line.add_widget(back)
            self.add_widget(line)

    def on_key(self, key: str) -> None:
        pass

    def _send(self, key: str, *_args: Any) -> None:
        self.dispatch("on_key", key)


def typed(text: str, key: str, limit: int = 40) -> str:
    """The name after one key of the on-screen keyboard."""
    if key == "back":
        return text[:-1]
    if key == " " and (not text or text.endswith(" ")):
        return text  # no leading or double spaces
    return (text + key)[:limit]


def birthday_as_typed(digits: str) -> str:
    """DDMMYYYY as typed so far, with the rest as placeholders: "05.1_.____"."""
    shown = (digits + "_" * 8)[:8]
    return f"{shown[:2]}.{shown[2:4]}.{shown[4:]}"


def birthday_of(digits: str) -> date | None:
    """The day of DDMMYYYY, or None (not whole, or no such day)."""
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return date(int(digits[4:]), int(digits[2:4]), int(digits[:2]))
    except ValueError:
        return None


class ConsentToggle(BoxLayout):
    active = BooleanProperty(False)
    text = StringProperty("")

    def toggle(self) -> None:
        self.active = not self.active


class ToggleBox(ButtonBehavior, Widget):
    """The toggle's box: 56 dp to touch, a 32 dp square drawn."""

    active = BooleanProperty(False)


class ToggleLabel(ButtonBehavior, Label):
    """The toggle's label: tapping the words toggles too."""


Builder.unload_file(KV)
Builder.load_file(KV)
