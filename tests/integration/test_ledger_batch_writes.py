"""A batch's writes staged in memory and flushed once (issue 15, item 2): every rule decides
as if each operation had been written before the next, and a flush the database refuses
sends the batch back to be applied with a savepoint per operation."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from pos_client.domain import utcnow, uuid7
from pos_client.ledger import Ledger, make_engine, sqlite_url, totals
from pos_client.ledger.ledger import Limits
from pos_client.ledger.pending import BatchWrites
from pos_client.ledger.schema import members, operations, transactions
from pos_client.operations import OpRejected, RedemptionRequest
from tests.conftest import preset
from tests.integration.ledger_helpers import NOW, action_body, enroll, sale_body
from tests.integration.server_helpers import PostgresCluster, postgres_unavailable_reason

CAPS = {"category_tiers": 9000, "stars": 600, "wellness_blocks": 2500}
REWARDS: dict[str, list[RedemptionRequest]] = {
    "category_tiers": [
        RedemptionRequest(reward_id="gift-card-25", points=5000),
        RedemptionRequest(reward_id="gift-card-25", option=0, points=2500),
    ],
    "stars": [
        RedemptionRequest(reward_id="free-drink", points=15),
        RedemptionRequest(reward_id="birthday-drink", points=0),
    ],
    "wellness_blocks": [RedemptionRequest(blocks=1, points=5000)],
}
GIVE_TARGETS = {
    "category_tiers": "skin-cancer-fund",
    "stars": "farmers-fund",
    "wellness_blocks": "childrens-hospital",
}
ACTIONS = ["weight_check", "vaccination", "step_goal"]

steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("sale"),
            st.integers(0, 1),
            st.sampled_from(["0.99", "10.00", "250.00", "999.99", "999.99", "999.99"]),
            st.integers(0, 1),
        ),
        st.tuples(st.just("reward"), st.integers(0, 1), st.integers(0, 1), st.integers(0, 1)),
        st.tuples(st.just("action"), st.integers(0, 1), st.integers(0, 2), st.integers(0, 1)),
        st.tuples(
            st.just("give"), st.integers(0, 1), st.sampled_from([100, 1000, 3000]), st.just(0)
        ),
        st.tuples(st.just("repeat"), st.just(0), st.integers(0, 30), st.just(0)),
    ),
    min_size=1,
    max_size=30,
)


@pytest.fixture
def postgres_url(postgres: PostgresCluster | None) -> str:
    """A new database of the module's cluster: each test's members and balances its own."""
    if postgres is None:
        pytest.skip(postgres_unavailable_reason() or "")
    return postgres.new_database()


def ledger_at(path: Path, program: str) -> Ledger:
    ledger = Ledger(
        make_engine(sqlite_url(path)),
        preset(program),
        Limits(max_points_per_member_per_day=CAPS[program]),
    )
    ledger.create_schema()
    enroll(ledger, "m1", "p1", birthday=NOW.date())  # in the birthday window
    enroll(ledger, "m2", "p2")
    return ledger


def bodies_for(program: str, plan: list[tuple[str, int, Any, int]]) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    for kind, who, what, when in plan:
        member = ("m1", "m2")[who]
        at = NOW - timedelta(days=when)
        if kind == "sale":
            bodies.append(sale_body(member, what, "cosmetics" if when else "", at=at))
        elif kind == "reward":
            choices = REWARDS[program]
            redemption = choices[what % len(choices)]
            bodies.append(sale_body(member, "30.00", at=at, redemption=redemption))
        elif kind == "action":
            bodies.append(action_body(member, ACTIONS[what], at=at))
        elif kind == "give":
            bodies.append(
                {
                    "type": "give",
                    "key": f"give-{len(bodies)}",
                    "member_id": member,
                    "target_id": GIVE_TARGETS[program],
                    "points": what,
                    "redemption": {"points": what},
                    "terminal_id": "T",
                    "occurred_at": at.isoformat(),
                }
            )
        elif bodies:
            bodies.append(bodies[what % len(bodies)])
    return bodies


def outcome(each: dict[str, Any] | OpRejected) -> Any:
    return ("refused", each.code) if isinstance(each, OpRejected) else each


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    program=st.sampled_from(["category_tiers", "stars", "wellness_blocks"]),
    plan=steps,
)
def test_a_batch_decides_every_rule_as_one_operation_at_a_time_would(
    tmp_path: Path, program: str, plan: list[tuple[str, int, Any, int]]
) -> None:
    """Tiers moved by earlier sales of the batch, the daily cap, once-a-day actions, the
    birthday reward once, balances spent down: the same outcomes whether the operations come
    one per transaction or all in one batch."""
    bodies = bodies_for(program, plan)
    name = f"{program}-{uuid7()}"  # hypothesis may run one example twice
    one_by_one = ledger_at(tmp_path / f"{name}-a.sqlite", program)
    batched = ledger_at(tmp_path / f"{name}-b.sqlite", program)
    try:
        singles = [outcome(one_by_one.apply_many([body])[0]) for body in bodies]
        together = [outcome(each) for each in batched.apply_many(bodies)]
        assert together == singles
        for member in ("m1", "m2"):
            assert batched.member(member) == one_by_one.member(member)
            with batched.engine.connect() as conn:
                assert batched.stats(conn, member, NOW.date()) == batched.stats_from_transactions(
                    conn, member, NOW.date()
                )
        assert batched.balance_mismatches() == []
        sent = {str(body["key"]) for body in bodies}
        assert sent & set(batched.operation_keys()) == sent & set(one_by_one.operation_keys())
    finally:
        one_by_one.engine.dispose()
        batched.engine.dispose()


@pytest.mark.parametrize(
    ("program", "amounts"),
    [
        ("category_tiers", ["999.99"] * 5),  # platinum from 3,500 spent this year
        ("stars", ["10.00"] * 8),  # gold from 30 stars in twelve months
        ("wellness_blocks", ["100.00"] * 3),  # the daily cap: 1,000 points each
    ],
)
def test_later_sales_of_a_batch_see_the_tier_and_the_day_earlier_ones_made(
    tmp_path: Path, program: str, amounts: list[str]
) -> None:
    bodies = [sale_body("m2", amount) for amount in amounts]
    bodies.append(action_body("m2", "weight_check"))
    bodies.append(action_body("m2", "weight_check"))
    one_by_one = ledger_at(tmp_path / "a.sqlite", program)
    batched = ledger_at(tmp_path / "b.sqlite", program)
    try:
        singles = [outcome(one_by_one.apply_many([body])[0]) for body in bodies]
        together = [outcome(each) for each in batched.apply_many(bodies)]
        assert together == singles
        tiers = {each["tier"] for each in together if isinstance(each, dict) and "tier" in each}
        refused = {each[1] for each in together if isinstance(each, tuple)}
        assert len(tiers) == 2 or "limit_member_day" in refused  # the rules did move
    finally:
        one_by_one.engine.dispose()
        batched.engine.dispose()


def test_a_flush_the_database_refuses_is_applied_again_per_operation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another writer took one of the batch's keys before the flush (simulated in the same
    transaction): the batch is applied again with a savepoint each, every sale once."""
    ledger = ledger_at(tmp_path / "l.sqlite", "category_tiers")
    original = BatchWrites.flush
    refused: list[str] = []

    def flush_after_a_rival(self: BatchWrites, conn: Any) -> None:
        if not refused:
            key = sorted(self.claims)[0]
            refused.append(key)
            conn.execute(
                operations.insert().values(
                    key=key,
                    kind="sale",
                    body_hash="0" * 64,
                    result="{}",
                    terminal_id="",
                    applied_at=NOW,
                )
            )
        original(self, conn)

    monkeypatch.setattr(BatchWrites, "flush", flush_after_a_rival)
    bodies = [sale_body("m1", "10.00"), sale_body("m2", "20.00"), sale_body("m1", "30.00")]
    with caplog.at_level(logging.WARNING):
        outcomes = ledger.apply_many(bodies)
    assert refused and "batch flush refused" in caplog.text
    assert all(isinstance(o, dict) and o["status"] == "applied" for o in outcomes)
    for body in bodies:
        assert ledger.count_transactions(str(body["key"]), "earn") == 1
    # m1: 10 + 30 and the birthday bonus of 100, once
    assert [ledger.member(m).balance for m in ("m1", "m2")] == [140, 20]  # type: ignore[union-attr]
    assert ledger.balance_mismatches() == []


