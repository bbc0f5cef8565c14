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
# After the screen changes (or a dialog opens), new touches are swallowed this long: the
# quick second tap of a double tap on "Find" or "Done" must not land on whatever the next
# screen has at the same spot.
SCREEN_CHANGE_GUARD_S = 0.3


class TouchGuard:
    """Swallows touches that go down within `guard_s` of a screen change (and the rest of
    those touches: their moves and their lift)."""

    def __init__(
        self,
        guard_s: float = SCREEN_CHANGE_GUARD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.guard_s = guard_s
        self._clock = clock
        self._changed_at = float("-inf")
        self._swallowed: set[Any] = set()

    def arm(self, *_args: Any) -> None:
        """The screen changed (or a dialog opened): start the guard."""
        self._changed_at = self._clock()

    def remaining(self) -> float:
        """Seconds until a new touch is taken again (0 when it is)."""
        return max(0.0, self.guard_s - (self._clock() - self._changed_at))

    def down(self, touch: Any) -> bool:
        if self.remaining() > 0:
            self._swallowed.add(touch.uid)
            return True
        return False

    def move(self, touch: Any) -> bool:
        return touch.uid in self._swallowed

    def up(self, touch: Any) -> bool:
        if touch.uid in self._swallowed:
            self._swallowed.discard(touch.uid)
            return True
        return False

    def swallowed(self, touch: Any) -> bool:
        """Whether this touch (still down) was swallowed."""
        return touch.uid in self._swallowed


class InputController:
    def __init__(
        self,
        wedge: WedgeClassifier,
        bus: EventBus,
        nav: Navigator,
        activity: Activity,
        inactivity_s: float,
        kiosk: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wedge = wedge
        self._bus = bus
        self._nav = nav
        self._activity = activity
        self._inactivity_s = inactivity_s
        self._kiosk = kiosk
        self._clock = clock
        self.guard = TouchGuard(clock=clock)

    def bind(self, window: Any) -> None:
        """Bound before any widget sees an event: the Window calls its bound handlers first
        and stops at one that returns True (the guard swallowing a touch)."""
        window.bind(
            on_key_down=self.key_down,
            on_textinput=self.text_input,
            on_touch_down=self.touched,
            on_touch_move=self.moved,
            on_touch_up=self.lifted,
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

    def touched(self, _window: Any, touch: Any) -> bool:
        self._activity.touch()
        return self.guard.down(touch)

    def moved(self, _window: Any, touch: Any) -> bool:
        return self.guard.move(touch)

    def lifted(self, _window: Any, touch: Any) -> bool:
        return self.guard.up(touch)

    def tick(self, _dt: float) -> None:
        for result in self._wedge.flush(self._clock()):
            self._handle(result)
        # Only a kiosk forgets its customer: a cashier in mid-sale keeps what is typed.
        idle = self._activity.idle_for() > self._inactivity_s
        if idle and self._nav.current != "idle" and self._kiosk():
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
