"""The look of the terminal: one spacing scale, one type scale, one palette (no Kivy here).

Sizes are in dp at scale 1 (a 1024x600 panel); `ui.themed.theme` scales them with the window
(0.8 on 800x480, up to 1.5 on 1920x1080) and never lets a touch target go under
`TOUCH_MIN`. Every text/background pair the screens use is listed in `PAIRS` and must pass
WCAG 2.x AA for normal text (contrast >= 4.5:1); tests/unit/test_theme.py computes them.
"""

from __future__ import annotations

Rgba = tuple[float, float, float, float]

AA_NORMAL = 4.5  # WCAG 2.x AA, normal-size text
TOUCH_MIN = 48.0  # px (dp): the smallest touch target in either dimension

# The spacing scale (dp at scale 1).
SPACE = {"xs": 4.0, "sm": 8.0, "md": 12.0, "lg": 16.0, "xl": 24.0, "xxl": 32.0}

# The type scale (sp at scale 1), largest last. Text that does not fit steps down this scale
# (never below `caption`) before it wraps further.
TYPE = {
    "caption": 14.0,
    "small": 16.0,
    "body": 18.0,
    "lead": 22.0,
    "title": 28.0,
    "display": 40.0,
    "hero": 52.0,
}
TYPE_FLOOR = "caption"

# Component sizes (dp at scale 1).
SIZES = {
    "status_h": 36.0,
    "header_h": 52.0,
    "button_h": 56.0,
    "big_button_h": 64.0,
    "key_min": TOUCH_MIN,
    "bar_h": 14.0,
    "check": 40.0,
}

# The window a scale of 1 is designed for, and the limits of the scale.
BASE_WINDOW = (1024.0, 600.0)
SCALE_MIN, SCALE_MAX = 0.8, 1.5


def scale_for(width: float, height: float) -> float:
    """How much larger than the 1024x600 design the type and spacing are on this window."""
    raw = min(width / BASE_WINDOW[0], height / BASE_WINDOW[1])
    return round(max(SCALE_MIN, min(SCALE_MAX, raw)), 3)


def _hex(code: str, alpha: float = 1.0) -> Rgba:
    code = code.lstrip("#")
    r, g, b = (int(code[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return (r, g, b, alpha)


class Palette:
    """The colours, by role (class attributes: kv reads `C.text`, `C.primary`, ...)."""

    background: Rgba = _hex("#12141C")  # screens
    surface: Rgba = _hex("#1E2230")  # headers, cards
    track: Rgba = _hex("#2A3040")  # progress track, dividers
    text: Rgba = _hex("#F5F7FA")
    text_muted: Rgba = _hex("#B8C0CC")
    text_dim: Rgba = _hex("#9AA3AF")  # rewards not affordable yet
    accent: Rgba = _hex("#6FB1FF")  # progress fill, focus, checked boxes
    warning: Rgba = _hex("#FFB38A")  # errors and "offline" text on dark
    success: Rgba = _hex("#7CE0A0")
    gold: Rgba = _hex("#FFD95A")  # birthday
    primary: Rgba = _hex("#1F5FAD")
    primary_down: Rgba = _hex("#174A87")
    on_primary: Rgba = _hex("#F5F7FA")
    secondary: Rgba = _hex("#3B4252")
    secondary_down: Rgba = _hex("#2E3440")
    on_secondary: Rgba = _hex("#F5F7FA")
    danger: Rgba = _hex("#B3261E")
    danger_down: Rgba = _hex("#8C1D18")
    on_danger: Rgba = _hex("#FFFFFF")
    disabled: Rgba = _hex("#2A2F3A")
    on_disabled: Rgba = _hex("#A0A7B4")
    online: Rgba = _hex("#1B6B3A")
    offline: Rgba = _hex("#A8321E")
    on_status: Rgba = _hex("#FFFFFF")
    message: Rgba = _hex("#F0A53A")
    on_message: Rgba = _hex("#15171C")
    field: Rgba = _hex("#F5F7FA")  # text input background
    on_field: Rgba = _hex("#12141C")
    hint: Rgba = _hex("#5C6470")  # text input hint text


COLORS = Palette()

# Every (text, background) pair drawn on screen: name -> (text, background).
PAIRS: dict[str, tuple[Rgba, Rgba]] = {
    "text on background": (COLORS.text, COLORS.background),
    "muted on background": (COLORS.text_muted, COLORS.background),
    "dim on background": (COLORS.text_dim, COLORS.background),
    "text on surface": (COLORS.text, COLORS.surface),
    "muted on surface": (COLORS.text_muted, COLORS.surface),
    "dim on surface": (COLORS.text_dim, COLORS.surface),
    "warning on background": (COLORS.warning, COLORS.background),
    "warning on surface": (COLORS.warning, COLORS.surface),
    "success on background": (COLORS.success, COLORS.background),
    "gold on background": (COLORS.gold, COLORS.background),
    "accent on background": (COLORS.accent, COLORS.background),
    "primary button": (COLORS.on_primary, COLORS.primary),
    "primary button pressed": (COLORS.on_primary, COLORS.primary_down),
    "secondary button": (COLORS.on_secondary, COLORS.secondary),
    "secondary button pressed": (COLORS.on_secondary, COLORS.secondary_down),
    "danger button": (COLORS.on_danger, COLORS.danger),
    "danger button pressed": (COLORS.on_danger, COLORS.danger_down),
    "disabled button": (COLORS.on_disabled, COLORS.disabled),
    "status online": (COLORS.on_status, COLORS.online),
    "status offline": (COLORS.on_status, COLORS.offline),
    "message bar": (COLORS.on_message, COLORS.message),
    "text field": (COLORS.on_field, COLORS.field),
    "text field hint": (COLORS.hint, COLORS.field),
    "text on track": (COLORS.text, COLORS.track),
}


def relative_luminance(color: Rgba | tuple[float, float, float]) -> float:
    """WCAG 2.x relative luminance of an sRGB colour with channels in 0..1."""

    def linear(channel: float) -> float:
        if channel <= 0.04045:
            return channel / 12.92
        return float(((channel + 0.055) / 1.055) ** 2.4)

    r, g, b = (linear(c) for c in color[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(
    foreground: Rgba | tuple[float, float, float], background: Rgba | tuple[float, float, float]
) -> float:
    """WCAG contrast ratio, 1..21. A translucent foreground is blended over the background."""
    fg = blend(foreground, background)
    light, dark = sorted((relative_luminance(fg), relative_luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def blend(
    foreground: Rgba | tuple[float, float, float], background: Rgba | tuple[float, float, float]
) -> tuple[float, float, float]:
    alpha = foreground[3] if len(foreground) > 3 else 1.0
    return (
        foreground[0] * alpha + background[0] * (1 - alpha),
        foreground[1] * alpha + background[1] * (1 - alpha),
        foreground[2] * alpha + background[2] * (1 - alpha),
    )


def markup_hex(color: Rgba) -> str:
    """A palette colour as Kivy markup wants it: `[color=rrggbb]`."""
    return "".join(f"{round(c * 255):02x}" for c in color[:3])
