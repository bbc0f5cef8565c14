"""Outbox housekeeping on real files: acknowledged entries leave after their retention, in
short batches, never lowering the count of sales ever written that the manifest and its
second record keep; a running terminal does it at start and then daily, with the member
cache's expiry, on its sync thread."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest

from pos_client.bootstrap import build_terminal
from pos_client.domain import utcnow
from pos_client.outbox import EntryState, ManifestUnreadable, Outbox, read_manifests
from pos_client.sync import SyncWorker
from tests.conftest import make_settings
from tests.integration.ledger_helpers import sale_body


def fill_acked(outbox: Outbox, count: int, days_ago: float) -> list[str]:
    moment = utcnow() - timedelta(days=days_ago)
    keys = [outbox.add(sale_body("m1", "1.00"), now=moment).key for _ in range(count)]
    for key in keys:
        outbox.ack(key, {"member_id": "m1", "balance": 1}, now=moment)
    return keys


def test_acked_entries_past_retention_are_pruned_in_batches_and_the_count_stays(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as outbox:
        old = fill_acked(outbox, 25, days_ago=40)
        recent = fill_acked(outbox, 5, days_ago=10)
        pending = outbox.add(sale_body("m1", "2.00"), now=utcnow() - timedelta(days=90)).key
        dead = outbox.add(sale_body("m1", "3.00"), now=utcnow() - timedelta(days=90)).key
        outbox.mark_dead(dead, "bad_request", "refused")
        cutoff = utcnow() - timedelta(days=30)
        assert outbox.prune_acked(cutoff, limit=10) == 10  # one short transaction each
        assert outbox.prune_acked(cutoff, limit=10) == 10
        assert outbox.prune_acked(cutoff, limit=10) == 5
        assert outbox.prune_acked(cutoff, limit=10) == 0
        assert all(outbox.get(key) is None for key in old)
        assert all(outbox.get(key) is not None for key in [*recent, pending, dead])
        stats = outbox.stats()
        assert (stats.acked, stats.pending, stats.dead) == (5, 1, 1)
    assert read_manifests(path) == (32, 32)  # entries ever written, not entries left

    with Outbox(path) as outbox:  # opens: the outbox still says 32 were written
        assert outbox.prune_acked(utcnow(), limit=100) == 5
        assert outbox.add(sale_body("m1", "4.00")).seq == 33
    assert json.loads(path.with_name("outbox.sqlite.manifest").read_text())["written"] == 33


def test_the_sync_worker_prunes_all_past_retention_and_runs_the_other_tasks(
    tmp_path: Path,
) -> None:
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        fill_acked(outbox, 1203, days_ago=31)
        fill_acked(outbox, 3, days_ago=1)
        worker = SyncWorker(outbox, backend=None, acked_retention=timedelta(days=30))  # type: ignore[arg-type]
        ran: list[str] = []
        worker.housekeeping_tasks.append(lambda: ran.append("cache"))
        assert worker.housekeeping_due()
        assert worker.housekeep() == 1203
        assert ran == ["cache"] and outbox.stats().acked == 3
        assert not worker.housekeeping_due()  # next in a day
        worker.housekeeping_interval_s = 0.0
        assert worker.housekeeping_due()


def test_a_running_terminal_prunes_old_acked_entries_and_expired_members_at_start(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    settings = make_settings(data, sync__acked_retention_days="7")
    with build_terminal(settings) as terminal:
        old = fill_acked(terminal.outbox, 4, days_ago=8)
        kept = fill_acked(terminal.outbox, 2, days_ago=6)
    with build_terminal(settings, start_sync=True) as terminal:
        deadline = time.monotonic() + 20
        while terminal.outbox.get(old[-1]) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(terminal.outbox.get(key) is None for key in old)
        assert all(
            (entry := terminal.outbox.get(key)) is not None and entry.state is EntryState.ACKED
            for key in kept
        )
        assert terminal.sync.housekeeping_tasks == [terminal.checkout.forget_expired]


def test_count_records_are_rewritten_in_place_and_a_torn_or_deleted_one_is_caught(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite"
    manifest = path.with_name("outbox.sqlite.manifest")
    with Outbox(path) as outbox:
        outbox.add(sale_body("m1", "1.00"))
        inode = manifest.stat().st_ino
        for _ in range(3):
            outbox.add(sale_body("m1", "1.00"))
        assert manifest.stat().st_ino == inode  # one write in place per sale, no rename
        assert read_manifests(path) == (4, 4)
        manifest.unlink()  # deleted under the running terminal: made again by the next sale
        outbox.add(sale_body("m1", "1.00"))
        assert read_manifests(path) == (5, 5)
    # A record torn by a power cut mid-write holds two counts: not trusted, staff decide.
    manifest.write_text('{"written": 15, "again": 5}')
    with pytest.raises(ManifestUnreadable, match="cannot be read"):
        Outbox(path).open()
    manifest.write_text('{"written": 5}')  # as the previous release wrote it: read
    with Outbox(path) as outbox:
        assert outbox.stats().pending == 5


def test_a_record_read_while_sales_rewrite_it_is_never_unreadable_or_wrong(
    tmp_path: Path,
) -> None:
    import threading

    path = tmp_path / "outbox.sqlite"
    seen: list[int | None] = []
    done = threading.Event()

    def read_while_written() -> None:
        while not done.is_set():
            seen.append(read_manifests(path)[0])

    with Outbox(path) as outbox:
        outbox.add(sale_body("m1", "1.00"))
        reader = threading.Thread(target=read_while_written)
        reader.start()
        try:
            for _ in range(300):
                outbox.add(sale_body("m1", "1.00"))
        finally:
            done.set()
            reader.join()
    assert seen and None not in seen
    assert seen == sorted(seen) and seen[-1] <= 301  # counts only grow, never beyond truth
