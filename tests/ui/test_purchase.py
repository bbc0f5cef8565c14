"""The purchase screen by touch: a zero or empty line says so, a line added by mistake can
be taken back, and a large amount is confirmed before it is recorded."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from pos_client.demo import DEMO_MEMBERS
from tests.ui.conftest import run_ui, ui_settings
from tests.ui.test_flows import dialog, dialog_closed, dialog_open, dialog_text, recorded, to_member
from ui.demo import on
from ui.touch import tap, tap_keys

ANNA = DEMO_MEMBERS[0]


def to_purchase(app: Any) -> Generator[Any, None, None]:
    """Anna at the desk, her purchase screen open (by taps)."""
    yield from to_member(app, ANNA)
    yield from tap(text=app.tr("member.earn"))
    yield on(app, "earn")


def test_a_zero_or_empty_line_says_so_and_adds_nothing(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from to_purchase(app)
        earn = app.sm.get_screen("earn")
        yield from tap(text=tr("earn.add_line"))  # nothing typed
        seen["empty"] = (app.message, list(earn.lines))
        yield from tap_keys("0.00")
        yield from tap(text=tr("earn.add_line"))
        seen["zero"] = (app.message, list(earn.lines))

    run_ui(ui_settings(tmp_path), script)
    assert seen["empty"] == ("Enter an amount above zero", [])
    assert seen["zero"] == ("Enter an amount above zero", [])


def test_a_line_added_by_mistake_is_removed(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from to_purchase(app)
        earn = app.sm.get_screen("earn")
        yield from tap(text=tr("earn.remove_line"))  # nothing added yet: said so
        seen["nothing"] = app.message
        yield from tap_keys("40")
        yield from tap(text=tr("earn.add_line"))
        yield from tap_keys("700")  # meant 7.00
        yield from tap(text=tr("earn.add_line"))
        seen["added"] = earn.lines_text
        yield from tap(text=tr("earn.remove_line"))
        seen["removed"] = (earn.lines_text, earn.preview_text)
        yield from tap_keys("7")
        yield from tap(text=tr("earn.confirm"))
        yield on(app, "receipt")
        seen["receipt"] = app.sm.get_screen("receipt").summary_text

    run_ui(ui_settings(tmp_path), script)
    assert seen["nothing"] == "No line added yet: nothing to remove"
    assert seen["added"] == "$40.00  No category\n$700.00  No category"
    assert seen["removed"][0] == "$40.00  No category"
    assert seen["removed"][1].startswith("$40.00: ")
    assert seen["receipt"].splitlines()[0] == "Earned: +188 points"  # $47 at Platinum (x4)


def test_a_large_amount_is_confirmed_before_it_is_recorded(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from to_member(app, ANNA)
        before = recorded(app)
        yield from tap(text=tr("member.earn"))
        yield on(app, "earn")
        yield from tap_keys("1500")
        yield from tap(text=tr("earn.confirm"))
        yield dialog_open
        seen["question"] = dialog_text()
        yield from tap(text=tr("confirm.cancel"), within=dialog())
        yield dialog_closed
        yield 0.3
        seen["after_cancel"] = (recorded(app) - before, app.sm.current)
        yield from tap(text=tr("earn.confirm"))
        yield dialog_open
        yield from tap(text=tr("confirm.ok"), within=dialog())
        yield on(app, "receipt")
        seen["after_ok"] = recorded(app) - before
        yield from tap(text=tr("common.done"))
        yield from to_purchase(app)
        yield from tap_keys("1000")  # at the limit: no question
        yield from tap(text=tr("earn.confirm"))
        yield on(app, "receipt")
        seen["at_limit"] = recorded(app) - before

    run_ui(ui_settings(tmp_path), script)
    assert seen["question"].splitlines()[0] == "Record a purchase of $1,500.00?"
    assert seen["after_cancel"] == (0, "earn")
    assert seen["after_ok"] == 1
    assert seen["at_limit"] == 2
