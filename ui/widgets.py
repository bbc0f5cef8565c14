"""Shared widgets (behaviour only; their layout is in widgets.kv)."""

from __future__ import annotations

from typing import Any

from kivy.properties import StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.gridlayout import GridLayout


class Keypad(GridLayout):
    """Digits, one extra key (+ or .) and backspace; dispatches on_key(text)."""

    extra_key = StringProperty("+")

    def __init__(self, **kwargs: Any) -> None:
        self.register_event_type("on_key")
        super().__init__(**kwargs)

    def on_key(self, key: str) -> None:
        pass


class StatusBar(BoxLayout):
    pass


class BusyOverlay(FloatLayout):
    pass


class MessageBar(FloatLayout):
    pass
