"""Durable local outbox: one entry per sale (or enrollment, or action), SQLite WAL with
synchronous=FULL so an entry is on disk when `add` returns.

States: pending -> sending -> acked, or -> dead (permanent refusal, kept and shown to
staff until retried). Only the holder of the drain lock (an flock, released by the kernel
if the process dies) moves entries out of pending; on taking it, entries left in `sending`
by a crashed drainer go back to pending and are re-sent with the same key.

Damage is refused, never silently absorbed: an entry whose stored body cannot be decoded
goes to dead letter with its reason (the drain goes on with the others); a manifest beside
the file (`outbox.sqlite.manifest`: the high-water count of entries ever written), and a
second record of it out of the outbox's glob (`sales-written.outbox.sqlite.json`), make an
outbox that vanished, was emptied or replaced by an older copy an error, not a fresh start
(an unreadable record is an error too); a write-ahead log or its index deleted under a
running terminal is refused by other processes (`in-use.outbox.sqlite.lock`), detected by
the terminal, saved by a checkpoint and written to `outbox.sqlite.incidents` for staff. A
dead enrollment is scrubbed of the person's details.

The file carries its schema version (PRAGMA user_version) and is upgraded on open by the
steps in UPGRADES, one transaction each; a file from a newer release is refused untouched.
Open time does not grow with age: the full check (quick_check) runs only after an unclean
stop (a clean-stop flag the last closer sets) or before an upgrade, `doctor` runs it on
demand, and every other statement at open reads an index. Acknowledged entries are pruned
after a retention by `prune_acked` in short batches (the sync worker's housekeeping); the
count of entries ever written (sqlite_sequence, the manifest) never goes down.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pos_client.domain import MemberView, member_view_from_json, member_view_to_json, utcnow
from pos_client.errors import CodedError
from pos_client.files import private_dir, private_file, write_private_atomically
from pos_client.operations import OP_KINDS, canonical_json, sendable_problem

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
# Columns added after the first release, for outboxes made before them (upgrade step 2).
MIGRATIONS = {
    "server_errors": "ALTER TABLE entries ADD COLUMN server_errors INTEGER NOT NULL DEFAULT 0"
}


def _step_tables(conn: sqlite3.Connection) -> int:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    return 0


def _step_columns(conn: sqlite3.Connection) -> int:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(entries)")}
    for column, ddl in MIGRATIONS.items():
        if column not in columns:
            conn.execute(ddl)
    return 0


def _step_prune_acked_enrollments(conn: sqlite3.Connection) -> int:
    # Since this step every acknowledgement prunes an enrollment as it is stored.
    return conn.execute(
        f"UPDATE entries SET body = {PRUNED_ENROLL} WHERE kind = 'enroll'"
        " AND state = 'acked' AND body NOT LIKE '%\"pruned\":true%'"
    ).rowcount


def _step_scrub_dead_enrollments(conn: sqlite3.Connection) -> int:
    # Enrollments an older release left dead with the person's details in them; since this
    # step every way to dead letter scrubs one as it goes.
    return Outbox._scrub_enrollments(
        conn, "state = 'dead' AND body NOT LIKE '%\"scrubbed\":true%'", ()
    )


def _step_housekeeping(conn: sqlite3.Connection) -> int:
    # Pruning acked entries by age and expiring cached members read an index, not the file;
    # the clean-stop flag spares the full check at an open after a clean stop.
    conn.execute(
        "CREATE INDEX IF NOT EXISTS ix_entries_acked ON entries(updated_at) WHERE state = 'acked'"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS ix_member_cache_fetched ON member_cache(fetched_at)")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS outbox_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
    )
    conn.execute("INSERT OR IGNORE INTO outbox_meta (name, value) VALUES ('clean', '0')")
    return 0


def _step_mask_stored_cards(conn: sqlite3.Connection) -> int:
    # Results an older release stored with the whole card number; since this step every
    # acknowledgement masks it as it is stored.
    return conn.execute(MASK_STORED_CARDS).rowcount


# The outbox's schema, step by step: an outbox at version N (PRAGMA user_version; 0 for one
# made before versions, up to release 2026-11-25) runs steps N+1.. on open, each in its own
# transaction. Append new steps; never change or reorder one that shipped. Each returns the
# rows it scrubbed of personal details (their old frames are then cut from the log).
UPGRADES: tuple[tuple[str, Callable[[sqlite3.Connection], int]], ...] = (
    ("tables and indexes", _step_tables),
    ("server error count per entry", _step_columns),
    ("acknowledged enrollments pruned of the person's details", _step_prune_acked_enrollments),
    ("dead enrollments scrubbed of the person's details", _step_scrub_dead_enrollments),
    ("indexes for housekeeping, clean-stop flag", _step_housekeeping),
    ("card numbers of acknowledged enrollments masked", _step_mask_stored_cards),
)
SCHEMA_VERSION = len(UPGRADES)

CORRUPT_ENTRY = "corrupt_entry"
PRUNE_BATCH = 500  # acked entries deleted per transaction by housekeeping
# An enrollment, once the backend has it, keeps only what identifies the entry: its phone
# key, names, birthday and consent leave the terminal (a stolen outbox gives none back).
PRUNED_ENROLL = (
    "CASE WHEN kind = 'enroll' THEN json_object('type', 'enroll', 'key', key,"
    " 'member_id', member_id, 'pruned', json('true')) ELSE body END"
)

# An acknowledged enrollment's result keeps its card number's last 4 digits only.
CARD_MASK = "*" * 9
# The same for results an older release stored whole, on open: bounded, a batch per open.
MASK_STORED_CARDS = (
    "UPDATE entries SET result = json_set(result, '$.card_number',"
    f" '{CARD_MASK}' || substr(json_extract(result, '$.card_number'), -4))"
    " WHERE seq IN (SELECT seq FROM entries WHERE kind = 'enroll' AND state = 'acked'"
    ' AND result LIKE \'%"card_number":"%\' AND CASE WHEN json_valid(result)'
    " THEN json_type(result, '$.card_number') = 'text'"
    f" AND json_extract(result, '$.card_number') NOT LIKE '{CARD_MASK}%' ELSE 0 END)"
)

log = logging.getLogger(__name__)


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


class OutboxMissing(OutboxCorrupt):
    """The outbox vanished, was emptied or replaced by an older copy while the manifest
    says it held sales: refused, never started afresh behind staff's back."""


