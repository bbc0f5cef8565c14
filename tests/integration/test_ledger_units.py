"""Units and segments through the ledger, on SQLite and PostgreSQL (issue 11): a sale's
units are recorded beside it and summed in the member's totals; tiers by units, by segments,
by tenure in active months, and status held to the end of the next year, all read from the
totals as the sums over the transactions would give them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from pos_client.domain import Purchase, PurchaseLine, uuid7
from pos_client.ledger import Ledger, make_engine
from pos_client.ledger.schema import transactions
from pos_client.operations import OpRejected, SaleOp
from pos_client.program import ProgramDocument
from pos_client.rules import Program
from tests.conftest import preset
from tests.integration.ledger_helpers import enroll

D = Decimal


def flight_body(member: str, miles: str, at: datetime, cabin: str = "") -> dict[str, Any]:
    return SaleOp(
        uuid7(),
        member,
        "T",
        at,
        Purchase((PurchaseLine(D("120.00"), cabin, "LH1", units=D(miles)),)),
    ).to_body()


def ledger_for(url: str, program: Program) -> Ledger:
    return Ledger(make_engine(url), program)  # the server's schema, migrated by alembic


def test_units_and_segments_are_kept_beside_each_sale_and_in_the_totals(
    database_url: str,
) -> None:
    ledger = ledger_for(database_url, preset("airline_miles"))
    member = enroll(ledger)
    at = datetime(2026, 3, 10, 9, tzinfo=UTC)
    results = ledger.apply_many([flight_body(member, "1000", at) for _ in range(3)])
    ledger.apply(flight_body(member, "90", at, "business"))  # alone, not in a batch
    assert [r["points_earned"] for r in results if isinstance(r, dict)] == [1000] * 3
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            select(transactions.c.units_milli, transactions.c.segments).where(
                transactions.c.kind == "earn"
            )
        ).all()
        from_totals = ledger.stats(conn, member, date(2026, 3, 10))
        from_rows = ledger.stats_from_transactions(conn, member, date(2026, 3, 10))
    assert sorted(rows) == [(90_000, 1), (1_000_000, 1), (1_000_000, 1), (1_000_000, 1)]
    assert (from_totals.units_in_period, from_totals.segments_in_period) == (D("3090"), 4)
    assert replace(from_totals, previous_period=None) == from_rows
    view = ledger.member_view(member, date(2026, 3, 10))
    assert view is not None and view.balance == 3000 + 250  # a short hop earns the minimum


def test_thirty_segments_in_one_batch_reach_status_and_the_next_earns_more(
    database_url: str,
) -> None:
    ledger = ledger_for(database_url, preset("airline_miles"))
    member = enroll(ledger)
    at = datetime(2026, 5, 1, 9, tzinfo=UTC)
    results = ledger.apply_many([flight_body(member, "200", at) for _ in range(31)])
    assert all(isinstance(r, dict) for r in results)
    tiers = [r["tier"] for r in results if isinstance(r, dict)]
    assert tiers[:30] == ["member"] * 30  # each decided on the segments before it
    assert tiers[30] == "frequent_traveller"
    assert [r["points_earned"] for r in results if isinstance(r, dict)][30] == 250  # x1.25


def test_a_status_reached_in_one_year_holds_to_the_end_of_the_next(database_url: str) -> None:
    ledger = ledger_for(database_url, preset("airline_miles"))
    member = enroll(ledger)
    ledger.apply_many(
        [flight_body(member, "10000", datetime(2025, 6, 1, tzinfo=UTC)) for _ in range(10)]
    )
    seen = {
        day: ledger.member_view(member, day)
        for day in (date(2025, 12, 31), date(2026, 12, 31), date(2027, 1, 1))
    }
    assert {day: view.tier_id for day, view in seen.items() if view} == {
        date(2025, 12, 31): "senator",
        date(2026, 12, 31): "senator",  # held through the next year
        date(2027, 1, 1): "member",
    }


TENURE = """
id = "tenure"
name = "Tenure"
currency = "EUR"
[earn]
rate = 1
[tiers]
basis = "points"
period = "lifetime"
tenure = "{tenure}"
[[tiers.levels]]
id = "member"
name = "Member"
threshold = 0
[[tiers.levels]]
id = "loyal"
name = "Loyal"
threshold = 0
min_tenure_months = 3
"""


def test_a_tier_after_three_months_with_a_sale(database_url: str) -> None:
    program = ProgramDocument.of(TENURE.format(tenure="active_months")).parse("test")
    ledger = ledger_for(database_url, program)
    member = enroll(ledger)
    seen = []
    for month in (1, 1, 4, 9):  # two sales in January: one active month
        ledger.apply(
            SaleOp(
                uuid7(),
                member,
                "T",
                datetime(2027, month, 5, tzinfo=UTC),
                Purchase.of_amount(D("10.00")),
            ).to_body()
        )
        view = ledger.member_view(member, date(2027, month, 6))
        assert view is not None
        seen.append((view.stats.tenure_months, view.tier_id))
    assert seen == [(1, "member"), (1, "member"), (2, "member"), (3, "loyal")]


def test_months_of_membership_count_from_enrollment(database_url: str) -> None:
    program = ProgramDocument.of(TENURE.format(tenure="months")).parse("test")
    ledger = ledger_for(database_url, program)
    member = enroll(ledger)  # enrolled on 25 November 2026
    before = ledger.member_view(member, date(2027, 2, 24))
    after = ledger.member_view(member, date(2027, 2, 25))
    assert before is not None and after is not None
    assert (before.stats.tenure_months, before.tier_id) == (2, "member")
    assert (after.stats.tenure_months, after.tier_id) == (3, "loyal")


def test_a_segment_longer_than_any_is_refused_and_nothing_is_recorded(database_url: str) -> None:
    ledger = ledger_for(database_url, preset("airline_miles"))
    member = enroll(ledger)
    with pytest.raises(OpRejected, match="over the programme's 12000"):
        ledger.apply(flight_body(member, "99999", datetime(2026, 5, 1, tzinfo=UTC)))
    with pytest.raises(OpRejected, match="whole units") as refused:
        ledger.apply(flight_body(member, "0.5", datetime(2026, 5, 1, tzinfo=UTC)))
    assert refused.value.code == "units_not_whole"
    view = ledger.member_view(member, date(2026, 5, 1))
    assert view is not None and view.balance == 0 and view.stats.units_in_period == 0


def stay_body(member: str, nights: int, at: datetime, price: str = "100.00", **fields: Any) -> Any:
    line = PurchaseLine(D(price) * nights, fields.pop("category", ""), units=D(nights))
    return SaleOp(uuid7(), member, "T", at, Purchase((line,)), **fields).to_body()


def test_every_fifth_night_is_free_across_stays_and_within_a_batch(database_url: str) -> None:
    ledger = ledger_for(database_url, preset("hotel_nights"))
    member = enroll(ledger)
    at = datetime(2026, 6, 1, 20, tzinfo=UTC)
    first = ledger.apply(stay_body(member, 3, at))
    second = ledger.apply(stay_body(member, 3, at, price="150.00"))
    assert "free_count" not in first
    assert (second["free_count"], second["free_value"]) == (1, "150.00")  # the 5th night
    assert second["points_earned"] == 1500  # 5 a dollar on the 300 paid
    singles = ledger.apply_many([stay_body(member, 1, at) for _ in range(5)])  # nights 7..11
    frees = [r.get("free_count", 0) for r in singles if isinstance(r, dict)]
    assert frees == [0, 0, 0, 1, 0]  # the 10th night, decided on the batch's earlier stays
    view = ledger.member_view(member, date(2026, 6, 2))
    assert view is not None and view.stats.lifetime_units == 11


def test_a_free_night_is_not_combined_with_points_spent_as_money(database_url: str) -> None:
    from pos_client.operations import RedemptionRequest

    ledger = ledger_for(database_url, preset("hotel_nights"))
    member = enroll(ledger)
    at = datetime(2026, 6, 1, 20, tzinfo=UTC)
    ledger.apply(stay_body(member, 4, at, price="400.00"))  # 8,000 points
    fifth = ledger.apply(stay_body(member, 1, at))
    assert fifth["free_count"] == 1  # no points spent: the 5th night is free
    paid_with_points = ledger.apply(
        stay_body(member, 5, at, redemption=RedemptionRequest(blocks=1, points=5000))
    )
    assert "free_count" not in paid_with_points  # the 10th night: not with points as money


COMBINED = """
id = "combined"
name = "Combined"
currency = "USD"
[earn]
rate = 10
[tiers]
[[tiers.levels]]
id = "member"
name = "Member"
[points_as_money]
block_points = 100
block_value = "10.00"
[every_nth]
n = 2
count = "visits"
name = "Every 2nd purchase free"
with_points_as_money = true
"""


def test_points_are_not_spent_on_what_a_free_one_already_paid(database_url: str) -> None:
    from pos_client.operations import RedemptionRequest

    ledger = ledger_for(database_url, ProgramDocument.of(COMBINED).parse("t"))
    member = enroll(ledger)
    at = datetime(2026, 6, 1, 12, tzinfo=UTC)
    ledger.apply(SaleOp(uuid7(), member, "T", at, Purchase.of_amount(D("30.00"))).to_body())
    before = ledger.member_view(member)
    second = SaleOp(
        uuid7(),
        member,
        "T",
        at,
        Purchase.of_amount(D("10.00")),  # free: nothing left to pay with points
        redemption=RedemptionRequest(blocks=1, points=100),
    ).to_body()
    with pytest.raises(OpRejected, match="more than what is left to pay") as refused:
        ledger.apply(second)
    assert refused.value.code == "not_combinable"
    after = ledger.member_view(member)
    assert before is not None and after is not None and after.balance == before.balance == 300
