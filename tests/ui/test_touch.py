"""The real-input harness (ui/touch.py) and the defects that blocked input, each shown by
real taps: a hidden, disabled overlay swallowed every touch; the message bar drew its text
behind the screen and pushed the layout down under the next tap."""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import run_ui, ui_settings
from ui.demo import on
from ui.touch import (
    TouchError,
    find_widget,
    tap,
)

Rect = tuple[float, float, float, float]


def luminance(rgb: tuple[int, ...]) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0-255)."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(first: tuple[int, ...], second: tuple[int, ...]) -> float:
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def inside(inner: Rect, outer: Rect) -> bool:
    x, y, w, h = inner
    ox, oy, ow, oh = outer
    return ox - 0.5 <= x and oy - 0.5 <= y and x + w <= ox + ow + 0.5 and y + h <= oy + oh + 0.5


def overlap(first: Rect, second: Rect) -> bool:
    x, y, w, h = first
    ox, oy, ow, oh = second
    return x < ox + ow and ox < x + w and y < oy + oh and oy < y + h


def test_the_idle_buttons_answer_a_real_tap(tmp_path: Path) -> None:
    """A disabled BusyOverlay used to cover every screen and swallow every touch."""
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        yield from tap(text=app.tr("idle.phone"))
        yield on(app, "phone")
        seen["after_phone"] = app.sm.current
        yield from tap(text=app.tr("common.back"))
        yield on(app, "idle")
        yield from tap(text="РУ")
        seen["lang"] = app.lang
        yield from tap(text="EN")
        seen["back_to"] = app.lang

    run_ui(ui_settings(tmp_path), script)
    assert seen == {"after_phone": "phone", "lang": "ru", "back_to": "en"}


def test_while_busy_the_overlay_takes_every_touch_on_purpose(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        done: list[bool] = []
        app.nav.run_async(lambda: time.sleep(1.6), lambda _r, _e: done.append(True))  # slow work
        yield lambda: bool(app.busy)
        try:
            yield from tap(text=app.tr("idle.phone"))
        except TouchError as exc:
            seen["blocked"] = str(exc)
        seen["while_busy"] = app.sm.current
        yield lambda: bool(done) and not app.busy
        yield from tap(text=app.tr("idle.phone"))
        seen["after"] = app.sm.current

    run_ui(ui_settings(tmp_path), script)
    assert "BusyOverlay" in seen["blocked"] and "took the touch first" in seen["blocked"]
    assert (seen["while_busy"], seen["after"]) == ("idle", "phone")


def test_the_harness_refuses_what_a_person_could_not_do(tmp_path: Path) -> None:
    errors: dict[str, str] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        attempts = {
            "absent": lambda: find_widget(text="No such button"),
            "several": lambda: find_widget(contains="", kind=type(find_widget(text="EN"))),
            "label": lambda: list(tap(text=app.tr("idle.title"))),
            "inactive": lambda: list(tap(app.sm.get_screen("phone").children[0])),
        }
        for name, attempt in attempts.items():
            with pytest.raises(TouchError) as caught:
                attempt()
            errors[name] = str(caught.value)
        yield 0

    run_ui(ui_settings(tmp_path), script)
    assert errors["absent"].startswith("no widget matches text='No such button'")
    assert "visible widgets match" in errors["several"]
    assert errors["label"].endswith("it does not take touches")
    assert "inactive screen 'phone'" in errors["inactive"]
