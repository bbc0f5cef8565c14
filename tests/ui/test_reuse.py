"""Screens shown again and again reuse their widgets: a kiosk runs for days, and making
new buttons on every visit grew the app by megabytes a visit."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from pos_client.demo import DEMO_MEMBERS
from tests.ui.conftest import run_ui, ui_settings
from ui.demo import on, simulated
from ui.touch import tap

ANNA = DEMO_MEMBERS[0]


def test_rewards_and_transfer_lists_keep_their_widgets_across_visits(tmp_path: Path) -> None:
    seen: dict[str, list[set[int]]] = {"redeem": [], "give": []}
    boxes = {"redeem": "rewards", "give": "targets"}

    def script(app: Any) -> Generator[Any, None, None]:
        simulated(app).inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        for _visit in range(4):
            for screen, button in (("redeem", "member.redeem"), ("give", "member.give")):
                yield from tap(text=app.tr(button))
                yield on(app, screen)
                box = app.sm.get_screen(screen).ids[boxes[screen]]
                seen[screen].append({id(child) for child in box.children})
                yield from tap(text=app.tr("common.back"))
                yield on(app, "member")

    run_ui(ui_settings(tmp_path), script)
    for screen, visits in seen.items():
        assert visits[0], f"{screen} showed nothing"
        assert all(visit == visits[0] for visit in visits), f"{screen} made new widgets"
