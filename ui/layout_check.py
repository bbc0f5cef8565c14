"""Check what is on the window now: does every text fit, can every control be touched?

`check_window(where)` walks the widgets attached to the window (what a person could see) and
returns a `Problem` for each of:
- text wider or taller than its widget (it runs into a neighbour or is cut off), a word
  broken across lines because it is wider than the widget, text `shorten`ed to "…", text
  cut at `max_lines`;
- interactive widgets (buttons, toggles, check boxes, text fields) overlapping each other;
- touch targets under 48 px in either dimension;
- text whose colour against the background actually drawn behind it (the dominant pixel
  colour in the widget's rectangle, read back from the framebuffer) is under WCAG AA 4.5:1;
- widgets outside the window, and widgets of a screen drawn outside the screen's area
  (under the status bar);
- text partly covered by a toast or overlay drawn over the screens (a widget whose
  `covers_below` is true); text wholly under one is not seen and not checked.

It must run on the Kivy clock after the frame was drawn (see ui.tour: it waits a few frames
after every change).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from ui.theme import AA_NORMAL, TOUCH_MIN, contrast_ratio

TOLERANCE = 1.0  # px: rounding in layouts
COLOR_TAG = re.compile(r"\[color=#?([0-9a-fA-F]{6})(?:[0-9a-fA-F]{2})?\]")
MARKUP = re.compile(r"\[/?[a-z_]+(?:=[^\]]*)?\]")


@dataclass(frozen=True)
class Problem:
    where: str  # "member ru 800x480"
    widget: str  # "Button 'Перевод / пожертвование'"
    what: str
    within: tuple[str, ...] = ()  # the widget's ancestors' class names, nearest first

    def __str__(self) -> str:
        return f"{self.where}: {self.widget}: {self.what}"


Rect = tuple[float, float, float, float]  # x, y, width, height in window px, origin bottom left


# ------------------------------------------------------------------ the widget tree


def attached(root: Any) -> Iterator[tuple[Any, float]]:
    """(widget, opacity) for every widget under root that a person could see (opacity > 0)."""
    stack = [(root, 1.0)]
    while stack:
        widget, parent_opacity = stack.pop()
        opacity = parent_opacity * float(widget.opacity)
        if opacity <= 0.01:
            continue
        yield widget, opacity
        stack.extend((child, opacity) for child in widget.children)


def window_roots() -> list[Any]:
    """What a person sees and can touch on the window: the topmost modal dialog alone while
    one is open (it takes every touch and dims what is under it), else every window child."""
    from kivy.core.window import Window
    from kivy.uix.modalview import ModalView

    modals = [w for w in Window.children if isinstance(w, ModalView)]
    return modals[:1] if modals else list(Window.children)


def window_rect(widget: Any) -> Rect:
    x, y = widget.to_window(widget.x, widget.y)
    right, top = widget.to_window(widget.right, widget.top)
    return float(x), float(y), float(right - x), float(top - y)


def shown_text(widget: Any) -> str:
    text = str(getattr(widget, "text", "") or "")
    return MARKUP.sub("", text) if getattr(widget, "markup", False) else text


def describe(widget: Any) -> str:
    name = type(widget).__name__
    ident = _kv_id(widget)
    text = shown_text(widget) if _is_label(widget) else ""
    text = text.replace("\n", " / ")
    parts = [name + (f"#{ident}" if ident else "")]
    if text:
        parts.append(repr(text if len(text) <= 48 else text[:45] + "..."))
    return " ".join(parts)


def ancestors(widget: Any) -> tuple[str, ...]:
    names = []
    node = widget.parent
    while node is not None and node.parent is not node:
        names.append(type(node).__name__)
        node = node.parent
    return tuple(names)


def _kv_id(widget: Any) -> str | None:
    node = widget.parent
    while node is not None and node.parent is not node:
        for name, value in getattr(node, "ids", {}).items():
            if value is widget or getattr(value, "__self__", None) is widget:
                return str(name)
        node = node.parent
    return None


def _is_label(widget: Any) -> bool:
    from kivy.uix.label import Label

    return isinstance(widget, Label)


def is_interactive(widget: Any) -> bool:
    from kivy.uix.behaviors import ButtonBehavior, ToggleButtonBehavior
    from kivy.uix.slider import Slider
    from kivy.uix.textinput import TextInput

    return isinstance(widget, ButtonBehavior | ToggleButtonBehavior | TextInput | Slider)


def _screen_of(widget: Any) -> Any:
    from kivy.uix.screenmanager import Screen

    node = widget
    while node is not None:
        if isinstance(node, Screen):
            return node
        parent = node.parent
        if parent is node:
            return None
        node = parent
    return None


def _intersection(a: Rect, b: Rect) -> tuple[float, float]:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return width, height


def _inside(inner: Rect, outer: Rect) -> bool:
    return (
        inner[0] >= outer[0] - TOLERANCE
        and inner[1] >= outer[1] - TOLERANCE
        and inner[0] + inner[2] <= outer[0] + outer[2] + TOLERANCE
        and inner[1] + inner[3] <= outer[1] + outer[3] + TOLERANCE
    )


def _is_ancestor(ancestor: Any, widget: Any) -> bool:
    node = widget.parent
    while node is not None:
        if node is ancestor:
            return True
        if node.parent is node:
            return False
        node = node.parent
    return False


# ------------------------------------------------------------------ the framebuffer


READ_SIDE = 1024
_FBOS: dict[tuple[int, int], Any] = {}  # one offscreen framebuffer per window size


class Pixels:
    """The window as drawn, read back once: `dominant(rect)` is its background colour."""

    def __init__(self, width: int, height: int, data: bytes, factor: float = 1.0) -> None:
        from PIL import Image

        self.factor = factor
        # Rows come bottom row first, as window coordinates count: no flip needed.
        self.image = Image.frombytes("RGBA", (width, height), data).convert("RGB")
        self.width, self.height = width, height

    def save(self, path: Any) -> None:
        """Write the frame as a PNG (top row first, as image files go)."""
        from PIL import Image

        self.image.transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(path)

    @classmethod
    def read(cls, side: int | None = None) -> Pixels:
        """Draw everything on the window into an offscreen framebuffer and read it back.

        (Reading the window's own buffer is unreliable on the offscreen driver: after a
        resize or a flip it may still hold an older frame.)"""
        from kivy.core.window import Window
        from kivy.graphics import ClearBuffers, ClearColor, Fbo, Scale

        # Drawn at most READ_SIDE px on the long side: the colours are what matters here.
        factor = min(1.0, (side or READ_SIDE) / max(Window.width, Window.height))
        width, height = round(Window.width * factor), round(Window.height * factor)
        fbo = _FBOS.get((width, height))
        if fbo is None:
            fbo = _FBOS[(width, height)] = Fbo(size=(width, height), with_stencilbuffer=True)
            with fbo:
                ClearColor(*(Window.clearcolor or (0, 0, 0, 1)))
                ClearBuffers()
                Scale(factor, factor, 1)
        moved = []
        for child in reversed(Window.children):  # bottom first, as the window draws them
            index = Window.canvas.indexof(child.canvas)
            if index > -1:
                Window.canvas.remove(child.canvas)
                moved.append((index, child.canvas))
            fbo.add(child.canvas)
        try:
            fbo.draw()
            data = bytes(fbo.pixels)
        finally:
            for _index, canvas in moved:
                fbo.remove(canvas)
            for index, canvas in sorted(moved, key=lambda item: item[0]):
                Window.canvas.insert(index, canvas)
        return cls(width, height, data, factor)

    def dominant(self, rect: Rect) -> tuple[float, float, float] | None:
        from PIL import Image

        rect = tuple(value * self.factor for value in rect)  # type: ignore[assignment]
        x0, y0 = max(0, int(rect[0])), max(0, int(rect[1]))
        x1 = min(self.width, max(x0 + 1, int(rect[0] + rect[2])))
        y1 = min(self.height, max(y0 + 1, int(rect[1] + rect[3])))
        if x1 - x0 < 1 or y1 - y0 < 1:
            return None
        crop = self.image.crop((x0, y0, x1, y1))
        if crop.width * crop.height > 6400:
            crop = crop.resize(
                (min(crop.width, 80), min(crop.height, 80)), Image.Resampling.NEAREST
            )
        colors = crop.getcolors(crop.width * crop.height) or []
        _count, rgb = max(colors, key=lambda item: item[0])
        red, green, blue = cast(tuple[int, int, int], rgb)
        return (red / 255, green / 255, blue / 255)


# ------------------------------------------------------------------ the checks


def check_window(where: str, pixels: Pixels | None = None) -> list[Problem]:
    """Every problem on the window as it is drawn now."""
    from kivy.core.window import Window
    from kivy.uix.screenmanager import ScreenManager

    window_box: Rect = (0.0, 0.0, float(Window.width), float(Window.height))
    problems: list[Problem] = []

    def add(widget: Any, what: str) -> None:
        problems.append(Problem(where, describe(widget), what, ancestors(widget)))

    seen = [(w, o) for root in window_roots() for w, o in attached(root)]
    managers = [w for w, _o in seen if isinstance(w, ScreenManager)]
    screen_areas = {id(sm.current_screen): window_rect(sm) for sm in managers if sm.current_screen}
    pixels = pixels if pixels is not None else Pixels.read()
    # Toasts and overlays drawn over the screens (`covers_below`): text wholly under one is
    # not seen, text partly under one is cut.
    covers = [(w, window_rect(w)) for w, _o in seen if getattr(w, "covers_below", False)]
    interactive: list[tuple[Any, Rect]] = []
    for widget, opacity in seen:
        if widget.width <= 0 or widget.height <= 0:
            continue
        rect = window_rect(widget)
        leaf = not widget.children
        if (leaf or _is_label(widget)) and not _inside(rect, window_box):
            add(widget, f"outside the {Window.width}x{Window.height} window at {_fmt(rect)}")
        elif leaf or _is_label(widget):
            screen = _screen_of(widget)
            area = screen_areas.get(id(screen)) if screen is not None else None
            if area is not None and not _inside(rect, area):
                add(widget, f"outside its screen's area {_fmt(area)} at {_fmt(rect)}")
        if is_interactive(widget):
            interactive.append((widget, rect))
            if rect[2] < TOUCH_MIN - TOLERANCE or rect[3] < TOUCH_MIN - TOLERANCE:
                add(widget, f"touch target {rect[2]:.0f}x{rect[3]:.0f} px, under {TOUCH_MIN:.0f}")
        if _is_label(widget) and shown_text(widget).strip():
            cover = _covered_by(widget, rect, covers)
            if cover is not None:
                cover_widget, whole = cover
                if not whole:
                    add(widget, f"text partly covered by {describe(cover_widget)}")
                continue
            for what in text_problems(widget):
                add(widget, what)
            if not widget.disabled:  # WCAG: inactive controls are exempt
                low = contrast_problem(widget, rect, opacity, pixels)
                if low:
                    add(widget, low)
    for index, (first, a) in enumerate(interactive):
        for second, b in interactive[index + 1 :]:
            if _is_ancestor(first, second) or _is_ancestor(second, first):
                continue
            width, height = _intersection(a, b)
            if width > TOLERANCE and height > TOLERANCE:
                add(first, f"overlaps {describe(second)} by {width:.0f}x{height:.0f} px")
    return problems


def visible_texts() -> list[tuple[str, str]]:
    """(widget, text) for every text a person can read on the window now: labels' text
    (markup removed) and text fields' text or hint, drawn (opacity > 0, some size), not
    wholly under a toast or overlay. Widgets marked `latin_on_purpose` (the keys of the
    keyboard for account numbers at partners, ASCII in every language) are left out."""
    from kivy.uix.textinput import TextInput

    seen = [w for root in window_roots() for w, _o in attached(root)]
    covers = [(w, window_rect(w)) for w in seen if getattr(w, "covers_below", False)]
    found = []
    for widget in seen:
        if widget.width <= 0 or widget.height <= 0 or getattr(widget, "latin_on_purpose", False):
            continue
        if isinstance(widget, TextInput):
            text = str(widget.text or widget.hint_text)
        elif _is_label(widget):
            text = shown_text(widget)
        else:
            continue
        cover = _covered_by(widget, window_rect(widget), covers)
        if text.strip() and not (cover is not None and cover[1]):
            found.append((describe(widget), text))
    return found


def _covered_by(widget: Any, rect: Rect, covers: list[tuple[Any, Rect]]) -> tuple[Any, bool] | None:
    """(the cover, wholly?) when a cover drawn over the widget hides some of it."""
    for cover, area in covers:
        if cover is widget or _is_ancestor(cover, widget):
            continue
        width, height = _intersection(rect, area)
        if width > TOLERANCE and height > TOLERANCE:
            return cover, _inside(rect, area)
    return None


def text_problems(label: Any) -> list[str]:
    """Why this label's text is not shown whole inside it (empty when it is)."""
    found = []
    tex_w, tex_h = label.texture_size
    if tex_w > label.width + TOLERANCE:
        found.append(f"text {tex_w:.0f} px wide in a {label.width:.0f} px widget")
    if tex_h > label.height + TOLERANCE:
        found.append(f"text {tex_h:.0f} px tall in a {label.height:.0f} px widget (cut off)")
    core = label._label
    text = shown_text(label)
    limit_w = label.text_size[0]
    if limit_w is not None:
        widest = max(text.split(), key=lambda word: core.get_extents(word)[0], default="")
        widest_w = core.get_extents(widest)[0] if widest else 0
        if label.shorten and not label.text_size[1]:
            natural = max(core.get_extents(line)[0] for line in text.split("\n"))
            if natural > limit_w + TOLERANCE:
                found.append(f"text shortened to fit {limit_w:.0f} px (needs {natural:.0f})")
        elif widest_w > limit_w + TOLERANCE:
            found.append(f"word {widest!r} ({widest_w:.0f} px) broken to fit {limit_w:.0f} px")
        if label.text_size[1] is not None and not label.shorten:
            from kivy.core.text import Label as CoreLabel

            free = CoreLabel(
                text=label.text,
                font_size=label.font_size,
                font_name=label.font_name,
                bold=label.bold,
                italic=label.italic,
                text_size=(limit_w, None),
                padding=label.padding,
                markup=label.markup,
            )
            free.refresh()
            if free.content_height > label.text_size[1] + TOLERANCE:
                found.append(
                    f"text needs {free.content_height:.0f} px, cut at {label.text_size[1]:.0f}"
                )
    elif label.shorten and tex_w >= label.width - TOLERANCE:
        natural = core.get_extents(text)[0]
        if natural > label.width:
            found.append(f"text shortened to fit {label.width:.0f} px")
    if label.max_lines and text.count("\n") + 1 > label.max_lines:
        found.append(f"text cut at {label.max_lines} lines")
    return found


