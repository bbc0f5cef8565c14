"""Terminals' heartbeats: what each terminal's outbox holds and how its readers are, sent
while it syncs (`POST /v1/terminals/heartbeat`), kept as its last heartbeat, and read back
as the store's fleet (`fleet`) and the dead letters every terminal holds (`dead_letters`),
for the managers' console.

The body is bounded in every field (text is printable, counts and ages are integers within
a range, lists are short); `received_at` is the server's clock, never the terminal's. The
dead entries' keys and reasons are stored for the console and never logged."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import Engine, select

from loyalty_server.limits import upsert
from loyalty_server.schema import terminal_heartbeats, terminals
from pos_client.domain import text_problem

HEARTBEATS_PER_MINUTE = 60  # per terminal; a terminal sends one every 30 s at most
HEARTBEAT_MAX_BODY = 128 * 1024  # the largest valid body, its text escaped, is under 80 KiB
MAX_COUNT = 10_000_000
TEN_YEARS_S = 10 * 366 * 24 * 3600
MAX_READERS = 8
MAX_DEAD_ENTRIES = 20
READERS_COLUMN = 400  # terminal_heartbeats.readers is VARCHAR(400)
SILENT_AFTER_S = 15 * 60  # a terminal not heard from for longer stands out
NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"  # for the schema; `printable` checks the rest


def printable(value: str) -> str:
    """Text a console may show: no control, format (bidi, zero-width), private-use,
    unassigned or surrogate characters, no runs of combining marks."""
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# Printable text of 1 to N characters.
Text40 = Annotated[
    str, Field(min_length=1, max_length=40, pattern=NO_CONTROL), AfterValidator(printable)
]
Text60 = Annotated[
    str, Field(min_length=1, max_length=60, pattern=NO_CONTROL), AfterValidator(printable)
]
Text64 = Annotated[
    str, Field(min_length=1, max_length=64, pattern=NO_CONTROL), AfterValidator(printable)
]
Text200 = Annotated[
    str, Field(min_length=1, max_length=200, pattern=NO_CONTROL), AfterValidator(printable)
]


class ReaderIn(BaseModel):
    """One reader as the terminal last heard of it."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: Text60 = Field(description="the reader's name, e.g. pcsc:ACS ACR122U")
    status: Text60 = Field(description="e.g. connected, disconnected, error")


class DeadEntryIn(BaseModel):
    """A dead entry: an operation the server refused for good, kept aside on the terminal."""

    model_config = ConfigDict(extra="forbid", strict=True)
    key: Text64 = Field(description="its idempotency key")
    reason: Text200 = Field(description="why it was refused")
    age_s: int = Field(ge=0, le=TEN_YEARS_S, description="seconds since the sale was recorded")


class HeartbeatIn(BaseModel):
    """A terminal's state, sent while it syncs: its outbox, its readers, its version."""

    model_config = ConfigDict(extra="forbid", strict=True)
    app_version: Text40
    mode: Literal["cashier", "kiosk"]
    pending: int = Field(ge=0, le=MAX_COUNT, description="entries waiting in the outbox")
    dead: int = Field(ge=0, le=MAX_COUNT, description="dead entries, refused and kept aside")
    oldest_pending_s: int | None = Field(
        None, ge=0, le=TEN_YEARS_S, description="age of the oldest pending sale (null: none)"
    )
    readers: list[ReaderIn] = Field(default_factory=list, max_length=MAX_READERS)
    dead_entries: list[DeadEntryIn] = Field(
        default_factory=list,
        max_length=MAX_DEAD_ENTRIES,
        description="the newest dead entries (at most 20)",
    )


class HeartbeatOut(BaseModel):
    status: Literal["ok"]


# ------------------------------------------------------------------ storing


def readers_text(readers: Sequence[tuple[str, str]], limit: int = READERS_COLUMN) -> str:
    """The readers as compact JSON ([[name, status], ...]) of at most `limit` characters:
    names and statuses are cut shorter (never mid-escape: cut before encoding) until the
    text fits."""
    pairs = [(str(name), str(status)) for name, status in readers]
    width = max((max(len(n), len(s)) for n, s in pairs), default=0)
    while True:
        text = json.dumps(
            [[n[:width], s[:width]] for n, s in pairs], ensure_ascii=False, separators=(",", ":")
        )
        if len(text) <= limit or width == 0:
            return text if len(text) <= limit else "[]"
        width -= 1


def record_heartbeat(engine: Engine, terminal_id: str, beat: HeartbeatIn, now: datetime) -> None:
    """Keep `beat` as the terminal's last heartbeat, received at `now` (the server's time)."""
    values: dict[str, Any] = {
        "received_at": now,
        "app_version": beat.app_version,
        "mode": beat.mode,
        "pending": beat.pending,
        "dead_count": beat.dead,
        "oldest_pending_s": beat.oldest_pending_s,
        "readers": readers_text([(r.name, r.status) for r in beat.readers]),
        "dead": json.dumps(
            [{"key": d.key, "reason": d.reason, "age_s": d.age_s} for d in beat.dead_entries],
            ensure_ascii=False,
            separators=(",", ":"),
        ),
    }
    with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        conn.execute(
            upsert(
                conn.dialect.name,
                terminal_heartbeats,
                {"terminal_id": terminal_id, **values},
                values,
            )
        )


