"""Charts drawn on the server as SVG: no script, no library, readable on a phone."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 600, 180
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 56, 22, 10


def grouped(value: int) -> str:
    """Thousands apart by a thin space, as the pages show numbers (a comma reads as a
    decimal mark in Russian, Ukrainian and Greek)."""
    return f"{value:,}".replace(",", "\u202f")


def _scale(values: Sequence[int]) -> tuple[int, int]:
    low = min(0, *values) if values else 0
    high = max(1, *values) if values else 1
    return low, high


def _y(value: int, low: int, high: int) -> float:
    span = high - low or 1
    return PAD_TOP + (HEIGHT - PAD_TOP - PAD_BOTTOM) * (1 - (value - low) / span)


def _frame(title: str, labels: Sequence[str], low: int, high: int, body: str) -> str:
    step = (WIDTH - PAD_LEFT) / max(len(labels), 1)
    last = len(labels) - 1
    ticks = "".join(
        f'<text x="{PAD_LEFT + step * i + step / 2:.1f}" y="{HEIGHT - 6}" '
        f'text-anchor="{"end" if i == last else "middle"}">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if (i % 5 == 0 and last - i >= 3) or i == last  # the last never under its neighbour
    )
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="none">'
        f"<title>{escape(title)}</title>"
        f'<line class="axis" x1="{PAD_LEFT}" y1="{HEIGHT - PAD_BOTTOM}" x2="{WIDTH}" '
        f'y2="{HEIGHT - PAD_BOTTOM}"/>'
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 8}" text-anchor="end">{grouped(high)}</text>'
        f'<text x="{PAD_LEFT - 4}" y="{HEIGHT - PAD_BOTTOM}" text-anchor="end">'
        f"{grouped(low)}</text>"
        f"{body}{ticks}</svg>"
    )


def line(title: str, labels: Sequence[str], values: Sequence[int]) -> str:
    """A line over the days: the liability."""
    low, high = _scale(values)
    step = (WIDTH - PAD_LEFT) / max(len(values), 1)
    points = " ".join(
        f"{PAD_LEFT + step * i + step / 2:.1f},{_y(v, low, high):.1f}" for i, v in enumerate(values)
    )
    return _frame(title, labels, low, high, f'<polyline class="line" points="{points}"/>')


def bars(title: str, labels: Sequence[str], first: Sequence[int], second: Sequence[int]) -> str:
    """Two bars a day: points earned and points spent."""
    low, high = _scale([*first, *second])
    step = (WIDTH - PAD_LEFT) / max(len(labels), 1)
    width = step * 0.4
    base = _y(0, low, high)
    body = []
    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        x = PAD_LEFT + step * i + step * 0.1
        for offset, value, css in ((0.0, a, "bar-a"), (width, b, "bar-b")):
            top = _y(value, low, high)
            body.append(
                f'<rect class="{css}" x="{x + offset:.1f}" y="{min(top, base):.1f}" '
                f'width="{width:.1f}" height="{abs(base - top):.1f}"><title>{escape(labels[i])}: '
                f"{grouped(value)}</title></rect>"
            )
    return _frame(title, labels, low, high, "".join(body))
