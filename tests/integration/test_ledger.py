"""The ledger on a real SQLite file: exactly-once, balances, tiers over periods."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_client.domain import uuid7
from pos_client.operations import OpConflict, OpRejected, RedemptionRequest
from tests.integration.ledger_helpers import (
    NOW,
    action_body,
    enroll,
    enroll_body,
    new_ledger,
    sale_body,
)


def test_same_key_same_body_applies_once_and_returns_the_first_result(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path / "l.sqlite")
    member = enroll(ledger)
    body = sale_body(member, "40.00", "cosmetics")
    first = ledger.apply(body)
    again = ledger.apply(body)
    assert first["status"] == "applied" and again["status"] == "duplicate"
    assert {**again, "status": "applied"} == first
    assert ledger.count_transactions(str(body["key"]), "earn") == 1
    assert ledger.member(member).balance == 80  # type: ignore[union-attr]


def test_same_key_different_body_is_a_conflict(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path / "l.sqlite")
    member = enroll(ledger)
    body = sale_body(member, "40.00")
    ledger.apply(body)
    with pytest.raises(OpConflict):
        ledger.apply(
            {**body, "lines": [{"amount": "41.00", "category": "", "sku": "", "quantity": 1}]}
        )
    assert ledger.member(member).balance == 40  # type: ignore[union-attr]


def test_concurrent_deliveries_of_one_key_apply_it_once(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path / "l.sqlite")
    member = enroll(ledger)
    body = sale_body(member, "10.00")
    statuses: list[str] = []
    barrier = threading.Barrier(8)

    def deliver() -> None:
        barrier.wait()
        statuses.append(ledger.apply(body)["status"])

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == ["applied"] + ["duplicate"] * 7
    assert ledger.member(member).balance == 10  # type: ignore[union-attr]


def test_redemption_beyond_balance_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path / "l.sqlite")
    member = enroll(ledger)
    ledger.apply(sale_body(member, "100.00"))
    body = sale_body(
        member, "5.00", redemption=RedemptionRequest(reward_id="gift-card-25", points=5000)
    )
    with pytest.raises(OpRejected) as caught:
        ledger.apply(body)
    assert caught.value.code == "redemption_refused"
    assert ledger.member(member).balance == 100  # type: ignore[union-attr]
    assert str(body["key"]) not in set(ledger.operation_keys())


def test_unknown_member_and_taken_phone_are_permanent_refusals(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path / "l.sqlite")
    with pytest.raises(OpRejected) as caught:
        ledger.apply(sale_body("ghost", "1.00"))
    assert caught.value.code == "unknown_member"
    enroll(ledger, "m1", phone_key="same")
    with pytest.raises(OpRejected) as taken:
        enroll(ledger, "m2", phone_key="same")
    assert taken.value.code == "identifier_taken"
    assert ledger.member("m2") is None


def test_stars_gold_after_30_purchases_and_birthday_drink_once_a_year(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path / "l.sqlite", "stars")
    member = enroll(ledger, birthday=NOW.date())
    for index in range(30):
        ledger.apply(sale_body(member, "4.50", at=NOW - timedelta(days=40 - index)))
    view = ledger.member_view(member, NOW.date())
    assert view is not None and (view.tier_id, view.balance) == ("gold", 30)
    assert view.birthday_reward
    drink = RedemptionRequest(reward_id="birthday-drink")
    ledger.apply(sale_body(member, "0.00", redemption=drink))
    with pytest.raises(OpRejected, match="birthday reward is not available"):
        ledger.apply(sale_body(member, "0.00", redemption=drink))
    free = ledger.apply(
        sale_body(member, "3.00", redemption=RedemptionRequest(reward_id="free-drink", points=15))
    )
    assert free["points_redeemed"] == 15
    assert ledger.member(member).balance == 30 - 15 + 1  # type: ignore[union-attr]


def test_calendar_year_spend_resets_the_tier(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path / "l.sqlite")
    member = enroll(ledger)
    last_year = NOW.replace(year=NOW.year - 1)
    ledger.apply(sale_body(member, "4000.00", at=last_year))
    assert ledger.member_view(member, NOW.date()).tier_id == "member"  # type: ignore[union-attr]
    assert ledger.member_view(member, last_year.date()).tier_id == "platinum"  # type: ignore[union-attr]
    ledger.apply(sale_body(member, "3500.00"))
    result = ledger.apply(sale_body(member, "10.00"))
    assert (result["tier"], result["points_earned"]) == ("platinum", 40)


def test_actions_earn_points_at_most_once_a_day(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path / "l.sqlite", "wellness_blocks")
    member = enroll(ledger)
    assert ledger.apply(action_body(member, "vaccination"))["points_earned"] == 500
    with pytest.raises(OpRejected, match="already recorded"):
        ledger.apply(action_body(member, "vaccination"))
    ledger.apply(action_body(member, "vaccination", at=NOW + timedelta(days=1)))
    assert ledger.member(member).balance == 1000  # type: ignore[union-attr]


def test_a_batch_repeating_a_key_applies_it_once_and_reads_balances_as_they_move(
    tmp_path: Path,
) -> None:
    """One batch: the same action twice (the copy is a duplicate, not a refusal), a
    donation the balance cannot cover, then one it can (each decided on the balance as the
    batch has moved it)."""
    ledger = new_ledger(tmp_path / "l.sqlite", "wellness_blocks")
    member = enroll(ledger)
    vaccination = action_body(member, "vaccination")  # 500 points
    give = {
        "type": "give",
        "member_id": member,
        "target_id": "childrens-hospital",
        "terminal_id": "T",
        "occurred_at": NOW.isoformat(),
    }
    outcomes = ledger.apply_many(
        [
            vaccination,
            vaccination,
            sale_body(member, "50.00"),  # 500 more: 1,000
            {**give, "key": uuid7(), "points": 2000, "redemption": {"points": 2000}},
            {**give, "key": uuid7(), "points": 1000, "redemption": {"points": 1000}},
            {**give, "key": uuid7(), "points": 1000, "redemption": {"points": 1000}},
        ]
    )
    first, copy, _sale, too_much, fits, after = outcomes
    assert isinstance(first, dict) and first["status"] == "applied"
    assert isinstance(copy, dict) and copy["status"] == "duplicate"
    assert isinstance(too_much, OpRejected)
    assert isinstance(fits, dict) and fits["balance"] == 0
    assert isinstance(after, OpRejected)  # the batch saw the balance at 0
    assert ledger.count_transactions(str(vaccination["key"])) == 1
    assert ledger.member(member).balance == 0  # type: ignore[union-attr]
    assert ledger.balance_mismatches() == []


def test_an_operation_failing_after_it_wrote_undoes_only_itself_in_a_batch(
    tmp_path: Path,
) -> None:
    """An enrollment whose phone is taken fails on its second insert: it alone is undone
    (the batch is applied again with a savepoint each), the sales around it apply once."""
    ledger = new_ledger(tmp_path / "l.sqlite")
    member = enroll(ledger, "m1", phone_key="same")
    taken = enroll_body("m2", phone_key="same")
    before, after = sale_body(member, "10.00"), sale_body(member, "20.00")
    outcomes = ledger.apply_many([before, taken, after])
    assert isinstance(outcomes[1], OpRejected) and outcomes[1].code == "identifier_taken"
    assert [o["status"] for o in (outcomes[0], outcomes[2]) if isinstance(o, dict)] == [
        "applied",
        "applied",
    ]
    assert ledger.member("m2") is None
    assert ledger.count_transactions(str(before["key"])) == 1
    assert ledger.count_transactions(str(after["key"])) == 1
    assert ledger.balance_mismatches() == []


def test_expiry_posts_rows_that_keep_balances_exact(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path / "l.sqlite", "wellness_blocks")
    member = enroll(ledger)
    ledger.apply(sale_body(member, "100.00", at=NOW - timedelta(days=400)))
    ledger.apply(sale_body(member, "10.00", at=NOW - timedelta(days=10)))
    assert ledger.run_expiry(NOW) == 1000
    assert ledger.run_expiry(NOW) == 0
    assert ledger.member(member).balance == 100  # type: ignore[union-attr]
    assert ledger.balance_mismatches() == []


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("sale"),
            st.sampled_from(["0.99", "10.00", "250.00", "999.99"]),
            st.sampled_from(["", "cosmetics"]),
        ),
        st.tuples(st.just("gift"), st.just(""), st.just("")),
        st.tuples(st.just("gift_cash"), st.just(""), st.just("")),
        st.tuples(st.just("repeat"), st.just(""), st.just("")),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
def test_balance_always_equals_the_sum_of_transactions(
    tmp_path: Path, ops: list[tuple[str, str, str]]
) -> None:
    path = tmp_path / f"p{abs(hash(tuple(ops)))}.sqlite"
    path.unlink(missing_ok=True)
    ledger = new_ledger(path)
    member = enroll(ledger)
    applied: list[dict[str, object]] = []
    model = 0
    for kind, amount, category in ops:
        if kind == "sale":
            body = sale_body(member, amount, category)
        elif kind == "repeat" and applied:
            body = applied[-1]
        elif kind in ("gift", "gift_cash"):
            option = 0 if kind == "gift_cash" else None
            body = sale_body(
                member,
                "1.00",
                redemption=RedemptionRequest(reward_id="gift-card-25", option=option),
            )
        else:
            continue
        try:
            result = ledger.apply(body)
        except OpRejected:
            continue
        if result["status"] == "applied":
            model += int(result["points_earned"]) - int(result["points_redeemed"])
            applied.append(body)
        assert ledger.member(member).balance == model  # type: ignore[union-attr]
        assert model >= 0
    assert ledger.balance_mismatches() == []
    ledger.engine.dispose()


def test_transfer_and_donation_debit_points_in_whole_units(tmp_path: Path) -> None:
    from pos_client.domain import uuid7
    from pos_client.operations import GiveOp

    ledger = new_ledger(tmp_path / "l.sqlite")
    member = enroll(ledger)
    ledger.apply(sale_body(member, "2000.00", "cosmetics"))  # 4000 points

    def give(target: str, points: int, account: str | None = "SM1234") -> dict[str, object]:
        partner_account = account if target == "sky-miles" else None
        body = GiveOp(uuid7(), member, target, points, "T", NOW, partner_account).to_body()
        return ledger.apply(body)

    with pytest.raises(OpRejected, match="account number"):
        give("sky-miles", 1500, account=None)
    miles = give("sky-miles", 1500)
    assert (miles["converted"], miles["unit"], miles["balance"]) == ("15", "miles", 2500)
    assert miles["partner_account"] == "SM1234"
    bad = GiveOp(uuid7(), member, "sky-miles", 1500, "T", NOW, "SM 12").to_body()
    with pytest.raises(OpRejected, match="ASCII letters and digits"):
        ledger.apply(bad)
    with pytest.raises(OpRejected, match="at least 1000"):
        give("sky-miles", 500)
    with pytest.raises(OpRejected, match="steps of 100"):
        give("skin-cancer-fund", 150)
    donation = give("skin-cancer-fund", 200)
    assert (donation["converted"], donation["balance"]) == ("2", 2300)
    with pytest.raises(OpRejected, match="balance is 2300"):
        give("skin-cancer-fund", 5000)
    assert ledger.balance_mismatches() == []


def test_keys_past_retention_are_forgotten_and_recent_ones_kept(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from pos_client.ledger.ledger import purge_operation_keys
    from pos_client.ledger.schema import operations

    ledger = new_ledger(tmp_path / "l.sqlite")
    member = enroll(ledger)
    old, recent = sale_body(member, "1.00"), sale_body(member, "2.00")
    ledger.apply(old)
    ledger.apply(recent)
    with ledger.engine.begin() as conn:
        conn.execute(
            update(operations)
            .where(operations.c.key == old["key"])
            .values(applied_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    assert purge_operation_keys(ledger, NOW - timedelta(days=90)) == 1
    keys = set(ledger.operation_keys())
    assert old["key"] not in keys and recent["key"] in keys
    assert ledger.apply(recent)["status"] == "duplicate"
    assert ledger.balance_mismatches() == []


def test_partner_units_transfer_in_as_points(tmp_path: Path) -> None:
    from pos_client.domain import uuid7
    from pos_client.operations import ReceiveOp

    ledger = new_ledger(tmp_path / "l.sqlite")
    member = enroll(ledger)
    body = ReceiveOp(uuid7(), member, "sky-miles", 25, "SKY-991", NOW).to_body()
    result = ledger.apply(body)
    assert (result["points_earned"], result["balance"]) == (2000, 2000)
    assert ledger.apply(body)["status"] == "duplicate"
    with pytest.raises(OpRejected, match="does not transfer into"):
        ledger.apply(ReceiveOp(uuid7(), member, "skin-cancer-fund", 5, "", NOW).to_body())
    assert ledger.balance_mismatches() == []
