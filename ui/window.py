"""The window's options, set before any window exists.

Kept apart from the app: importing `ui.app` imports widgets (ModalView, ...) that create the
window, after which these options no longer apply. `build_app` calls `configure_kivy` first
and imports the app after it; this module imports nothing of Kivy but its Config.
"""

from __future__ import annotations

import os


def configure_kivy(fullscreen: bool, kiosk: bool) -> None:
    """Window options must be set before the first window exists."""
    from kivy.config import Config

    Config.set("kivy", "exit_on_escape", "0" if kiosk else "1")
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    screen = x_screen_size() if fullscreen else None
    if screen is not None:
        # SDL's "auto" fullscreen asks the window manager to make the window fill the
        # screen. A kiosk often has no window manager: then the X window stayed 800x600
        # while SDL (and Kivy) drew for the whole screen, parts of it off the window. Made
        # borderless at the screen's size in its top-left corner, the window fills the
        # screen either way (with a window manager, fullscreen still applies on top).
        width, height = screen
        Config.set("graphics", "borderless", "1")
        Config.set("graphics", "position", "custom")
        Config.set("graphics", "left", "0")
        Config.set("graphics", "top", "0")
        Config.set("graphics", "width", str(width))
        Config.set("graphics", "height", str(height))
    Config.set("input", "mouse", "mouse,disable_multitouch")
    # No multisampled framebuffer: every shape is an axis-aligned rectangle and text comes as
    # textures, so 2x MSAA (Kivy's default) changes no pixel that matters, yet it doubles
    # the window's buffers — 14 MB at 800x600 under Mesa llvmpipe, ~60 MB at 1920x1080 —
    # and the fill work of every frame (benchmarks/ui_latency.py).
    Config.set("graphics", "multisamples", "0")


def x_screen_size() -> tuple[int, int] | None:
    """The X screen's size in pixels (libX11 through ctypes, no extra package), or None
    without an X display (offscreen, Wayland) or libX11."""
    import ctypes
    import ctypes.util

    display_name = os.environ.get("DISPLAY")
    if not display_name or os.environ.get("WAYLAND_DISPLAY"):
        return None
    library = ctypes.util.find_library("X11")
    if library is None:
        return None
    try:
        x11 = ctypes.CDLL(library)
    except OSError:
        return None
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultScreen.argtypes = [ctypes.c_void_p]
    x11.XDisplayWidth.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = x11.XOpenDisplay(display_name.encode())
    if not display:
        return None
    try:
        screen = x11.XDefaultScreen(display)
        size = int(x11.XDisplayWidth(display, screen)), int(x11.XDisplayHeight(display, screen))
    finally:
        x11.XCloseDisplay(display)
    return size if size[0] > 0 and size[1] > 0 else None
