"""One screen = one .py (behaviour) + one .kv (layout)."""

from __future__ import annotations

from pathlib import Path

from kivy.lang import Builder

SCREEN_NAMES = ("idle", "phone", "member", "earn", "redeem", "enroll", "give", "receipt", "admin")


def load_layouts() -> None:
    here = Path(__file__).parent
    Builder.load_file(str(here.parent / "widgets.kv"))
    for name in SCREEN_NAMES:
        Builder.load_file(str(here / f"{name}.kv"))