def test_a_value_the_database_cannot_hold_refuses_that_operation_alone(
    tmp_path: Path, postgres_url: str
) -> None:
    """PostgreSQL: a balance past bigint refuses the flush; applied again per operation, that
    sale alone is refused, the others apply."""
    ledger = Ledger(make_engine(postgres_url), preset("category_tiers"))
    ledger.create_schema()
    try:
        enroll(ledger, "m1", "p1")
        enroll(ledger, "m2", "p2")
        with ledger.writer.begin() as conn:
            conn.execute(update(members).where(members.c.id == "m2").values(balance=2**63 - 5))
        before, rich, after = (
            sale_body("m1", "10.00"),
            sale_body("m2", "10.00"),
            sale_body("m1", "20.00"),
        )
        outcomes = ledger.apply_many([before, rich, after])
        assert isinstance(outcomes[1], OpRejected) and outcomes[1].code == "bad_request"
        assert [o["balance"] for o in (outcomes[0], outcomes[2]) if isinstance(o, dict)] == [
            10,
            30,
        ]
        assert ledger.count_transactions(str(rich["key"])) == 0
        assert ledger.member("m2").balance == 2**63 - 5  # type: ignore[union-attr]
    finally:
        ledger.engine.dispose()


def test_a_batch_applies_its_free_members_at_once_and_waits_only_for_a_held_one(
    postgres_url: str,
) -> None:
    """PostgreSQL: another transaction holds one member's row. The batch's first pass
    applies and commits the other members' sales without waiting for it; that member's two
    sales wait for the holder, then apply in their order. Outcomes in the batch's order,
    each sale once."""
    ledger = Ledger(make_engine(postgres_url), preset("category_tiers"))
    ledger.create_schema()
    tag = uuid7()
    first, held, third = (enroll(ledger, f"{tag}-{n}", f"{tag}-p{n}") for n in (1, 2, 3))
    bodies = [
        sale_body(first, "10.00"),
        sale_body(held, "20.00"),
        sale_body(third, "30.00"),
        sale_body(held, "5.00"),
    ]
    outcomes: list[Any] = []
    holder = ledger.engine.connect()
    try:
        holding = holder.begin()
        holder.execute(select(members.c.id).where(members.c.id == held).with_for_update())
        batch = threading.Thread(target=lambda: outcomes.extend(ledger.apply_many(bodies)))
        batch.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            ledger.count_transactions(str(bodies[0]["key"]), "earn")
            and ledger.count_transactions(str(bodies[2]["key"]), "earn")
        ):
            time.sleep(0.02)
        # The free members' sales are committed while the held member's still wait.
        assert ledger.count_transactions(str(bodies[0]["key"]), "earn") == 1
        assert ledger.count_transactions(str(bodies[2]["key"]), "earn") == 1
        assert ledger.count_transactions(str(bodies[1]["key"])) == 0
        assert batch.is_alive()
        holding.rollback()
        batch.join(10)
        assert not batch.is_alive()
    finally:
        holder.close()
    assert [o["balance"] for o in outcomes] == [10, 20, 30, 25]
    for body in bodies:
        assert ledger.count_transactions(str(body["key"]), "earn") == 1
    assert ledger.balance_mismatches() == []
    ledger.engine.dispose()


