"""The sync worker over a real outbox file and a scripted backend."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pos_client.domain import MemberView, utcnow
from pos_client.events import EventBus, OperationDead, OperationSynced, SyncStatus
from pos_client.heartbeat import Heartbeat, HeartbeatPolicy
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


# ------------------------------------------------------------------ heartbeats


class BeatingBackend(ScriptedBackend):
    """Records each heartbeat, or fails it as told (`beat_error`)."""

    def __init__(self) -> None:
        super().__init__()
        self.beats: list[Heartbeat] = []
        self.beat_error: Exception | None = None

    def heartbeat(self, beat: Heartbeat) -> None:
        if self.beat_error is not None:
            raise self.beat_error
        self.beats.append(beat)


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def beating(
    tmp_path: Path, count: int, backend: Any = None
) -> tuple[Outbox, Any, SyncWorker, Ticks]:
    outbox, _scripted, worker, _events = setup(tmp_path, count)
    worker.backend = backend if backend is not None else BeatingBackend()
    ticks = Ticks()
    worker.heartbeat = HeartbeatPolicy(
        mode="cashier",
        version="9.9.9",
        readers=lambda: [("pcsc:reader", "connected")],
        monotonic=ticks,
    )
    return outbox, worker.backend, worker, ticks


@pytest.mark.parametrize(
    "error", [BackendUnavailable("heartbeat: HTTP 422"), RuntimeError("a bug"), None]
)
def test_a_failing_heartbeat_does_not_stop_or_change_a_drain(
    tmp_path: Path, error: Exception | None, caplog: pytest.LogCaptureFixture
) -> None:
    backend: Any = BeatingBackend() if error is not None else ScriptedBackend()  # no heartbeat
    if error is not None:
        backend.beat_error = error
    caplog.set_level(logging.INFO, logger="pos_client.sync")
    outbox, backend, worker, ticks = beating(tmp_path, 6, backend)
    report = worker.drain()
    assert (report.sent, report.acked, report.online, report.error) == (6, 6, True, None)
    assert worker.online and worker.failures == 0 and outbox.stats().acked == 6
    assert "heartbeat not sent" in caplog.text
    # The next one waits its interval, failed or not; then it is tried again.
    outbox.add(sale_body("m1", "1.00"))
    assert worker.drain().acked == 1
    assert caplog.text.count("heartbeat not sent") == 1
    ticks.now += 30
    worker.drain()
    assert caplog.text.count("heartbeat not sent") == 2


def test_a_heartbeat_follows_a_pass_that_reached_the_backend_every_30_s_at_most(
    tmp_path: Path,
) -> None:
    outbox, backend, worker, ticks = beating(tmp_path, 3)
    bad = outbox.entries(EntryState.PENDING)[0].key
    backend.refuse.add(bad)
    backend.online = False
    worker.drain()
    assert backend.beats == []  # offline: nothing reached the backend
    backend.online = True
    worker.drain()
    (only,) = backend.beats
    assert (only.app_version, only.mode, only.pending, only.dead) == ("9.9.9", "cashier", 0, 1)
    assert only.oldest_pending_s is None
    assert [(r.name, r.status) for r in only.readers] == [("pcsc:reader", "connected")]
    assert [(d.key, d.reason) for d in only.dead_entries] == [(bad, "unknown_member: no member")]
    for _ in range(3):
        outbox.add(sale_body("m1", "1.00"))
        worker.drain()
        ticks.now += 9
    assert len(backend.beats) == 1  # 27 s later: still the one
    backend.online = False
    backend.transient.add(outbox.add(sale_body("m1", "1.00")).key)  # stays pending
    ticks.now += 10
    worker.drain()
    assert len(backend.beats) == 1  # due, but the pass did not reach the backend
    backend.online = True
    worker.drain()  # back online: the heartbeat goes
    assert len(backend.beats) == 2
    assert (backend.beats[1].pending, backend.beats[1].dead) == (1, 1)
    assert backend.beats[1].oldest_pending_s is not None
