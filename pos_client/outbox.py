"""Durable local outbox: one entry per sale (or enrollment, or action), SQLite WAL with
synchronous=FULL so an entry is on disk when `add` returns.

States: pending -> sending -> acked, or -> dead (permanent refusal, kept and shown to
staff until retried). Only the holder of the drain lock (an flock, released by the kernel
if the process dies) moves entries out of pending; on taking it, entries left in `sending`
by a crashed drainer go back to pending and are re-sent with the same key.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pos_client.domain import MemberView, member_view_from_json, member_view_to_json, utcnow
from pos_client.errors import CodedError
from pos_client.operations import OP_KINDS, canonical_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    member_id TEXT,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    expected_points INTEGER NOT NULL DEFAULT 0,
    redeem_points INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    error_code TEXT,
    last_error TEXT,
    result TEXT
);
CREATE INDEX IF NOT EXISTS ix_entries_state ON entries(state, next_attempt_at, seq);
CREATE INDEX IF NOT EXISTS ix_entries_member ON entries(member_id, state);
CREATE TABLE IF NOT EXISTS member_cache (
    lookup TEXT PRIMARY KEY,
    member_id TEXT NOT NULL,
    view TEXT NOT NULL,
    fetched_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_member_cache_member ON member_cache(member_id);
"""


class EntryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    ACKED = "acked"
    DEAD = "dead"


class OutboxError(CodedError):
    """Base for outbox problems: an English detail for staff and logs, a code for screens
    ("storage_full" when the disk is full, else "storage")."""

    default_code = "storage"


class OutboxCorrupt(OutboxError):
    pass


class OutboxUnavailable(OutboxError):
    """The outbox cannot record now (disk full, read-only): refuse the sale, lose nothing."""

    def __init__(self, message: str = "", code: str | None = None, **params: Any) -> None:
        full = STORAGE_ERRORS["database or disk is full"] in message
        super().__init__(message, code or ("storage_full" if full else None), **params)


class DrainBusy(OutboxError):
    pass


@dataclass(frozen=True)
class OutboxEntry:
    seq: int
    key: str
    kind: str
    member_id: str | None
    body: dict[str, Any]
    state: EntryState
    attempts: int
    expected_points: int
    redeem_points: int
    created_at: datetime
    updated_at: datetime
    error_code: str | None
    last_error: str | None
    result: dict[str, Any] | None


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    sending: int
    acked: int
    dead: int
    oldest_pending_at: datetime | None

    @property
    def unsent(self) -> int:
        return self.pending + self.sending

    def oldest_pending_age(self, now: datetime) -> float | None:
        if self.oldest_pending_at is None:
            return None
        return max(0.0, (now - self.oldest_pending_at).total_seconds())


def _ts(moment: datetime) -> str:
    # Fixed-width UTC text sorts like time, so SQLite compares it directly.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)  # Python 3.11 reads the trailing Z as UTC


STORAGE_ERRORS = {
    "database or disk is full": "the disk is full",
    "attempt to write a readonly database": "the outbox file is read-only",
    "disk I/O error": "a disk I/O error occurred",
    "unable to open database file": "the outbox file cannot be opened",
}


