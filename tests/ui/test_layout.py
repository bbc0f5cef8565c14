"""Every screen, in every language, at every common screen size: text fits, controls can be
touched, text can be read. The checks themselves are shown to fail on a broken layout."""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from pos_client.demo import DEMO_MEMBERS
from tests.ui.conftest import run_ui, ui_settings
from ui.i18n import english_words
from ui.layout_check import Problem, check_window, visible_texts
from ui.tour import NEW_NAME, STATES, at_each_state, resize, tour

SIZES = ((800, 480), (1024, 600), (1280, 800), (1920, 1080), (1080, 1920))
# POS_LAYOUT_LANGS=en,ru narrows the walk while working on a layout.
LANGUAGES = tuple(os.environ.get("POS_LAYOUT_LANGS", "en,ru,uk,el").split(","))
SHOWN_AT_MOST = 80


def not_english(app: Any) -> list[str]:
    """Names a screen in any language may show in Latin letters: the store's and the
    partners' brands, the readers' names from the config, the members' names."""
    settings, program = app.settings, app.running.terminal.program
    return [
        settings.store.name,
        *(reader.name for reader in settings.readers),
        *(target.name for target in program.give_targets if target.kind == "partner"),
        *(f"{m.first_name} {m.last_name}" for m in DEMO_MEMBERS),
        NEW_NAME,
    ]


def test_every_screen_fits_in_every_language_at_every_size(tmp_path: Path) -> None:
    """Walks the tour (ui/tour.py) in each language and, at each state, checks the layout at
    every size; in ru, uk and el it also fails on any visible English left over."""
    problems: list[Problem] = []
    english: list[str] = []
    visited: list[str] = []
    started = time.monotonic()
    for language in LANGUAGES:

        def script(app: Any, language: str = language) -> Generator[Any, None, None]:
            from kivy.core.window import Window

            allowed = not_english(app)

            def visit(name: str) -> Generator[Any, None, None]:
                visited.append(f"{name} {language}")
                # Sizes there and back again: one resize fewer per state.
                order = SIZES if len(visited) % 2 else SIZES[::-1]
                for index, size in enumerate(order):
                    yield from resize(size)
                    where = f"{name} {language} {size[0]}x{size[1]}"
                    assert tuple(Window.size) == size, f"{where}: the window is {Window.size}"
                    began = time.monotonic()
                    problems.extend(check_window(where))
                    if index == 0 and language != "en":
                        english.extend(
                            f"{name} {language}: {widget}: {words}"
                            for widget, text in visible_texts()
                            if (words := english_words(text, language, allowed))
                        )
                    if os.environ.get("POS_UI_DEBUG"):
                        print(f"{where}: checked in {time.monotonic() - began:.2f} s", flush=True)

            try:
                yield from at_each_state(tour(app, language), visit)
            finally:
                Window.size = (1024, 600)

        run_ui(ui_settings(tmp_path / language, inactivity_s=3600.0), script)
    took = time.monotonic() - started
    print(f"\nlayout check: {len(visited)} states x {len(SIZES)} sizes in {took:.1f} s")
    assert len(visited) == len(STATES) * len(LANGUAGES)
    shown = "\n".join(str(p) for p in problems[:SHOWN_AT_MOST])
    more = (
        f"\n... and {len(problems) - SHOWN_AT_MOST} more" if len(problems) > SHOWN_AT_MOST else ""
    )
    left = "\n".join(english[:SHOWN_AT_MOST])
    assert not problems, f"{len(problems)} layout problems:\n{shown}{more}"
    assert not english, f"{len(english)} English texts left in ru/uk/el:\n{left}"


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
