"""The base of every screen: access to the app, its translations and its actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from kivy.app import App
from kivy.uix.screenmanager import Screen

if TYPE_CHECKING:
    from ui.app import PosApp


class PosScreen(Screen):
    @property
    def pos_app(self) -> PosApp:
        return cast("PosApp", App.get_running_app())

    def tr(self, key: str, **values: object) -> str:
        return str(self.pos_app.tr(key, self.pos_app.lang, **values))

    def refresh(self) -> None:
        """Called when the screen is shown or the member changes: start afresh."""

    def language_changed(self) -> None:
        """The language changed while this screen is shown: say the same in the new one.
        Screens whose text comes from Python redraw it; nothing typed or unlocked is lost."""
        self.refresh()
