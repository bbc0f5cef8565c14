"""A quick second tap (a double tap, a bounce) on a button that changes the screen must not
land on whatever the next screen has at the same spot: for a moment after a screen change
the app swallows new touches. Shown with real touches at the same window point."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from kivy.uix.behaviors import ButtonBehavior

from pos_client.demo import DEMO_MEMBERS
from tests.ui.conftest import run_ui, ui_settings
from ui.demo import on
from ui.touch import TouchError, centre, find_widget, press, release, tap, tap_at, tap_keys

BOB = DEMO_MEMBERS[1]


def test_a_double_tap_does_not_land_on_the_next_screen(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from tap(text=tr("idle.phone"))
        yield on(app, "phone")
        yield from tap_keys("+16502530000")
        find = find_widget(text=tr("phone.find"), kind=ButtonBehavior)
        spot = centre(find)
        yield from tap(find)
        yield on(app, "member")
        yield from tap_at(*spot)  # the second tap of a double tap on Find
        yield 0.6
        seen["after_double_find"] = app.sm.current
        done = find_widget(text=tr("common.done"), kind=ButtonBehavior)
        spot = centre(done)
        yield from tap(done)
        yield on(app, "idle")
        try:  # the harness's checked press says why a too-quick tap did nothing
            release(press(text=tr("idle.phone")))
        except TouchError as exc:
            seen["too_soon"] = str(exc)
        yield from tap_at(*spot)  # the second tap of a double tap on Done
        yield 0.6
        seen["after_double_done"] = app.sm.current
        # The guard is short: the same point tapped once it has passed does land.
        yield from tap_at(*spot)
        yield 0.3
        seen["later_tap"] = app.sm.current

    run_ui(ui_settings(tmp_path), script)
    assert seen["after_double_find"] == "member"
    assert seen["after_double_done"] == "idle"
    assert "touch guard swallowed it" in seen.get("too_soon", ""), seen
    assert seen["later_tap"] != "idle", "a tap after the guard must reach the idle screen"
