"""UI tests drive the real app in a real (offscreen SDL) window, like a person would."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")

pytest.importorskip("kivy", reason="kivy (the 'ui' extra) is not installed")

from pos_client.bootstrap import build_app, run_terminal
from pos_client.demo import seed_demo_members
from pos_client.settings import Settings
from tests.conftest import make_settings

SHOTS = Path(os.environ.get("POS_UI_SHOTS", tempfile.mkdtemp(prefix="ui-shots-")))


def ui_settings(tmp_path: Path, **changes: Any) -> Settings:
    settings = make_settings(tmp_path)
    settings = replace(
        settings,
        sync=replace(settings.sync, interval_s=0.2, backoff_base_s=0.1, backoff_cap_s=0.5),
    )
    terminal_changes = {k: v for k, v in changes.items() if k in ("mode", "inactivity_s")}
    if terminal_changes:
        settings = replace(settings, terminal=replace(settings.terminal, **terminal_changes))
    if settings.terminal.mode.value == "kiosk":  # a kiosk refuses the default staff PIN
        settings = replace(settings, admin=replace(settings.admin, pin="97531"))
    return settings


def run_ui(settings: Settings, script: Callable[[Any], Any], shots: Path | None = None) -> Any:
    from ui.script import run_app_with_script

    with run_terminal(settings) as running:
        assert running.terminal.ledger is not None
        seed_demo_members(running.terminal.ledger, running.terminal.checkout.hasher)
        app = build_app(settings, running)
        return run_app_with_script(app, script, shots)


@pytest.fixture
def shots_dir() -> Path:
    return SHOTS
