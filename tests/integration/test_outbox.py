"""The outbox on real SQLite files: durability settings, states, the drain lock, damage."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from pos_client.domain import utcnow, uuid7
from pos_client.outbox import (
    DrainBusy,
    EntryState,
    Outbox,
    OutboxCorrupt,
    OutboxUnavailable,
    quarantine,
)
from tests.integration.ledger_helpers import sale_body


def test_outbox_uses_wal_and_full_sync(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as outbox:
        assert outbox.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert outbox.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_an_added_entry_is_visible_to_another_connection_at_once(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path) as outbox:
        entry = outbox.add(sale_body("m1", "5.00"))
        other = sqlite3.connect(path)
        assert other.execute("SELECT key, state FROM entries").fetchall() == [
            (entry.key, "pending")
        ]
        other.close()


def test_adding_the_same_key_twice_keeps_one_entry(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as outbox:
        body = sale_body("m1", "5.00")
        assert outbox.add(body).seq == outbox.add(body).seq
        with pytest.raises(ValueError, match="another operation"):
            outbox.add({**body, "member_id": "m2"})
        assert outbox.stats().pending == 1


def test_states_pending_sending_acked_dead_and_requeue(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as outbox:
        keys = [outbox.add(sale_body("m1", f"{i}.00", key=uuid7())).key for i in range(1, 5)]
        with outbox.drain_lock():
            batch = outbox.claim(3)
            assert [e.key for e in batch] == keys[:3]
            assert all(e.state is EntryState.SENDING and e.attempts == 1 for e in batch)
            outbox.ack(keys[0], {"balance": 1})
            outbox.mark_dead(keys[1], "redemption_refused", "not enough points")
            later = utcnow() + timedelta(minutes=5)
            outbox.retry_later([keys[2]], "timeout", later)
            stats = outbox.stats()
            assert (stats.pending, stats.sending, stats.acked, stats.dead) == (2, 0, 1, 1)
            assert [e.key for e in outbox.claim(10)] == [keys[3]]  # keys[2] is not due yet
            assert [e.key for e in outbox.claim(10, now=later)] == [keys[2]]
        dead = outbox.entries(EntryState.DEAD)
        assert [(e.key, e.error_code) for e in dead] == [(keys[1], "redemption_refused")]
        assert outbox.requeue_dead() == 1
        assert outbox.get(keys[1]).state is EntryState.PENDING  # type: ignore[union-attr]


def test_entries_left_sending_by_a_crashed_drainer_go_back_to_pending(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path) as outbox:
        outbox.add(sale_body("m1", "1.00"))
        with outbox.drain_lock():
            outbox.claim(10)
        assert outbox.stats().sending == 1
        with outbox.drain_lock():
            assert outbox.stats().sending == 0
            assert len(outbox.claim(10)) == 1


def test_only_one_process_drains(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from pos_client.outbox import Outbox\n"
            f"o = Outbox(Path({str(path)!r})).open()\n"
            "with o.drain_lock():\n    print('held', flush=True); time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with Outbox(path) as outbox, pytest.raises(DrainBusy), outbox.drain_lock():
            pass
        holder.kill()  # the kernel releases the flock with the process
        holder.wait()
        with Outbox(path) as outbox, outbox.drain_lock():
            pass
    finally:
        holder.kill()


def test_a_corrupt_outbox_is_reported_and_kept_aside_not_deleted(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path) as outbox:
        for i in range(50):
            outbox.add(sale_body("m1", f"{i}.00"))
    data = bytearray(path.read_bytes() or b"")
    wal = path.with_name(path.name + "-wal")
    if wal.exists():  # checkpointed on close normally; make sure the damage lands
        wal.unlink()
    data[100:4096] = b"\xde\xad" * ((4096 - 100) // 2)
    path.write_bytes(bytes(data))
    original = path.read_bytes()
    with pytest.raises(OutboxCorrupt, match=r"damaged.*queue quarantine"):
        Outbox(path).open()
    assert path.read_bytes() == original  # nothing was changed in it
    moved = quarantine(path)
    assert moved and moved[0].read_bytes() == original
    with Outbox(path) as fresh:
        assert fresh.stats().pending == 0


def test_not_a_database_at_all_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    path.write_bytes(b"this is a text file, not SQLite" * 200)
    with pytest.raises(OutboxCorrupt):
        Outbox(path).open()


def test_a_read_only_outbox_refuses_new_sales_and_keeps_old_ones(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path) as outbox:
        kept = outbox.add(sale_body("m1", "1.00")).key
    readonly = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    outbox = Outbox(path)
    outbox._conn = readonly  # the file system refusing writes looks like this to SQLite
    with pytest.raises(OutboxUnavailable, match=r"read-only|readonly|cannot record"):
        outbox.add(sale_body("m1", "2.00"))
    outbox.close()
    with Outbox(path) as reopened:
        assert [e.key for e in reopened.entries()] == [kept]
