"""Expiry variants (issue 11, mechanic 7), on SQLite and PostgreSQL: a calendar year's points
at the end of the next year, and all of a member's points after months without activity;
members see what will expire within 30 days; the programme file's checks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from pos_client.configfile import ConfigError
from pos_client.domain import Purchase, uuid7
from pos_client.ledger import Ledger, make_engine
from pos_client.operations import SaleOp
from pos_client.program import ProgramDocument
from tests.integration.ledger_helpers import enroll

PROGRAM = """
id = "t"
name = "T"
currency = "USD"
[earn]
rate = 1
[tiers]
[[tiers.levels]]
id = "member"
name = "Member"
[expiry]
{expiry}
"""


def ledger_with(url: str, expiry: str) -> Ledger:
    return Ledger(make_engine(url), ProgramDocument.of(PROGRAM.format(expiry=expiry)).parse("t"))


def buy(ledger: Ledger, member: str, amount: str, at: datetime) -> None:
    ledger.apply(SaleOp(uuid7(), member, "T", at, Purchase.of_amount(Decimal(amount))).to_body())


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)


def balance(ledger: Ledger, member: str, day: date) -> tuple[int, int]:
    view = ledger.member_view(member, day)
    assert view is not None
    return view.balance, view.points_expiring


def test_a_years_points_expire_at_the_end_of_the_next_year(database_url: str) -> None:
    ledger = ledger_with(database_url, 'mode = "period_end"\nyears = 1')
    member = enroll(ledger)
    buy(ledger, member, "100.00", at(2025, 3, 1))
    buy(ledger, member, "40.00", at(2026, 5, 1))
    assert balance(ledger, member, date(2026, 12, 1)) == (140, 0)
    assert balance(ledger, member, date(2026, 12, 5)) == (140, 100)  # within 30 days
    assert ledger.run_expiry(at(2026, 12, 31)) == 0
    assert ledger.run_expiry(datetime(2027, 1, 1, 0, 30, tzinfo=UTC)) == 100
    assert ledger.run_expiry(datetime(2027, 1, 1, 0, 30, tzinfo=UTC)) == 0  # once
    assert balance(ledger, member, date(2027, 1, 2))[0] == 40
    assert ledger.balance_mismatches() == []


def test_all_points_expire_after_months_without_activity(database_url: str) -> None:
    ledger = ledger_with(database_url, 'mode = "inactivity"\nmonths = 18')
    active, idle = enroll(ledger, "m1", "p1"), enroll(ledger, "m2", "p2")
    buy(ledger, active, "100.00", at(2025, 1, 10))
    buy(ledger, idle, "100.00", at(2025, 1, 10))
    buy(ledger, active, "1.00", at(2026, 1, 10))  # activity keeps every point
    assert balance(ledger, idle, date(2026, 6, 15)) == (100, 100)  # due on 10 July
    assert ledger.run_expiry(at(2026, 7, 9)) == 0
    assert ledger.expire(at(2026, 7, 10)) == [(idle, 100)]
    assert balance(ledger, active, date(2026, 7, 10)) == (101, 0)
    assert ledger.run_expiry(at(2027, 7, 10)) == 101  # 18 months after its last sale
    assert ledger.balance_mismatches() == []


@pytest.mark.parametrize(
    ("expiry", "problem"),
    [
        ('mode = "period_end"\nmonths = 12', "counts years"),
        ('mode = "inactivity"', "needs the months"),
        ('mode = "rolling"\nmonths = 12\nyears = 1', "counts months"),
        ('mode = "sometimes"', "mode"),
        ("months = 12\nafter = 1", "unknown setting"),
        ('mode = "period_end"\nyears = 11', "at most 10 years"),
    ],
)
def test_a_bad_expiry_table_is_refused_naming_the_key(expiry: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        ProgramDocument.of(PROGRAM.format(expiry=expiry)).parse("t")