# ------------------------------------------------------------------ reading


@dataclass(frozen=True)
class DeadNote:
    """A dead entry as a terminal last reported it."""

    key: str
    reason: str
    age_s: int  # as reported: seconds since the sale was recorded, at `received_at`


@dataclass(frozen=True)
class FleetRow:
    """A terminal and its last heartbeat (the heartbeat's fields None: never heard from)."""

    terminal_id: str
    name: str
    merchant: str
    created_at: datetime
    revoked_at: datetime | None
    received_at: datetime | None
    app_version: str | None
    mode: str | None
    pending: int | None
    dead_count: int | None
    oldest_pending_s: int | None
    readers: tuple[tuple[str, str], ...]  # (name, status)
    dead: tuple[DeadNote, ...]
    silent_s: float | None  # seconds since its last heartbeat (None: never heard from)
    silent_after_s: float = SILENT_AFTER_S

    @property
    def heard(self) -> bool:
        return self.received_at is not None

    @property
    def silent(self) -> bool:
        return self.silent_s is not None and self.silent_s > self.silent_after_s

    @property
    def stands_out(self) -> bool:
        """Worth a manager's look: never heard from, silent for long, or holding dead
        entries. A revoked terminal never stands out."""
        if self.revoked_at is not None:
            return False
        return not self.heard or self.silent or bool(self.dead_count)


@dataclass(frozen=True)
class DeadLetterRow:
    """One dead entry a (not revoked) terminal holds, as of its last heartbeat."""

    terminal_id: str
    terminal_name: str
    key: str
    reason: str
    age_s: int  # as the terminal reported it
    since_heartbeat_s: float  # seconds since that heartbeat

    @property
    def age_now_s(self) -> float:
        """The entry's age now: as reported, plus the time since the heartbeat."""
        return self.age_s + self.since_heartbeat_s


def parse_readers(text: str | None) -> tuple[tuple[str, str], ...]:
    try:
        found = json.loads(text or "[]")
    except ValueError:
        return ()
    if not isinstance(found, list):
        return ()
    return tuple(
        (item[0], item[1])
        for item in found
        if isinstance(item, list)
        and len(item) == 2
        and isinstance(item[0], str)
        and isinstance(item[1], str)
    )


def parse_dead(text: str | None) -> tuple[DeadNote, ...]:
    try:
        found = json.loads(text or "[]")
    except ValueError:
        return ()
    if not isinstance(found, list):
        return ()
    return tuple(
        DeadNote(item["key"], item["reason"], item["age_s"])
        for item in found
        if isinstance(item, dict)
        and isinstance(item.get("key"), str)
        and isinstance(item.get("reason"), str)
        and type(item.get("age_s")) is int
    )


def _since(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def fleet(engine: Engine, now: datetime, silent_after_s: float = SILENT_AFTER_S) -> list[FleetRow]:
    """Every terminal on record (revoked ones last), with its last heartbeat, by name."""
    beat = terminal_heartbeats.c
    query = (
        select(
            terminals.c.id,
            terminals.c.name,
            terminals.c.merchant,
            terminals.c.created_at,
            terminals.c.revoked_at,
            beat.received_at,
            beat.app_version,
            beat.mode,
            beat.pending,
            beat.dead_count,
            beat.oldest_pending_s,
            beat.readers,
            beat.dead,
        )
        .select_from(terminals.outerjoin(terminal_heartbeats, beat.terminal_id == terminals.c.id))
        .order_by(terminals.c.revoked_at.is_not(None), terminals.c.name, terminals.c.id)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        FleetRow(
            terminal_id=row.id,
            name=row.name,
            merchant=row.merchant,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            received_at=row.received_at,
            app_version=row.app_version,
            mode=row.mode,
            pending=row.pending,
            dead_count=row.dead_count,
            oldest_pending_s=row.oldest_pending_s,
            readers=parse_readers(row.readers),
            dead=parse_dead(row.dead),
            silent_s=_since(now, row.received_at),
            silent_after_s=silent_after_s,
        )
        for row in rows
    ]


def dead_letters(engine: Engine, now: datetime) -> list[DeadLetterRow]:
    """The dead entries every terminal not revoked last reported, newest first."""
    found = [
        DeadLetterRow(
            terminal_id=row.terminal_id,
            terminal_name=row.name,
            key=note.key,
            reason=note.reason,
            age_s=note.age_s,
            since_heartbeat_s=row.silent_s or 0.0,
        )
        for row in fleet(engine, now)
        if row.revoked_at is None and row.received_at is not None
        for note in row.dead
    ]
    return sorted(found, key=lambda d: (d.age_now_s, d.terminal_name, d.key))