def contrast_problem(label: Any, rect: Rect, opacity: float, pixels: Pixels) -> str | None:
    """The label's text colours against the dominant colour drawn in its rectangle."""
    background = pixels.dominant(rect)
    if background is None:
        return None
    base = tuple(label.disabled_color if label.disabled else label.color)
    colors = [base]
    if label.markup:
        colors += [
            (int(h[0:2], 16) / 255, int(h[2:4], 16) / 255, int(h[4:6], 16) / 255, 1.0)
            for h in COLOR_TAG.findall(label.text)
        ]
    worst = None
    for color in colors:
        alpha = (color[3] if len(color) > 3 else 1.0) * opacity
        ratio = contrast_ratio((color[0], color[1], color[2], alpha), background)
        if worst is None or ratio < worst[0]:
            worst = (ratio, color)
    assert worst is not None
    ratio, color = worst
    if ratio < AA_NORMAL:
        return (
            f"contrast {ratio:.2f}:1 under {AA_NORMAL}:1 (text {_rgb(color)} on {_rgb(background)})"
        )
    return None


def _rgb(color: Any) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in tuple(color)[:3])


def _fmt(rect: Rect) -> str:
    return f"({rect[0]:.0f},{rect[1]:.0f} {rect[2]:.0f}x{rect[3]:.0f})"
