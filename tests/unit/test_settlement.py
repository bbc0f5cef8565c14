"""A coalition's settlement, pure: who issued each point, where it was spent, who owes whom."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pos_client.ledger.settlement import OPERATOR, Posting, settle
from pos_client.program import load_program
from pos_client.rules import Coalition, Merchant

REPO = Path(__file__).resolve().parents[2]
COALITION = Coalition(
    operator="Op",
    funding_rate=Decimal("0.01"),
    merchants=(
        Merchant("a", "A", Decimal("0.01")),
        Merchant("b", "B", Decimal("0.02")),
        Merchant("c", "C", Decimal("0.005")),
    ),
)
DAY = date(2026, 11, 1)


def run(rows: list[Posting]) -> dict[str, object]:
    report = settle(rows, COALITION, DAY, DAY, "EUR")
    return {f.merchant: f for f in report.merchants} | {"payments": report.payments}


def test_points_issued_at_one_merchant_and_redeemed_at_another_are_owed_at_the_issuers_rate() -> (
    None
):
    found = run(
        [
            Posting("m1", "earn", 500, "a", True),
            Posting("m1", "redeem", -300, "b", True),
        ]
    )
    a, b = found["a"], found["b"]
    assert (a.issued, a.spent, a.outstanding_at_end) == (500, 300, 200)  # type: ignore[attr-defined]
    assert (b.issued, b.redeemed_here) == (0, 300)  # type: ignore[attr-defined]
    (payment,) = found["payments"]  # type: ignore[misc]
    assert (payment.payer, payment.payee, payment.amount) == ("a", "b", Decimal("3.00"))
    assert (a.owes, b.owed, a.net, b.net) == (  # type: ignore[attr-defined]
        Decimal("3.00"),
        Decimal("3.00"),
        Decimal("-3.00"),
        Decimal("3.00"),
    )


def test_points_are_spent_oldest_first_across_issuers() -> None:
    found = run(
        [
            Posting("m1", "earn", 100, "a", True),
            Posting("m1", "earn", 100, "b", True),
            Posting("m1", "redeem", -150, "c", True),  # a's 100, then 50 of b's
        ]
    )
    assert found["a"].spent == 100 and found["b"].spent == 50  # type: ignore[attr-defined]
    amounts = {(p.payer, p.payee): p.amount for p in found["payments"]}  # type: ignore[attr-defined]
    assert amounts == {("a", "c"): Decimal("1.00"), ("b", "c"): Decimal("1.00")}


def test_two_merchants_taking_each_others_points_settle_one_net_payment() -> None:
    found = run(
        [
            Posting("m1", "earn", 1000, "a", True),
            Posting("m1", "redeem", -1000, "b", True),  # a owes b 10.00
            Posting("m2", "earn", 200, "b", True),
            Posting("m2", "redeem", -200, "a", True),  # b owes a 4.00
        ]
    )
    (payment,) = found["payments"]  # type: ignore[misc]
    assert (payment.payer, payment.payee, payment.amount) == ("a", "b", Decimal("6.00"))
    assert (payment.payer_points_at_payee, payment.payee_points_at_payer) == (1000, 200)


def test_spending_at_the_issuers_own_tills_or_expiry_costs_nothing_more() -> None:
    found = run(
        [
            Posting("m1", "earn", 300, "a", True),
            Posting("m1", "redeem", -100, "a", True),
            Posting("m1", "expire", -150, "", True),
        ]
    )
    a = found["a"]
    assert (a.spent, a.expired, a.outstanding_at_end) == (100, 150, 50)  # type: ignore[attr-defined]
    assert found["payments"] == []


def test_partner_transfers_are_the_operators_in_and_paid_by_the_issuer_out() -> None:
    found = run(
        [
            Posting("m1", "transfer_in", 400, "a", True),  # a's till, the operator's points
            Posting("m1", "earn", 100, "b", True),
            Posting("m1", "transfer", -450, "b", True),  # sent to a partner: at the operator
        ]
    )
    assert found[OPERATOR].issued == 400 and found["a"].issued == 0  # type: ignore[attr-defined]
    (payment,) = found["payments"]  # type: ignore[misc]
    assert (payment.payer, payment.payee, payment.amount) == ("b", OPERATOR, Decimal("1.00"))


def test_rows_before_the_period_make_the_opening_and_held_points_are_not_moved() -> None:
    found = run(
        [
            Posting("m1", "earn", 500, "a", False),
            Posting("m1", "redeem", -200, "b", False),  # before: no payment now
            Posting("m1", "hold", -70, "a", True),
            Posting("m1", "earn", 70, "a", True),
            Posting("m1", "release", 70, "a", True),
            Posting("m1", "redeem", -100, "b", True),
        ]
    )
    a = found["a"]
    assert (a.outstanding_at_start, a.issued, a.spent) == (300, 70, 100)  # type: ignore[attr-defined]
    assert [(p.payer, p.amount) for p in found["payments"]] == [("a", Decimal("1.00"))]  # type: ignore[attr-defined]


def test_the_coalition_preset_settles_with_its_merchants_and_operator() -> None:
    program = load_program("coalition_points", REPO / "config")
    assert program.coalition is not None
    report = settle(
        [Posting("m", "earn", 100, "fuel", True), Posting("m", "redeem", -100, "grocer", True)],
        program.coalition,
        DAY,
        DAY,
        program.currency,
    )
    assert [m.merchant for m in report.merchants] == [OPERATOR, "fuel", "grocer", "pharmacy"]
    assert report.payments[0].amount == Decimal("1.20")  # fuel's 0.012 a point


# --------------------------------------------------------------- property: it balances

ISSUERS = ["a", "b", "c", ""]
KINDS_OUT = ["redeem", "expire", "transfer", "donate"]


@st.composite
def member_history(draw: st.DrawFn, member: str) -> list[Posting]:
    """A member's rows as a ledger could post them: the balance never below zero."""
    rows: list[Posting] = []
    balance = 0
    for _ in range(draw(st.integers(0, 12))):
        in_period = draw(st.booleans()) if not rows or not rows[-1].in_period else True
        if balance and draw(st.booleans()):
            points = draw(st.integers(1, balance))
            kind = draw(st.sampled_from(KINDS_OUT))
            rows.append(Posting(member, kind, -points, draw(st.sampled_from(ISSUERS)), in_period))
            balance -= points
        else:
            points = draw(st.integers(1, 500))
            kind = draw(st.sampled_from(["earn", "birthday", "action", "transfer_in"]))
            rows.append(Posting(member, kind, points, draw(st.sampled_from(ISSUERS)), in_period))
            balance += points
    return rows


