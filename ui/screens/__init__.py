"""One screen = one .py (behaviour) + one .kv (layout).

Screens are built the first time they are shown or asked for (`LazyScreens`), not at start:
a terminal opens on the idle screen, and a kiosk never shows the purchase screen. Building
all nine at start cost about a third of a second and ~700 widgets before the first frame.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from kivy.lang import Builder
from kivy.uix.screenmanager import ScreenManager

SCREEN_NAMES = (
    "idle",
    "phone",
    "member",
    "pin",
    "earn",
    "redeem",
    "enroll",
    "give",
    "receipt",
    "admin",
)
SCREEN_CLASSES = {
    "idle": "IdleScreen",
    "phone": "PhoneScreen",
    "member": "MemberScreen",
    "pin": "PinScreen",
    "earn": "EarnScreen",
    "redeem": "RedeemScreen",
    "enroll": "EnrollScreen",
    "give": "GiveScreen",
    "receipt": "ReceiptScreen",
    "admin": "AdminScreen",
}
HERE = Path(__file__).parent


def shared_layout_paths() -> list[Path]:
    # Shared rules first: a rule loaded later wins over an earlier one for the same widget,
    # so forms.kv's and dialogs.kv's rules (LetterKey on SecondaryButton, ...) come after
    # widgets.kv's on every app run, not only on the first (ui.forms/ui.dialogs load them
    # at import too, for use outside an app run).
    return [HERE.parent / name for name in ("widgets.kv", "forms.kv", "dialogs.kv")]


def layout_paths() -> list[Path]:
    return [*shared_layout_paths(), *(HERE / f"{name}.kv" for name in SCREEN_NAMES)]


def _load(path: Path) -> None:
    """Load a layout file, replacing its rules if it was loaded before: a second app in the
    same process (tests, the benchmark, the gallery) must not apply each rule twice, which
    would build every screen's content twice."""
    Builder.unload_file(str(path))
    Builder.load_file(str(path))


def load_layouts() -> None:
    """Load the shared layouts, once per app run; each screen's own layout is loaded when
    that screen is first built (`make_screen`)."""
    from ui.themed import register

    register()
    for path in shared_layout_paths():
        _load(path)
    for name in SCREEN_NAMES:  # a previous app run's screen rules, loaded again on use
        Builder.unload_file(str(HERE / f"{name}.kv"))


def make_screen(name: str) -> Any:
    """The screen `name`, with its layout loaded (after load_layouts)."""
    _load(HERE / f"{name}.kv")
    module = import_module(f"ui.screens.{name}")
    return getattr(module, SCREEN_CLASSES[name])(name=name)


def make_screens() -> list[Any]:
    """One of each screen, named as SCREEN_NAMES (after load_layouts)."""
    return [make_screen(name) for name in SCREEN_NAMES]


class LazyScreens(ScreenManager):
    """A ScreenManager that builds each of SCREEN_NAMES the first time it is asked for
    (shown, or looked up by name), and keeps it: a screen is built once per app run."""

    def get_screen(self, name: str) -> Any:
        if name in SCREEN_CLASSES and not any(s.name == name for s in self.screens):
            self.add_widget(make_screen(name))
        return super().get_screen(name)

    def has_screen(self, name: str) -> bool:
        return name in SCREEN_CLASSES or bool(super().has_screen(name))
