"""Abuse limits from configuration, enforced on the server for every operation kind."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from pos_client.domain import Purchase, PurchaseLine, uuid7
from pos_client.operations import SaleOp
from tests.integration.server_helpers import ServerProcess
from tests.security.attack import ANNA, BOB, batch, headers, member_id, sale, snapshot
from tests.security.conftest import running_server
from tests.security.test_oracles import enrolling


def big_sale(member: str, lines: int, amount: str) -> dict[str, object]:
    purchase = Purchase(tuple(PurchaseLine(Decimal(amount)) for _ in range(lines)))
    return SaleOp(uuid7(), member, "T", datetime.now(UTC), purchase).to_body()


def test_uncapped_sales_are_refused_with_a_reason(server: ServerProcess) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    before = snapshot(server)
    results = batch(
        server,
        token,
        big_sale(anna, 500, "9999999.99"),  # the 14,999,999,999-point sale
        big_sale(anna, 21, "1.00"),  # over 20 lines
        big_sale(anna, 2, "2600.00"),  # over 5000 a sale
    )
    assert [r["code"] for r in results] == ["limit_lines", "limit_lines", "limit_amount"]
    assert {r["status"] for r in results} == {422}
    (past_the_format,) = batch(server, token, big_sale(anna, 501, "1.00"))
    assert (past_the_format["code"], past_the_format["status"]) == ("limit_lines", 422)
    assert "20 lines" in results[1]["error"] and "5000" in results[2]["error"]
    assert snapshot(server) == before


def test_points_per_member_per_day_count_every_earning_kind(server: ServerProcess) -> None:
    token = server.pair()["token"]
    bob = member_id(server, BOB.card_number)
    # 200,000 a day per member: sales of 5000 earn at least 5000 points each.
    applied = 0
    refused = None
    for _ in range(60):
        result = batch(server, token, sale(bob, "5000.00"))[0]
        if result["outcome"] != "applied":
            refused = result
            break
        applied += 1
    assert refused is not None and refused["code"] == "limit_member_day", refused
    assert applied >= 1
    before = snapshot(server)
    action = {
        "type": "action",
        "key": uuid7(),
        "member_id": bob,
        "action": "review",
        "terminal_id": "T",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    again = batch(server, token, sale(bob, "5000.00"), action)
    assert again[0]["code"] == "limit_member_day"
    assert again[1]["outcome"] in ("applied", "rejected")
    if again[1]["outcome"] == "rejected":
        assert again[1]["code"] in ("limit_member_day", "action_refused")
        assert snapshot(server) == before


def test_operations_per_terminal_per_minute(server: ServerProcess) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    results = []
    for _ in range(3):
        results += batch(server, token, *[sale(anna, "1.00") for _ in range(50)])
    outcomes = [r["outcome"] for r in results]
    assert outcomes.count("applied") == 120  # LOYALTY_SERVER_OPERATIONS_PER_TERMINAL_PER_MINUTE
    limited = [r for r in results if r["outcome"] != "applied"]
    assert {(r["outcome"], r["status"], r["code"]) for r in limited} == {
        ("retry", 429, "rate_limited")
    }
    # Another terminal is not slowed down by this one.
    other = server.pair("other")["token"]
    assert batch(server, other, sale(anna, "1.00"))[0]["outcome"] == "applied"


def test_batches_sent_in_parallel_share_the_per_minute_limit(server: ServerProcess) -> None:
    """The room is counted under a per-terminal lock: 6 parallel batches of 50 cannot all see
    the same free room (before the lock, all 300 were applied)."""
    token = server.pair("parallel")["token"]
    anna = member_id(server, ANNA.card_number)
    with ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(
                lambda _n: batch(server, token, *[sale(anna, "0.01") for _ in range(50)]),
                range(6),
            )
        )
    applied = sum(r["outcome"] == "applied" for results in answers for r in results)
    assert applied == 120  # LOYALTY_SERVER_OPERATIONS_PER_TERMINAL_PER_MINUTE


@pytest.fixture
def server_of_three(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server allowing 3 operations per terminal per minute."""
    yield from running_server(
        database_url, tmp_path, LOYALTY_SERVER_OPERATIONS_PER_TERMINAL_PER_MINUTE="3"
    )


def test_enrollments_by_post_members_count_in_the_per_minute_operations_limit(
    server_of_three: ServerProcess,
) -> None:
    server = server_of_three
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    assert [r["outcome"] for r in batch(server, token, sale(anna, "1.00"))] == ["applied"]
    answers = [
        requests.post(
            server.url + "/v1/members",
            json=enrolling(f"+44791112345{n}"),
            headers=headers(token),
            timeout=10,
        )
        for n in range(4)
    ]
    # The number is keyed on the server (a terminal paired without the key may enroll).
    assert [a.status_code for a in answers] == [200, 200, 429, 429], [a.text for a in answers]
    assert answers[0].json()["outcome"] == "applied"
    assert "operations per minute" in answers[2].json()["detail"]
    assert answers[2].headers["Retry-After"] == "60"
    before = snapshot(server)
    # And a batch sees the room the enrollments took.
    [late] = batch(server, token, sale(anna, "1.00"))
    assert (late["outcome"], late["status"], late["code"]) == ("retry", 429, "rate_limited")
    assert snapshot(server) == before
