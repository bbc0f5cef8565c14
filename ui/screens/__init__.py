"""One screen = one .py (behaviour) + one .kv (layout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.lang import Builder

SCREEN_NAMES = ("idle", "phone", "member", "earn", "redeem", "enroll", "give", "receipt", "admin")


def load_layouts() -> None:
    here = Path(__file__).parent
    Builder.load_file(str(here.parent / "widgets.kv"))
    for name in SCREEN_NAMES:
        Builder.load_file(str(here / f"{name}.kv"))


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