def point_by_point(rows: list[Posting]) -> dict[tuple[str, str], int]:
    """The oracle: every point an item in a queue, its issuer written on it."""
    queues: dict[str, list[str]] = {}
    taken: dict[tuple[str, str], int] = {}
    for row in rows:
        queue = queues.setdefault(row.member_id, [])
        if row.points > 0:
            issuer = OPERATOR if row.kind == "transfer_in" else (row.merchant or OPERATOR)
            queue.extend([issuer] * row.points)
            continue
        spent_at = OPERATOR if row.kind in ("transfer", "donate") else (row.merchant or OPERATOR)
        for _ in range(-row.points):
            issuer = queue.pop(0)
            if row.in_period and row.kind != "expire" and issuer != spent_at:
                taken[(issuer, spent_at)] = taken.get((issuer, spent_at), 0) + 1
    return taken


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(["m1", "m2", "m3"]), min_size=1, max_size=3, unique=True).flatmap(
        lambda members: st.tuples(*(member_history(m) for m in members))
    )
)
def test_the_settlement_balances_per_merchant_and_matches_point_by_point(
    histories: tuple[list[Posting], ...],
) -> None:
    rows = [row for history in histories for row in history]
    report = settle(rows, COALITION, DAY, DAY, "EUR")
    by_id = {f.merchant: f for f in report.merchants}
    issued_before = sum(r.points for r in rows if r.points > 0 and not r.in_period)
    for figure in report.merchants:
        assert figure.outstanding_at_end >= 0 and figure.outstanding_at_start >= 0
        assert (
            figure.outstanding_at_start + figure.issued - figure.spent - figure.expired
            == figure.outstanding_at_end
        )
    # What is outstanding in all is what the members hold.
    assert sum(f.outstanding_at_end for f in report.merchants) == sum(r.points for r in rows)
    assert sum(f.issued for f in report.merchants) == sum(
        r.points for r in rows if r.points > 0 and r.in_period
    )
    assert issued_before >= sum(f.outstanding_at_start for f in report.merchants)
    # Every cent one owes, another is owed.
    assert sum(f.owes for f in report.merchants) == sum(f.owed for f in report.merchants)
    taken = point_by_point(rows)
    for payment in report.payments:
        assert payment.payer_points_at_payee == taken.get((payment.payer, payment.payee), 0)
        assert payment.payee_points_at_payer == taken.get((payment.payee, payment.payer), 0)
        expected = (
            payment.payer_points_at_payee * by_id[payment.payer].funding_rate
            - payment.payee_points_at_payer * by_id[payment.payee].funding_rate
        )
        assert payment.amount == expected.quantize(Decimal("0.01"), ROUND_HALF_UP) >= 0
    assert {frozenset(k) for k in taken} == {frozenset((p.payer, p.payee)) for p in report.payments}