class OutboxTooNew(OutboxError):
    """The outbox was written by a newer release (a higher schema version): refused and
    left exactly as it is."""


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
    damage: str | None = None  # why the stored body could not be read (then body is {})


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


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


MANIFEST_MAX_BYTES = 4096
RECORD_BYTES = 64


class ManifestUnreadable(OutboxCorrupt):
    """The manifest (or the second record of it) cannot be read: the outbox's own count
    is not trusted in its place; staff decide (`queue reseal` or `queue quarantine`)."""


def witness_path(path: Path) -> Path:
    """The second record of the high-water count, beside the outbox under a name that a
    glob of the outbox's own name (`outbox.sqlite*`) does not match, so removing the
    outbox with its manifest still leaves a witness that it held sales."""
    return path.with_name(f"sales-written.{path.name}.json")


def in_use_path(path: Path) -> Path:
    """Every process with the outbox open holds a shared flock on this file (named so a
    glob of the outbox's name leaves it): another process finding it held while the
    write-ahead log or its index is gone knows a running terminal lost them."""
    return path.with_name(f"in-use.{path.name}.lock")


def held_by_another(path: Path) -> bool:
    """Whether an open outbox (in this or another process) holds the in-use lock."""
    try:
        descriptor = os.open(in_use_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(descriptor)
    return False


def _only_holder(descriptor: int, keep: bool = False) -> bool:
    """Whether no other descriptor holds the in-use flock: an exclusive lock is tried
    (kept with `keep`, else the descriptor is left unlocked: a failed conversion drops
    the shared lock on Linux, so the caller takes it again)."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    if not keep:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
    return True


def _read_count(file: Path) -> int | None:
    """The count in a manifest file: 0 if there is none, None if it cannot be read."""
    for _attempt in range(3):  # a record read while it is rewritten in place: read again
        try:
            with file.open("rb") as handle:
                raw = handle.read(MANIFEST_MAX_BYTES + 1)
        except FileNotFoundError:
            return 0
        except OSError:
            return None
        try:
            data = json.loads(raw) if len(raw) <= MANIFEST_MAX_BYTES else None
        except ValueError:
            continue  # read mid-rewrite, or damaged: read again, then give up
        written = data.get("written") if isinstance(data, dict) else None
        if type(written) is not int or written < 0:
            continue
        # Since records are rewritten in place, each holds its count twice: a torn read (or
        # a torn write at a power cut) shows two counts; a record of an older release, one.
        again = data.get("again", written) if isinstance(data, dict) else None
        if again == written:
            return written
    return None


def _record(written: int) -> bytes:
    """A count record: the same length for every count, so it is rewritten in place."""
    return (
        json.dumps({"written": written, "again": written}).ljust(RECORD_BYTES - 1) + "\n"
    ).encode()


def read_manifests(path: Path) -> tuple[int | None, int | None]:
    """(manifest count, second record's count) for the outbox at `path`: 0 for a file that
    is absent, None for one that cannot be read."""
    return _read_count(_sibling(path, ".manifest")), _read_count(witness_path(path))


def read_manifest(path: Path) -> int:
    """The high-water count of entries ever written to the outbox at `path` (0: none),
    the higher of its two records. ManifestUnreadable if either cannot be read."""
    manifest, witness = read_manifests(path)
    files = {_sibling(path, ".manifest"): manifest, witness_path(path): witness}
    for file, count in files.items():
        if count is None:
            others = [
                f"{other} says {value} sale(s) were written"
                if value is not None
                else f"{other} cannot be read either"
                for other, value in files.items()
                if other != file and (value is None or other.exists())
            ]
            raise ManifestUnreadable(
                f"the outbox's record of sales written, {file}, cannot be read; refusing "
                f"to trust the outbox {path} in its place (it may be an older copy). "
                + (f"The other record, {others[0]}. " if others else "There is no other record. ")
                + "If the outbox is the right file, run `pos-client queue reseal` to write "
                "the records again from it (refused if it holds fewer sales than a readable "
                "record); otherwise restore the files from a backup, or run `pos-client "
                "queue quarantine` to keep them aside and start afresh."
            )
    return max(manifest or 0, witness or 0)


def _write_count(target: Path, written: int, durable: bool) -> None:
    # Written whole and renamed into place, fsync'd with its folder: the first record, any
    # rewrite at open, and a record found deleted while open. Later counts are written in
    # place over it (Outbox._save_manifest): one small pwrite, where a rename of both per
    # sale cost ~2 ms (~5x a bare fsync) and an fsync of both ~6x. A record lagging after a
    # power cut is safe; a torn one reads as two different counts and is unreadable.
    write_private_atomically(target, _record(written), durable=durable)


def write_manifest(path: Path, written: int, durable: bool) -> None:
    """Record the high-water count in the manifest and in its second record."""
    _write_count(_sibling(path, ".manifest"), written, durable)
    _write_count(witness_path(path), written, durable)


def wal_frames_in_shm(path: Path) -> int:
    """Frames the shared-memory index says the write-ahead log holds (0 if no index)."""
    try:
        with _sibling(path, "-shm").open("rb") as handle:
            header = handle.read(48)
    except OSError:
        return 0
    if len(header) < 48 or header[12] != 1:  # isInit
        return 0
    return int(struct.unpack_from("=I", header, 16)[0])


def record_incident(path: Path, text: str) -> None:
    """Append one line for staff (doctor shows it until the file is removed)."""
    try:
        descriptor = os.open(
            _sibling(path, ".incidents"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        with os.fdopen(descriptor, "a") as handle:
            handle.write(f"{_ts(utcnow())} {text}\n")
    except OSError as exc:
        log.error("cannot record an outbox incident (%s): %s", exc.strerror, text)


def read_incidents(path: Path, limit: int = 65536) -> list[str]:
    """The incident lines recorded for the outbox at `path` (the last `limit` bytes)."""
    try:
        with _sibling(path, ".incidents").open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            raw = handle.read(limit)
    except OSError:
        return []
    lines = raw.decode("utf-8", errors="replace").splitlines()
    return lines[1:] if size > limit and lines else lines


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._written = 0  # the manifest's high-water count as last written
        self._records: dict[Path, int] = {}  # count files kept open to rewrite in place
        self._records_paths: tuple[Path, ...] = (
            _sibling(self.path, ".manifest"),
            witness_path(self.path),
        )
        self._names = {suffix: str(_sibling(self.path, suffix)) for suffix in ("-wal", "-shm")}
        self._wal_id: tuple[int, int] | None = None
        self._shm_id: tuple[int, int] | None = None
        self._in_use: int | None = None  # the descriptor holding the in-use flock
        self.incident: str | None = None  # the last damage noticed while open, for staff
        self.checked = False  # whether the last open ran the full check (an unclean stop)

    # ------------------------------------------------------------ lifecycle

    def _refuse_damage_before_open(self) -> None:
        """An outbox that vanished or was emptied while the manifest says it held sales, or
        a write-ahead log deleted while its index still counts frames: refuse."""
        written = read_manifest(self.path)
        where = f"outbox {self.path}"
        if written:
            if not self.path.exists():
                raise OutboxMissing(
                    f"{where} is missing, but this data folder's {_record_name(self.path)} "
                    f"says {written} sale(s) were recorded in it; refusing to start a new, "
                    "empty one. Restore the file, or run `pos-client queue quarantine` to "
                    "accept the loss."
                )
            if self.path.stat().st_size == 0:
                kept = quarantine(self.path, manifest=False)
                raise OutboxMissing(
                    f"{where} was emptied (0 bytes), but this data folder's manifest says "
                    f"{written} sale(s) were recorded in it; kept aside as "
                    f"{', '.join(str(p) for p in kept)}. Restore the outbox from a backup, or "
                    "run `pos-client queue quarantine` to accept the loss and start afresh."
                )
        frames = wal_frames_in_shm(self.path)
        if frames and self.path.exists() and not _sibling(self.path, "-wal").exists():
            raise OutboxCorrupt(
                f"{where}: its write-ahead log was deleted while its index still counts "
                f"{frames} frame(s) (recent sales may live only in a running terminal); "
                "refusing to use it. Stop every terminal process on this folder cleanly "
                "(it saves the log), then run `pos-client doctor` again."
            )
        missing = [
            _sibling(self.path, suffix).name
            for suffix in ("-wal", "-shm")
            if not _sibling(self.path, suffix).exists()
        ]
        if missing and self.path.exists() and held_by_another(self.path):
            raise OutboxCorrupt(
                f"{where}: {' and '.join(missing)} deleted while a running terminal has the "
                "outbox open; refusing to use it (its figures here would be stale, and a "
                "sale recorded here could be lost). The running terminal saves its log on its "
                "next write or sync (within seconds) and records the incident: run this "
                "again then, or stop that terminal cleanly."
            )

    def open(self) -> Outbox:
        private_dir(self.path.parent)
        self._refuse_damage_before_open()
        private_file(self.path)
        try:
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise OutboxUnavailable(f"outbox {self.path}: {describe_storage_error(exc)}") from None
        self.checked = False
        try:
            # Read before anything is written: a file from a newer release is left as it is.
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise OutboxTooNew(
                    f"outbox {self.path} was written by a newer release of pos-client (outbox "
                    f"schema version {version}; this release knows up to {SCHEMA_VERSION}); "
                    "refusing to open it, nothing was changed in it. Run the newer release "
                    "on this data folder (its sales are all kept there)."
                )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA secure_delete=ON")  # pruned data is overwritten, not freed
            conn.execute("PRAGMA journal_size_limit=0")  # a reset log is cut, old frames go
            alone = self._hold_in_use()  # the log and its index exist now
            # The full check costs a read of the whole file: only after an unclean stop
            # (the last process did not close it) or before an upgrade; `doctor` on demand.
            if version < SCHEMA_VERSION or (alone and not self._closed_cleanly(conn)):
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise sqlite3.DatabaseError(check)
                self.checked = True
            scrubbed = self._upgrade(conn, version)
            if self._closed_cleanly(conn):
                conn.execute("UPDATE outbox_meta SET value = '0' WHERE name = 'clean'")
            written = self._high_water(conn)
        except (sqlite3.DatabaseError, OutboxError) as exc:
            self._release_in_use()
            conn.close()
            if isinstance(exc, OutboxError):
                raise
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
        try:
            recorded = read_manifest(self.path)
        except OutboxError:
            self._release_in_use()
            conn.close()
            raise
        if written < recorded:
            self._release_in_use()
            conn.close()
            raise OutboxMissing(
                f"outbox {self.path} holds {written} sale(s) ever written, but this data "
                f"folder's {_record_name(self.path)} says {recorded}: it was emptied or "
                "replaced by an older copy; refusing to use it. Restore the right file, or "
                "run `pos-client queue quarantine` to keep it aside and start afresh."
            )
        self._conn = conn
        # A record removed or behind the outbox (a manifest deleted alone, a write lost to
        # a power cut) is written again now, both records alike.
        self._written = 0 if read_manifests(self.path) != (written, written) else written
        self._wal_id = self._wal_identity()
        self._shm_id = self._identity("-shm")
        self._save_manifest(written)
        for suffix in ("-wal", "-shm"):
            sibling = _sibling(self.path, suffix)
            if sibling.exists():
                private_file(sibling)
        if scrubbed:
            self._drop_old_frames()
        return self

    @staticmethod
    def _closed_cleanly(conn: sqlite3.Connection) -> bool:
        try:
            row = conn.execute("SELECT value FROM outbox_meta WHERE name = 'clean'").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return False  # made before the flag existed
            raise
        return bool(row and row[0] == "1")

    def _upgrade(self, conn: sqlite3.Connection, version: int) -> int:
        """Bring an outbox made by an earlier release to this one, step by step, each step
        in its own transaction with the version it reaches. Rows scrubbed on the way."""
        scrubbed = 0
        for number, (what, step) in enumerate(UPGRADES[version:], start=version + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                scrubbed += step(conn)
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if version:
                log.info("outbox %s upgraded to version %d: %s", self.path, number, what)
        return scrubbed

    def _hold_in_use(self) -> bool:
        """Take the shared in-use lock; whether no other open outbox holds it (so this one
        decides if the last stop was clean). Taken once the log and its index exist,
        released before the connection closes (which removes them): another opener never
        sees the lock held without them."""
        try:
            descriptor = os.open(in_use_path(self.path), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("cannot mark the outbox in use: %s", exc.strerror)
            return False  # cannot tell: the full check runs
        alone = _only_holder(descriptor)
        fcntl.flock(descriptor, fcntl.LOCK_SH)  # waits for a last closer marking it clean
        self._in_use = descriptor
        return alone

    def _release_in_use(self) -> None:
        if self._in_use is not None:
            os.close(self._in_use)
            self._in_use = None

    @staticmethod
    def _high_water(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entries'").fetchone()
        return int(row[0]) if row else 0

    def _save_manifest(self, written: int) -> None:
        if written <= self._written or written == 0:
            return
        try:
            targets = self._records_paths
            if self._written == 0:  # the first record, or one found wrong at open
                write_manifest(self.path, written, durable=True)
                self._close_records()
                for target in targets:
                    self._records[target] = os.open(target, os.O_WRONLY)
                targets = ()
            record = _record(written)
            for target in targets:
                descriptor = self._records.get(target)
                if descriptor is None or os.fstat(descriptor).st_nlink == 0:
                    # Deleted or replaced while open: made again whole, then kept open.
                    if descriptor is not None:
                        os.close(descriptor)
                        self._records.pop(target)
                    _write_count(target, written, durable=True)
                    self._records[target] = os.open(target, os.O_WRONLY)
                else:
                    os.pwrite(descriptor, record, 0)
        except OSError as exc:  # the sale is on disk already; the marker is a safeguard
            log.warning("cannot update the outbox manifest: %s", exc.strerror)
            return
        self._written = written

    def _close_records(self) -> None:
        for descriptor in self._records.values():
            os.close(descriptor)
        self._records.clear()

    def _wal_identity(self) -> tuple[int, int] | None:
        return self._identity("-wal")

    def _identity(self, suffix: str) -> tuple[int, int] | None:
        try:  # by name as text: checked on every write, pathlib's cost shows per sale
            info = os.stat(self._names[suffix])
        except OSError:
            return None
        return (info.st_dev, info.st_ino)

    def check_wal(self) -> str | None:
        """Detect a write-ahead log deleted or replaced under this open outbox. If so, save
        what it held into the main file (checkpoint through our still-open handle), reopen
        on a fresh log, record the incident, and return its description."""
        with self._lock:
            if self._conn is None or self._wal_id is None:
                return None
            now = self._wal_identity()
            shm_now = self._identity("-shm")
            shm_changed = self._shm_id is not None and shm_now != self._shm_id
            if now == self._wal_id and not shm_changed:
                return None
            lost = now if now != self._wal_id else shm_now
            what = "deleted" if lost is None else "replaced"
            if now == self._wal_id:  # the log is in place; its index went
                what = f"left in place but its index {_sibling(self.path, '-shm').name} was {what}"
            before = self._summary()
            try:
                busy, frames, saved = self._conn.execute(
                    "PRAGMA wal_checkpoint(TRUNCATE)"
                ).fetchone()
                outcome = f"checkpoint: {saved} of {frames} frame(s)"
                if busy:
                    outcome += " (blocked by another process: some may be lost)"
            except sqlite3.Error as exc:
                outcome = f"checkpoint failed ({describe_storage_error(exc)})"
            text = (
                f"the outbox's write-ahead log {_sibling(self.path, '-wal')} was {what} under "
                f"a running terminal (pid {os.getpid()}); {outcome}"
            )
            self._release_in_use()
            self._conn.close()  # the last handle saves what the log held, as it closes
            self._conn = None
            try:
                self.open()
            except OutboxError as exc:
                text += f"; held before: {before}; cannot reopen: {exc}"
                raise
            else:
                after = self._summary()
                # What staff need: whether the figures survived, read back from the file.
                text += (
                    f"; reopened on a new log with every entry kept ({after})"
                    if after == before
                    else f"; reopened on a new log, but it held {before} and now {after}:"
                    " check the queue"
                )
            finally:
                log.error("%s", text)
                record_incident(self.path, text)
                self.incident = text
            return text

    def _summary(self) -> str:
        with self._lock:
            counts = dict(
                self.conn.execute(
                    "SELECT CAST(state AS BLOB), count(*) FROM entries GROUP BY state"
                ).fetchall()
            )
        return ", ".join(
            f"{state.value} {counts.get(state.value.encode(), 0)}" for state in EntryState
        )

    def close(self) -> None:
        with self._lock:
            # The last process to close marks the stop clean (holding the in-use lock
            # alone, so no opener reads the flag meanwhile); the next open skips the full
            # check. A crash leaves it unset.
            last = self._in_use is not None and _only_holder(self._in_use, keep=True)
            if self._conn is not None and last:
                try:
                    self._conn.execute("UPDATE outbox_meta SET value = '1' WHERE name = 'clean'")
                except sqlite3.Error as exc:
                    log.info("outbox not marked closed cleanly: %s", exc)
            self._release_in_use()
            self._close_records()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._wal_id = None
            self._shm_id = None

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
            self.check_wal()
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise OutboxUnavailable(f"outbox: {describe_storage_error(exc)}") from None
            try:
                yield conn
                conn.execute("COMMIT")
                if self._wal_id is None:
                    self._wal_id = self._wal_identity()
                if self._shm_id is None:
                    self._shm_id = self._identity("-shm")
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
        self._save_manifest(int(cursor.lastrowid or 0))
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
        # Bodies are read as bytes and decoded here, so one damaged entry is reported as
        # such instead of failing the whole query ("Could not decode to UTF-8").
        with self._lock:
            rows = self.conn.execute(
                "SELECT seq, CAST(key AS BLOB), CAST(kind AS BLOB), CAST(member_id AS BLOB),"
                " CAST(body AS BLOB), CAST(state AS BLOB), attempts, expected_points,"
                " redeem_points, CAST(created_at AS BLOB), CAST(updated_at AS BLOB),"
                " CAST(error_code AS BLOB), CAST(last_error AS BLOB),"
                " CAST(result AS BLOB) FROM entries " + sql,
                params,
            ).fetchall()
        return [_entry(row) for row in rows]

    def get(self, key: str) -> OutboxEntry | None:
        rows = self._rows("WHERE key = ?", (key,))
        return rows[0] if rows else None

    def entries(self, state: EntryState | None = None, limit: int = 100) -> list[OutboxEntry]:
        if state is None:
            return self._rows("ORDER BY seq DESC LIMIT ?", (limit,))
        return self._rows("WHERE state = ? ORDER BY seq LIMIT ?", (state.value, limit))

    def newest_dead(self, limit: int) -> list[OutboxEntry]:
        """The entries most recently sent to dead letter, newest first."""
        return self._rows(
            "WHERE state = 'dead' ORDER BY updated_at DESC, seq DESC LIMIT ?", (limit,)
        )

    def stats(self) -> OutboxStats:
        with self._lock:
            counts = {
                _text(state): count
                for state, count in self.conn.execute(
                    "SELECT CAST(state AS BLOB), count(*) FROM entries GROUP BY state"
                ).fetchall()
            }
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
            # A dead sale's points will not arrive unless it is resent: not "pending". A dead
            # redemption still holds its points back, so they cannot be spent twice.
            row = self.conn.execute(
                "SELECT coalesce(sum(CASE WHEN state != 'dead' THEN expected_points END), 0),"
                " coalesce(sum(redeem_points), 0)"
                " FROM entries WHERE member_id = ? AND state IN ('pending', 'sending', 'dead')",
                (member_id,),
            ).fetchone()
        return int(row[0]), int(row[1])

    def offer_uses_since(self, member_id: str, since: datetime) -> dict[str, int]:
        """Uses of partner offers in the member's sales that a view read at `since` does not
        count yet: those not acknowledged (as the till applied them), and those acknowledged
        after it (as the ledger credited them)."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT CAST(body AS BLOB), CAST(result AS BLOB), state FROM entries"
                " WHERE member_id = ? AND kind = 'sale' AND (state IN ('pending', 'sending')"
                " OR (state = 'acked' AND updated_at > ?))",
                (member_id, _ts(since)),
            ).fetchall()
        uses: dict[str, int] = {}
        for body, result, state in rows:
            try:
                if _text(state) == "acked":
                    credited = json.loads(result or b"{}").get("offers") or []
                    offers = [o.get("offer_id") for o in credited if isinstance(o, dict)]
                else:
                    offers = json.loads(body).get("offers") or []
            except (ValueError, AttributeError, TypeError):  # damaged: the drain reports it
                continue
            for offer_id in offers if isinstance(offers, list) else []:
                if isinstance(offer_id, str):
                    uses[offer_id] = uses.get(offer_id, 0) + 1
        return uses

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
        """Move up to `limit` due pending entries to sending, oldest first. Drainer only.
        An entry whose stored body cannot be read goes to dead letter with the reason."""
        return self.claim_counting_damage(limit, now)[0]

    def claim_counting_damage(
        self, limit: int, now: datetime | None = None
    ) -> tuple[list[OutboxEntry], int]:
        """`claim`, and how many damaged entries it sent to dead letter on the way."""
        dead = 0
        while True:
            claimed = [_checked(entry) for entry in self._claim(limit, now)]
            damaged = [entry for entry in claimed if entry.damage]
            dead += len(damaged)
            for entry in damaged:
                with self._write() as conn:
                    conn.execute(
                        "UPDATE entries SET state = 'dead', error_code = ?, last_error = ?,"
                        " updated_at = ? WHERE seq = ?",
                        (CORRUPT_ENTRY, entry.damage, _ts(utcnow()), entry.seq),
                    )
                    scrubbed = self._scrub_enrollments(conn, "seq = ?", (entry.seq,))
                if scrubbed:
                    self._drop_old_frames()
                log.error("outbox entry seq %d is damaged: %s", entry.seq, entry.damage)
            if not damaged or len(damaged) < len(claimed):
                return [entry for entry in claimed if not entry.damage], dead

    def _claim(self, limit: int, now: datetime | None) -> list[OutboxEntry]:
        moment = _ts(now or utcnow())
        with self._write() as conn:  # by seq: a damaged key must not stop the claim
            seqs = [
                row[0]
                for row in conn.execute(
                    "SELECT seq FROM entries WHERE state = 'pending' AND next_attempt_at <= ?"
                    " ORDER BY seq LIMIT ?",
                    (moment, limit),
                ).fetchall()
            ]
            conn.executemany(
                "UPDATE entries SET state = 'sending', attempts = attempts + 1, updated_at = ?"
                " WHERE seq = ?",
                [(moment, seq) for seq in seqs],
            )
        if not seqs:
            return []
        marks = ",".join("?" * len(seqs))
        return self._rows(f"WHERE seq IN ({marks}) ORDER BY seq", seqs)

    def ack(self, key: str, result: dict[str, Any] | None, now: datetime | None = None) -> None:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE entries SET state = 'acked', result = ?, updated_at = ?,"
                f" error_code = NULL, last_error = NULL, body = {PRUNED_ENROLL} WHERE key = ?"
                " RETURNING kind",
                (stored_result(result), _ts(now or utcnow()), key),
            )
            pruned = any(row[0] == "enroll" for row in cursor.fetchall())
        if pruned:
            self._drop_old_frames()

    def ack_many(self, acks: Sequence[tuple[str, dict[str, Any] | None]]) -> None:
        """Acknowledge a whole batch in one commit."""
        moment = _ts(utcnow())
        with self._write() as conn:
            conn.executemany(
                "UPDATE entries SET state = 'acked', result = ?, updated_at = ?,"
                f" error_code = NULL, last_error = NULL, body = {PRUNED_ENROLL} WHERE key = ?",
                [(stored_result(result), moment, key) for key, result in acks],
            )
            marks = ",".join("?" * len(acks))
            pruned = (
                acks
                and conn.execute(
                    f"SELECT 1 FROM entries WHERE kind = 'enroll' AND key IN ({marks}) LIMIT 1",
                    [key for key, _result in acks],
                ).fetchone()
            )
        if pruned:
            self._drop_old_frames()

    def _drop_old_frames(self) -> None:
        """Checkpoint and cut the write-ahead log, so the frames still holding a pruned
        body leave the disk now (best effort: a reader elsewhere may delay it)."""
        with self._lock:
            try:
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.Error as exc:
                log.info("outbox checkpoint after pruning deferred: %s", exc)

    def retry_later(
        self, keys: Sequence[str], error: str, next_attempt_at: datetime, code: str = "retry"
    ) -> None:
        with self._write() as conn:
            conn.executemany(
                "UPDATE entries SET state = 'pending', next_attempt_at = ?, error_code = ?,"
                " last_error = ?, updated_at = ? WHERE key = ? AND state = 'sending'",
                [(_ts(next_attempt_at), code, error, _ts(utcnow()), key) for key in keys],
            )

    def note_server_error(self, key: str) -> int:
        """Count one more server failure (5xx) on this entry alone; the new count."""
        with self._write() as conn:
            conn.execute(
                "UPDATE entries SET server_errors = server_errors + 1 WHERE key = ?", (key,)
            )
            row = conn.execute("SELECT server_errors FROM entries WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def mark_dead(self, key: str, code: str, error: str) -> None:
        """Dead letter, shown to staff. A dead enrollment will not be sent again, so the
        person's phone, names and birthday leave its stored body (see `scrubbed_enrollment`)
        and the offline view made from it leaves the member cache."""
        with self._write() as conn:
            conn.execute(
                "UPDATE entries SET state = 'dead', error_code = ?, last_error = ?,"
                " updated_at = ? WHERE key = ?",
                (code, error, _ts(utcnow()), key),
            )
            scrubbed = self._scrub_enrollments(conn, "key = ?", (key,))
        if scrubbed:
            self._drop_old_frames()

    @staticmethod
    def _scrub_enrollments(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> int:
        rows = conn.execute(
            f"SELECT seq, CAST(key AS BLOB), CAST(member_id AS BLOB), CAST(body AS BLOB)"
            f" FROM entries WHERE kind = 'enroll' AND {where}",
            params,
        ).fetchall()
        for seq, key, member_id, body in rows:
            conn.execute(
                "UPDATE entries SET body = ? WHERE seq = ?",
                (scrubbed_enrollment(_text(key) or "", _text(member_id), body), seq),
            )
            if member_id is not None:
                conn.execute("DELETE FROM member_cache WHERE member_id = ?", (_text(member_id),))
        return len(rows)

    def requeue_dead(self, key: str | None = None) -> int:
        """Staff action: send dead entries again (the same keys, so never twice)."""
        now = _ts(utcnow())
        with self._write() as conn:
            # A damaged entry cannot be read, so sending it again cannot help: it stays dead
            # for staff to see (and `queue quarantine` to keep aside), never resent in a loop.
            # A scrubbed enrollment no longer holds the person's details: nothing to resend.
            resendable = (
                "state = 'dead' AND coalesce(error_code, '') != ?"
                " AND NOT (kind = 'enroll' AND body LIKE '%\"scrubbed\":true%')"
            )
            if key is None:
                cursor = conn.execute(
                    "UPDATE entries SET state = 'pending', next_attempt_at = ?, updated_at = ?,"
                    f" server_errors = 0 WHERE {resendable}",
                    (now, now, CORRUPT_ENTRY),
                )
            else:
                cursor = conn.execute(
                    "UPDATE entries SET state = 'pending', next_attempt_at = ?, updated_at = ?,"
                    f" server_errors = 0 WHERE {resendable} AND key = ?",
                    (now, now, CORRUPT_ENTRY, key),
                )
            return cursor.rowcount

    def make_due(self) -> int:
        """Staff action ("sync now"): every pending entry becomes due at once."""
        now = _ts(utcnow())
        with self._write() as conn:
            return conn.execute(
                "UPDATE entries SET next_attempt_at = ? WHERE state = 'pending'", (now,)
            ).rowcount

    def prune_acked(self, before: datetime, limit: int = PRUNE_BATCH) -> int:
        """Delete up to `limit` entries acknowledged before `before`, oldest first, in one
        short transaction (a sale waits for one batch at most; call again until it returns
        less than `limit`). Deleted data is overwritten (secure_delete). The count of
        entries ever written (sqlite_sequence, and the manifest kept from it) never goes
        down: AUTOINCREMENT remembers the highest seq whatever is deleted."""
        with self._write() as conn:
            return conn.execute(
                "DELETE FROM entries WHERE seq IN (SELECT seq FROM entries"
                " WHERE state = 'acked' AND updated_at < ? ORDER BY updated_at LIMIT ?)",
                (_ts(before), limit),
            ).rowcount

    def integrity_check(self) -> str:
        """SQLite's full check: "ok", or the first problem found."""
        with self._lock:
            try:
                return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])
            except sqlite3.DatabaseError as exc:
                return str(exc)

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

    def forget_cached(self, lookup: str) -> None:
        """Delete one cached lookup (a card blocked: it must not find its member offline)."""
        try:
            with self._write() as conn:
                conn.execute("DELETE FROM member_cache WHERE lookup = ?", (lookup,))
        except OutboxUnavailable:
            return

    def forget_members_before(self, cutoff: datetime) -> int:
        """Delete cached members last seen before `cutoff` (overwritten: secure_delete)."""
        try:
            with self._write() as conn:
                return conn.execute(
                    "DELETE FROM member_cache WHERE fetched_at < ?", (_ts(cutoff),)
                ).rowcount
        except OutboxUnavailable:
            return 0

    def rekey_cached_members(
        self, form: str, rekey: Callable[[str, MemberView], str | None]
    ) -> tuple[int, int]:
        """Cached rows whose lookup lacks `form` (written by an earlier version): `rekey`
        gives each the lookup to keep it under, or None to delete it (overwritten, and the
        log cut). Returns (kept, dropped)."""
        with self._lock:
            # Two ranges of the primary key (every lookup not starting with `form`), so a
            # start with nothing to rekey reads no rows.
            above = form[:-1] + chr(ord(form[-1]) + 1)
            rows = self.conn.execute(
                "SELECT lookup, view FROM member_cache WHERE lookup < ? OR lookup >= ?",
                (form, above),
            ).fetchall()
        if not rows:
            return 0, 0
        kept = dropped = 0
        try:
            with self._write() as conn:
                for lookup, raw in rows:
                    try:
                        fresh = rekey(lookup, member_view_from_json(json.loads(raw)))
                    except (ValueError, KeyError, TypeError, ArithmeticError):
                        fresh = None  # an unreadable row: dropped with the rest
                    if fresh is not None and fresh.startswith(form):
                        conn.execute(
                            "INSERT OR IGNORE INTO member_cache (lookup, member_id, view,"
                            " fetched_at) SELECT ?, member_id, view, fetched_at"
                            " FROM member_cache WHERE lookup = ?",
                            (fresh, lookup),
                        )
                        kept += 1
                    else:
                        dropped += 1
                    conn.execute("DELETE FROM member_cache WHERE lookup = ?", (lookup,))
        except OutboxUnavailable:
            return 0, 0  # tried again at the next start
        self._drop_old_frames()
        return kept, dropped

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


