"""Translations of the console's words (English is the key)."""

from __future__ import annotations

TRANSLATIONS: dict[str, dict[str, str]] = {"ru": {}, "uk": {}, "el": {}}
