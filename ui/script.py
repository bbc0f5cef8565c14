"""Drive a running app from a script: the demo's scenario and the UI tests use it.

A script is a generator taking the app. It yields a number (wait that many seconds), a
predicate (wait until it is true, 10 s at most), or a string (take a screenshot by that
name). It runs on the Kivy clock, so it touches widgets from the main thread only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from kivy.clock import Clock

Step = float | int | str | Callable[[], bool]
Script = Callable[[Any], Generator[Step, None, None]]
WAIT_LIMIT_S = 10.0


class ScriptRunner:
    def __init__(self, app: Any, script: Script, shots: Path | None = None) -> None:
        self.app = app
        self.steps = script(app)
        self.shots = shots
        self.screenshots: list[Path] = []
        self.error: BaseException | None = None
        self.done = False
        # The app stopped by itself (staff confirmed Exit): the script's next step, already
        # on the clock, must never run (nor stop the next app run in this process).
        self.stopped = False

    def start(self) -> None:
        # Start half a second after the first frame is on screen, not after on_start: a slow
        # window creation lets a clock timeout fire before anything is laid out.
        from kivy.core.window import Window

        def first_frame(*_args: Any) -> None:
            Window.unbind(on_flip=first_frame)
            Clock.schedule_once(lambda _dt: self._advance(), 0.5)

        Window.bind(on_flip=first_frame)
        self.app.bind(on_stop=self._on_stop)

    def _on_stop(self, *_args: Any) -> None:
        self.stopped = True

    def _advance(self) -> None:
        if self.stopped:
            return
        try:
            step = next(self.steps)
        except StopIteration:
            self._finish()
            return
        except BaseException as exc:  # re-raised by the caller after the app stopped
            self.error = exc
            self._finish()
            return
        if isinstance(step, str):
            Clock.schedule_once(lambda _dt: self._screenshot(step), 0.15)
        elif callable(step):
            self._wait_for(step, time.monotonic() + WAIT_LIMIT_S)
        else:
            Clock.schedule_once(lambda _dt: self._advance(), float(step))

    def _wait_for(self, predicate: Callable[[], bool], deadline: float) -> None:
        if self.stopped:
            return
        try:
            ready = predicate()
        except BaseException as exc:
            self.error = exc
            self._finish()
            return
        if ready:
            Clock.schedule_once(lambda _dt: self._advance(), 0)
        elif time.monotonic() > deadline:
            name = getattr(predicate, "__name__", "condition")
            self.error = TimeoutError(
                f"waited {WAIT_LIMIT_S} s for {name} (screen {self.app.sm.current!r})"
            )
            self._finish()
        else:
            Clock.schedule_once(lambda _dt: self._wait_for(predicate, deadline), 0.05)

    def _screenshot(self, name: str) -> None:
        from kivy.core.window import Window

        if os.environ.get("POS_UI_DEBUG"):
            print("shot", name, [s.name for s in self.app.sm.children], flush=True)
        if self.shots is not None:
            self.shots.mkdir(parents=True, exist_ok=True)
            written = Window.screenshot(name=str(self.shots / f"{name}.png"))
            if written:
                target = self.shots / f"{name}.png"
                Path(written).replace(target)
                self.screenshots.append(target)
        Clock.schedule_once(lambda _dt: self._advance(), 0)

    def _finish(self) -> None:
        self.done = True
        if not self.stopped:
            self.app.stop()


def run_app_with_script(app: Any, script: Script, shots: Path | None = None) -> ScriptRunner:
    runner = ScriptRunner(app, script, shots)
    original = app.on_start

    def on_start() -> None:
        original()
        runner.start()

    app.on_start = on_start
    app.run()
    if runner.error is not None:
        raise runner.error
    return runner