def stored_result(result: dict[str, Any] | None) -> str | None:
    """A result as kept on disk: an enrollment's card number masked to its last 4."""
    if not result:
        return None
    card = result.get("card_number")
    if isinstance(card, str) and not card.startswith(CARD_MASK):
        result = {**result, "card_number": CARD_MASK + card[-4:]}
    return canonical_json(result)


def mask_phone(phone: str) -> str:
    """+447700900789 -> +44******789: enough for staff to tell enrollments apart."""
    return phone[:3] + "*" * 6 + phone[-3:] if len(phone) > 8 else "*" * 6


def scrubbed_enrollment(key: str, member_id: str | None, stored: bytes | str | None) -> str:
    """What a dead enrollment keeps: its key, member id and a masked phone; never the
    phone, its key, names, birthday, card number or consent."""
    body, _damage = _decode(stored, "enrollment")
    body = body if isinstance(body, dict) else {}
    kept: dict[str, Any] = {"type": "enroll", "key": key, "member_id": member_id}
    kept["scrubbed"] = True
    phone, last = body.get("phone"), body.get("phone_last")
    if isinstance(phone, str) and phone:
        kept["phone_masked"] = mask_phone(phone)
    elif isinstance(last, str) and len(last) <= 4:
        kept["phone_masked"] = "*" * 6 + last
    return canonical_json(kept)


