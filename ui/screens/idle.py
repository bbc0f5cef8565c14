from __future__ import annotations

import time
from typing import Any

from kivy.clock import Clock
from kivy.graphics.texture import Texture
from kivy.properties import BooleanProperty
from kivy.uix.image import Image
from kivy.uix.widget import Widget

from ui.screens.base import PosScreen

STAFF_HOLD_S = 2.0  # a deliberate gesture: a customer's tap or brush does not open it


class IdleScreen(PosScreen):
    """The attract screen: tap, scan, or type a phone number; language switch. A cashier
    terminal shows a Staff button; a kiosk never offers one to customers: staff hold the
    unlabelled top-right corner for STAFF_HOLD_S seconds."""

    def on_kv_post(self, base_widget: Any) -> None:
        self._staff_button = self.ids.staff_button.__self__  # kept while detached (kiosk)
        self.pos_app.bind(mode=self._show_staff_button)
        self._show_staff_button()

    def refresh(self) -> None:
        self._show_staff_button()

    def _show_staff_button(self, *_args: Any) -> None:
        row, button = self.ids.bottom_row, self._staff_button
        if self.pos_app.mode == "kiosk":
            if button.parent is not None:
                row.remove_widget(button)
        elif button.parent is None:
            row.add_widget(button)


class StaffCorner(Widget):
    """An unlabelled corner: held STAFF_HOLD_S seconds, it opens the staff screen; a shorter
    touch does nothing. It takes only the touches that start on it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._event: Any = None
        self._down_at = 0.0
        self._opened = False

    def on_touch_down(self, touch: Any) -> bool:
        if not self.collide_point(*touch.pos):
            return False
        touch.grab(self)
        self._down_at = time.monotonic()
        self._opened = False
        self._event = Clock.schedule_once(self._held, STAFF_HOLD_S)
        return True

    def on_touch_move(self, touch: Any) -> bool:
        if touch.grab_current is not self:
            return False
        if not self.collide_point(*touch.pos):
            self._cancel()
        return True

    def on_touch_up(self, touch: Any) -> bool:
        if touch.grab_current is not self:
            return False
        touch.ungrab(self)
        if self._event is not None:
            self._cancel()
            if time.monotonic() - self._down_at >= STAFF_HOLD_S:
                self._open()
        return True

    def _cancel(self) -> None:
        if self._event is not None:
            self._event.cancel()
            self._event = None

    def _held(self, _dt: float) -> None:
        # Kivy counts timeouts from the frame's start: make sure of the real time held.
        remaining = STAFF_HOLD_S - (time.monotonic() - self._down_at)
        if remaining > 0:
            self._event = Clock.schedule_once(self._held, remaining)
            return
        self._event = None
        self._open()

    def _open(self) -> None:
        if not self._opened:
            self._opened = True
            from kivy.app import App

            App.get_running_app().nav.go("admin")


class CameraPreview(Image):
    """The camera's latest small frame (RGB rows, top first), drawn in place: one texture,
    made again only when the frame size changes."""

    shown = BooleanProperty(False)

    def show_frame(self, width: int, height: int, rgb: bytes) -> None:
        texture: Any = getattr(self, "texture", None)
        if texture is None or texture.size != (width, height):
            texture = Texture.create(size=(width, height), colorfmt="rgb")
            texture.flip_vertical()  # rows come top first; textures count from the bottom
        texture.blit_buffer(rgb, colorfmt="rgb", bufferfmt="ubyte")
        self.texture = texture
        self.canvas.ask_update()
        self.shown = True
