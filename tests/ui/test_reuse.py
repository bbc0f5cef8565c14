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


def live_widgets() -> int:
    """Widgets still alive (gc): a deterministic count, unlike the process's memory."""
    import gc
    from contextlib import suppress

    from kivy.uix.widget import Widget

    gc.collect()
    count = 0
    for thing in gc.get_objects():
        with suppress(ReferenceError):  # a Kivy weak proxy whose widget is already gone
            count += isinstance(thing, Widget)
    return count


def test_member_and_idle_cycles_keep_the_widget_count_and_clock_events_bounded(
    tmp_path: Path,
) -> None:
    """A terminal identifies members all day: card -> member (and its purchase, rewards and
    transfer screens) -> Done -> idle, again and again. After the first cycle has built every
    screen, more cycles make no widget that outlives them, and leave no clock event behind."""
    from kivy.clock import Clock

    cycles = 12
    members = [m for m in DEMO_MEMBERS if m.card_uid]
    counts: list[tuple[int, int]] = []

    def script(app: Any) -> Generator[Any, None, None]:
        sim = simulated(app)
        for cycle in range(cycles):
            sim.inject({"cmd": "tap", "value": members[cycle % len(members)].card_uid})
            yield on(app, "member")
            for screen, button in (
                ("earn", "member.earn"),
                ("redeem", "member.redeem"),
                ("give", "member.give"),
            ):
                yield from tap(text=app.tr(button))
                yield on(app, screen)
                yield from tap(text=app.tr("common.back"))
                yield on(app, "member")
            yield from tap(text=app.tr("common.done"))
            yield on(app, "idle")
            yield 0.1  # the frame after: triggers run, released widgets are dropped
            counts.append((live_widgets(), len(Clock.get_events())))

    run_ui(ui_settings(tmp_path), script)
    widgets = [w for w, _events in counts]
    events = [e for _widgets, e in counts]
    assert max(widgets[1:]) <= widgets[1], f"widgets alive after each cycle: {widgets}"
    # Clock events come and go (triggers, a toast's timer, the wait spinner; more of them
    # on a busy machine): a handful either way in any one sample. One left behind per cycle
    # raises every later sample, the fewest too, by eight by the end.
    assert min(events[-3:]) <= max(events[1:4]) + 4, f"clock events after each cycle: {events}"
