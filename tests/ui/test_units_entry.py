"""The purchase screen by touch under a programme that earns by units (the airline preset):
the keypad types a line's fare or its miles flown, picked by two toggles; the preview and the
receipt earn by distance and cabin; a segment longer than any is said, not recorded."""

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

ANNA = DEMO_MEMBERS[0]


def test_a_flight_is_entered_by_taps_with_its_fare_cabin_and_miles(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from to_member(app, ANNA)
        before = recorded(app)
        yield from tap(text=tr("member.earn"))
        yield on(app, "earn")
        earn = app.sm.get_screen("earn")
        seen["toggles"] = (earn.units_name, earn.entry)
        yield from tap_keys("450")  # the fare
        yield from tap(text="Business")
        yield from tap(text="Miles flown")
        yield from tap_keys("3858")
        seen["typed"] = (earn.amount_text, earn.units_text, earn.preview_text)
        seen["breakdown"] = earn.breakdown_text
        yield from tap(text=tr("earn.add_line"))
        seen["line"] = earn.lines_text
        yield from tap(text=tr("earn.entry_amount"))
        yield from tap_keys("90")
        yield from tap(text="Miles flown")
        yield from tap_keys("99999")  # no segment is that long
        seen["too_far"] = earn.preview_text
        yield from tap_keys("<<<<<")
        yield from tap_keys("90")  # a short hop: the minimum
        seen["with_hop"] = earn.preview_text
        yield from tap(text=tr("earn.confirm"))
        yield on(app, "receipt")
        seen["receipt"] = app.sm.get_screen("receipt").summary_text
        seen["recorded"] = recorded(app) - before

    settings = replace(ui_settings(tmp_path), program="airline_miles")
    run_ui(settings, script)
    assert seen["toggles"] == ("Miles flown", "amount")
    assert seen["typed"] == ("450", "3858", "€450.00: Earns 7,716 miles")
    assert seen["breakdown"] == "Business, 3,858 miles flown: 7,716 miles (2 per mile flown)"
    assert seen["line"] == "€450.00  Business  · 3,858 miles flown"
    assert seen["too_far"] == "A line can carry at most 12,000 miles flown"
    assert seen["with_hop"] == "€540.00: Earns 7,966 miles"  # 7,716 + 125 x2: still Business
    assert seen["receipt"].splitlines()[0] == "Earned: +7,966 miles"
    assert seen["recorded"] == 1


def test_a_fifth_night_is_shown_free_in_the_preview_and_on_the_receipt(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        tr = app.tr
        yield from to_member(app, ANNA)
        yield from tap(text=tr("member.earn"))
        yield on(app, "earn")
        earn = app.sm.get_screen("earn")
        yield from tap_keys("600")  # five nights at $120
        yield from tap(text="Nights")
        yield from tap_keys("5")
        seen["preview"] = (earn.preview_text, earn.breakdown_text.splitlines()[0])
        yield from tap(text=tr("earn.confirm"))
        yield on(app, "receipt")
        seen["receipt"] = app.sm.get_screen("receipt").summary_text.splitlines()

    settings = replace(ui_settings(tmp_path), program="hotel_nights")
    run_ui(settings, script)
    assert seen["preview"] == (
        "$600.00: Earns 2,400 points",  # the free night earns nothing
        "Every 5th night free (×1): −$120.00",
    )
    assert seen["receipt"][:3] == [
        "Earned: +2,400 points",
        "Every 5th night free (×1): −$120.00",
        "To pay: $480.00",
    ]
