from __future__ import annotations

from ui.screens.base import PosScreen


class IdleScreen(PosScreen):
    """The attract screen: tap, scan, or type a phone number; language switch."""
