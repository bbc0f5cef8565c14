"""Shared widgets (behaviour only; their layout is in widgets.kv)."""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
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


class ShownBox(BoxLayout):
    """A part of a screen shown or hidden by `shown` (e.g. staff's PIN pad or their report):
    hidden, it has no height, is not drawn and takes no touch, though a child may still
    reach outside its zero height. (Not `disabled`: a disabled Kivy widget swallows every
    touch over its area, and its children's.)"""

    shown = BooleanProperty(True)

    def on_shown(self, _box: Any, shown: bool) -> None:
        if not shown:  # the height a layout gave it while shown would stay
            self.height = 0

    def on_touch_down(self, touch: Any) -> bool:
        return bool(self.shown and super().on_touch_down(touch))

    def on_touch_move(self, touch: Any) -> bool:
        return bool(self.shown and super().on_touch_move(touch))

    def on_touch_up(self, touch: Any) -> bool:
        return bool(self.shown and super().on_touch_up(touch))


class StatusBar(BoxLayout):
    pass


class BusyOverlay(FloatLayout):
    """Over the screens while the app waits: then it takes every touch on its area, on
    purpose; otherwise it takes none. (Never `disabled` while hidden: a disabled Kivy widget
    still swallows every touch over its area.)"""

    active = BooleanProperty(False)

    @property
    def covers_below(self) -> bool:
        """Whether it hides what is under it now (for the layout check)."""
        return bool(self.active)

    def on_touch_down(self, touch: Any) -> bool:
        return bool(self.active and self.collide_point(*touch.pos))

    def on_touch_move(self, touch: Any) -> bool:
        return bool(self.active and self.collide_point(*touch.pos))

    def on_touch_up(self, touch: Any) -> bool:
        return bool(self.active and self.collide_point(*touch.pos))


class MessageBar(ButtonBehavior, BoxLayout):
    """The message toast: a tap dismisses it; it takes no touch while there is no message."""

    shown = BooleanProperty(False)

    @property
    def covers_below(self) -> bool:
        """Whether it hides what is under it now (for the layout check)."""
        return bool(self.shown)

    def on_touch_down(self, touch: Any) -> bool:
        if not self.shown:
            return False
        return bool(super().on_touch_down(touch))

    def on_release(self) -> None:
        App.get_running_app().nav.clear_message()
