"""Points expiry on a schedule: once a day at the store's local time, in the background
(the store server and the embedded ledger).

Several server processes may each run the schedule: Ledger.expire is idempotent (each
member's due points are decided again under the member's lock) and on PostgreSQL one process
at a time runs it (an advisory lock); the others find nothing to do.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from pos_client.domain import utcnow
from pos_client.ledger.ledger import Ledger

log = logging.getLogger(__name__)


def parse_time_of_day(text: str) -> time:
    """'HH:MM' (24-hour) -> time; a clear error on anything else."""
    hours, sep, minutes = text.strip().partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"expected a time of day as HH:MM, got {text!r}")
    if not (0 <= int(hours) < 24 and 0 <= int(minutes) < 60):
        raise ValueError(f"not a time of day: {text!r}")
    return time(int(hours), int(minutes))


def next_run(now: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The first moment after `now` when the store's clock shows `at` (a time skipped by a
    daylight-saving change runs at the moment it would have been)."""
    local = now.astimezone(zone)
    day = local.date()
    while True:
        moment = datetime.combine(day, at, zone)
        if moment > local:
            return moment.astimezone(now.tzinfo)
        day += timedelta(days=1)


def expire_and_log(ledger: Ledger, as_of: datetime) -> list[tuple[str, int]]:
    expired = ledger.expire(as_of)
    log.info(
        "expiry: %d point(s) of %d member(s) expired",
        sum(points for _member, points in expired),
        len(expired),
    )
    return expired


class ExpirySchedule:
    """A daemon thread that expires points daily at `at`, store time, until stopped."""

    def __init__(
        self,
        ledger: Ledger,
        at: time,
        clock: Callable[[], datetime] = utcnow,
        run_at_start: bool = False,
    ) -> None:
        self.ledger = ledger
        self.at = at
        self.clock = clock
        self.run_at_start = run_at_start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="expiry", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        try:
            expire_and_log(self.ledger, self.clock())
        except Exception:  # a database hiccup: try again at the next run
            log.exception("expiry run failed")

    def _loop(self) -> None:
        if self.run_at_start:
            self._run()
        while not self._stop.is_set():
            now = self.clock()
            wait = (next_run(now, self.at, self.ledger.zone) - now).total_seconds()
            if self._stop.wait(max(wait, 0.0)):
                return
            self._run()
