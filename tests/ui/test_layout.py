"""Every screen, in every language, at every common screen size: text fits, controls can be
touched, text can be read. The checks themselves are shown to fail on a broken layout."""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import run_ui, ui_settings
from ui.layout_check import Problem, check_window
from ui.tour import STATES, at_each_state, resize, tour

SIZES = ((800, 480), (1024, 600), (1280, 800), (1920, 1080), (1080, 1920))
# POS_LAYOUT_LANGS=en,ru narrows the walk while working on a layout.
LANGUAGES = tuple(os.environ.get("POS_LAYOUT_LANGS", "en,ru,uk,el").split(","))
SHOWN_AT_MOST = 80


def test_every_screen_fits_in_every_language_at_every_size(tmp_path: Path) -> None:
    problems: list[Problem] = []
    visited: list[str] = []
    started = time.monotonic()
    for language in LANGUAGES:

        def visit(name: str, language: str = language) -> Generator[Any, None, None]:
            from kivy.core.window import Window

            visited.append(f"{name} {language}")
            for size in SIZES:
                yield from resize(size)
                where = f"{name} {language} {size[0]}x{size[1]}"
                assert tuple(Window.size) == size, f"{where}: the window is {Window.size}"
                began = time.monotonic()
                problems.extend(check_window(where))
                if os.environ.get("POS_UI_DEBUG"):
                    print(f"{where}: checked in {time.monotonic() - began:.2f} s", flush=True)

        def script(app: Any, language: str = language) -> Generator[Any, None, None]:
            try:
                yield from at_each_state(tour(app, language), visit)
            finally:
                from kivy.core.window import Window

                Window.size = (1024, 600)

        run_ui(ui_settings(tmp_path / language, inactivity_s=3600.0), script)
    took = time.monotonic() - started
    print(f"\nlayout check: {len(visited)} states x {len(SIZES)} sizes in {took:.1f} s")
    assert len(visited) == len(STATES) * len(LANGUAGES)
    if problems and all("MessageBar" in p.within for p in problems):
        # The message's label is drawn at (0, 0), not in its bar (issue 16); the harness
        # branch fixes <MessageBar>. Anything else found fails below.
        pytest.xfail(f"{len(problems)} problems, all the message bar's: {problems[0]}")
    shown = "\n".join(str(p) for p in problems[:SHOWN_AT_MOST])
    more = (
        f"\n... and {len(problems) - SHOWN_AT_MOST} more" if len(problems) > SHOWN_AT_MOST else ""
    )
    assert not problems, f"{len(problems)} layout problems:\n{shown}{more}"


# ------------------------------------------------------------------ the checks can fail

BROKEN_KV = """
#:import C ui.theme.COLORS
BoxLayout:
    orientation: "vertical"
    Widget:
        id: bar
        size_hint_y: None
        height: 60
    ScreenManager:
        id: sm
        Screen:
            name: "broken"
            canvas.before:
                Color:
                    rgba: C.background
                Rectangle:
                    pos: self.pos
                    size: self.size
            FloatLayout:
                Button:
                    id: wide_text
                    text: "A label much too long for its button"
                    size_hint: None, None
                    size: 120, 60
                    pos: 10, 10
                Label:
                    id: broken_word
                    text: "Supercalifragilisticexpialidocious"
                    text_size: self.width, None
                    size_hint: None, None
                    size: 80, 200
                    pos: 10, 100
                Label:
                    id: shortened
                    text: "This sentence is shortened with an ellipsis"
                    shorten: True
                    text_size: self.width, None
                    size_hint: None, None
                    size: 120, 40
                    pos: 150, 100
                Label:
                    id: cut_lines
                    text: "one\\ntwo\\nthree\\nfour"
                    text_size: self.size
                    size_hint: None, None
                    size: 120, 30
                    pos: 300, 100
                Label:
                    id: tall_text
                    text: "tall"
                    font_size: 40
                    size_hint: None, None
                    size: 120, 20
                    pos: 450, 100
                Button:
                    id: first
                    text: "One"
                    size_hint: None, None
                    size: 100, 60
                    pos: 200, 200
                Button:
                    id: second
                    text: "Two"
                    size_hint: None, None
                    size: 100, 60
                    pos: 260, 230
                Button:
                    id: tiny
                    text: "x"
                    size_hint: None, None
                    size: 30, 30
                    pos: 400, 200
                Label:
                    id: faint
                    text: "faint"
                    color: 0.25, 0.27, 0.3, 1
                    size_hint: None, None
                    size: 120, 48
                    pos: 500, 200
                Button:
                    id: off_window
                    text: "off"
                    size_hint: None, None
                    size: 80, 60
                    pos: -40, 300
                Label:
                    id: under_bar
                    text: "under"
                    size_hint: None, None
                    size: 100, 40
                    pos: 600, 520
                Button:
                    id: fine
                    text: "Fine"
                    size_hint: None, None
                    size: 120, 60
                    pos: 600, 20
"""


def test_each_check_fails_on_a_broken_layout() -> None:
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.core.window import Window
    from kivy.lang import Builder

    found: list[Problem] = []
    errors: list[BaseException] = []

    class Broken(App):
        def build(self) -> Any:
            return Builder.load_string(BROKEN_KV)

        def on_start(self) -> None:
            Window.size = (800, 600)
            Clock.schedule_once(self.check, 1.5)  # drawn

        def check(self, _dt: float) -> None:
            try:
                found.extend(check_window("broken en 800x600"))
            except BaseException as exc:
                errors.append(exc)
            finally:
                Window.size = (1024, 600)
                self.stop()

    Broken().run()
    if errors:
        raise errors[0]
    text = "\n".join(str(p) for p in found)

    def problem(widget: str, what: str) -> None:
        assert any(widget in p.widget and what in p.what for p in found), (
            f"expected {widget}: {what} among:\n{text}"
        )

    problem("Button#wide_text", "px wide in a 120 px widget")
    problem("Label#broken_word", "word 'Supercalifragilisticexpialidocious'")
    problem("Label#shortened", "text shortened")
    problem("Label#cut_lines", "cut at 30")
    problem("Label#tall_text", "tall in a 20 px widget")
    problem("Button#first", "overlaps Button#second")
    problem("Button#tiny", "touch target 30x30 px")
    problem("Label#faint", "contrast")
    problem("Button#off_window", "outside the 800x600 window")
    problem("Label#under_bar", "outside its screen's area")
    assert not [p for p in found if "#fine" in p.widget], text
    assert all(p.where == "broken en 800x600" for p in found)