def earnings_told_by_a_batch(ledger: Ledger) -> None:
    """The earnings today a batch tells its caller (for the review flag) are what the
    members' recorded-day rows hold after it, earlier batches' included."""
    tag = uuid7()
    first = enroll(ledger, f"{tag}-a", f"{tag}-pa")
    second = enroll(ledger, f"{tag}-b", f"{tag}-pb")
    ledger.apply_many([sale_body(first, "10.00") for _ in range(3)])
    told: dict[str, int] = {}
    ledger.apply_many(
        [sale_body(first, "1.00"), sale_body(second, "2.00"), sale_body(first, "3.00")],
        earnings_today=told,
    )
    with ledger.engine.connect() as conn:
        rows = totals.read_recorded(conn, [first, second], ledger.today())
    assert told == {first: 5, second: 1}
    assert told == {member: earnings for member, (_points, earnings) in rows.items()}


def test_a_batch_tells_the_earnings_recorded_today_on_sqlite(tmp_path: Path) -> None:
    ledger = ledger_at(tmp_path / "l.sqlite", "category_tiers")
    earnings_told_by_a_batch(ledger)
    ledger.engine.dispose()


def test_a_batch_in_two_passes_tells_the_earnings_recorded_today(postgres_url: str) -> None:
    ledger = Ledger(
        make_engine(postgres_url),
        preset("category_tiers"),
        Limits(max_points_per_member_per_day=CAPS["category_tiers"]),
    )
    ledger.create_schema()
    earnings_told_by_a_batch(ledger)
    ledger.engine.dispose()


def test_a_batch_records_its_rows_at_one_time_read_once(tmp_path: Path) -> None:
    """A batch reads the clock once: its transactions and idempotency records carry one time
    (and so one store day), between the batch's start and its end; the next batch, a later
    one."""
    ledger = ledger_at(tmp_path / "l.sqlite", "category_tiers")
    try:
        first, second = enroll(ledger, "m-a", "p-a"), enroll(ledger, "m-b", "p-b")
        times = []
        for _ in range(2):
            before = utcnow()
            bodies = [sale_body(member, "10.00") for member in (first, second, first)]
            assert all(isinstance(each, dict) for each in ledger.apply_many(bodies))
            after = utcnow()
            keys = [body["key"] for body in bodies]
            with ledger.engine.connect() as conn:
                recorded = (
                    conn.execute(
                        select(transactions.c.recorded_at).where(transactions.c.op_key.in_(keys))
                    )
                    .scalars()
                    .all()
                )
                applied = (
                    conn.execute(select(operations.c.applied_at).where(operations.c.key.in_(keys)))
                    .scalars()
                    .all()
                )
            assert len(recorded) == 3 and len(applied) == 3
            assert len(set(recorded) | set(applied)) == 1
            (moment,) = set(recorded)
            moment = moment.replace(tzinfo=moment.tzinfo or UTC)
            assert before <= moment <= after
            times.append(moment)
        assert times[0] < times[1]
    finally:
        ledger.engine.dispose()