def _decode(raw: bytes | str | None, what: str) -> tuple[Any, str | None]:
    if raw is None:
        return None, None
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text), None
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"the stored {what} cannot be read ({type(exc).__name__}: {exc})"[:300]


def claim_problem(entry: OutboxEntry) -> str | None:
    """Why a claimed body must not be sent: it does not belong to its row (another key or
    type) or lacks what its kind needs. Sent anyway, the server could apply it under the
    body's key while the row waited for ever; it goes to dead letter instead."""
    body = entry.body
    if body.get("key") != entry.key:
        return "the stored body's key is not its entry's key"
    if body.get("type") != entry.kind:
        return "the stored body's type is not its entry's kind"
    refusal = sendable_problem(body)
    if refusal is not None:
        return f"the stored body is not a whole {entry.kind} operation ({refusal.message})"
    return None


def _checked(entry: OutboxEntry) -> OutboxEntry:
    if entry.damage:
        return entry
    problem = claim_problem(entry)
    return replace(entry, damage=problem) if problem else entry


def _text(raw: bytes | str | None) -> str | None:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    return raw


def _entry(row: Sequence[Any]) -> OutboxEntry:
    body, damage = _decode(row[4], "sale body")
    key, kind, member_id = _text(row[1]) or "", _text(row[2]) or "", _text(row[3])
    if "\ufffd" in key + kind + (member_id or ""):
        damage = damage or "the stored key, kind or member cannot be read"
    result, result_damage = _decode(row[13], "result")
    if not isinstance(body, dict):
        damage = damage or "the stored sale body is not a JSON object"
        body = {}
    try:
        state = EntryState(_text(row[5]) or "")
    except ValueError:
        state, damage = EntryState.DEAD, damage or "the stored state cannot be read"
    try:
        created_at, updated_at = _from_ts(_text(row[9]) or ""), _from_ts(_text(row[10]) or "")
    except ValueError:
        created_at = updated_at = datetime(2000, 1, 1, tzinfo=UTC)
        damage = damage or "the stored times cannot be read"
    return OutboxEntry(
        seq=row[0],
        key=key,
        kind=kind,
        member_id=member_id,
        body=body,
        state=state,
        attempts=row[6],
        expected_points=row[7],
        redeem_points=row[8],
        created_at=created_at,
        updated_at=updated_at,
        error_code=_text(row[11]),
        last_error=_text(row[12]),
        result=result if isinstance(result, dict) and not result_damage else None,
        damage=damage,
    )