def describe_storage_error(exc: sqlite3.Error) -> str:
    text = str(exc)
    for needle, meaning in STORAGE_ERRORS.items():
        if needle in text:
            return meaning
    return text


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------ lifecycle

    def open(self) -> Outbox:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise OutboxUnavailable(f"outbox {self.path}: {describe_storage_error(exc)}") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if isinstance(exc, sqlite3.OperationalError) and any(
                needle in str(exc) for needle in STORAGE_ERRORS
            ):
                raise OutboxUnavailable(
                    f"outbox {self.path}: {describe_storage_error(exc)}"
                ) from None
            raise OutboxCorrupt(
                f"outbox {self.path} is damaged ({exc}); nothing was changed in it. "
                "Run `pos-client queue quarantine` to keep it aside and start a new one."
            ) from None
        self._conn = conn
        return self

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Outbox:
        return self.open() if self._conn is None else self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise OutboxError("outbox is not open")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise OutboxUnavailable(f"outbox: {describe_storage_error(exc)}") from None
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError):
                    raise
                raise OutboxUnavailable(
                    f"outbox: cannot record: {describe_storage_error(exc)}"
                ) from None
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------ recording

    def add(self, body: dict[str, Any], now: datetime | None = None) -> OutboxEntry:
        """Record an operation durably. Returns once the entry is on disk (fsync'd WAL).
        Adding the same key again with the same body returns the stored entry."""
        kind = body.get("type")
        key = body.get("key")
        if kind not in OP_KINDS or not isinstance(key, str) or not key:
            raise ValueError("an outbox entry needs a known type and a key")
        created = now or utcnow()
        moment = _ts(created)
        text = canonical_json(body)
        redemption = body.get("redemption") or {}
        expected_points = int(body.get("expected_points") or 0)
        redeem_points = int(redemption.get("points") or 0)
        try:
            with self._write() as conn:
                cursor = conn.execute(
                    "INSERT INTO entries (key, kind, member_id, body, expected_points,"
                    " redeem_points, created_at, updated_at, next_attempt_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        kind,
                        body.get("member_id"),
                        text,
                        expected_points,
                        redeem_points,
                        moment,
                        moment,
                        moment,
                    ),
                )
        except sqlite3.IntegrityError:
            existing = self.get(key)
            if existing is None or canonical_json(existing.body) != text:
                raise ValueError(f"outbox key {key} already holds another operation") from None
            return existing
        stored = _from_ts(moment)
        return OutboxEntry(
            seq=int(cursor.lastrowid or 0),
            key=key,
            kind=kind,
            member_id=body.get("member_id"),
            body=json.loads(text),
            state=EntryState.PENDING,
            attempts=0,
            expected_points=expected_points,
            redeem_points=redeem_points,
            created_at=stored,
            updated_at=stored,
            error_code=None,
            last_error=None,
            result=None,
        )

    # ------------------------------------------------------------ reading

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[OutboxEntry]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT seq, key, kind, member_id, body, state, attempts, expected_points,"
                " redeem_points, created_at, updated_at, error_code, last_error, result"
                f" FROM entries {sql}",
                params,
            ).fetchall()
        return [
            OutboxEntry(
                seq=row[0],
                key=row[1],
                kind=row[2],
                member_id=row[3],
                body=json.loads(row[4]),
                state=EntryState(row[5]),
                attempts=row[6],
                expected_points=row[7],
                redeem_points=row[8],
                created_at=_from_ts(row[9]),
                updated_at=_from_ts(row[10]),
                error_code=row[11],
                last_error=row[12],
                result=json.loads(row[13]) if row[13] else None,
            )
            for row in rows
        ]

    def get(self, key: str) -> OutboxEntry | None:
        rows = self._rows("WHERE key = ?", (key,))
        return rows[0] if rows else None

    def entries(self, state: EntryState | None = None, limit: int = 100) -> list[OutboxEntry]:
        if state is None:
            return self._rows("ORDER BY seq DESC LIMIT ?", (limit,))
        return self._rows("WHERE state = ? ORDER BY seq LIMIT ?", (state.value, limit))

    def stats(self) -> OutboxStats:
        with self._lock:
            counts = dict(
                self.conn.execute("SELECT state, count(*) FROM entries GROUP BY state").fetchall()
            )
            oldest = self.conn.execute(
                "SELECT min(created_at) FROM entries WHERE state IN ('pending', 'sending')"
            ).fetchone()[0]
        return OutboxStats(
            pending=counts.get("pending", 0),
            sending=counts.get("sending", 0),
            acked=counts.get("acked", 0),
            dead=counts.get("dead", 0),
            oldest_pending_at=_from_ts(oldest) if oldest else None,
        )

    def unsynced_for_member(self, member_id: str) -> tuple[int, int]:
        """(points expected to be earned, points to be redeemed) not yet acknowledged."""
        with self._lock:
            row = self.conn.execute(
                "SELECT coalesce(sum(expected_points), 0), coalesce(sum(redeem_points), 0)"
                " FROM entries WHERE member_id = ? AND state IN ('pending', 'sending', 'dead')",
                (member_id,),
            ).fetchone()
        return int(row[0]), int(row[1])

    # ------------------------------------------------------------ draining

    @contextmanager
    def drain_lock(self) -> Iterator[None]:
        """Exclusive right to drain, across threads and processes; DrainBusy if held."""
        lock_path = self.path.with_name(self.path.name + ".drain.lock")
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise DrainBusy("another process is draining this outbox") from None
                raise
            self._recover_sending()
            yield
        finally:
            os.close(descriptor)  # releases the flock

    def _recover_sending(self) -> int:
        with self._write() as conn:
            return conn.execute(
                "UPDATE entries SET state = 'pending' WHERE state = 'sending'"
            ).rowcount

    def claim(self, limit: int, now: datetime | None = None) -> list[OutboxEntry]:
        """Move up to `limit` due pending entries to sending, oldest first. Drainer only."""
        moment = _ts(now or utcnow())
        with self._write() as conn:
            keys = [
                row[0]
                for row in conn.execute(
                    "SELECT key FROM entries WHERE state = 'pending' AND next_attempt_at <= ?"
                    " ORDER BY seq LIMIT ?",
                    (moment, limit),
                ).fetchall()
            ]
            conn.executemany(
                "UPDATE entries SET state = 'sending', attempts = attempts + 1, updated_at = ?"
                " WHERE key = ?",
                [(moment, key) for key in keys],
            )
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        return self._rows(f"WHERE key IN ({marks}) ORDER BY seq", keys)

    def ack(self, key: str, result: dict[str, Any] | None, now: datetime | None = None) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE entries SET state = 'acked', result = ?, updated_at = ?,"
                " error_code = NULL, last_error = NULL WHERE key = ?",
                (canonical_json(result) if result else None, _ts(now or utcnow()), key),
            )

    def ack_many(self, acks: Sequence[tuple[str, dict[str, Any] | None]]) -> None:
        """Acknowledge a whole batch in one commit."""
        moment = _ts(utcnow())
        with self._write() as conn:
            conn.executemany(
                "UPDATE entries SET state = 'acked', result = ?, updated_at = ?,"
                " error_code = NULL, last_error = NULL WHERE key = ?",
                [(canonical_json(result) if result else None, moment, key) for key, result in acks],
            )

    def retry_later(
        self, keys: Sequence[str], error: str, next_attempt_at: datetime, code: str = "retry"
    ) -> None:
        with self._write() as conn:
            conn.executemany(
                "UPDATE entries SET state = 'pending', next_attempt_at = ?, error_code = ?,"
                " last_error = ?, updated_at = ? WHERE key = ? AND state = 'sending'",
                [(_ts(next_attempt_at), code, error, _ts(utcnow()), key) for key in keys],
            )

    def mark_dead(self, key: str, code: str, error: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE entries SET state = 'dead', error_code = ?, last_error = ?,"
                " updated_at = ? WHERE key = ?",
                (code, error, _ts(utcnow()), key),
            )

    def requeue_dead(self, key: str | None = None) -> int:
        """Staff action: send dead entries again (the same keys, so never twice)."""
        now = _ts(utcnow())
        with self._write() as conn:
            if key is None:
                cursor = conn.execute(
                    "UPDATE entries SET state = 'pending', next_attempt_at = ?, updated_at = ?"
                    " WHERE state = 'dead'",
                    (now, now),
                )
            else:
                cursor = conn.execute(
                    "UPDATE entries SET state = 'pending', next_attempt_at = ?, updated_at = ?"
                    " WHERE state = 'dead' AND key = ?",
                    (now, now, key),
                )
            return cursor.rowcount

    def make_due(self) -> int:
        """Staff action ("sync now"): every pending entry becomes due at once."""
        now = _ts(utcnow())
        with self._write() as conn:
            return conn.execute(
                "UPDATE entries SET next_attempt_at = ? WHERE state = 'pending'", (now,)
            ).rowcount

    def integrity_check(self) -> str:
        with self._lock:
            return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])

    # ------------------------------------------------------------ member cache

    def cache_member(self, lookup: str, view: MemberView) -> None:
        """Remember the last known member view for offline identification."""
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO member_cache (lookup, member_id, view, fetched_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT(lookup) DO UPDATE SET"
                    " member_id = excluded.member_id, view = excluded.view,"
                    " fetched_at = excluded.fetched_at",
                    (
                        lookup,
                        view.member_id,
                        canonical_json(member_view_to_json(view)),
                        _ts(view.as_of),
                    ),
                )
                conn.execute(
                    "UPDATE member_cache SET view = ?, fetched_at = ? WHERE member_id = ?",
                    (canonical_json(member_view_to_json(view)), _ts(view.as_of), view.member_id),
                )
        except OutboxUnavailable:
            pass  # the cache is a convenience; a full disk must not block identification

    def update_cached_balance(self, member_id: str, balance: int, as_of: datetime) -> None:
        """After an acknowledgement: the backend's balance becomes the last known one."""
        view = self.cached_member_by_id(member_id)
        if view is None or view.as_of > as_of:
            return
        fresh = replace(view, balance=balance, as_of=as_of)
        try:
            with self._write() as conn:
                conn.execute(
                    "UPDATE member_cache SET view = ?, fetched_at = ? WHERE member_id = ?",
                    (canonical_json(member_view_to_json(fresh)), _ts(as_of), member_id),
                )
        except OutboxUnavailable:
            pass

    def cached_member(self, lookup: str) -> MemberView | None:
        with self._lock:
            row = self.conn.execute(
                "SELECT view FROM member_cache WHERE lookup = ?", (lookup,)
            ).fetchone()
        return member_view_from_json(json.loads(row[0])) if row else None

    def cached_member_by_id(self, member_id: str) -> MemberView | None:
        with self._lock:
            row = self.conn.execute(
                "SELECT view FROM member_cache WHERE member_id = ? LIMIT 1", (member_id,)
            ).fetchone()
        return member_view_from_json(json.loads(row[0])) if row else None


def quarantine(path: Path, now: datetime | None = None) -> list[Path]:
    """Move a damaged outbox (and its WAL/SHM) aside for recovery; never deletes it."""
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%SZ")
    moved = []
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            target = path.with_name(f"{path.name}.corrupt-{stamp}{suffix}")
            source.rename(target)
            moved.append(target)
    return moved
