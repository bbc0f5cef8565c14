"""One screen = one .py (behaviour) + one .kv (layout)."""

from __future__ import annotations

from pathlib import Path

from kivy.lang import Builder

SCREEN_NAMES = ("idle", "phone", "member", "earn", "redeem", "enroll", "give", "receipt", "admin")


def load_layouts() -> None:
    """Load every layout, once: a second app in the same process (tests, the benchmark)
    must not apply each rule twice, which would build every screen's content twice."""
    here = Path(__file__).parent
    for path in [here.parent / "widgets.kv", *(here / f"{name}.kv" for name in SCREEN_NAMES)]:
        Builder.unload_file(str(path))
        Builder.load_file(str(path))
