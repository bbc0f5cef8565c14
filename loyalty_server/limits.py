"""Request bounds enforced before a body is parsed (by Content-Length, and while streaming),
and the rate limits and pairing lockout every server process shares through the database."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, func, literal_column, select, text
from starlette.concurrency import run_in_threadpool

from loyalty_server.schema import lockouts, rate_counters
from pos_client.ledger.schema import PerDialect

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]


class BodyLimit:
    """ASGI middleware: a request body over its path's limit is answered 413 before any
    parsing, as soon as Content-Length says so or the streamed bytes pass the limit. The
    body is read whole (it is small by then) and handed on to the app."""

    def __init__(self, app: ASGIApp, default: int, per_path: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        self.per_path = dict(per_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope.get("path", ""), self.default)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    await too_large(send, limit)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await too_large(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            following: Message = await receive()
            return following

        await self.app(scope, replay, send)


async def too_large(send: Send, limit: int) -> None:
    payload = json.dumps({"detail": f"request body over {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def clean_text(value: object, limit: int = 40) -> str:
    """A short, printable, encodable rendering of something a client sent (for a field path)."""
    text = str(value)[:limit]
    if text.isprintable():  # the usual case, checked in C (a surrogate is never printable)
        return text
    return "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else "?" for c in text)


def upsert(dialect: str, table: Table, values: dict[str, Any], update: dict[str, Any]) -> Any:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE: one statement on PostgreSQL and
    SQLite, never a unique violation when two writers insert the same row at once."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg = pg_insert(table).values(**values)
        return pg.on_conflict_do_update(index_elements=list(table.primary_key), set_=update)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    lite = sqlite_insert(table).values(**values)
    return lite.on_conflict_do_update(index_elements=list(table.primary_key), set_=update)


# Built once (every request takes room): a call pays for its parameters only.
_LOCK_KEY = text("SELECT pg_advisory_xact_lock(hashtext(:key))")
_USED = select(func.coalesce(func.sum(rate_counters.c.n), 0)).where(
    rate_counters.c.key == bindparam("key"), rate_counters.c.bucket > bindparam("since")
)
_ADD = PerDialect(
    lambda dialect: upsert(
        dialect,
        rate_counters,
        {"key": bindparam("key"), "bucket": bindparam("bucket"), "n": bindparam("n")},
        {"n": rate_counters.c.n + literal_column("excluded.n")},
    )
)


class SharedLimits:
    """Sliding one-minute limits and lockouts kept in the database, so every server process
    (uvicorn workers, servers behind one proxy) on one database counts the same hits.

    A limit is counted in per-second rows (`rate_counters`): taking room locks the key
    (an advisory transaction lock on PostgreSQL, the write lock on SQLite), sums the last
    minute and adds what it grants, in one short transaction of its own."""

    WINDOW_S = 60
    KEEP_S = 600  # rows older than this are pruned, at most once a minute per process

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.writer = engine.execution_options(sqlite_begin="IMMEDIATE")
        self.clock = clock
        self._pruned = 0.0

    def _lock_key(self, conn: Connection, key: str) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(_LOCK_KEY, {"key": key})

    def _used(self, conn: Connection, key: str, now: int) -> int:
        used = conn.execute(_USED, {"key": key, "since": now - self.WINDOW_S}).scalar_one()
        return int(used)

    def _add(self, conn: Connection, key: str, now: int, amount: int) -> None:
        conn.execute(_ADD[conn.dialect.name], {"key": key, "bucket": now, "n": amount})

    def take(self, key: str, want: int, limit: int) -> int:
        """Grant up to `want` hits of `limit` per minute for `key`; returns how many."""
        now = int(self.clock())
        with self.writer.begin() as conn:
            self._lock_key(conn, key)
            granted = max(0, min(want, limit - self._used(conn, key, now)))
            if granted:
                self._add(conn, key, now, granted)
        self._prune(now)
        return granted

    def allow(self, key: str, limit: int) -> bool:
        return self.take(key, 1, limit) == 1

    def locked_for(self, key: str) -> float:
        """Seconds this key is still locked out (0: not locked)."""
        with self.engine.connect() as conn:
            until = conn.execute(select(lockouts.c.until).where(lockouts.c.key == key)).scalar()
        if until is None:
            return 0.0
        return max(float(until.timestamp()) - self.clock(), 0.0)

    def fail(self, key: str, failures: int, lockout_s: float) -> tuple[int, bool]:
        """Count a failure; past `failures` in a minute the key is locked out for
        `lockout_s` (and its count starts again). Returns (count, whether it locked now)."""
        moment = self.clock()
        now = int(moment)
        with self.writer.begin() as conn:
            self._lock_key(conn, key)
            self._add(conn, key, now, 1)
            count = self._used(conn, key, now)
            if count < failures:
                return count, False
            until = datetime.fromtimestamp(moment + lockout_s, UTC)
            conn.execute(
                upsert(
                    self.engine.dialect.name,
                    lockouts,
                    {"key": key, "until": until},
                    {"until": until},
                )
            )
            conn.execute(rate_counters.delete().where(rate_counters.c.key == key))
        return count, True

    def _prune(self, now: int) -> None:
        if now - self._pruned < 60:
            return
        self._pruned = now
        with self.writer.begin() as conn:
            conn.execute(rate_counters.delete().where(rate_counters.c.bucket < now - self.KEEP_S))
            conn.execute(
                lockouts.delete().where(lockouts.c.until < datetime.fromtimestamp(now, UTC))
            )


class PairingGuard:
    """Failed pairing attempts per client address: past `failures` in a minute, the address
    is locked out for `lockout_s` (every attempt refused before any database work but this
    read, a right code too). Kept in the database (SharedLimits): every server process sees
    the same count. Never sees or keeps a code."""

    def __init__(self, shared: SharedLimits, failures: int, lockout_s: float) -> None:
        self.shared = shared
        self.failures = failures
        self.lockout_s = lockout_s

    def locked_for(self, address: str) -> float:
        """Seconds this address is still locked out (0: it may try)."""
        return self.shared.locked_for("pair:" + address[:128])

    def failed(self, address: str) -> tuple[int, bool]:
        """Count a failure; returns (failures in the last minute, whether it locked now)."""
        return self.shared.fail("pair:" + address[:128], self.failures, self.lockout_s)


def mask_card(number: str | None) -> str | None:
    """A card number as lookups answer it: its last four characters only ('**** 1234')."""
    if not number:
        return number
    return "**** " + number[-4:] if len(number) > 4 else "****"


class LockoutGate:
    """ASGI middleware: a pairing request from a locked-out address is answered 429 before
    routing, body parsing or any database work (the cheapest refusal there is)."""

    def __init__(self, app: ASGIApp, guard: PairingGuard, path: str, max_body: int) -> None:
        self.app = app
        self.guard = guard
        self.path = path
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        locked = 0.0
        if scope["type"] == "http" and scope.get("path") == self.path:
            address = client[0] if client else "unknown"
            locked = await run_in_threadpool(self.guard.locked_for, address)
        if not locked:
            await self.app(scope, receive, send)
            return
        # Read what was sent (small, or the connection is closed), so keep-alive stays sane.
        size, complete = 0, False
        while size <= self.max_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                complete = True
                break
        payload = json.dumps(
            {"detail": "too many failed pairing attempts from this address; wait and try again"}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"retry-after", str(int(locked) + 1).encode()),
        ]
        if not complete:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
