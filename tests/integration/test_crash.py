"""SIGKILL a terminal recording and syncing sales, many times: nothing confirmed is lost,
nothing is applied twice, and both databases pass SQLite's integrity check."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from pos_client.bootstrap import build_terminal
from pos_client.demo import seed_demo_members
from pos_client.ledger.schema import transactions
from pos_client.outbox import EntryState
from tests.conftest import REPO, make_settings

CYCLES = 300 if os.environ.get("POS_CLIENT_SOAK") else 30


def run_cycle(data_dir: Path, card: str, seed: int, rng: random.Random) -> list[str]:
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.crash_worker", str(data_dir), card, str(seed)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    confirmed: list[str] = []
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(worker.stdout.readline, "")))
    reader.start()
    deadline = time.monotonic() + 20
    while "ready\n" not in lines and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.01)
    assert "ready\n" in lines, worker.stderr.read() if worker.stderr else "worker did not start"
    time.sleep(rng.uniform(0.0, 0.3))
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    reader.join()
    for line in lines:
        if line.startswith("confirmed ") and line.endswith("\n"):  # a torn line proves nothing
            confirmed.append(line.split()[1])
    return confirmed


def test_sigkill_during_recording_and_sync_loses_nothing_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    with build_terminal(settings) as terminal:
        assert terminal.ledger is not None
        members = seed_demo_members(terminal.ledger, terminal.checkout.hasher)
    card = members[1].card_number
    rng = random.Random(20261125)
    confirmed: list[str] = []
    for cycle in range(CYCLES):
        confirmed += run_cycle(tmp_path, card, cycle, rng)
    assert len(confirmed) > CYCLES  # the test really recorded sales between the kills

    with build_terminal(settings) as terminal:
        report = terminal.sync.drain()
        assert not report.busy
        ledger, outbox = terminal.ledger, terminal.outbox
        assert ledger is not None
        assert outbox.integrity_check() == "ok"
        stats = outbox.stats()
        assert (stats.pending, stats.sending, stats.dead) == (0, 0, 0)
        applied = set(ledger.operation_keys())
        lost = [key for key in confirmed if key not in applied]
        assert lost == []
        with ledger.engine.connect() as conn:
            rows = conn.execute(
                transactions.select().where(
                    transactions.c.kind == "earn", transactions.c.op_key.isnot(None)
                )
            ).all()
        per_key: dict[str, int] = {}
        for row in rows:
            per_key[row.op_key] = per_key.get(row.op_key, 0) + 1
        doubled = {key: n for key, n in per_key.items() if n > 1}
        assert doubled == {}
        outbox_keys = {e.key for e in outbox.entries(EntryState.ACKED, limit=10**6)}
        assert set(confirmed) <= outbox_keys
        # Every sale the ledger holds came from this outbox (or the seed), exactly once.
        assert {k for k in per_key if k in outbox_keys} == outbox_keys
        assert ledger.balance_mismatches() == []
    ledger_db = sqlite3.connect(settings.storage.ledger_path)
    assert ledger_db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ledger_db.close()
