"""Time bounds (issue 10, item 3): a terminal reports what happened lately at its counter.
`occurred_at` in the future past the clock-skew allowance, older than the offline window,
or before the member enrolled is refused for that operation alone; a birthday reward is
given at most once per member per birthday year, by a database constraint, however the
sales are dated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from pos_client.demo import DEMO_MEMBERS
from pos_client.domain import uuid7
from pos_client.ledger.schema import birthday_grants, transactions
from tests.integration.server_helpers import ServerProcess
from tests.security.attack import ANNA, batch, member_id, sale, snapshot

OLENA = DEMO_MEMBERS[3]  # her birthday is the day the demo was seeded: today


def dated(member: str, moment: datetime, amount: str = "10.00") -> dict[str, Any]:
    return sale(member, amount, occurred_at=moment.isoformat())


def test_times_out_of_bounds_are_refused_per_operation_with_a_reason(
    server: ServerProcess,
) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    now = datetime.now(UTC)
    before = snapshot(server)
    results = batch(
        server,
        token,
        dated(anna, now + timedelta(minutes=10)),  # skew allowance is 300 s
        dated(anna, now - timedelta(days=61)),  # offline window is 60 days
        dated(anna, now - timedelta(days=35)),  # inside the window, before she enrolled
        dated(anna, now + timedelta(days=3650)),
    )
    assert [r["code"] for r in results] == [
        "time_future",
        "time_too_old",
        "time_before_enrollment",
        "time_future",
    ]
    assert {r["status"] for r in results} == {422}
    assert "clock skew" in results[0]["error"] and "60 days" in results[1]["error"]
    assert "enrolled" in results[2]["error"]
    assert snapshot(server) == before
    # Inside the bounds (a terminal's clock a minute fast, a sale from last week): applied.
    ok = batch(
        server,
        token,
        dated(anna, now + timedelta(seconds=60)),
        dated(anna, now - timedelta(days=7)),
    )
    assert [r["outcome"] for r in ok] == ["applied", "applied"]


def test_enrollments_dated_out_of_bounds_are_refused(server: ServerProcess) -> None:
    token = server.pair()["token"]
    now = datetime.now(UTC)
    body = {
        "type": "enroll",
        "key": uuid7(),
        "member_id": uuid7(),
        "first_name": "Mallory",
        "last_name": "",
        "phone_key": "ab" * 32,
        "phone_last": "12",
        "card_number": "2900000009998",
        "birthday": None,
        "consent": {"text_id": "terms", "given_at": now.isoformat(), "channel": "kiosk"},
        "occurred_at": (now + timedelta(days=2)).isoformat(),
    }
    old_consent = {
        **body,
        "key": uuid7(),
        "occurred_at": now.isoformat(),
        "consent": {**body["consent"], "given_at": (now - timedelta(days=400)).isoformat()},
    }
    before = snapshot(server)
    results = batch(server, token, body, old_consent)
    assert [r["code"] for r in results] == ["time_future", "time_too_old"]
    assert "consent.given_at" in results[1]["error"]
    assert snapshot(server) == before


def birthday_rows(server: ServerProcess, member: str) -> list[Any]:
    ledger = server.ledger()
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            select(transactions.c.points, transactions.c.occurred_at).where(
                transactions.c.member_id == member, transactions.c.kind == "birthday"
            )
        ).all()
    ledger.engine.dispose()
    return list(rows)


def test_a_birthday_reward_is_given_once_however_the_sales_are_dated(
    server: ServerProcess,
) -> None:
    token = server.pair()["token"]
    olena = member_id(server, OLENA.card_number)
    now = datetime.now(UTC)
    # The attack: sales back-dated a year apart each, then several around today
    # (1 cent: no points of their own; a $0 sale is refused as it records nothing).
    back_dated = [dated(olena, now - timedelta(days=365 * years), "0.01") for years in range(1, 11)]
    before = snapshot(server)
    refused = batch(server, token, *back_dated)
    assert {r["code"] for r in refused} == {"time_too_old"}
    assert snapshot(server) == before
    around = [dated(olena, now + timedelta(seconds=s), "0.01") for s in (-5, 0, 5, 60)]
    results = batch(server, token, *around)
    assert [r["outcome"] for r in results] == ["applied"] * 4
    assert [r["result"]["points_earned"] for r in results] == [100, 0, 0, 0]
    assert len(birthday_rows(server, olena)) == 1


def test_the_database_refuses_a_second_birthday_grant_for_a_year(server: ServerProcess) -> None:
    token = server.pair()["token"]
    olena = member_id(server, OLENA.card_number)
    first = batch(server, token, sale(olena, "0.01"))
    assert first[0]["result"]["points_earned"] == 100
    ledger = server.ledger()
    year = datetime.now(UTC).year
    with pytest.raises(IntegrityError), ledger.writer.begin() as conn:
        conn.execute(
            insert(birthday_grants).values(
                member_id=olena, year=year, op_key=uuid7(), granted_at=datetime.now(UTC)
            )
        )
    ledger.engine.dispose()
    assert len(birthday_rows(server, olena)) == 1


def test_concurrent_birthday_sales_pay_the_reward_once_and_refuse_none(
    server: ServerProcess,
) -> None:
    """Eight terminals sell to the birthday member at once: each sale applies, one carries
    the bonus (the member's row is locked while her rules are decided)."""
    from concurrent.futures import ThreadPoolExecutor

    tokens = [server.pair(f"t{n}")["token"] for n in range(8)]
    olena = member_id(server, OLENA.card_number)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda token: batch(server, token, sale(olena, "1.00"))[0], tokens))
    assert [r["outcome"] for r in results] == ["applied"] * 8
    bonuses = [r["result"]["points_earned"] for r in results]
    assert sum(1 for points in bonuses if points >= 100) == 1, bonuses
    assert len(birthday_rows(server, olena)) == 1
    ledger = server.ledger()
    assert ledger.balance_mismatches() == []
    ledger.engine.dispose()
