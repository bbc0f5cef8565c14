"""One screen = one .py (behaviour) + one .kv (layout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.lang import Builder

SCREEN_NAMES = ("idle", "phone", "member", "earn", "redeem", "enroll", "give", "receipt", "admin")


def layout_paths() -> list[Path]:
    here = Path(__file__).parent
    # Shared rules first: a rule loaded later wins over an earlier one for the same widget,
    # so forms.kv's and dialogs.kv's rules (LetterKey on SecondaryButton, ...) come after
    # widgets.kv's on every app run, not only on the first (ui.forms/ui.dialogs load them
    # at import too, for use outside an app run).
    shared = [here.parent / name for name in ("widgets.kv", "forms.kv", "dialogs.kv")]
    return [*shared, *(here / f"{name}.kv" for name in SCREEN_NAMES)]


def load_layouts() -> None:
    """Load every layout, once: a second app in the same process (tests, the benchmark,
    the gallery) must not apply each rule twice, which would build every screen's content
    twice. Each file is unloaded first, so a reload replaces its rules instead of adding."""
    from ui.themed import register

    register()
    for path in layout_paths():
        Builder.unload_file(str(path))
        Builder.load_file(str(path))


def make_screens() -> list[Any]:
    """One of each screen, named as SCREEN_NAMES (after load_layouts)."""
    from ui.screens.admin import AdminScreen
    from ui.screens.earn import EarnScreen
    from ui.screens.enroll import EnrollScreen
    from ui.screens.give import GiveScreen
    from ui.screens.idle import IdleScreen
    from ui.screens.member import MemberScreen
    from ui.screens.phone import PhoneScreen
    from ui.screens.receipt import ReceiptScreen
    from ui.screens.redeem import RedeemScreen

    classes = (
        IdleScreen,
        PhoneScreen,
        MemberScreen,
        EarnScreen,
        RedeemScreen,
        EnrollScreen,
        GiveScreen,
        ReceiptScreen,
        AdminScreen,
    )
    return [cls(name=name) for name, cls in zip(SCREEN_NAMES, classes, strict=True)]
