"""What the terminal's screens may see of, and do to, the outbox: a report, retry, sync now.

Callers (the UI's staff and status controllers) get plain dataclasses and never hold the
outbox itself; a storage failure reading the report becomes `QueueReport.problem`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pos_client.domain import utcnow
from pos_client.outbox import EntryState, Outbox, OutboxError
from pos_client.sync import SyncWorker

DEAD_SHOWN = 5  # dead entries listed in a report


@dataclass(frozen=True)
class DeadEntry:
    key: str
    code: str | None
    error: str | None


@dataclass(frozen=True)
class QueueReport:
    unsent: int = 0
    dead: int = 0
    acked: int = 0
    oldest_unsent_age_s: float | None = None
    dead_entries: tuple[DeadEntry, ...] = ()
    problem: str | None = None  # the outbox could not be read: why


class QueueService:
    def __init__(
        self,
        outbox: Outbox,
        sync: SyncWorker,
        clock: Callable[[], datetime] = utcnow,
        dead_shown: int = DEAD_SHOWN,
    ) -> None:
        self._outbox = outbox
        self._sync = sync
        self._clock = clock
        self._dead_shown = dead_shown

    def report(self) -> QueueReport:
        try:
            stats = self._outbox.stats()
            dead = self._outbox.entries(EntryState.DEAD, limit=self._dead_shown)
        except OutboxError as exc:
            return QueueReport(problem=str(exc))
        return QueueReport(
            unsent=stats.unsent,
            dead=stats.dead,
            acked=stats.acked,
            oldest_unsent_age_s=stats.oldest_pending_age(self._clock()),
            dead_entries=tuple(DeadEntry(e.key, e.error_code, e.last_error) for e in dead),
        )

    def retry_dead(self) -> int:
        """Staff action: dead entries go back to the queue (same keys); how many did."""
        count = self._outbox.requeue_dead()
        self._sync.wake()
        return count

    def sync_now(self) -> int:
        """Staff action: every unsent entry is due now; how many are."""
        count = self._outbox.make_due()
        self._sync.wake()
        return count

    def publish_status(self) -> None:
        """Announce the queue's state (a SyncStatus event on the bus) now."""
        self._sync.publish_status()
