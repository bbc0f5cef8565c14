"""Which screen is shown, in which language; messages; the spinner; slow work off the clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kivy.clock import Clock

from ui import i18n
from ui.controllers.state import Activity, Customer

SPINNER_DELAY_S = 1.0  # Nielsen: past 1 s, show that something is happening
MESSAGE_S = 6.0
OPEN_SCREENS = ("idle", "phone", "admin")  # the screens shown with no member identified


class Shell(Protocol):
    """The app properties navigation sets (kv binds to them)."""

    lang: str
    message: str
    busy: bool


class Navigator:
    def __init__(
        self,
        shell: Shell,
        screens: Any,  # the kivy ScreenManager
        customer: Customer,
        activity: Activity,
        languages: Sequence[str] = tuple(i18n.LOCALES),
    ) -> None:
        self._shell = shell
        self._screens = screens
        self._customer = customer
        self._activity = activity
        self._languages = list(languages)
        self._spinner_event: Any = None
        self._wait_started = 0.0
        self._message_event: Any = None

    # ------------------------------------------------------------ screens

    @property
    def current(self) -> str:
        return str(self._screens.current)

    def screen(self, name: str) -> Any:
        return self._screens.get_screen(name)

    def go(self, name: str) -> None:
        """Show a screen, fresh; screens about a member fall back to idle without one."""
        if name not in OPEN_SCREENS and self._customer.session is None:
            name = "idle"
        screen = self.screen(name)
        self._screens.current = name
        screen.refresh()
        self._activity.touch()

    def go_idle(self) -> None:
        self._customer.forget()
        self.go("idle")

    def switch(self, name: str) -> Any:
        """Show a screen as is, member or not (enroll, receipt); returns it."""
        screen = self.screen(name)
        self._screens.current = name
        return screen

    def refresh_current(self) -> None:
        self._screens.current_screen.refresh()

    # ------------------------------------------------------------ language

    def set_language(self, language: str) -> None:
        if language in self._languages:
            self.clear_message()  # said in the previous language: stale in the new one
            self._shell.lang = language
            self._screens.current_screen.language_changed()

    def next_language(self) -> None:
        index = self._languages.index(self._shell.lang)
        self.set_language(self._languages[(index + 1) % len(self._languages)])

    # ------------------------------------------------------------ messages

    def show_message(self, text: str) -> None:
        self._shell.message = text
        if self._message_event is not None:
            self._message_event.cancel()
        self._message_event = Clock.schedule_once(
            lambda _dt: setattr(self._shell, "message", ""), MESSAGE_S
        )

    def clear_message(self) -> None:
        self._shell.message = ""

    # ------------------------------------------------------------ waiting

    def begin_wait(self) -> None:
        if self._spinner_event is None:
            self._wait_started = time.monotonic()
            self._spinner_event = Clock.schedule_once(self._maybe_spin, SPINNER_DELAY_S)

    def _maybe_spin(self, _dt: float) -> None:
        # Kivy counts timeouts from the start of the current frame: check real time.
        remaining = SPINNER_DELAY_S - (time.monotonic() - self._wait_started)
        if remaining > 0:
            self._spinner_event = Clock.schedule_once(self._maybe_spin, remaining)
            return
        self._shell.busy = True

    def end_wait(self) -> None:
        if self._spinner_event is not None:
            self._spinner_event.cancel()
            self._spinner_event = None
        self._shell.busy = False

    def run_async(
        self, work: Callable[[], Any], done: Callable[[Any, BaseException | None], None]
    ) -> None:
        """Slow work (backend calls) off the main thread; the result comes back on the clock."""
        self.begin_wait()

        def worker() -> None:
            try:
                result, error = work(), None
            except Exception as exc:  # handed to `done` on the main thread
                result, error = None, exc

            def finish(_dt: float) -> None:
                self.end_wait()
                done(result, error)

            Clock.schedule_once(finish, 0)

        threading.Thread(target=worker, name="ui-work", daemon=True).start()
