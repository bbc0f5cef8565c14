"""The terminal's heartbeat: a small report of its state (the outbox's pending and dead
entries, the newest dead entries' reasons, its readers, its version and mode) sent to the
backend while it syncs, at most every 30 s, for the store's fleet page.

Built within the store server's bounds (`loyalty_server.heartbeats.HeartbeatIn`): counts
clamped, text cut short and stripped of characters a console must not show, lists short.
A heartbeat is a convenience: one that cannot be built or sent never holds up a sale or
the sync (the worker catches, logs the reason's type and goes on)."""

from __future__ import annotations

import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pos_client.deferred import Deferred
from pos_client.domain import INVISIBLE_LETTERS, NAME_REFUSED_CATEGORIES
from pos_client.events import EventBus, ReaderStatus
from pos_client.outbox import Outbox

HEARTBEAT_INTERVAL_S = 30.0
MAX_COUNT = 10_000_000
MAX_AGE_S = 10 * 366 * 24 * 3600  # ten years
MAX_READERS = 8
MAX_DEAD_ENTRIES = 20
PACKAGE = "pos-client"


def app_version() -> str:
    """This terminal's release: the installed package's version, else the source's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version(PACKAGE)
    except PackageNotFoundError:
        from pos_client import __version__

        found = __version__
    return shown_text(found, 40, "unknown")


def shown_text(value: object, limit: int, empty: str = "?") -> str:
    """`value` as text a console may show, of 1 to `limit` characters: control, format,
    private-use, unassigned and invisible characters become "?" and combining marks are
    dropped (a diagnostic, not a name); `empty` when nothing is left."""
    kept: list[str] = []
    for char in str(value)[: limit * 2]:
        category = unicodedata.category(char)
        if category.startswith("M"):
            continue
        if category in NAME_REFUSED_CATEGORIES or char in INVISIBLE_LETTERS:
            char = "?"
        kept.append(char)
    text = "".join(kept)[:limit].strip()
    return text or empty


def _count(value: int) -> int:
    return max(0, min(int(value), MAX_COUNT))


def _age(seconds: float) -> int:
    return max(0, min(int(seconds), MAX_AGE_S))


@dataclass(frozen=True)
class ReaderNote:
    name: str
    status: str


@dataclass(frozen=True)
class DeadNote:
    key: str  # the entry's idempotency key
    reason: str  # why the server refused it (its code and message)
    age_s: int  # seconds since the sale was recorded


@dataclass(frozen=True)
class Heartbeat:
    app_version: str
    mode: str  # cashier | kiosk
    pending: int
    dead: int
    oldest_pending_s: int | None
    readers: tuple[ReaderNote, ...] = ()
    dead_entries: tuple[DeadNote, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "app_version": self.app_version,
            "mode": self.mode,
            "pending": self.pending,
            "dead": self.dead,
            "oldest_pending_s": self.oldest_pending_s,
            "readers": [{"name": r.name, "status": r.status} for r in self.readers],
            "dead_entries": [
                {"key": d.key, "reason": d.reason, "age_s": d.age_s} for d in self.dead_entries
            ],
        }


def dead_reason(code: str | None, error: str | None) -> str:
    if code and error and error != code:
        return shown_text(f"{code}: {error}", 200)
    return shown_text(error or code or "refused", 200)


def build_heartbeat(
    outbox: Outbox,
    now: datetime,
    mode: str,
    version: str,
    readers: Sequence[tuple[str, str]] = (),
) -> Heartbeat:
    """The outbox's state now (pending, dead, the oldest pending sale's age, the newest
    dead entries), with the terminal's version, mode and readers, within the bounds."""
    stats = outbox.stats()
    oldest = stats.oldest_pending_age(now)
    dead = outbox.newest_dead(MAX_DEAD_ENTRIES)
    return Heartbeat(
        app_version=shown_text(version, 40, "unknown"),
        mode=mode if mode in ("cashier", "kiosk") else "cashier",
        pending=_count(stats.unsent),
        dead=_count(stats.dead),
        oldest_pending_s=None if oldest is None else _age(oldest),
        readers=tuple(
            ReaderNote(shown_text(name, 60), shown_text(status, 60))
            for name, status in list(readers)[:MAX_READERS]
        ),
        dead_entries=tuple(
            DeadNote(
                shown_text(entry.key, 64),
                dead_reason(entry.error_code, entry.last_error),
                _age((now - entry.created_at).total_seconds()),
            )
            for entry in dead
        ),
    )


class ReaderStates:
    """The last state each reader reported (ReaderStatus on the bus), as (name, state)
    pairs for heartbeats: never a reader's detail (a device path, an error's text)."""

    def __init__(self, bus: EventBus | None = None) -> None:
        self._states: dict[str, str] = {}
        self._lock = threading.Lock()
        if bus is not None:
            bus.subscribe(ReaderStatus, self.on_status)

    def on_status(self, status: ReaderStatus) -> None:
        with self._lock:
            self._states[status.source] = status.state

    def __call__(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._states.items())[:MAX_READERS]


@dataclass
class HeartbeatPolicy:
    """What a heartbeat says of the terminal beside its outbox, and how often it goes."""

    mode: str
    version: str = field(default_factory=app_version)
    readers: Callable[[], Sequence[tuple[str, str]]] = list
    interval_s: float = HEARTBEAT_INTERVAL_S
    monotonic: Callable[[], float] = time.monotonic
    # Where heartbeats are sent from (a thread of their own); None: the sync thread.
    runner: Deferred | None = None
    _last: float | None = field(default=None, init=False, repr=False)

    def due(self) -> bool:
        """Whether one may be sent now; if so, the interval starts again (sent or not)."""
        now = self.monotonic()
        if self._last is not None and now - self._last < self.interval_s:
            return False
        self._last = now
        return True

    def build(self, outbox: Outbox, now: datetime) -> Heartbeat:
        return build_heartbeat(outbox, now, self.mode, self.version, self.readers())
