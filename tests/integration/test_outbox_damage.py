"""The terminal keeps its sales through damage, on real files and processes: a damaged
entry, a server that fails on one entry, an outbox emptied or gone, a write-ahead log
deleted under a running terminal; and its files are private."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pos_client.backends.http import HttpBackend
from pos_client.bootstrap import build_terminal
from pos_client.doctor import check_outbox
from pos_client.outbox import CORRUPT_ENTRY, EntryState, Outbox, OutboxCorrupt, OutboxMissing
from pos_client.sync import SERVER_ERROR, SyncPolicy, SyncWorker
from tests.conftest import REPO, damage_stored_entry, make_settings, run_cli
from tests.integration.ledger_helpers import sale_body
from tests.integration.server_helpers import Answer, LoopbackServer, json_answer


def fill(path: Path, count: int) -> list[str]:
    with Outbox(path) as outbox:
        keys = [outbox.add(sale_body("m1", f"{index + 1}.00")).key for index in range(count)]
        outbox.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return keys


# ------------------------------------------------------------------ a damaged entry


def test_an_undecodable_key_goes_dead_and_the_drain_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    keys = fill(path, 3)
    data = bytearray(path.read_bytes())
    offset = data.find(keys[1].encode() + b"sale")  # the key column, just before the kind
    assert offset > 0
    data[offset : offset + 36] = b"\xff" * 36
    path.write_bytes(bytes(data))
    with Outbox(path) as outbox:
        assert outbox.stats().unsent == 3
        claimed = outbox.claim(10)
        assert [entry.key for entry in claimed] == [keys[0], keys[2]]
        dead = outbox.entries(EntryState.DEAD)
        assert len(dead) == 1 and dead[0].error_code == CORRUPT_ENTRY
        assert "cannot be read" in (dead[0].last_error or "")


def test_doctor_names_the_keys_of_entries_dead_as_corrupt_and_never_their_bodies(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite"
    keys = fill(path, 4)
    damage_stored_entry(path, keys[1])
    damage_stored_entry(path, keys[3])
    with Outbox(path) as outbox:
        outbox.claim(10)  # the damaged ones go dead as corrupt_entry
        assert len(outbox.entries(EntryState.DEAD)) == 2
    (queue_row,) = [row for row in check_outbox(path) if row.name == "outbox queue"]
    assert not queue_row.ok
    assert f"2 of them corrupt (corrupt_entry): keys {keys[1]}, {keys[3]}" in queue_row.detail
    assert "m1" not in queue_row.detail and "amount" not in queue_row.detail


def test_an_undecodable_entry_goes_dead_and_the_drain_goes_on(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with build_terminal(settings) as terminal:
        path = terminal.outbox.path
        assert terminal.ledger is not None
        from pos_client.demo import DEMO_MEMBERS, seed_demo_members

        seed_demo_members(terminal.ledger, terminal.checkout.hasher)
        from decimal import Decimal

        from pos_client.domain import Purchase

        session = terminal.checkout.identify(DEMO_MEMBERS[1].card_number)
        keys = [
            terminal.checkout.earn(session, Purchase.of_amount(Decimal(amount))).key
            for amount in ("10.00", "20.00", "30.00")
        ]
        terminal.outbox.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    offset = data.find(f'"key":"{keys[1]}"'.encode())
    assert offset > 0
    data[offset : offset + 40] = b"\xff" * 40  # 40 bytes of 0xFF inside one stored sale
    path.write_bytes(bytes(data))

    with build_terminal(settings) as terminal:
        report = terminal.sync.drain()
        assert report.error is None and report.acked == 2
        damaged = terminal.outbox.get(keys[1])
        assert damaged is not None and damaged.state is EntryState.DEAD
        assert damaged.error_code == CORRUPT_ENTRY and "cannot be read" in (
            damaged.last_error or ""
        )
        assert [terminal.outbox.get(k).state for k in (keys[0], keys[2])] == [  # type: ignore[union-attr]
            EntryState.ACKED,
            EntryState.ACKED,
        ]
        terminal.outbox.requeue_dead()  # a retry of it goes back to dead, nothing else moves
        assert terminal.sync.drain().error is None
        assert terminal.outbox.stats().dead == 1

    status = run_cli(tmp_path, "queue", "status")
    assert status.returncode == 0, status.stderr
    assert f"dead {keys[1]}" in status.stdout and CORRUPT_ENTRY in status.stdout
    doctor = run_cli(tmp_path, "doctor")
    assert "BAD outbox queue" in doctor.stdout and "Traceback" not in doctor.stderr


# ------------------------------------------------------------------ a server failing on one entry


class FlakyServer(LoopbackServer):
    """A real HTTP server on loopback: 500 for any batch holding a poisoned key (or for
    everything when `down`), otherwise every operation applied."""

    def __init__(self) -> None:
        self.poisoned: set[str] = set()
        self.down = False
        self.applied: list[str] = []
        super().__init__()

    def get(self, path: str) -> Answer:
        return json_answer({"status": "ok"}, 500 if self.down else 200)

    def post(self, payload: Any) -> Answer:
        keys = [operation["key"] for operation in payload["operations"]]
        if self.down or self.poisoned & set(keys):
            return json_answer({"detail": "Internal Server Error"}, 500)
        self.applied += keys
        return json_answer({"results": [{"key": key, "outcome": "applied"} for key in keys]})


@pytest.fixture
def flaky() -> Iterator[FlakyServer]:
    server = FlakyServer()
    yield server
    server.close()


def test_a_server_error_on_one_entry_marks_that_entry_dead_not_the_queue(
    tmp_path: Path, flaky: FlakyServer
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite").open()
    keys = [outbox.add(sale_body("m1", f"{n}.00")).key for n in (1, 2, 3, 4)]
    flaky.poisoned.add(keys[1])
    worker = SyncWorker(
        outbox,
        HttpBackend(flaky.url, "token", 2.0, 5.0),
        policy=SyncPolicy(backoff_base_s=30, backoff_cap_s=30, max_server_errors=3),
        rand=lambda: 1.0,  # a retry waits 30 s: one try per drain, made due by hand
    )
    first = worker.drain()
    assert first.acked == 3 and first.online
    assert sorted(flaky.applied) == sorted([keys[0], keys[2], keys[3]])
    poisoned = outbox.get(keys[1])
    assert poisoned is not None and poisoned.state is EntryState.PENDING
    for _ in range(5):
        outbox.make_due()
        worker.drain()
    poisoned = outbox.get(keys[1])
    assert poisoned is not None and poisoned.state is EntryState.DEAD
    assert poisoned.error_code == SERVER_ERROR and "3 times" in (poisoned.last_error or "")
    later = outbox.add(sale_body("m1", "5.00")).key  # the queue still moves
    assert worker.drain().acked == 1 and later in flaky.applied
    outbox.close()


def test_a_server_that_fails_everything_kills_no_entry(tmp_path: Path, flaky: FlakyServer) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite").open()
    for n in (1, 2, 3):
        outbox.add(sale_body("m1", f"{n}.00"))
    flaky.down = True
    worker = SyncWorker(
        outbox,
        HttpBackend(flaky.url, "token", 2.0, 5.0),
        policy=SyncPolicy(backoff_base_s=0.001, backoff_cap_s=0.001, max_server_errors=2),
    )
    for _ in range(6):
        outbox.make_due()
        report = worker.drain()
        assert not report.online
    stats = outbox.stats()
    assert stats.dead == 0 and stats.unsent == 3
    flaky.down = False
    outbox.make_due()
    assert worker.drain().acked == 3
    outbox.close()


# ------------------------------------------------------------------ an outbox emptied or gone


def test_an_emptied_outbox_is_refused_kept_aside_and_doctor_says_bad(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = data / "outbox.sqlite"
    fill(path, 6)
    os.truncate(path, 0)  # truncated to 0 bytes with 6 sales pending

    doctor = run_cli(data, "doctor")
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    assert "BAD outbox: " in doctor.stdout and "emptied (0 bytes)" in doctor.stdout
    assert "6 sale(s)" in doctor.stdout
    kept = list(data.glob("outbox.sqlite.corrupt-*"))
    assert kept and kept[0].stat().st_size == 0
    # It is not silently started afresh: it is now missing, and still refused.
    status = run_cli(data, "queue", "status")
    assert status.returncode == 1 and "is missing" in status.stderr
    assert "Traceback" not in status.stderr and not path.exists()
    # Staff accept the loss explicitly: then a new outbox is made.
    assert run_cli(data, "queue", "quarantine").returncode in (0, 1)
    assert run_cli(data, "queue", "status").returncode == 0


def test_a_vanished_outbox_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    fill(path, 2)
    path.unlink()
    with pytest.raises(OutboxMissing, match=r"is missing.*2 sale"):
        Outbox(path).open()
    assert not path.exists()
    assert [c.ok for c in check_outbox(path)] == [False]


def test_an_outbox_replaced_by_an_older_copy_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    fill(path, 1)
    older = path.read_bytes()
    fill(path, 3)
    path.write_bytes(older)
    with pytest.raises(OutboxMissing, match=r"holds 1 sale.*manifest says 4"):
        Outbox(path).open()


# ------------------------------------------------------------------ WAL deleted under a terminal

RUNNING_TERMINAL = """
import sys
from pos_client.outbox import Outbox
from tests.integration.ledger_helpers import sale_body
outbox = Outbox(sys.argv[1]).open()
outbox.add(sale_body("m1", "1.00"))
print("added", flush=True)
for line in sys.stdin:
    print("added" if outbox.add(sale_body("m1", "2.00")) else "", flush=True)
