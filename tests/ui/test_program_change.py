"""A new programme from the store server reaches the screens: the next preview uses its
rates and its names."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from pos_client.demo import DEMO_MEMBERS
from tests.conftest import CONFIG_DIR, adopt_program_as_sync_does
from tests.ui.conftest import run_ui, ui_settings
from tests.ui.test_flows import to_member
from ui.demo import on
from ui.touch import tap, tap_keys

BOB = DEMO_MEMBERS[1]  # first level: 1 point per dollar on uncategorised lines


def preview_of_ten_dollars(app: Any) -> Generator[Any, None, str]:
    yield from to_member(app, BOB)
    yield from tap(text=app.tr("member.earn"))
    yield on(app, "earn")
    yield from tap_keys("10")
    yield from tap(text=app.tr("earn.add_line"))
    preview: str = app.sm.get_screen("earn").preview_text
    yield from tap(text=app.tr("common.back"))
    return preview


def test_the_purchase_preview_follows_a_new_store_programme(tmp_path: Path) -> None:
    source = (CONFIG_DIR / "programs" / "category_tiers.toml").read_text()
    source = source.replace("\nrate = 1\n", "\nrate = 3\n", 1)
    source = source.replace('en = ["point", "points"]', 'en = ["gem", "gems"]')
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        seen["before"] = yield from preview_of_ten_dollars(app)
        adopt_program_as_sync_does(app.running.terminal, source)
        yield 0.2  # the UI hears ProgramChanged on its clock
        yield from tap(text=app.tr("common.done"))
        yield on(app, "idle")
        seen["after"] = yield from preview_of_ten_dollars(app)

    run_ui(ui_settings(tmp_path), script)
    assert seen["before"] == "$10.00: Earns 10 points"
    assert seen["after"] == "$10.00: Earns 30 gems"
