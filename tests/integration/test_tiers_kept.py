"""Tiers kept (issue 11, mechanic 2): a programme whose tiers are never lost, or kept for
a grace of N months after the last sale at which the member reached them; on SQLite and
PostgreSQL, alone and in batches."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from pos_client.configfile import ConfigError
from pos_client.domain import Purchase, uuid7
from pos_client.ledger import Ledger, make_engine
from pos_client.operations import SaleOp
from pos_client.program import ProgramDocument
from pos_client.rules import Program
from tests.integration.ledger_helpers import enroll

PROGRAM = """
id = "kept"
name = "Kept"
[earn]
rate = 1
[tiers]
basis = "spend"
period = "calendar_year"
{downgrade}
[[tiers.levels]]
id = "member"
name = "Member"
[[tiers.levels]]
id = "silver"
name = "Silver"
threshold = 100
[[tiers.levels]]
id = "gold"
name = "Gold"
threshold = 1000
multiplier = 2
"""


def program(downgrade: str) -> Program:
    return ProgramDocument.of(PROGRAM.format(downgrade=downgrade)).parse("kept")


def sale(member: str, amount: str, on: date) -> dict[str, Any]:
    at = datetime(on.year, on.month, on.day, 12, tzinfo=UTC)
    return SaleOp(uuid7(), member, "T", at, Purchase.of_amount(Decimal(amount))).to_body()


def tier_on(ledger: Ledger, member: str, day: date) -> str:
    view = ledger.member_view(member, day)
    assert view is not None
    return view.tier_id


def test_a_tier_never_lost_holds_in_the_years_after(database_url: str) -> None:
    ledger = Ledger(make_engine(database_url), program('downgrade = "never"'))
    member = enroll(ledger)
    ledger.apply_many([sale(member, "600.00", date(2026, 11, 26)) for _ in range(2)])
    assert tier_on(ledger, member, date(2026, 12, 1)) == "gold"
    assert tier_on(ledger, member, date(2029, 6, 1)) == "gold"  # no spend since 2026
    later = ledger.apply(sale(member, "10.00", date(2030, 2, 1)))
    assert (later["tier"], later["points_earned"]) == ("gold", 20)  # earns at Gold's x2


def test_a_tier_is_kept_for_its_grace_after_the_last_sale_that_reached_it(
    database_url: str,
) -> None:
    ledger = Ledger(make_engine(database_url), program('downgrade = "grace"\ngrace_months = 6'))
    member = enroll(ledger)
    ledger.apply(sale(member, "1000.00", date(2026, 11, 26)))  # Gold
    ledger.apply(sale(member, "10.00", date(2026, 12, 20)))  # still Gold: the day moves on
    assert tier_on(ledger, member, date(2027, 3, 1)) == "gold"  # the new year: below, kept
    assert tier_on(ledger, member, date(2027, 6, 19)) == "gold"
    assert tier_on(ledger, member, date(2027, 6, 20)) == "member"  # six months on
    ledger.apply(sale(member, "150.00", date(2027, 7, 1)))  # Silver by this year's spend
    assert tier_on(ledger, member, date(2027, 7, 2)) == "silver"


def test_the_immediate_default_keeps_nothing(database_url: str) -> None:
    ledger = Ledger(make_engine(database_url), program(""))
    member = enroll(ledger)
    ledger.apply(sale(member, "1000.00", date(2026, 11, 26)))
    assert tier_on(ledger, member, date(2027, 1, 1)) == "member"


@pytest.mark.parametrize(
    ("downgrade", "problem"),
    [
        ('downgrade = "grace"', "grace_months"),
        ('downgrade = "never"\ngrace_months = 3', "grace_months"),
        ('downgrade = "grace"\ngrace_months = 61', "at most 60"),
        ('downgrade = "sometimes"', "expected one of"),
    ],
)
def test_a_malformed_downgrade_is_refused_naming_its_key(downgrade: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="tiers") as caught:
        program(downgrade)
    assert problem in str(caught.value)


def test_program_show_says_how_tiers_are_kept() -> None:
    from pos_client.program_words import describe_program

    assert "  A tier once reached is never lost." in describe_program(
        program('downgrade = "never"')
    )
    assert "  A tier is kept 6 months after the last purchase that reached it." in describe_program(
        program('downgrade = "grace"\ngrace_months = 6')
    )
