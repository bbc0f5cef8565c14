"""A batch of sales applied before its members are locked (PostgreSQL): the same outcomes as
the locked path, and a member another batch moves in between is applied again under its
lock, so the daily cap and the balance hold."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, select

from loyalty_server.cli import migrate
from pos_client.ledger import Ledger, make_engine
from pos_client.ledger import ledger as ledger_module
from pos_client.ledger.ledger import Limits, MemberRecord
from pos_client.ledger.schema import members
from pos_client.operations import OpRejected
from tests.conftest import preset
from tests.integration.ledger_helpers import enroll, enroll_body, sale_body
from tests.integration.server_helpers import PostgresCluster


@pytest.fixture
def pg_url(postgres: PostgresCluster | None) -> str:
    if postgres is None:
        pytest.skip("PostgreSQL is not available here")
    url = postgres.new_database()
    migrate(url)
    return url


def capped(url: str, cap: int = 10**9) -> Ledger:
    return Ledger(
        make_engine(url), preset("category_tiers"), Limits(max_points_per_member_per_day=cap)
    )


def results(outcomes: list[Any]) -> list[Any]:
    """What a terminal is told, without the moments (they differ between two runs)."""
    return [
        (o.code, str(o))
        if isinstance(o, OpRejected)
        else {k: v for k, v in o.items() if k not in ("applied_at", "recorded_at")}
        for o in outcomes
    ]


def balances(ledger: Ledger) -> dict[str, int]:
    with ledger.engine.connect() as conn:
        return dict(conn.execute(select(members.c.id, members.c.balance)).all())  # type: ignore[arg-type]


def mixed_batch(member_ids: list[str]) -> list[dict[str, Any]]:
    amounts = ["12.30", "250.00", "7.99", "1999.00", "0.50", "480.00"]
    return [
        sale_body(member_ids[n % len(member_ids)], amounts[n % len(amounts)], key=f"k{n}")
        for n in range(24)
    ]


def new_store(postgres: PostgresCluster, cap: int, member_ids: list[str]) -> Ledger:
    url = postgres.new_database()
    migrate(url)
    ledger = capped(url, cap)
    for n, member_id in enumerate(member_ids):
        enroll(ledger, member_id, f"p{n}")
    return ledger


def test_a_batch_applied_before_its_locks_ends_as_the_locked_path_would(
    postgres: PostgresCluster | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if postgres is None:
        pytest.skip("PostgreSQL is not available here")
    ids = ["m0", "m1", "m2", "m3"]
    early, locked = new_store(postgres, 2_000, ids), new_store(postgres, 2_000, ids)
    batch = mixed_batch(ids)
    got = early.apply_many(batch, terminal_id="t")
    assert early.applied_before_locks == 1
    monkeypatch.setattr(ledger_module, "APPLY_THEN_LOCK_FROM", 10**9)
    expected = locked.apply_many(batch, terminal_id="t")
    assert locked.applied_before_locks == 0
    assert results(got) == results(expected)
    assert any(isinstance(o, OpRejected) and o.code == "limit_member_day" for o in got)
    assert balances(early) == balances(locked)
    assert early.balance_mismatches() == []


@pytest.fixture
def moved_in_between(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Ledger]]:
    """When a batch goes to lock its members, the ledger put in this list first applies
    (and commits) a sale of 500.00 for the member m1: the member moved after the batch
    read it and before it locked it."""
    others: list[Ledger] = []
    lock = Ledger._lock_members

    def moved_then_lock(
        self: Ledger, conn: Connection, member_ids: list[str]
    ) -> dict[str, MemberRecord]:
        if others and self is not others[0]:
            others.pop().apply(sale_body("m1", "500.00", key="between"))
        return lock(self, conn, member_ids)

    monkeypatch.setattr(Ledger, "_lock_members", moved_then_lock)
    yield others


def capped_batch() -> list[dict[str, Any]]:
    # m1: 16 sales of 50.00, under the cap as read before the locks; m2: 4 small ones.
    batch = [sale_body("m1", "50.00", key=f"a{n}") for n in range(16)]
    return batch + [sale_body("m2", "10.00", key=f"b{n}") for n in range(4)]


def test_a_member_moved_between_the_reads_and_the_locks_is_applied_again_under_its_lock(
    postgres: PostgresCluster | None,
    moved_in_between: list[Ledger],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if postgres is None:
        pytest.skip("PostgreSQL is not available here")
    ids = ["m0", "m1", "m2"]
    early = new_store(postgres, 1_000, ids)
    moved_in_between.append(capped(str(early.engine.url.render_as_string(False)), 1_000))
    got = early.apply_many(capped_batch(), terminal_id="t")
    assert not moved_in_between  # the sale in between was applied
    assert early.applied_before_locks == 1
    assert early.applied_again_locked == 1  # m1 only: m2's sales kept as first applied
    # The same, the locked way, with the sale in between applied first: the same outcomes.
    monkeypatch.setattr(ledger_module, "APPLY_THEN_LOCK_FROM", 10**9)
    serial = new_store(postgres, 1_000, ids)
    serial.apply(sale_body("m1", "500.00", key="between"))
    expected = serial.apply_many(capped_batch(), terminal_id="t")
    assert results(got) == results(expected)
    refused = [o for o in got if isinstance(o, OpRejected)]
    assert refused and all(o.code == "limit_member_day" for o in refused)
    assert balances(early) == balances(serial)
    with early.engine.connect() as conn:
        assert early._member_day_points(conn, "m1", early.today()) <= 1_000
    assert early.balance_mismatches() == []


def test_a_batch_with_an_enrollment_is_applied_under_its_locks(pg_url: str) -> None:
    ledger = capped(pg_url)
    enroll(ledger, "m1", "p1")
    ledger.apply_many([sale_body("m1", "5.00") for _ in range(20)], terminal_id="t")
    assert ledger.applied_before_locks == 1
    enrolment = enroll_body("m9", "p9")
    outcomes = ledger.apply_many([enrolment, *[sale_body("m1", "5.00") for _ in range(20)]])
    assert ledger.applied_before_locks == 1  # not this one: it enrols
    assert not any(isinstance(o, OpRejected) for o in outcomes)
    assert ledger.balance_mismatches() == []
