"""The outbox carries a schema version and upgrades itself in place: a data folder left by
the previous release (a committed fixture made by scripts/release_fixtures.py) opens with
every entry intact and its pending sales still drain; a file from a newer release is refused
and left untouched; the full check runs only after an unclean stop; what runs at every open
reads an index, not the whole file."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pos_client.bootstrap import build_terminal
from pos_client.domain import utcnow
from pos_client.outbox import SCHEMA_VERSION, EntryState, Outbox, OutboxCorrupt, OutboxTooNew
from tests.conftest import REPO, make_settings
from tests.integration.ledger_helpers import sale_body

FIXTURE = REPO / "tests" / "fixtures" / "release-2026-11-25" / "data"
POS_CLIENT = str(REPO / ".venv" / "bin" / "pos-client")
COLUMNS = "seq, key, kind, member_id, body, state, attempts, created_at, result"


def raw_rows(path: Path) -> dict[str, tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return {row[1]: row for row in conn.execute(f"SELECT {COLUMNS} FROM entries")}
    finally:
        conn.close()


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_the_previous_release_outbox_upgrades_in_place_and_its_pending_sales_drain(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    path = data / "outbox.sqlite"
    assert user_version(path) == 0  # made before the outbox had a version
    before = raw_rows(path)
    counts = Counter(row[5] for row in before.values())
    assert counts == {"pending": 3, "acked": 2, "dead": 1}

    with Outbox(path) as outbox:
        assert outbox.checked  # an upgrade is preceded by the full check
        entries = {entry.key: entry for entry in outbox.entries(limit=1000)}
        assert outbox.stats().pending == 3 and outbox.stats().acked == 2
    assert user_version(path) == SCHEMA_VERSION
    after = raw_rows(path)
    assert after == before  # keys, kinds, members, bodies, states, results: byte for byte
    assert set(entries) == set(before)
    for key, row in before.items():
        assert entries[key].state.value == row[5] and entries[key].seq == row[0]
        assert entries[key].damage is None and entries[key].body["key"] == key
    acked = [row for row in before.values() if row[5] == "acked"]
    assert all(row[8] and entries[row[1]].result for row in acked)

    pending = {key for key, row in before.items() if row[5] == "pending"}
    with build_terminal(make_settings(data)) as terminal:
        report = terminal.sync.drain()
        assert report.acked == 3 and report.dead == 0, report
        for key in pending:
            entry = terminal.outbox.get(key)
            assert entry is not None and entry.state is EntryState.ACKED
            assert entry.result and entry.result.get("member_id") == entry.member_id
        stats = terminal.outbox.stats()
        assert (stats.pending, stats.acked, stats.dead) == (0, 5, 1)
        assert terminal.ledger is not None
    # Opened again: no further step, nothing changed, no full check after a clean stop.
    again = raw_rows(path)
    with Outbox(path) as outbox:
        assert not outbox.checked
    assert raw_rows(path) == again and user_version(path) == SCHEMA_VERSION


def test_an_outbox_from_a_newer_release_is_refused_and_left_untouched(tmp_path: Path) -> None:
    data = tmp_path / "data"
    path = data / "outbox.sqlite"
    with Outbox(path) as outbox:
        outbox.add(sale_body("m1", "3.00"))
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = folder_bytes(data)

    with pytest.raises(OutboxTooNew, match="newer release"):
        Outbox(path).open()
    status = subprocess.run(
        [POS_CLIENT, "--data-dir", str(data), "queue", "status"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 1 and "Traceback" not in status.stderr
    assert "newer release" in status.stderr and f"version {SCHEMA_VERSION + 1}" in status.stderr
    after = folder_bytes(data)
    assert {name: after[name] for name in before} == before  # not a byte changed
    assert not {name for name in after if name.startswith("outbox.sqlite")} - set(before)


HOLD_OPEN = """
import os, sys, time
from pos_client.outbox import Outbox
outbox = Outbox(sys.argv[1]).open()
print("open", flush=True)
if sys.argv[2] == "crash":
    os._exit(0)  # no close: as a crash or a power cut leaves it
time.sleep(60)
"""


def test_the_full_check_runs_only_after_an_unclean_stop(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as outbox:
        outbox.add(sale_body("m1", "1.00"))
    with Outbox(path) as outbox:
        assert not outbox.checked  # closed cleanly: no full read of the file

    crashed = subprocess.run(
        [sys.executable, "-c", HOLD_OPEN, str(path), "crash"], cwd=REPO, timeout=60
    )
    assert crashed.returncode == 0
    with Outbox(path) as outbox:
        assert outbox.checked  # the last process never closed it
        assert outbox.stats().pending == 1
    with Outbox(path) as outbox:
        assert not outbox.checked

    # A process that opens while another has it open does not judge the last stop: the
    # other one is running, and the last to close marks it clean.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(path), "hold"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with Outbox(path) as outbox:
            assert not outbox.checked
        holder.kill()  # dies holding it: the stop is unclean
        holder.wait()
    finally:
        holder.kill()
    with Outbox(path) as outbox:
        assert outbox.checked


def test_every_statement_at_open_reads_an_index_not_the_whole_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    path = data / "outbox.sqlite"
    old = utcnow() - timedelta(days=400)
    with Outbox(path) as outbox:
        keys = [outbox.add(sale_body("m1", "1.00")).key for _ in range(30)]
        outbox.ack_many([(key, {"member_id": "m1"}) for key in keys[:20]])
        outbox.mark_dead(keys[20], "bad_request", "refused")
        outbox.forget_members_before(old)
    statements: list[str] = []
    real_connect = sqlite3.connect

    def tracing_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", tracing_connect)
    with build_terminal(make_settings(data)):  # open, cache upgrade and expiry
        pass
    monkeypatch.undo()
    ours = [
        s
        for s in statements
        if re.search(r"\b(entries|member_cache|outbox_meta)\b", s)
        and s.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT"))
    ]
    assert ours, statements
    conn = sqlite3.connect(path)
    try:
        scans = {
            statement: detail
            for statement in ours
            for *_ids, detail in conn.execute(f"EXPLAIN QUERY PLAN {statement}")
            if re.match(r"SCAN (entries|member_cache)\b", detail)
        }
    finally:
        conn.close()
    assert scans == {}


def test_damage_after_a_clean_stop_is_found_by_doctor_and_after_a_crash_by_open(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    path = data / "outbox.sqlite"
    with Outbox(path) as outbox:
        for _ in range(300):
            outbox.add(sale_body("m1", "1.00"))
    page = 4096
    pages = path.stat().st_size // page
    raw = bytearray(path.read_bytes())
    start = (pages // 2) * page
    raw[start : start + 16] = b"\xff" * 16  # a page header in the middle of the file
    path.write_bytes(bytes(raw))

    doctor = subprocess.run(
        [POS_CLIENT, "--data-dir", str(data), "doctor"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr + doctor.stdout
    assert "is damaged" in doctor.stdout and "queue quarantine" in doctor.stdout

    conn = sqlite3.connect(path)  # as a process killed while it had the outbox open
    conn.execute("UPDATE outbox_meta SET value = '0' WHERE name = 'clean'")
    conn.commit()
    conn.close()
    damaged = path.read_bytes()
    with pytest.raises(OutboxCorrupt, match=r"damaged.*queue quarantine"):
        Outbox(path).open()
    assert path.read_bytes() == damaged
