"""The loyalty ledger, shared by the embedded backend and loyalty_server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

from pos_client.ledger.ledger import Ledger, MemberRecord, build_member_view

__all__ = [
    "Ledger",
    "MemberRecord",
    "build_member_view",
    "make_engine",
    "sqlite_url",
    "writer",
]


def writer(engine: Engine) -> Engine:
    """The same engine, for transactions that write: SQLite takes the write lock at BEGIN."""
    return engine.execution_options(sqlite_begin="IMMEDIATE")


def sqlite_url(path: Path) -> str:
    return f"sqlite+pysqlite:///{path}"


def make_engine(url: str) -> Engine:
    """An engine for the ledger; SQLite gets WAL, a busy timeout and foreign keys."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
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
