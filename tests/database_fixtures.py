"""The server suites' databases: `database_url` runs a test on SQLite and on PostgreSQL (a
throwaway cluster, `postgres`, one a module), and skips the PostgreSQL half, saying why,
where no cluster can be started here. Registered in tests/conftest.py (pytest_plugins);
tests/security/conftest.py keeps one cluster for the whole session instead."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.integration.server_helpers import PostgresCluster


def postgres_cluster() -> Iterator[PostgresCluster | None]:
    """A started cluster, stopped afterwards; None where PostgreSQL cannot run here."""
    from tests.integration.server_helpers import PostgresCluster, postgres_unavailable_reason

    if postgres_unavailable_reason() is not None:
        yield None
        return
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresCluster | None]:
    yield from postgres_cluster()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres: PostgresCluster | None
) -> str:
    from loyalty_server.cli import migrate
    from tests.integration.server_helpers import postgres_unavailable_reason

    if request.param == "sqlite":
        url = f"sqlite+pysqlite:///{tmp_path}/server.sqlite"
    else:
        if postgres is None:
            pytest.skip(postgres_unavailable_reason() or "")
        url = postgres.new_database()
    migrate(url)
    return url
