"""Partner offers through the ledger (issue 11, mechanic 6), on SQLite and PostgreSQL: a
till names the offers it applied, the ledger checks each again and values it itself, counts
each use, credits nothing a till invents (the sale itself still applies), and tells each
member what is left."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from pos_client.domain import Purchase, PurchaseLine, uuid7
from pos_client.ledger import Ledger, make_engine
from pos_client.ledger.ledger import Limits
from pos_client.ledger.schema import transactions
from pos_client.operations import SaleOp
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
        sale(member, ("20.00", ""), ("4.00", "coffee"), offers=("coffee", "welcome"))
    )
    assert result["offers"] == [  # in the programme's order, whatever the till's
        {"offer_id": "welcome", "discount": "2.00", "points": 0},
        {"offer_id": "coffee", "discount": "0", "points": 150},
    ]
    assert result["points_earned"] == 22 + 150  # earned on the 22.00 left to pay
    assert result["balance"] == 172
    assert offers_of(ledger, member) == {"coffee": 2}
    with ledger.engine.connect() as conn:
        kept = conn.execute(
            select(transactions.c.reward_id, transactions.c.points, transactions.c.amount_minor)
            .where(transactions.c.kind == "offer")
            .order_by(transactions.c.reward_id)
        ).all()
    assert kept == [("coffee", 150, 0), ("welcome", 0, 200)]  # the money off, kept
    again = ledger.apply(sale(member, ("20.00", ""), offers=("welcome",)))
    assert again["offers_refused"] == [{"offer_id": "welcome", "code": "used_up"}]
    assert "offers" not in again and again["points_earned"] == 20  # the sale applies whole
    assert ledger.balance_mismatches() == []


def test_what_a_till_invents_is_never_credited_and_the_sale_still_applies(
    database_url: str,
) -> None:
    ledger = ledger_for(database_url)
    member = enroll(ledger)
    for body, code in (
        (sale(member, ("20.00", ""), offers=("free-money",)), "unknown_offer"),
        (sale(member, ("20.00", ""), offers=("wash",)), "not_open"),  # Gold only
        (sale(member, ("9.00", ""), offers=("welcome",)), "not_met"),  # under 10.00
        (sale(member, ("9.00", ""), offers=("coffee",)), "not_met"),  # no coffee
        (
            sale(member, ("20.00", ""), offers=("welcome",), at=NOW + timedelta(days=100)),
            "not_open",  # no longer in the first 3 months
        ),
    ):
        result = ledger.apply(body)
        assert result["offers_refused"] == [{"offer_id": body["offers"][0], "code": code}]
        assert "offers" not in result
    assert ledger.balance_mismatches() == []
    assert offers_of(ledger, member) == {"welcome": 1, "coffee": 3}  # no use counted


def test_one_batch_cannot_use_an_offer_more_often_than_it_may(database_url: str) -> None:
    ledger = ledger_for(database_url)
    member = enroll(ledger)
    coffee = [sale(member, ("3.00", "coffee"), offers=("coffee",)) for _ in range(4)]
    results = [r for r in ledger.apply_many(coffee) if isinstance(r, dict)]
    assert [r["points_earned"] for r in results] == [153, 153, 153, 3]
    assert results[3]["offers_refused"] == [{"offer_id": "coffee", "code": "used_up"}]
    assert offers_of(ledger, member) == {"welcome": 1}


def test_a_sale_claiming_to_be_offline_gets_no_use_past_the_limit(database_url: str) -> None:
    ledger = ledger_for(database_url)
    member = enroll(ledger)
    ledger.apply(sale(member, ("20.00", ""), offers=("welcome",)))
    for _ in range(3):  # "offline" is the till's word: it adds no use
        late = ledger.apply(sale(member, ("20.00", ""), offers=("welcome",), offline=True))
        assert late["offers_refused"] == [{"offer_id": "welcome", "code": "used_up"}]
    view = ledger.member_view(member, NOVEMBER_DAY)
    assert view is not None and view.balance == 18 + 3 * 20


def test_bonus_points_count_toward_the_daily_cap(database_url: str) -> None:
    ledger = Ledger(make_engine(database_url), PROGRAM, Limits(max_points_per_member_per_day=200))
    member = enroll(ledger)
    first = ledger.apply(sale(member, ("3.00", "coffee"), offers=("coffee",)))
    assert first["points_earned"] == 153
    second = ledger.apply(sale(member, ("3.00", "coffee"), offers=("coffee",)))
    assert second["offers_refused"] == [{"offer_id": "coffee", "code": "limit_member_day"}]
    assert second["points_earned"] == 3  # the sale's own points, within the cap
    assert offers_of(ledger, member)["coffee"] == 2  # the refused bonus used nothing


def test_a_gold_member_gets_the_dearest_wash_free_in_november_only(database_url: str) -> None:
    ledger = ledger_for(database_url)
    member = enroll(ledger)
    ledger.apply(sale(member, ("1000.00", ""), at=datetime(2026, 11, 25, 13, tzinfo=UTC)))
    assert "wash" in offers_of(ledger, member)  # Gold now
    result = ledger.apply(sale(member, ("9.00", "wash"), ("15.00", "wash"), offers=("wash",)))
    assert result["offers"] == [{"offer_id": "wash", "discount": "12.00", "points": 0}]
    assert result["points_earned"] == 12  # the 12.00 left to pay
    assert "wash" not in offers_of(ledger, member, date(2026, 12, 1))


def test_a_till_counts_its_unsynced_uses_so_a_stale_view_never_gives_an_offer_twice(
    tmp_path: Any,
) -> None:
    from pos_client.bootstrap import build_terminal
    from tests.conftest import make_settings

    with build_terminal(make_settings(tmp_path, "coalition_points")) as till:
        session = till.checkout.enroll("+1 650 253 0001", "Dana", consent=True)
        first = till.checkout.earn(session, Purchase.of_amount(D("20.00")))
        assert [o.offer_id for o in first.offers] == ["cinema-welcome"]
        # The same view (read before the sale) still says one use left: not given again.
        second = till.checkout.earn(session, Purchase.of_amount(D("20.00")))
        assert second.offers == () and second.cash_due == D("20.00")
        till.sync.drain()
        results = [e.result for e in till.outbox.entries(limit=10) if e.kind == "sale"]
        assert [r and r.get("offers_refused") for r in results] == [None, None]


def test_a_till_counts_uses_acknowledged_after_the_view_it_holds(tmp_path: Any) -> None:
    from pos_client.bootstrap import build_terminal
    from tests.conftest import make_settings

    with build_terminal(make_settings(tmp_path, "coalition_points")) as till:
        session = till.checkout.enroll("+1 650 253 0001", "Dana", consent=True)
        till.checkout.earn(session, Purchase.of_amount(D("20.00")))
        till.sync.drain()  # acknowledged: no longer unsynced, yet the view predates it
        again = till.checkout.earn(session, Purchase.of_amount(D("20.00")))
        assert again.offers == ()


def test_a_bonus_past_the_points_an_operation_may_earn_is_dropped_not_the_sale(
    database_url: str,
) -> None:
    ledger = Ledger(make_engine(database_url), PROGRAM, Limits(max_points_per_operation=200))
    member = enroll(ledger)
    result = ledger.apply(sale(member, ("100.00", "coffee"), offers=("coffee",)))
    assert result["offers_refused"] == [{"offer_id": "coffee", "code": "limit_points"}]
    assert result["points_earned"] == 100
