"""Hostile-input suites: attacks against a live loyalty server on loopback (SQLite, and
PostgreSQL in a throwaway cluster where it is installed), each asserting the refusal and
that nothing already recorded changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.database_fixtures import postgres_cluster
from tests.integration.server_helpers import PostgresCluster, ServerProcess

# Limits the suites attack; the server reads them from its environment (configuration).
SERVER_ENV = {
    "LOYALTY_SERVER_PARTNER_DAILY_CAPS": "sky-miles=50000",
    "LOYALTY_SERVER_MAX_BATCH": "50",
    "LOYALTY_SERVER_MAX_SALE_AMOUNT": "5000",
    "LOYALTY_SERVER_MAX_LINES_PER_SALE": "20",
    "LOYALTY_SERVER_MAX_POINTS_PER_OPERATION": "100000",
    "LOYALTY_SERVER_MAX_POINTS_PER_MEMBER_PER_DAY": "200000",
    "LOYALTY_SERVER_OPERATIONS_PER_TERMINAL_PER_MINUTE": "120",
    "LOYALTY_SERVER_CLOCK_SKEW_S": "300",
    "LOYALTY_SERVER_OFFLINE_WINDOW_DAYS": "60",  # the demo members enrolled 30 days ago
    "LOYALTY_SERVER_PAIRING_FAILURES_PER_MINUTE": "10",
    "LOYALTY_SERVER_PAIRING_LOCKOUT_S": "300",
    "LOYALTY_SERVER_LOOKUPS_PER_MINUTE": "30",
}


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster | None]:
    """One cluster for the whole security run (the shared fixture starts one a module)."""
    yield from postgres_cluster()


def running_server(database_url: str, tmp_path: Path, **env: str) -> Iterator[ServerProcess]:
    """A seeded server process for one test; afterwards its log must hold no traceback."""
    process = ServerProcess(database_url, tmp_path, **{**SERVER_ENV, **env})
    process.seed()
    process.start()
    yield process
    process.stop()
    log = process.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    yield from running_server(database_url, tmp_path)
