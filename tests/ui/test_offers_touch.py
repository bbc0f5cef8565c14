"""Partner offers by touch (issue 11, mechanic 6): a member found at the till sees the
partners' offers open to them on the member screen; a sale applies them by itself, shown in
the preview and on the receipt, and a used one is gone the next time the member is found."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pos_client.demo import DEMO_MEMBERS
from tests.ui.conftest import run_ui, ui_settings
from tests.ui.test_flows import recorded, to_member
from ui.demo import on
from ui.touch import tap, tap_keys

ANNA = DEMO_MEMBERS[0]  # joined a month ago: a new member, in the welcome offer's segment
WELCOME = "StarCinema: Welcome: 2.00 off from StarCinema"


def test_an_offer_is_shown_applied_by_itself_and_gone_once_used(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from to_member(app, ANNA)
        member = app.sm.get_screen("member")
        seen["offers"] = member.offers_text.splitlines()
        before = recorded(app)
        yield from tap(text=tr("member.earn"))
        yield on(app, "earn")
        earn = app.sm.get_screen("earn")
        yield from tap_keys("20")
        seen["preview"] = (earn.preview_text, earn.breakdown_text.splitlines()[0])
        yield from tap(text=tr("earn.confirm"))
        yield on(app, "receipt")
        seen["receipt"] = app.sm.get_screen("receipt").summary_text.splitlines()
        seen["recorded"] = recorded(app) - before
        yield from to_member(app, ANNA)
        seen["offers_after"] = app.sm.get_screen("member").offers_text.splitlines()

    settings = replace(ui_settings(tmp_path), program="coalition_points")
    run_ui(settings, script)
    assert seen["offers"] == [
        f"{WELCOME} — uses left: 1",
        "BeanBar: 150 bonus points with BeanBar coffee — uses left: 3",
    ]
    assert seen["preview"] == ("€20.00: Earns 18 points", f"{WELCOME}: −€2.00")
    assert f"{WELCOME}: −€2.00" in seen["receipt"]
    assert "To pay: €18.00" in seen["receipt"]
    assert seen["recorded"] == 1
    assert seen["offers_after"] == ["BeanBar: 150 bonus points with BeanBar coffee — uses left: 3"]