outbox.close()
"""


def test_a_deleted_wal_under_a_running_terminal_is_detected_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    fill(path, 1)
    running = subprocess.Popen(
        [sys.executable, "-c", RUNNING_TERMINAL, str(path)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert running.stdout is not None and running.stdin is not None
        assert running.stdout.readline().strip() == "added"
        wal = path.with_name("outbox.sqlite-wal")
        assert wal.exists()
        wal.unlink()
        # Another process (doctor, a CLI sale) refuses instead of confirming into a new log.
        with pytest.raises(OutboxCorrupt, match="write-ahead log was deleted"):
            Outbox(path).open()
        rows = check_outbox(path)
        assert not rows[0].ok and "write-ahead log" in rows[0].detail
        # The running terminal detects it on its next write and saves what it held.
        running.stdin.write("add\n")
        running.stdin.flush()
        assert running.stdout.readline().strip() == "added"
        running.stdin.close()
        assert running.wait(timeout=30) == 0
        assert "write-ahead log" in (running.stderr.read() if running.stderr else "")
    finally:
        if running.poll() is None:
            running.kill()
            running.wait()
    with Outbox(path) as outbox:
        assert outbox.stats().pending == 3  # nothing lost
    rows = check_outbox(path)
    incident = [row for row in rows if row.name == "outbox incidents"]
    assert incident and not incident[0].ok and "deleted" in incident[0].detail


# ------------------------------------------------------------------ private files


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_folder_databases_and_keys_are_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    old = os.umask(0o022)
    try:
        with build_terminal(make_settings(data)) as terminal:
            assert terminal.ledger is not None
            terminal.outbox.add(sale_body("m1", "1.00"))
            files = [data / n for n in ("outbox.sqlite", "ledger.sqlite", "phone.key")]
            files += list(data.glob("*-wal"))
            assert mode(data) == 0o700
            for file in files:
                assert mode(file) == 0o600, file
    finally:
        os.umask(old)


def test_a_wide_open_outbox_is_made_private_on_open(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    tmp_path.chmod(0o755)
    Outbox(path).open().close()
    assert mode(path) == 0o600 and mode(tmp_path) == 0o700
