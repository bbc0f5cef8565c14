"""The staff's view of the outbox through the core's queue service, over a real outbox file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from pos_client.bootstrap import Terminal
from pos_client.domain import utcnow
from pos_client.events import EventBus, SyncStatus
from pos_client.outbox import EntryState, Outbox
from pos_client.queue_service import DeadEntry, QueueReport, QueueService
from pos_client.sync import SyncPolicy, SyncWorker
from tests.integration.ledger_helpers import sale_body
from tests.integration.test_sync import ScriptedBackend


def setup(tmp_path: Path, count: int) -> tuple[Outbox, ScriptedBackend, SyncWorker, list[Any]]:
    outbox = Outbox(tmp_path / "o.sqlite").open()
    for i in range(count):
        outbox.add(sale_body("m1", f"{i + 1}.00"))
    backend = ScriptedBackend()
    bus = EventBus()
    events: list[Any] = []
    bus.subscribe(SyncStatus, events.append)
    policy = SyncPolicy(batch_size=10, backoff_base_s=60, backoff_cap_s=600)
    worker = SyncWorker(outbox, backend, bus, policy, rand=lambda: 1.0)
    return outbox, backend, worker, events


def test_an_empty_queue_reports_zeros(tmp_path: Path) -> None:
    outbox, _backend, worker, _events = setup(tmp_path, 0)
    assert QueueService(outbox, worker).report() == QueueReport()


def test_the_report_counts_unsent_dead_and_acked_and_lists_dead_entries(tmp_path: Path) -> None:
    outbox, backend, worker, _events = setup(tmp_path, 4)
    bad = outbox.entries(EntryState.PENDING)[2].key
    backend.refuse.add(bad)
    worker.drain()
    outbox.add(sale_body("m1", "9.00"))
    later = utcnow() + timedelta(seconds=30)
    report = QueueService(outbox, worker, clock=lambda: later).report()
    assert (report.unsent, report.dead, report.acked, report.problem) == (1, 1, 3, None)
    assert report.oldest_unsent_age_s is not None and 29 <= report.oldest_unsent_age_s <= 31
    assert report.dead_entries == (DeadEntry(bad, "unknown_member", "no member"),)


def test_retry_dead_requeues_the_same_keys_and_they_sync(tmp_path: Path) -> None:
    outbox, backend, worker, _events = setup(tmp_path, 3)
    backend.refuse.update(e.key for e in outbox.entries(EntryState.PENDING)[:2])
    worker.drain()
    service = QueueService(outbox, worker)
    assert service.report().dead == 2
    backend.refuse.clear()
    assert service.retry_dead() == 2
    assert service.report().dead == 0
    worker.drain()
    assert service.report().acked == 3
    assert all(n == 1 for n in backend.applied.values())


def test_sync_now_makes_every_unsent_entry_due(tmp_path: Path) -> None:
    outbox, backend, worker, _events = setup(tmp_path, 2)
    backend.transient.update(e.key for e in outbox.entries(EntryState.PENDING))
    worker.drain()  # each entry is told to wait (backoff of a minute or more)
    assert worker.drain().sent == 0
    backend.transient.clear()
    assert QueueService(outbox, worker).sync_now() == 2
    assert worker.drain().acked == 2


def test_publish_status_announces_the_queue(tmp_path: Path) -> None:
    outbox, _backend, worker, events = setup(tmp_path, 2)
    QueueService(outbox, worker).publish_status()
    assert [(e.online, e.pending, e.dead) for e in events] == [(True, 2, 0)]


def test_an_unreadable_outbox_is_a_problem_in_the_report_not_an_error(tmp_path: Path) -> None:
    outbox, _backend, worker, _events = setup(tmp_path, 1)
    outbox.close()
    report = QueueService(outbox, worker).report()
    assert report.problem and report.unsent == 0


def test_the_terminal_offers_the_queue_service(terminal: Terminal) -> None:
    assert terminal.queue.report() == QueueReport()
