"""The member screen says how many points expire within 30 days (and says nothing when
none do). Real input only: the card is tapped on the simulated reader."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pos_client.demo import DEMO_MEMBERS, demo_key
from pos_client.domain import Purchase, PurchaseLine, utcnow, uuid7
from pos_client.operations import SaleOp
from tests.conftest import make_settings
from tests.ui.conftest import run_ui
from ui import i18n
from ui.demo import on, simulated
from ui.touch import hidden_because, shown_text, tap, walk

ANNA, BOB = DEMO_MEMBERS[0], DEMO_MEMBERS[1]


def visible_texts() -> list[str]:
    return [
        text
        for widget in walk()
        if (text := shown_text(widget)) and text.strip() and hidden_because(widget) is None
    ]


def test_the_member_screen_shows_points_expiring_within_30_days(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, program="stars")  # stars expire after 12 months
    settings = replace(
        settings, sync=replace(settings.sync, interval_s=0.2, backoff_base_s=0.1, backoff_cap_s=0.5)
    )
    seen: dict[str, Any] = {}

    def script(app: Any) -> Generator[Any, None, None]:
        program = app.running.terminal.program
        # Stars earned 12 months ago less 10 days: they expire in 10 days.
        old = SaleOp(
            key=uuid7(),
            member_id=demo_key(f"member:{ANNA.handle}"),
            terminal_id="seed",
            occurred_at=utcnow() - timedelta(days=365 - 10),
            purchase=Purchase((PurchaseLine(Decimal("4.50"), ""),)),
        )
        ledger = app.running.terminal.ledger
        earned = int(ledger.apply(old.to_body())["points_earned"])
        view = ledger.member_view(old.member_id)
        seen["on"] = view.expiring_on - ledger.today() if view and view.expiring_on else None
        expected = app.tr(
            "member.expiring_on",
            points=i18n.format_points("en", program, earned),
            day=i18n.format_day(view.expiring_on, "en") if view and view.expiring_on else "",
        )
        seen["expected"] = expected
        simulated(app).inject({"cmd": "tap", "value": ANNA.card_uid})
        yield on(app, "member")
        yield lambda: expected in visible_texts()
        seen["anna"] = [text for text in visible_texts() if text.startswith("Expiring")]
        yield from tap(text=app.tr("common.done"))
        yield on(app, "idle")
        simulated(app).inject({"cmd": "tap", "value": BOB.card_uid})
        yield on(app, "member")
        yield 0.3
        seen["bob"] = [text for text in visible_texts() if text.startswith("Expiring")]

    run_ui(settings, script)
    assert seen["anna"] == [seen["expected"]]
    assert seen["expected"].startswith("Expiring from ") and seen["expected"].endswith(": 1 star")
    assert seen["on"] is not None and 9 <= seen["on"].days <= 10  # in 10 days (store zone)
    assert seen["bob"] == []  # nothing of Bob's expires soon: no line at all
