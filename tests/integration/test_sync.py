"""The sync worker over a real outbox file and a scripted backend."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pos_client.domain import MemberView, utcnow
from pos_client.events import EventBus, OperationDead, OperationSynced, SyncStatus
from pos_client.outbox import EntryState, Outbox
from pos_client.ports import BackendUnavailable, OpResult, Outcome
from pos_client.sync import SyncPolicy, SyncWorker, backoff_delay
from tests.integration.ledger_helpers import sale_body


class ScriptedBackend:
    """Applies by key like a real backend; can be switched off or told to refuse keys."""

    def __init__(self) -> None:
        self.online = True
        self.applied: dict[str, int] = {}
        self.batches: list[int] = []
        self.refuse: set[str] = set()
        self.transient: set[str] = set()

    def lookup(self, kind: str, value: str) -> MemberView | None:
        return None

    def member(self, member_id: str) -> MemberView | None:
        return None

    def ping(self) -> None:
        if not self.online:
            raise BackendUnavailable("down")

    def submit(self, bodies: Sequence[dict[str, Any]]) -> list[OpResult]:
        self.ping()
        self.batches.append(len(bodies))
        results = []
        for body in bodies:
            key = body["key"]
            if key in self.refuse:
                results.append(
                    OpResult(key, Outcome.REJECTED, code="unknown_member", error="no member")
                )
            elif key in self.transient:
                results.append(OpResult(key, Outcome.RETRY, error="locked"))
            else:
                outcome = Outcome.DUPLICATE if key in self.applied else Outcome.APPLIED
                self.applied[key] = self.applied.get(key, 0) + 1
                results.append(OpResult(key, outcome, {"member_id": "m1", "balance": 1}))
        return results

    def close(self) -> None:
        pass


def setup(
    tmp_path: Path, count: int, batch: int = 4
) -> tuple[Outbox, ScriptedBackend, SyncWorker, list[Any]]:
    outbox = Outbox(tmp_path / "o.sqlite").open()
    for i in range(count):
        outbox.add(sale_body("m1", f"{i + 1}.00"))
    backend = ScriptedBackend()
    bus = EventBus()
    events: list[Any] = []
    for kind in (SyncStatus, OperationSynced, OperationDead):
        bus.subscribe(kind, events.append)
    worker = SyncWorker(
        outbox,
        backend,
        bus,
        SyncPolicy(batch_size=batch, backoff_base_s=1, backoff_cap_s=60),
        rand=lambda: 1.0,
    )
    return outbox, backend, worker, events


def test_drains_in_batches_in_order(tmp_path: Path) -> None:
    outbox, backend, worker, events = setup(tmp_path, 10, batch=4)
    report = worker.drain()
    assert (report.sent, report.acked) == (10, 10)
    assert backend.batches == [4, 4, 2]
    assert outbox.stats().acked == 10
    assert sum(isinstance(e, OperationSynced) for e in events) == 10
    status = [e for e in events if isinstance(e, SyncStatus)][-1]
    assert (status.online, status.pending, status.oldest_pending_age_s) == (True, 0, None)


def test_offline_keeps_everything_pending_and_reports_it(tmp_path: Path) -> None:
    _outbox, backend, worker, events = setup(tmp_path, 3)
    backend.online = False
    report = worker.drain()
    assert (report.online, report.acked, report.retried) == (False, 0, 3)
    status = [e for e in events if isinstance(e, SyncStatus)][-1]
    assert (status.online, status.pending) == (False, 3)
    assert status.oldest_pending_age_s is not None
    assert worker.failures == 1
    worker.drain()
    assert worker.next_wait() == 4.0  # full jitter ceiling base * 2**2 with rand() = 1
    backend.online = True
    report = worker.drain()
    assert (report.online, report.acked) == (True, 3)
    assert worker.failures == 0
    assert all(n == 1 for n in backend.applied.values())


def test_coming_back_online_is_noticed_with_nothing_to_send(tmp_path: Path) -> None:
    _outbox, backend, worker, _events = setup(tmp_path, 0)
    backend.online = False
    worker.online = False
    worker.drain()
    assert not worker.online
    backend.online = True
    worker.drain()
    assert worker.online


def test_permanent_refusal_goes_to_dead_letter_and_stays_visible(tmp_path: Path) -> None:
    outbox, backend, worker, events = setup(tmp_path, 3)
    bad = outbox.entries(EntryState.PENDING)[1].key
    backend.refuse.add(bad)
    report = worker.drain()
    assert (report.acked, report.dead) == (2, 1)
    dead = outbox.entries(EntryState.DEAD)
    assert [(e.key, e.error_code, e.last_error) for e in dead] == [
        (bad, "unknown_member", "no member")
    ]
    assert [e.key for e in events if isinstance(e, OperationDead)] == [bad]
    assert [e for e in events if isinstance(e, SyncStatus)][-1].dead == 1
    backend.refuse.clear()
    outbox.requeue_dead(bad)
    worker.drain()
    assert outbox.get(bad).state is EntryState.ACKED  # type: ignore[union-attr]


def test_a_transient_failure_for_one_entry_backs_off_that_entry(tmp_path: Path) -> None:
    outbox, backend, worker, _events = setup(tmp_path, 2)
    slow = outbox.entries(EntryState.PENDING)[0].key
    backend.transient.add(slow)
    report = worker.drain()
    assert (report.acked, report.retried) == (1, 1)
    entry = outbox.get(slow)
    assert entry is not None and entry.state is EntryState.PENDING and entry.last_error == "locked"
    backend.transient.clear()
    assert worker.drain().acked == 0  # not due yet: its backoff is 2 s
    outbox.make_due()
    assert worker.drain().acked == 1


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = SyncPolicy(backoff_base_s=0.5, backoff_cap_s=30)
    assert [backoff_delay(n, policy, lambda: 1.0) for n in range(8)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        30.0,
        30.0,
    ]
    assert backoff_delay(3, policy, lambda: 0.25) == 1.0
    assert backoff_delay(10_000, policy, lambda: 1.0) == 30.0


def test_background_worker_sends_soon_after_a_wake(tmp_path: Path) -> None:
    outbox, backend, worker, _events = setup(tmp_path, 0)
    worker.policy = SyncPolicy(interval_s=60)
    with worker:
        time.sleep(0.1)
        key = outbox.add(sale_body("m1", "3.00")).key
        worker.wake()
        deadline = time.monotonic() + 5
        while backend.applied.get(key) != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert backend.applied.get(key) == 1


def test_status_reports_age_of_oldest_pending_sale(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite").open()
    outbox.add(sale_body("m1", "1.00"), now=utcnow() - timedelta(minutes=10))
    worker = SyncWorker(outbox, ScriptedBackend())
    age = worker.publish_status().oldest_pending_age_s
    assert age is not None and 590 < age < 700
