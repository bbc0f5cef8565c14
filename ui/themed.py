"""The theme, live: sizes that follow the window, and text that fits its widget.

kv rules read `theme.<token>` (`#:import theme ui.themed.theme`): spacing (`xs`..`xxl`), type
(`caption`..`hero`), component sizes (`button_h`, `header_h`, ...) and the window's shape
(`landscape`). They change when the window is resized, and every rule bound to them follows.

`FitLabel` and `FitButton` wrap their text at word boundaries and, when it still does not fit
(a word wider than the widget, or more lines than its height holds), step down the type scale
from their `font_role` to `min_role`, so a long translation reads whole in a smaller size
instead of running into its neighbour or being cut off.
"""

from __future__ import annotations

import re
from typing import Any

from kivy.clock import Clock
from kivy.event import EventDispatcher
from kivy.metrics import dp, sp
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.togglebutton import ToggleButton
from kivy.uix.widget import Widget

from ui.theme import SIZES, SPACE, TOUCH_MIN, TYPE, scale_for

MARKUP = re.compile(r"\[/?[a-z_]+(?:=[^\]]*)?\]")
TYPE_ORDER = list(TYPE)  # smallest first


class LiveTheme(EventDispatcher):
    scale = NumericProperty(1.0)
    landscape = BooleanProperty(True)
    window_w = NumericProperty(1024)
    window_h = NumericProperty(600)
    touch = NumericProperty(TOUCH_MIN)
    xs = NumericProperty(SPACE["xs"])
    sm = NumericProperty(SPACE["sm"])
    md = NumericProperty(SPACE["md"])
    lg = NumericProperty(SPACE["lg"])
    xl = NumericProperty(SPACE["xl"])
    xxl = NumericProperty(SPACE["xxl"])
    caption = NumericProperty(TYPE["caption"])
    small = NumericProperty(TYPE["small"])
    body = NumericProperty(TYPE["body"])
    lead = NumericProperty(TYPE["lead"])
    title = NumericProperty(TYPE["title"])
    display = NumericProperty(TYPE["display"])
    hero = NumericProperty(TYPE["hero"])
    status_h = NumericProperty(SIZES["status_h"])
    header_h = NumericProperty(SIZES["header_h"])
    button_h = NumericProperty(SIZES["button_h"])
    big_button_h = NumericProperty(SIZES["big_button_h"])
    key_min = NumericProperty(SIZES["key_min"])
    bar_h = NumericProperty(SIZES["bar_h"])
    check = NumericProperty(SIZES["check"])

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._window: Any = None
        self.apply(1024, 600)

    def follow_window(self) -> None:
        """Track the Kivy window's size (called once the window exists)."""
        from kivy.core.window import Window

        if self._window is None:
            self._window = Window
            Window.bind(size=lambda _w, size: self.apply(*size))
        self.apply(*Window.size)

    def apply(self, width: float, height: float) -> None:
        unit = dp(1)
        scale = scale_for(width / unit, height / unit)
        self.window_w, self.window_h = width, height
        self.landscape = width >= height
        self.scale = scale
        self.touch = dp(TOUCH_MIN)
        for name, value in SPACE.items():
            setattr(self, name, dp(value * scale))
        for name, value in TYPE.items():
            setattr(self, name, sp(value * scale))
        for name, value in SIZES.items():
            size = dp(value * scale)
            # A toast covers the header (>= a touch target, it is tapped away).
            if name in ("header_h", "button_h", "big_button_h", "key_min", "check"):
                size = max(size, dp(TOUCH_MIN))
            setattr(self, name, size)

    def font(self, role: str) -> float:
        return float(getattr(self, role))

    def steps(self, largest: str, smallest: str) -> list[float]:
        """Font sizes from `largest` down to `smallest` on the type scale."""
        top, bottom = TYPE_ORDER.index(largest), TYPE_ORDER.index(smallest)
        return [self.font(TYPE_ORDER[i]) for i in range(top, min(bottom, top) - 1, -1)]


theme = LiveTheme()


def plain(text: str) -> str:
    return MARKUP.sub("", text)


class FitText:
    """Mixin for Label subclasses: wrap at words, step down the type scale until it fits."""

    font_role = StringProperty("body")
    min_role = StringProperty("caption")
    # True: the widget's height is set by its layout and the text must fit in it.
    # False: the kv rule sizes the widget to its text (height: self.texture_size[1] + ...).
    fixed_height = BooleanProperty(True)
    fitted = BooleanProperty(True)  # False when even the smallest size does not fit

    def __init__(self, **kwargs: Any) -> None:
        self._fit_key: tuple[Any, ...] | None = None
        self._fit_trigger = Clock.create_trigger(lambda _dt: self.fit(), -1)
        super().__init__(**kwargs)
        fbind = self.fbind  # type: ignore[attr-defined]
        for name in ("size", "text", "font_role", "min_role", "padding", "fixed_height"):
            fbind(name, self._fit_trigger)
        # A weak binding (bind, not fbind): the theme outlives every app run in a process.
        theme.bind(scale=self._theme_changed)
        self._fit_trigger()

    def _theme_changed(self, *_args: Any) -> None:
        self._fit_trigger()

    def fit(self) -> None:
        label: Any = self
        padding = label.padding
        pad_x, pad_y = padding[0] + padding[2], padding[1] + padding[3]
        width = max(1.0, float(label.width - pad_x))
        height = float(label.height - pad_y)
        key = (
            label.text,
            width,
            height if label.fixed_height else None,
            label.font_role,
            label.min_role,
            theme.scale,
            label.bold,
            label.font_name,
        )
        if key == self._fit_key:
            return
        self._fit_key = key
        size, fitted = self._best_size(width, height)
        label.fitted = fitted
        if label.font_size != size:
            label.font_size = size
        if tuple(label.text_size) != (width, None):
            label.text_size = (width, None)

    def _best_size(self, width: float, height: float) -> tuple[float, bool]:
        """The largest size on the type scale at which the text fits, measured aside."""
        from kivy.core.text import Label as CoreLabel
        from kivy.core.text.markup import MarkupLabel

        label: Any = self
        words = plain(label.text).split()
        steps = theme.steps(label.font_role, label.min_role)
        for size in steps:
            core_class = MarkupLabel if label.markup else CoreLabel
            core = core_class(
                text=label.text,
                font_size=size,
                font_name=label.font_name,
                bold=label.bold,
                italic=label.italic,
                text_size=(width, None),
                halign=label.halign,
            )
            core.resolve_font_name()
            widest = max((core.get_extents(word)[0] for word in words), default=0)
            if widest > width:
                continue
            if not label.fixed_height:
                return size, True
            _w, needed = core.render()
            if needed <= height + 1:
                return size, True
        return steps[-1], False


class FitLabel(FitText, Label):
    pass


class FitButton(FitText, Button):
    pass


class FitToggleButton(FitText, ToggleButton):
    pass


class Meter(Widget):
    """A progress bar drawn in the theme's colours (the bar only; the label is beside it)."""

    value = NumericProperty(0.0)  # 0..1


def register() -> None:
    """Make the themed widgets known to kv rules, and follow the window's size."""
    from kivy.factory import Factory

    for cls in (FitLabel, FitButton, FitToggleButton, Meter):
        if cls.__name__ not in Factory.classes:
            Factory.register(cls.__name__, cls=cls)
    theme.follow_window()
