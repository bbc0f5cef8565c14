"""Partner offers through the ledger (issue 11, mechanic 6), on SQLite and PostgreSQL: a
till names the offers it applied, the ledger checks each again and values it itself, counts
each use, refuses what a till invents, and tells each member what is left."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pos_client.domain import Purchase, PurchaseLine, uuid7
from pos_client.ledger import Ledger, make_engine
from pos_client.operations import OpRejected, SaleOp
from pos_client.program import ProgramDocument
from tests.integration.ledger_helpers import NOW, enroll
from tests.unit.test_offers import HEAD, OFFERS

D = Decimal
PROGRAM = ProgramDocument.of(HEAD + OFFERS).parse("o.toml")
IN_NOVEMBER = datetime(2026, 11, 26, 12, tzinfo=UTC)
NOVEMBER_DAY = IN_NOVEMBER.date()


def sale(
    member: str,
    *lines: tuple[str, str],
    offers: tuple[str, ...] = (),
    at: datetime = IN_NOVEMBER,
    offline: bool = False,
) -> dict[str, Any]:
    purchase = Purchase(tuple(PurchaseLine(D(a), c, "") for a, c in lines))
    return SaleOp(uuid7(), member, "T", at, purchase, offline=offline, offers=offers).to_body()


def ledger_for(url: str) -> Ledger:
    return Ledger(make_engine(url), PROGRAM)


def offers_of(ledger: Ledger, member: str, day: date = NOVEMBER_DAY) -> dict[str, int]:
    view = ledger.member_view(member, day)
    assert view is not None
    return {o.offer_id: o.uses_left for o in view.offers}


def test_an_offer_applied_is_valued_here_counted_and_shown_as_used(database_url: str) -> None:
    ledger = ledger_for(database_url)
    member = enroll(ledger)  # joined on 25 November: a new member
    assert offers_of(ledger, member) == {"welcome": 1, "coffee": 3}
    result = ledger.apply(
        sale(member, ("20.00", ""), ("4.00", "coffee"), offers=("welcome", "coffee"))
    )
    assert result["offers"] == [
        {"offer_id": "welcome", "discount": "2.00", "points": 0},
        {"offer_id": "coffee", "discount": "0", "points": 150},
    ]
    assert result["points_earned"] == 22 + 150  # earned on the 22.00 left to pay
    assert result["balance"] == 172
    assert offers_of(ledger, member) == {"coffee": 2}
    with pytest.raises(OpRejected, match="used 1 time") as refused:
        ledger.apply(sale(member, ("20.00", ""), offers=("welcome",)))
    assert refused.value.code == "offer_refused"
    assert ledger.member_view(member, NOVEMBER_DAY).balance == 172  # type: ignore[union-attr]


def test_what_a_till_invents_is_refused_and_changes_nothing(database_url: str) -> None:
    ledger = ledger_for(database_url)
    member = enroll(ledger)
    for body, reason in (
        (sale(member, ("20.00", ""), offers=("free-money",)), "no offer"),
        (sale(member, ("20.00", ""), offers=("wash",)), "not open"),  # Gold only
        (sale(member, ("9.00", ""), offers=("welcome",)), "does not meet"),  # under 10.00
        (sale(member, ("9.00", ""), offers=("coffee",)), "does not meet"),  # no coffee
        (
            sale(member, ("20.00", ""), offers=("welcome",), at=NOW + timedelta(days=100)),
            "not open",  # no longer in the first 3 months
        ),
    ):
        with pytest.raises(OpRejected, match=reason) as refused:
            ledger.apply(body)
        assert refused.value.code == "offer_refused"
    assert ledger.balance_mismatches() == []
    assert offers_of(ledger, member) == {"welcome": 1, "coffee": 3}


def test_one_batch_cannot_use_an_offer_more_often_than_it_may(database_url: str) -> None:
    ledger = ledger_for(database_url)
    member = enroll(ledger)
    coffee = [sale(member, ("3.00", "coffee"), offers=("coffee",)) for _ in range(4)]
    results = ledger.apply_many(coffee)
    assert [isinstance(r, dict) for r in results] == [True, True, True, False]
    assert isinstance(results[3], OpRejected) and results[3].code == "offer_refused"
    assert offers_of(ledger, member) == {"welcome": 1}


def test_a_use_past_the_limit_from_an_offline_till_is_accepted_and_named(
    database_url: str,
) -> None:
    ledger = ledger_for(database_url)
    member = enroll(ledger)
    ledger.apply(sale(member, ("20.00", ""), offers=("welcome",)))
    late = ledger.apply(sale(member, ("20.00", ""), offers=("welcome",), offline=True))
    assert late["offers_over_limit"] == ["welcome"]  # the till gave it: it is counted
    assert late["offers"][0]["discount"] == "2.00"
    assert "welcome" not in offers_of(ledger, member)


def test_a_gold_member_gets_the_dearest_wash_free_in_november_only(database_url: str) -> None:
    ledger = ledger_for(database_url)
    member = enroll(ledger)
    ledger.apply(sale(member, ("1000.00", ""), at=datetime(2026, 11, 25, 13, tzinfo=UTC)))
    assert "wash" in offers_of(ledger, member)  # Gold now
    result = ledger.apply(sale(member, ("9.00", "wash"), ("15.00", "wash"), offers=("wash",)))
    assert result["offers"] == [{"offer_id": "wash", "discount": "12.00", "points": 0}]
    assert result["points_earned"] == 12  # the 12.00 left to pay
    assert "wash" not in offers_of(ledger, member, date(2026, 12, 1))
