"""The server's connection pool on PostgreSQL: a connection idle past the ping interval is
checked before it is handed out and replaced if the database dropped it; one in use a
moment ago is not pinged (a busy server pays no round trip per checkout)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import exc, text

from pos_client.ledger import make_engine, one_statement_reads, ping_when_idle
from tests.integration.server_helpers import PostgresCluster, postgres_unavailable_reason


def backend_pid(engine: object) -> int:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def terminate(url: str, pid: int) -> None:
    """The database drops one session, as a restart or an idle timeout would."""
    admin = make_engine(url)
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        conn.commit()
    admin.dispose()
    time.sleep(0.1)


@pytest.fixture
def postgres_url(postgres: PostgresCluster | None) -> str:
    if postgres is None:
        pytest.skip(postgres_unavailable_reason() or "")
    return postgres.new_database()


def test_an_idle_connection_the_database_dropped_is_replaced_not_failed(
    postgres_url: str,
) -> None:
    engine = make_engine(postgres_url)
    ping_when_idle(engine, 0.2)  # a short interval for the test; the server's is IDLE_PING_S
    dropped = backend_pid(engine)
    terminate(postgres_url, dropped)
    time.sleep(0.3)  # idle past the interval: pinged, found dead, replaced
    assert backend_pid(engine) != dropped
    engine.dispose()


def test_a_connection_in_use_a_moment_ago_is_not_pinged(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    first = backend_pid(engine)
    assert backend_pid(engine) == first  # reused at once: no ping, so a dropped one ...
    terminate(postgres_url, first)
    with pytest.raises(exc.OperationalError):  # ... fails its next statement once
        backend_pid(engine)
    assert backend_pid(engine) != first  # and the pool has moved on to a new connection
    engine.dispose()


def test_one_statement_reads_open_no_transaction_on_postgresql(postgres_url: str) -> None:
    """Authentication's read runs in autocommit: no BEGIN before it, no ROLLBACK after."""
    from psycopg.pq import TransactionStatus

    engine = make_engine(postgres_url)
    for source, status in (
        (engine, TransactionStatus.INTRANS),
        (one_statement_reads(engine), TransactionStatus.IDLE),
    ):
        with source.connect() as conn:
            conn.execute(text("SELECT 1"))
            assert conn.connection.dbapi_connection.info.transaction_status == status  # type: ignore[union-attr]
    with engine.connect() as conn:  # the pool's connection is back to transactions
        conn.execute(text("SELECT 1"))
        assert conn.connection.dbapi_connection.info.transaction_status == TransactionStatus.INTRANS  # type: ignore[union-attr]
    engine.dispose()
