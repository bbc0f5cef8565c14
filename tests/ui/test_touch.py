"""The real-input harness (ui/touch.py) and the defects that blocked input, each shown by
real taps: a hidden, disabled overlay swallowed every touch; the message bar drew its text
behind the screen and pushed the layout down under the next tap."""

from __future__ import annotations

import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pos_client.demo import DEMO_MEMBERS
from tests.ui.conftest import run_ui, ui_settings
from ui.demo import on, simulated
from ui.touch import (
    TouchError,
    describe,
    find_widget,
    hidden_because,
    long_press,
    press,
    tap,
    tappable,
    walk,
    window_rect,
)

Rect = tuple[float, float, float, float]


ANNA = DEMO_MEMBERS[0]


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
        sim = simulated(app)
        sim.inject({"cmd": "latency", "seconds": 1.6})  # a slow link: the lookup takes 1.6 s
        sim.inject({"cmd": "tap", "value": ANNA.card_uid})
        yield lambda: bool(app.busy)
        try:
            yield from tap(text=app.tr("idle.phone"))
        except TouchError as exc:
            seen["blocked"] = str(exc)
        seen["while_busy"] = app.sm.current
        yield lambda: app.sm.current == "member" and not app.busy
        sim.inject({"cmd": "latency", "seconds": 0})
        yield from tap(text=app.tr("member.earn"))
        seen["after"] = app.sm.current

    run_ui(ui_settings(tmp_path), script)
    assert "BusyOverlay" in seen["blocked"] and "took the touch first" in seen["blocked"]
    assert (seen["while_busy"], seen["after"]) == ("idle", "earn")


def test_the_harness_refuses_what_a_person_could_not_do(tmp_path: Path) -> None:
    errors: dict[str, str] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        attempts = {
            "absent": lambda: find_widget(text="No such button"),
            "several": lambda: find_widget(contains="", kind=type(find_widget(text="EN"))),
            "label": lambda: press(text=app.tr("idle.title")),
            "inactive": lambda: press(app.sm.get_screen("phone").children[0]),
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


def test_a_message_is_readable_keeps_the_layout_and_a_tap_dismisses_it(tmp_path: Path) -> None:
    """The message text used to be drawn at (0, 0) behind the screen, and the bar pushed the
    layout down 44 px for 6 s so the next tap landed on the wrong key."""
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        from kivy.core.window import Window

        before = window_rect(find_widget(text=app.tr("idle.phone")))
        simulated(app).inject({"cmd": "tap", "value": "04:11:22:33"})  # an unknown card
        yield lambda: bool(app.message)
        yield 0.3
        label = find_widget(text=app.tr("error.unknown"))
        bar = label.parent
        seen["label_in_bar"] = inside(window_rect(label), window_rect(bar))
        seen["bar_in_window"] = inside(window_rect(bar), (0, 0, Window.width, Window.height))
        seen["moved"] = window_rect(find_widget(text=app.tr("idle.phone"))) != before
        written = Window.screenshot(name=str(tmp_path / "toast.png"))
        image = Image.open(written).convert("RGB")
        x, y, w, h = window_rect(label)
        crop = image.crop((int(x), int(Window.height - y - h), int(x + w), int(Window.height - y)))
        colours = sorted(crop.getcolors(maxcolors=1_000_000) or [], reverse=True)
        background = colours[0][1]
        ink = [c for c in colours if contrast(c[1], background) >= 4.5]
        seen["background"] = background
        seen["contrast"] = max(contrast(c[1], background) for c in colours)
        seen["ink_share"] = sum(n for n, _c in ink) / (crop.width * crop.height)
        covered: list[str] = []
        for screen in ("idle", "phone"):
            if screen == "phone":
                yield from tap(text=app.tr("idle.phone"))  # lands on the button it aimed at
                seen["screen"] = app.sm.current
            covered += [
                f"{screen}: {describe(w)}"
                for w in walk()
                if tappable(w)
                and w is not bar
                and hidden_because(w) is None
                and overlap(window_rect(w), window_rect(bar))
            ]
        seen["covered"] = covered
        try:
            yield from tap(bar)
        except TouchError as exc:
            seen["dismiss_error"] = str(exc)
        seen["after_dismiss"] = app.message

    run_ui(ui_settings(tmp_path), script)
    assert seen["label_in_bar"] and seen["bar_in_window"], "the message is not drawn in its bar"
    assert not seen["moved"], "the message pushed the screen's layout"
    r, g, b = seen["background"]
    assert r > 200 and 120 < g < 200 and b < 100, f"not the toast's colour: {seen['background']}"
    assert seen["contrast"] >= 4.5 and seen["ink_share"] > 0.01, seen
    assert seen["screen"] == "phone"
    assert seen["covered"] == []
    assert "dismiss_error" not in seen and seen["after_dismiss"] == ""


def test_a_long_press_holds_the_finger_down_on_the_clock(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        button = find_widget(text=app.tr("idle.phone"))
        states: list[tuple[float, str]] = []
        started = time.monotonic()
        button.bind(state=lambda _b, value: states.append((time.monotonic() - started, value)))
        yield from long_press(button, seconds=0.6)
        seen["states"], seen["screen"] = states, app.sm.current

    run_ui(ui_settings(tmp_path), script)
    (down_at, first), (up_at, second) = seen["states"]
    assert (first, second) == ("down", "normal")
    assert down_at < 0.1 and up_at >= 0.6
    assert seen["screen"] == "phone"  # a button acts on release, however long the press
