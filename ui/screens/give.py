from __future__ import annotations

from functools import partial
from typing import Any

from kivy.factory import Factory
from kivy.properties import NumericProperty, StringProperty

from ui.screens.base import PosScreen


class GiveScreen(PosScreen):
    """Transfer points to a partner programme or donate them, where the programme allows."""

    points = NumericProperty(0)
    target_text = StringProperty("")
    info_text = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target: dict[str, Any] | None = None

    def refresh(self) -> None:
        box = self.ids.targets
        box.clear_widgets()
        targets = self.pos_app.sale.give_targets()
        for target in targets:
            button = Factory.QuietButton(text=target["label"])
            button.bind(on_release=partial(self.choose, target))
            box.add_widget(button)
        self.target = targets[0] if targets else None
        self.points = self.target["step"] if self.target else 0
        self.target_text = self.target["label"] if self.target else ""
        self.info_text = "" if targets else self.tr("error.refused", detail="-")

    def choose(self, target: dict[str, Any], *_args: Any) -> None:
        self.target = target
        self.target_text = target["label"]
        self.points = max(self.points, target["step"])

    def change(self, steps: int) -> None:
        if self.target is not None:
            self.points = max(self.target["step"], self.points + steps * self.target["step"])

    def confirm(self) -> None:
        if self.target is not None:
            self.info_text = (
                self.pos_app.sale.confirm_give(self.target["id"], int(self.points)) or ""
            )
