"""Drive the running app as a person does: the real-input harness of tests/ui and ui/demo.py.

A tap is a Kivy MotionEvent posted through `EventLoop.post_dispatch_input` at the centre of
a widget in window coordinates: the path a touchscreen or a mouse click takes, so whatever
is on top receives it. A tap fails, as a person's would, when the widget is not visible
(inactive screen, opacity 0, zero size, outside the window) or when the touch does not reach
it and get taken by it (an overlay on top, a disabled widget, a label that takes no touch).
Keys go through the Window (`on_key_down` / `on_keyboard` / `on_textinput` / `on_key_up`),
as SDL delivers them.

The helpers that take time are generators, steps of a `ui.script` script:

    yield from tap(text=app.tr("idle.phone"))
    yield from tap_keys("+16502530000")     # the on-screen keypad, key by key
    yield from long_press(id="staff", seconds=2)
    yield from type_into(id="first_name", text="Nikos")

`POS_UI_DEBUG_LAYOUT=path.json` (a field technician's aid, used by the X-level smoke test)
makes the app keep a JSON file of the buttons and fields on screen and their rectangles in
window pixels (origin top left, as xdotool and screenshots count) up to date.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

Step = float | int | str | Callable[[], bool]
MARKUP = re.compile(r"\[/?[a-z_]+(?:=[^\]]*)?\]")
KEYS = {"\r": (13, 40), "\n": (13, 40), "\t": (9, 43), "\b": (8, 42), "\x1b": (27, 41)}


class TouchError(AssertionError):
    """A tap, key or lookup that a person could not have made."""


def _window() -> Any:
    from kivy.core.window import Window

    return Window


def _current_screen() -> str:
    from kivy.app import App

    app = App.get_running_app()
    sm = getattr(app, "sm", None)
    return str(sm.current) if sm is not None else "?"


# ------------------------------------------------------------------ the widget tree


def walk() -> Iterator[Any]:
    """Every widget attached to the window (inactive screens are not attached)."""
    stack = list(reversed(_window().children))
    while stack:
        widget = stack.pop()
        yield widget
        stack.extend(reversed(widget.children))


def shown_text(widget: Any) -> str | None:
    """The text a person reads on a widget: a label's text (markup removed) or a field's hint."""
    from kivy.uix.label import Label
    from kivy.uix.textinput import TextInput

    if isinstance(widget, TextInput):
        return str(widget.hint_text)
    if isinstance(widget, Label):
        text = str(widget.text)
        return MARKUP.sub("", text) if widget.markup else text
    return None


def kv_id(widget: Any) -> str | None:
    """The kv id of a widget, looked up in the `ids` of its ancestors (kv rule roots)."""
    node = widget.parent
    while node is not None and node is not _window():
        for name, value in getattr(node, "ids", {}).items():
            if getattr(value, "uid", None) == widget.uid:
                return str(name)
        node = node.parent
    return None


def describe(widget: Any) -> str:
    name = type(widget).__name__
    ident = kv_id(widget)
    text = shown_text(widget)
    parts = [name]
    if ident:
        parts.append(f"#{ident}")
    if text:
        parts.append(repr(text if len(text) <= 40 else text[:37] + "..."))
    flags = [
        f for f, on in (("disabled", widget.disabled), ("opacity 0", not widget.opacity)) if on
    ]
    if flags:
        parts.append(f"({', '.join(flags)})")
    return " ".join(parts)


def window_rect(widget: Any) -> tuple[float, float, float, float]:
    """(x, y, width, height) in window coordinates, origin bottom left (Kivy's)."""
    x, y = widget.to_window(widget.x, widget.y)
    right, top = widget.to_window(widget.right, widget.top)
    return x, y, right - x, top - y


def centre(widget: Any) -> tuple[float, float]:
    x, y = widget.to_window(*widget.center)
    return float(x), float(y)


def hidden_because(widget: Any) -> str | None:
    """Why a person could not see (and so tap) this widget, or None when they can."""
    from kivy.uix.screenmanager import Screen
    from kivy.uix.stencilview import StencilView

    window = _window()
    node, chain = widget, []
    while node is not None and node is not window:
        chain.append(node)
        node = node.parent
    if node is None:
        top = chain[-1]
        if isinstance(top, Screen):
            return f"it is on the inactive screen {top.name!r} (showing {_current_screen()!r})"
        return "it is not on the window"
    for node in chain:
        if node.opacity <= 0:
            return "it has opacity 0" if node is widget else f"{describe(node)} has opacity 0"
    if widget.width <= 0 or widget.height <= 0:
        return f"it has zero size ({widget.width:.0f}x{widget.height:.0f})"
    x, y = centre(widget)
    if not (0 <= x < window.width and 0 <= y < window.height):
        return f"its centre ({x:.0f}, {y:.0f}) is outside the {window.width}x{window.height} window"
    for node in chain[1:]:
        if isinstance(node, StencilView):
            left, bottom, width, height = window_rect(node)
            if not (left <= x <= left + width and bottom <= y <= bottom + height):
                return f"it is scrolled out of {describe(node)}"
    return None


def find_widget(
    *,
    id: str | None = None,
    text: str | None = None,
    contains: str | None = None,
    kind: type | tuple[type, ...] | None = None,
    within: Any = None,
) -> Any:
    """The one visible widget with this kv id, exact visible text, or text containing
    `contains` (callers pass translated text: `app.tr(key)`), optionally of a `kind`.
    Fails when none or several visible widgets match."""
    if id is None and text is None and contains is None:
        raise TypeError("find_widget needs id=, text= or contains=")
    wanted = " ".join(
        f"{label}={value!r}"
        for label, value in (("id", id), ("text", text), ("contains", contains))
        if value is not None
    )
    pool = within.walk(restrict=True) if within is not None else walk()
    matches = []
    for widget in pool:
        if kind is not None and not isinstance(widget, kind):
            continue
        if id is not None and kv_id(widget) != id:
            continue
        shown = shown_text(widget)
        if text is not None and shown != text:
            continue
        if contains is not None and (shown is None or contains not in shown):
            continue
        matches.append(widget)
    visible = [w for w in matches if hidden_because(w) is None]
    if len(visible) == 1:
        return visible[0]
    where = f"on screen {_current_screen()!r}"
    if len(visible) > 1:
        listed = "; ".join(describe(w) for w in visible)
        raise TouchError(f"{len(visible)} visible widgets match {wanted} {where}: {listed}")
    if matches:
        reasons = "; ".join(f"{describe(w)}: {hidden_because(w)}" for w in matches)
        raise TouchError(f"no visible widget matches {wanted} {where}; hidden: {reasons}")
    raise TouchError(f"no widget matches {wanted} {where}")


# ------------------------------------------------------------------ touches


def _is_within(widget: Any, ancestor: Any) -> bool:
    node, window = widget, _window()
    while node is not None and node is not window:
        if node is ancestor:
            return True
        node = node.parent
    return node is ancestor


def _resolve(widget: Any, find: dict[str, Any]) -> Any:
    """The widget to touch: given, or found; a button or field before a label with the same
    text (a screen titled "Done" above a "Done" button), as a person aims at the button."""
    if widget is not None:
        return widget
    if "kind" not in find:
        try:
            return find_widget(kind=_tappable_kinds(), **find)
        except TouchError:
            pass
    return find_widget(**find)


def guard_remaining() -> float:
    """Seconds the app still swallows new touches after its last screen change (or dialog):
    the touch guard of ui.controllers.input."""
    from kivy.app import App

    guard = getattr(getattr(App.get_running_app(), "input", None), "guard", None)
    return float(guard.remaining()) if guard is not None else 0.0


def _guard_swallowed(touch: Any) -> bool:
    from kivy.app import App

    guard = getattr(getattr(App.get_running_app(), "input", None), "guard", None)
    return bool(guard is not None and guard.swallowed(touch))


def wait_out_guard() -> Generator[Step, None, None]:
    """Wait (the app running) until a new touch is taken again, as a person's next
    deliberate tap comes after they have seen the new screen."""
    if guard_remaining() > 0:
        yield lambda: guard_remaining() <= 0


def press(widget: Any = None, **find: Any) -> Any:
    """Put a finger down on the centre of a widget: returns the touch, held by the widget.

    Fails unless the widget is visible, the touch reaches it (nothing on top takes it
    first) and the widget (or a part of it) takes it."""
    from kivy.tests.common import UnitTestTouch

    target = _resolve(widget, find)
    reason = hidden_because(target)
    if reason is not None:
        raise TouchError(f"cannot tap {describe(target)}: {reason}")
    x, y = centre(target)
    reached: list[tuple[Any, bool]] = []

    def record(instance: Any, touch: Any) -> bool:
        reached.append((instance, bool(instance.collide_point(*touch.pos))))
        return False

    bound = [(w, w.fbind("on_touch_down", record)) for w in walk()]
    touch = UnitTestTouch(x, y)
    try:
        touch.touch_down()
    finally:
        for w, uid in bound:
            w.unbind_uid("on_touch_down", uid)
    holders = [ref() for ref in touch.grab_list if ref() is not None]
    if any(_is_within(holder, target) for holder in holders):
        return touch
    swallowed = _guard_swallowed(touch)
    touch.touch_up()  # let go before failing, as a finger would
    at = f"({x:.0f}, {y:.0f}) on screen {_current_screen()!r}"
    if swallowed:
        raise TouchError(
            f"tap on {describe(target)} at {at} came too soon after the screen changed:"
            " the touch guard swallowed it"
        )
    if not any(instance is target for instance, _hit in reached):
        on_top = [w for w, hit in reached if hit and not _is_within(target, w)]
        culprit = describe(on_top[-1]) if on_top else "something else"
        raise TouchError(
            f"tap on {describe(target)} at {at} never reached it: {culprit} took the touch first"
        )
    if target.disabled:
        raise TouchError(f"tap on {describe(target)} at {at}: it is disabled")
    if holders:
        raise TouchError(
            f"tap on {describe(target)} at {at}: {describe(holders[0])} took the touch instead"
        )
    raise TouchError(f"tap on {describe(target)} at {at}: it does not take touches")


def release(touch: Any) -> None:
    touch.touch_up()


def tap(widget: Any = None, **find: Any) -> Generator[Step, None, None]:
    """Tap a widget (or the one `find_widget(**find)` returns when the step runs), then
    let one frame pass so the app lays out whatever the tap changed. Waits out the app's
    touch guard first (a tap right after a screen change is swallowed, as it should be)."""
    yield from wait_out_guard()
    release(press(widget, **find))
    yield 0


def tap_at(x: float, y: float) -> Generator[Step, None, None]:
    """A finger down and up at a window point, whatever is there, right now: a person's
    quick second tap (no lookup, no checks, no waiting out the screen-change guard)."""
    from kivy.tests.common import UnitTestTouch

    touch = UnitTestTouch(x, y)
    touch.touch_down()
    touch.touch_up()
    yield 0


def long_press(
    widget: Any = None, seconds: float = 1.0, **find: Any
) -> Generator[Step, None, None]:
    """Hold a finger on a widget for `seconds` (real time, the app running), then lift it."""
    yield from wait_out_guard()
    touch = press(widget, **find)
    held_since = time.monotonic()
    # Real time, polled on the clock: Kivy counts timeouts from the frame's start.
    yield lambda: time.monotonic() - held_since >= seconds
    release(touch)
    yield 0


def tap_keys(keys: str, **find: Any) -> Generator[Step, None, None]:
    """Tap on-screen keys (buttons) one by one, each found by its visible text ("<" is the
    keypad's backspace)."""
    from kivy.uix.behaviors import ButtonBehavior

    find.setdefault("kind", ButtonBehavior)
    for key in keys:
        yield from tap(text=key, **find)


# ------------------------------------------------------------------ keys


def press_key(key: int, scancode: int = 0, text: str | None = None) -> None:
    """One key as SDL delivers it: key down (then on_keyboard unless taken), text, key up."""
    window = _window()
    if not window.dispatch("on_key_down", key, scancode, text, []):
        window.dispatch("on_keyboard", key, scancode, text, [])
    if text:
        window.dispatch("on_textinput", text)
    window.dispatch("on_key_up", key, scancode)


def _press_char(char: str) -> None:
    special = KEYS.get(char)
    if special is not None:
        press_key(special[0], special[1])
    else:
        press_key(ord(char.lower()) if char.isalpha() else ord(char), 0, char)


def type_keys(text: str, gap_s: float, enter: bool = True) -> None:
    """A burst of keys with real gaps, blocking the clock in between, like a wedge scanner
    (whose keys arrive faster than frames), then Enter."""
    for char in text:
        _press_char(char)
        time.sleep(gap_s)
    if enter:
        _press_char("\r")


def type_text(text: str, gap_s: float = 0.12, enter: bool = False) -> Generator[Step, None, None]:
    """Keys at a person's pace, the app running between them (frames drawn, clock ticking)."""
    for char in text:
        _press_char(char)
        yield gap_s
    if enter:
        _press_char("\r")
        yield 0


def type_into(
    widget: Any = None, text: str = "", gap_s: float = 0.12, **find: Any
) -> Generator[Step, None, None]:
    """Tap a text field to focus it, then type into it through the Window."""
    target = _resolve(widget, find)
    yield from tap(target)
    if not getattr(target, "focus", False):
        raise TouchError(f"{describe(target)} did not take the keyboard focus when tapped")
    yield from type_text(text, gap_s)


# ------------------------------------------------------------------ layout for X-level tools


def _tappable_kinds() -> tuple[type, ...]:
    from kivy.uix.behaviors import ButtonBehavior, FocusBehavior

    return (ButtonBehavior, FocusBehavior)


def tappable(widget: Any) -> bool:
    """Buttons, toggles, checkboxes and text fields: what takes a tap."""
    return isinstance(widget, _tappable_kinds())


def layout_snapshot() -> dict[str, Any]:
    """The buttons and fields a person can see, with rectangles in window pixels (origin top
    left, as X tools count) and the touch point at the centre of each."""
    window = _window()
    height = window.height
    widgets = []
    for widget in walk():
        if not tappable(widget) or hidden_because(widget) is not None:
            continue
        x, y, w, h = window_rect(widget)
        cx, cy = centre(widget)
        widgets.append(
            {
                "kind": type(widget).__name__,
                "id": kv_id(widget),
                "text": shown_text(widget),
                "disabled": bool(widget.disabled),
                "rect": [round(x), round(height - (y + h)), round(w), round(h)],
                "centre": [round(cx), round(height - cy)],
            }
        )
    return {"screen": _current_screen(), "window": [window.width, height], "widgets": widgets}


def watch_layout(path: str | None = None, every_s: float = 0.25) -> None:
    """Keep `path` (default: $POS_UI_DEBUG_LAYOUT) holding the layout snapshot; rewritten
    atomically whenever what is on screen changes. Does nothing when no path is set."""
    from kivy.clock import Clock

    target = path or os.environ.get("POS_UI_DEBUG_LAYOUT")
    if not target:
        return
    out = Path(target)
    last: list[str] = [""]

    def write(_dt: float) -> None:
        text = json.dumps(layout_snapshot(), ensure_ascii=False, indent=1)
        if text != last[0]:
            scratch = out.with_name(out.name + ".tmp")
            scratch.write_text(text, encoding="utf-8")
            scratch.replace(out)
            last[0] = text

    window = _window()

    def first_frame(*_args: Any) -> None:  # nothing is on screen before the first frame
        window.unbind(on_flip=first_frame)
        Clock.schedule_interval(write, every_s)

    window.bind(on_flip=first_frame)
