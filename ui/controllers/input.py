"""Keys and touches at the Window level: the keyboard-wedge scanner, activity, inactivity.

Kivy's TextInput drops characters from fast scanners (kivy#6801), so the wedge is read from
the Window's key events; a speed burst is a scan, slower keys are a person typing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kivy.clock import Clock

from drivers.wedge import KeyStroke, Scanned, Typed, WedgeClassifier
from pos_client.events import EventBus, ScanEvent
from ui.controllers.navigation import Navigator
from ui.controllers.state import Activity

ENTER_KEYS = {13: "\r", 271: "\r", 9: "\t"}
TICK_S = 0.25


class InputController:
    def __init__(
        self,
        wedge: WedgeClassifier,
        bus: EventBus,
        nav: Navigator,
        activity: Activity,
        inactivity_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wedge = wedge
        self._bus = bus
        self._nav = nav
        self._activity = activity
        self._inactivity_s = inactivity_s
        self._clock = clock

    def bind(self, window: Any) -> None:
        window.bind(
            on_key_down=self.key_down, on_textinput=self.text_input, on_touch_down=self.touched
        )

    def start(self) -> None:
        Clock.schedule_interval(self.tick, TICK_S)

    def key_down(self, _window: Any, key: int, _scancode: int, _text: Any, _mods: Any) -> bool:
        self._activity.touch()
        terminator = ENTER_KEYS.get(key)
        if terminator is not None:
            self._feed(terminator)
        return False

    def text_input(self, _window: Any, text: str) -> bool:
        for char in text:
            self._feed(char)
        return False

    def touched(self, *_args: Any) -> bool:
        self._activity.touch()
        return False

    def tick(self, _dt: float) -> None:
        for result in self._wedge.flush(self._clock()):
            self._handle(result)
        if self._nav.current != "idle" and self._activity.idle_for() > self._inactivity_s:
            self._nav.go_idle()

    def _feed(self, char: str) -> None:
        for result in self._wedge.feed(KeyStroke(char, self._clock())):
            self._handle(result)

    def _handle(self, result: Scanned | Typed) -> None:
        if isinstance(result, Scanned):
            self._bus.publish(ScanEvent("wedge:keyboard", "barcode", result.text))
        elif self._nav.current == "phone":
            screen = self._nav.screen("phone")
            for char in result.text:
                if char.isdigit() or char == "+":
                    screen.key(char)
                elif char == "\r":
                    screen.find()
