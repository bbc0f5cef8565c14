"""One screen = one .py (behaviour) + one .kv (layout)."""

from __future__ import annotations

from pathlib import Path

from kivy.lang import Builder

SCREEN_NAMES = ("idle", "phone", "member", "earn", "redeem", "enroll", "give", "receipt", "admin")


def load_layouts() -> None:
    from ui.themed import register

    register()
    here = Path(__file__).parent
    paths = [here.parent / "widgets.kv", *(here / f"{name}.kv" for name in SCREEN_NAMES)]
    for path in paths:
        # Several app runs share a process (tests): a rule loaded twice applies twice.
        Builder.unload_file(str(path))
        Builder.load_file(str(path))
