"""SIGKILL a terminal that records sales while it syncs them to the store server, again and
again: every sale it confirmed is on the server exactly once, and SQLite's integrity_check
passes on the outbox and on the server's database. 200 cycles; 1,000 with POS_CLIENT_SOAK=1."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loyalty_server.cli import migrate
from pos_client.demo import DEMO_MEMBERS
from pos_client.ledger.schema import transactions
from pos_client.outbox import EntryState
from tests.conftest import CONFIG_DIR, REPO
from tests.integration.server_helpers import ServerProcess, http_terminal

CYCLES = 1000 if os.environ.get("POS_CLIENT_SOAK") else 200


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    url = f"sqlite+pysqlite:///{tmp_path}/server.sqlite"
    migrate(url)
    process = ServerProcess(
        url,
        tmp_path,
        LOYALTY_SERVER_FLAG_EARNINGS_PER_DAY="100000000",
        # hundreds of random sales for one member in a minute: far past a real day's limit
        LOYALTY_SERVER_MAX_POINTS_PER_MEMBER_PER_DAY="1000000000",
        # and far more operations a minute than a real counter (the final drain sends
        # hundreds at once): the per-minute limit would hold them back as "retry"
        LOYALTY_SERVER_OPERATIONS_PER_TERMINAL_PER_MINUTE="1000000",
    )
    process.seed()
    process.start()
    yield process
    process.stop()


def run_cycle(env: dict[str, str], card: str, seed: int, rng: random.Random) -> list[str]:
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.crash_worker", card, str(seed)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(worker.stdout.readline, "")))
    reader.start()
    deadline = time.monotonic() + 20
    while "ready\n" not in lines and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.005)
    assert "ready\n" in lines, worker.stderr.read() if worker.stderr else "worker did not start"
    time.sleep(rng.uniform(0.0, 0.25))
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    reader.join()
    # A line cut short by the kill proves nothing: only whole lines count as confirmed.
    return [
        line.split()[1] for line in lines if line.startswith("confirmed ") and line.endswith("\n")
    ]


def test_sigkill_while_recording_and_syncing_loses_nothing_and_doubles_nothing(
    server: ServerProcess,
    tmp_path: Path,
) -> None:
    data = tmp_path / "terminal"
    http_terminal(server, data).close()  # pair once: token and phone key in the data dir
    env = {
        **os.environ,
        "POS_CLIENT_CONFIG_DIR": str(CONFIG_DIR),
        "POS_CLIENT__STORAGE__DATA_DIR": str(data),
        "POS_CLIENT__BACKEND__KIND": "http",
        "POS_CLIENT__BACKEND__URL": server.url,
        "POS_CLIENT__BACKEND__READ_TIMEOUT_S": "5",
    }
    card = DEMO_MEMBERS[1].card_number
    rng = random.Random(20261125)
    confirmed: list[str] = []
    for cycle in range(CYCLES):
        confirmed += run_cycle(env, card, cycle, rng)
    assert len(confirmed) > CYCLES  # sales really were recorded between the kills

    from pos_client.bootstrap import build_terminal
    from pos_client.settings import load_settings

    with build_terminal(
        load_settings(env={k: v for k, v in env.items() if k.startswith("POS_CLIENT")})
    ) as terminal:
        for _ in range(20):
            terminal.outbox.make_due()
            terminal.sync.drain()
            if terminal.outbox.stats().unsent == 0:
                break
        outbox = terminal.outbox
        assert outbox.integrity_check() == "ok"
        stats = outbox.stats()
        assert (stats.pending, stats.sending, stats.dead) == (0, 0, 0)
        outbox_keys = {e.key for e in outbox.entries(EntryState.ACKED, limit=10**6)}
    ledger = server.ledger()
    applied = set(ledger.operation_keys())
    assert [key for key in confirmed if key not in applied] == []  # nothing lost
    assert set(confirmed) <= outbox_keys
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            transactions.select().where(
                transactions.c.kind == "earn", transactions.c.op_key.in_(outbox_keys)
            )
        ).all()
    per_key: dict[str, int] = {}
    for row in rows:
        per_key[row.op_key] = per_key.get(row.op_key, 0) + 1
    assert {key: n for key, n in per_key.items() if n != 1} == {}  # nothing twice
    assert set(per_key) == outbox_keys  # every recorded sale reached the server
    assert ledger.balance_mismatches() == []
    server.stop()
    database = sqlite3.connect(tmp_path / "server.sqlite")
    assert database.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    database.close()
