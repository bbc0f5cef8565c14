"""The abuse limits a store gets without configuring any (item 5 of the second review): a
sale of the maximum amount at the best preset rate still earns, and one member's points per
day are capped by default, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loyalty_server.settings import ServerSettings
from pos_client.program import load_program
from pos_client.rules import line_rate
from tests.conftest import CONFIG_DIR
from tests.integration.server_helpers import ServerProcess
from tests.security.attack import batch, sale
from tests.security.conftest import running_server
from tests.security.test_strict_input import enrollment

DEFAULTS = ServerSettings()
PRESETS = sorted(path.stem for path in (CONFIG_DIR / "programs").glob("*.toml"))
# The suites' overrides of the limits set back to the defaults ("" reads as unset).
DEFAULT_LIMITS = {
    "LOYALTY_SERVER_MAX_SALE_AMOUNT": "",
    "LOYALTY_SERVER_MAX_POINTS_PER_OPERATION": "",
    "LOYALTY_SERVER_MAX_POINTS_PER_MEMBER_PER_DAY": "",
    "LOYALTY_SERVER_FLAG_EARNINGS_PER_DAY": "",
}


def best_rate(preset: str) -> int:
    program = load_program(preset, CONFIG_DIR)
    earn = program.earn
    return int(
        max(
            line_rate(earn, tier, sku, category)[0]
            for tier in program.tiers.tiers
            for sku in [*earn.featured_rates, ""]
            for category in [*earn.category_rates, ""]
        )
    )


def test_the_default_caps_allow_a_maximum_sale_at_every_presets_best_rate() -> None:
    for preset in PRESETS:
        birthday = load_program(preset, CONFIG_DIR).birthday.points
        most = DEFAULTS.max_sale_amount * best_rate(preset) + birthday
        assert most <= DEFAULTS.max_points_per_operation, preset
        assert most <= DEFAULTS.max_points_per_member_per_day, preset
    # ... and no more than two such sales a member a day (it was 5,000,000: one member
    # could be credited ~4.9 million points in a minute).
    assert DEFAULTS.max_points_per_member_per_day <= 2 * DEFAULTS.max_points_per_operation


@pytest.fixture
def wellness_server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    yield from running_server(
        database_url, tmp_path, LOYALTY_SERVER_PROGRAM="wellness_blocks", **DEFAULT_LIMITS
    )


def test_the_default_daily_cap_stops_one_member_earning_more_over_http(
    wellness_server: ServerProcess,
) -> None:
    server = wellness_server
    token = server.pair()["token"]
    joined = enrollment(phone_key="abcdef0123456789" * 4, card_number="2900000001237")
    [result] = batch(server, token, joined)
    assert result["outcome"] == "applied", result
    member = joined["member_id"]
    biggest = f"{DEFAULTS.max_sale_amount}.00"
    results = batch(server, token, *[sale(member, biggest) for _ in range(4)])
    earned = [r["result"]["points_earned"] for r in results if r["outcome"] == "applied"]
    # A sale of the maximum amount at the programme's best rate (10 a dollar) earns in full...
    assert earned == [10 * DEFAULTS.max_sale_amount] * 2, results
    # ... and past the day's cap the rest are refused with the reason, nothing credited.
    assert [(r["status"], r["code"]) for r in results[2:]] == [(422, "limit_member_day")] * 2
    assert "2000000 points per member per day" in results[2]["error"]
    assert results[1]["result"]["balance"] == DEFAULTS.max_points_per_member_per_day
