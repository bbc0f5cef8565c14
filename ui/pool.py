"""Lists of buttons that screens show again and again, made once and reused.

A screen that made new buttons on every visit (rewards, transfer targets, categories) grew
the app by about 3.5 MB a visit: Kivy widgets are costly to make, and what they leave
behind is not given back to the system. A pool keeps each kind's widgets and refills them;
a screen says what to show, the pool decides which widget shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kivy.factory import Factory


@dataclass(frozen=True)
class Shown:
    """One row: a widget of kv class `kind`, its properties, and what a tap does."""

    kind: str
    properties: dict[str, Any] = field(default_factory=dict)
    on_release: Callable[[], None] | None = None


class WidgetPool:
    def __init__(self, box: Any) -> None:
        self.box = box
        self._made: dict[str, list[Any]] = {}

    def show(self, rows: Iterable[Shown]) -> list[Any]:
        """Fill the box with exactly these rows, in order, reusing widgets by kind."""
        self.box.clear_widgets()  # detaches only: the widgets stay in the pool
        used: dict[str, int] = {}
        shown = []
        for row in rows:
            index = used.get(row.kind, 0)
            used[row.kind] = index + 1
            widget = self._widget(row.kind, index)
            for name, value in row.properties.items():
                setattr(widget, name, value)
            widget.pool_action = row.on_release
            self.box.add_widget(widget)
            shown.append(widget)
        return shown

    def made(self, kind: str) -> int:
        return len(self._made.get(kind, ()))

    def _widget(self, kind: str, index: int) -> Any:
        widgets = self._made.setdefault(kind, [])
        if index < len(widgets):
            return widgets[index]
        widget = getattr(Factory, kind)()
        widget.pool_action = None
        if hasattr(widget, "on_release"):
            widget.bind(on_release=_released)
        widgets.append(widget)
        return widget


def _released(widget: Any) -> None:
    action = getattr(widget, "pool_action", None)
    if action is not None:
        action()
