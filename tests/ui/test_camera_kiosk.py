"""A kiosk with a camera and no scanner, in the running app: the idle screen shows what the
camera sees, and a member who holds their card up to it is found (the member screen
opens), through the camera reader from config, on the same path as any reader."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cv2", reason="opencv (the 'camera' extra) is not installed")

from pos_client.demo import DEMO_MEMBERS
from pos_client.settings import Mode, ReaderSettings
from tests.camera_video import Presentation, write_video
from tests.ui.conftest import run_ui, ui_settings
from ui.demo import on

ANNA = DEMO_MEMBERS[0]


def test_the_idle_screen_shows_the_camera_and_a_card_held_up_finds_the_member(
    tmp_path: Path,
) -> None:
    video = write_video(
        tmp_path / "kiosk.avi", [Presentation(ANNA.card_number, "EAN13", 360)], lead_s=4.0
    )
    camera = ReaderSettings(
        "camera", "kiosk", {"source": str(video), "preview_fps": 5, "pace": "realtime"}
    )
    settings = replace(ui_settings(tmp_path, mode=Mode.KIOSK), readers=(camera,))
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        preview = app.sm.get_screen("idle").ids.camera_preview
        yield lambda: bool(preview.shown)
        seen["preview"] = (tuple(preview.texture.size), preview.height > 0, preview.opacity)
        yield on(app, "member")
        seen["member"] = app.customer.session.view.display_name

    run_ui(settings, script)
    assert seen["preview"] == ((320, 240), True, 1)
    assert seen["member"].startswith(ANNA.first_name)
