"""The loyalty ledger, shared by the embedded backend and loyalty_server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc

from pos_client.ledger.ledger import Ledger, MemberRecord, build_member_view

__all__ = [
    "Ledger",
    "MemberRecord",
    "build_member_view",
    "make_engine",
    "one_statement_reads",
    "ping_when_idle",
    "sqlite_url",
    "writer",
]


def writer(engine: Engine) -> Engine:
    """The same engine, for transactions that write: SQLite takes the write lock at BEGIN."""
    return engine.execution_options(sqlite_begin="IMMEDIATE")


def one_statement_reads(engine: Engine) -> Engine:
    """The same engine (the same pool) for reads of one statement: on PostgreSQL in
    autocommit, one round trip each instead of three (psycopg sends BEGIN on its own before
    the statement, and the pool a ROLLBACK when the connection comes back)."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def sqlite_url(path: Path) -> str:
    return f"sqlite+pysqlite:///{path}"


def make_engine(url: str) -> Engine:
    """An engine for the ledger; SQLite gets WAL, a busy timeout and foreign keys."""
    if not url.startswith("sqlite"):
        engine = create_engine(url)
        ping_when_idle(engine, IDLE_PING_S)
        return engine
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # A transaction that reads, then writes, must hold the write lock from the start
        # (writer(engine)): otherwise two writers deadlock on the upgrade and SQLite fails
        # one at once instead of waiting out the busy timeout. Reads stay deferred, so in
        # WAL mode they never wait for a writer.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


# A pooled connection unused this long is pinged before it is handed out (one round trip);
# a busy server's connections, reused within it, are not (pool_pre_ping pinged every
# checkout: a server request checks out three or four, 6 % of its CPU under load).
IDLE_PING_S = 5.0
_CHECKED_IN = "pos_client.ledger.checked_in"


def ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Ping a connection idle for `idle_s` at checkout; a dead one is replaced (the pool
    tries a new connection) rather than failing the request that got it. One that died
    within `idle_s` fails its statement once; SQLAlchemy then recycles the whole pool."""

    @event.listens_for(engine, "checkin")
    def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in = record.info.get(_CHECKED_IN)
        if checked_in is None or time.monotonic() - checked_in < idle_s:
            return  # new, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError(f"ping failed: {type(error).__name__}") from error