def _record_name(path: Path) -> str:
    """Which record holds the higher count, for messages (the manifest when they agree)."""
    manifest, witness = read_manifests(path)
    if (witness or 0) > (manifest or 0):
        return f"second record of sales written ({witness_path(path).name})"
    return "manifest"


def quarantine(path: Path, now: datetime | None = None, manifest: bool = True) -> list[Path]:
    """Move a damaged outbox (and its WAL/SHM) aside for recovery; never deletes it. With
    `manifest` (staff accepting the loss) its manifest goes too, so a new, empty outbox is
    made on next use; without it, the emptied outbox stays refused."""
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%SZ")
    moved = []
    for suffix in ("", "-wal", "-shm", ".manifest") if manifest else ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            target = path.with_name(f"{path.name}.corrupt-{stamp}{suffix}")
            source.rename(target)
            moved.append(target)
    witness = witness_path(path)
    if manifest and witness.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}.sales-written.json")
        witness.rename(target)
        moved.append(target)
    return moved


def reseal(path: Path, now: datetime | None = None) -> tuple[int, list[Path]]:
    """Staff, after an unreadable manifest: keep the unreadable record(s) aside, then open
    the outbox, which is refused if it holds fewer sales than a still-readable record and
    otherwise writes both records again from it. (count now recorded, files kept aside)"""
    if not path.exists():
        raise OutboxMissing(
            f"no outbox at {path} to reseal: restore it, or run `pos-client queue quarantine`"
        )
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%SZ")
    moved = []
    for file, count in zip(
        (_sibling(path, ".manifest"), witness_path(path)), read_manifests(path), strict=True
    ):
        if count is None:
            target = file.with_name(f"{file.name}.unreadable-{stamp}")
            file.rename(target)
            moved.append(target)
    with Outbox(path) as outbox:
        written = outbox._written
    return written, moved
