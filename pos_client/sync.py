"""Drains the outbox to the Backend port: batches, exponential backoff with full jitter,
dead letter for permanent refusals, and status events for the status bar."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pos_client.domain import utcnow
from pos_client.events import EventBus, OperationDead, OperationSynced, SyncStatus
from pos_client.heartbeat import HeartbeatPolicy
from pos_client.outbox import PRUNE_BATCH, DrainBusy, Outbox, OutboxEntry, OutboxError
from pos_client.ports import Backend, BackendServerError, BackendUnavailable, OpResult, Outcome
from pos_client.program_updates import ProgramUpdater

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncPolicy:
    batch_size: int = 100
    interval_s: float = 5.0  # idle poll interval when everything is sent
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    max_server_errors: int = 5  # server errors (5xx) on one entry before it is dead


SERVER_ERROR = "server_error"
HOUSEKEEPING_INTERVAL_S = 24 * 3600.0  # at start, then daily while running
NO_RESULT = "no_result"


@dataclass
class _Counts:
    acked: int = 0
    dead: int = 0
    retried: int = 0
    offline: bool = False

    def add(self, other: _Counts) -> None:
        self.acked += other.acked
        self.dead += other.dead
        self.retried += other.retried
        self.offline = self.offline or other.offline


@dataclass(frozen=True)
class DrainReport:
    sent: int = 0
    acked: int = 0
    dead: int = 0
    retried: int = 0
    online: bool = True
    busy: bool = False
    error: str | None = None


def backoff_delay(failures: int, policy: SyncPolicy, rand: Callable[[], float]) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**failures)]."""
    ceiling = min(policy.backoff_cap_s, policy.backoff_base_s * float(2 ** min(failures, 32)))
    return rand() * ceiling


class SyncWorker:
    def __init__(
        self,
        outbox: Outbox,
        backend: Backend,
        bus: EventBus | None = None,
        policy: SyncPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        rand: Callable[[], float] = random.random,
        program_updater: ProgramUpdater | None = None,
        acked_retention: timedelta | None = None,
        heartbeat: HeartbeatPolicy | None = None,
    ) -> None:
        self.outbox = outbox
        # After a pass that reached the backend, at most every `interval_s`: the terminal's
        # state for the store's fleet page. None: no heartbeats.
        self.heartbeat = heartbeat
        # Housekeeping on this worker's thread (never the UI's): acknowledged entries older
        # than `acked_retention` pruned in small batches, then each of `housekeeping_tasks`
        # (the composition root adds the member cache's expiry).
        self.acked_retention = acked_retention
        self.housekeeping_tasks: list[Callable[[], object]] = []
        self.housekeeping_interval_s = HOUSEKEEPING_INTERVAL_S
        self._last_housekeeping: float | None = None
        # Asked after each pass while online: a new programme within one sync interval.
        self.program_updater = program_updater
        self.backend = backend
        self.bus = bus or EventBus()
        self.policy = policy or SyncPolicy()
        self.clock = clock
        self.rand = rand
        self.failures = 0
        self.online = True
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ one pass

    def drain(self, max_batches: int | None = None) -> DrainReport:
        """Send what is due, batch by batch, until nothing is due or the backend is down."""
        sent = acked = dead = retried = 0
        try:
            with self.outbox.drain_lock():
                batches = 0
                while max_batches is None or batches < max_batches:
                    batch, damaged = self.outbox.claim_counting_damage(
                        self.policy.batch_size, self.clock()
                    )
                    dead += damaged  # dead-lettered as unreadable in this same pass
                    if not batch:
                        if batches == 0:
                            self._probe()  # nothing to send: still learn if we are online
                        break
                    batches += 1
                    sent += len(batch)
                    counts = self._send(batch)
                    acked += counts.acked
                    dead += counts.dead
                    retried += counts.retried
                    if counts.offline:
                        break
        except DrainBusy:
            return DrainReport(busy=True, online=self.online)
        except OutboxError as exc:
            self.last_error = str(exc)
            log.error("outbox problem while draining: %s", exc)
            self.publish_status()
            return DrainReport(sent, acked, dead, retried, self.online, error=str(exc))
        self.publish_status()
        if self.online and self.program_updater is not None:
            self.program_updater.check()
        if self.online:
            self.send_heartbeat()
        return DrainReport(sent, acked, dead, retried, self.online, error=self.last_error)

    def send_heartbeat(self) -> bool:
        """The terminal's state to the backend, if one is due (every `interval_s` at most,
        sent or not): on the policy's runner (its own thread, so a slow backend never holds
        up the next pass), else here. Never raises and never changes the worker's state: a
        heartbeat that fails is logged briefly and the next one waits its interval. Whether
        one was delivered (queued, with a runner)."""
        policy = self.heartbeat
        if policy is None or not policy.due():
            return False
        if policy.runner is not None:

            def job() -> None:
                self._deliver_heartbeat(policy)

            return policy.runner.submit(job)
        return self._deliver_heartbeat(policy)

    def _deliver_heartbeat(self, policy: HeartbeatPolicy) -> bool:
        try:
            self.backend.heartbeat(policy.build(self.outbox, self.clock()))
        except BackendUnavailable as exc:
            # Our own messages name the path and status only, never a body or a token.
            log.info("heartbeat not sent: %s", str(exc)[:120])
            return False
        except Exception as exc:  # a heartbeat never stops a sync pass
            log.warning("heartbeat not sent: %s", type(exc).__name__)
            return False
        return True

    def _send(self, batch: list[OutboxEntry]) -> _Counts:
        """Submit one claimed batch. A server error (5xx) on a batch of several is judged
        entry by entry, so an operation the server fails on is retried alone and, after
        `max_server_errors` such failures, goes to dead letter: never the whole queue."""
        counts = _Counts()
        try:
            results = self.backend.submit([entry.body for entry in batch])
        except BackendServerError as exc:
            if len(batch) == 1:
                self._server_error(batch[0], str(exc), counts)
                return counts
            log.warning("server error on a batch of %d: sending them one by one", len(batch))
            for index, entry in enumerate(batch):
                single = self._send([entry])
                counts.add(single)
                if single.offline:
                    rest = [e.key for e in batch[index + 1 :]]
                    if rest:
                        self.outbox.retry_later(rest, str(exc), self.clock(), code="offline")
                        counts.retried += len(rest)
                    break
            return counts
        except BackendUnavailable as exc:
            self._went_offline(str(exc), [entry.key for entry in batch])
            counts.retried += len(batch)
            counts.offline = True
            return counts
        self._came_online()
        self._apply(batch, results, counts)
        return counts

    def _server_error(self, entry: OutboxEntry, error: str, counts: _Counts) -> None:
        try:  # the server up but failing on this one entry, or down altogether?
            self.backend.ping()
        except BackendUnavailable as exc:
            self._went_offline(str(exc), [entry.key])
            counts.retried += 1
            counts.offline = True
            return
        self._came_online()
        failures = self.outbox.note_server_error(entry.key)
        if failures >= self.policy.max_server_errors:
            reason = f"the server failed on this operation {failures} times ({error})"
            self.outbox.mark_dead(entry.key, SERVER_ERROR, reason)
            counts.dead += 1
            log.warning("operation %s dead after %d server errors", entry.key, failures)
            self.bus.publish(OperationDead(entry.key, entry.kind, SERVER_ERROR, reason))
            return
        self.outbox.retry_later(
            [entry.key], error, self._next_attempt(entry.attempts), code=SERVER_ERROR
        )
        counts.retried += 1

    def _apply(self, batch: list[OutboxEntry], results: list[OpResult], counts: _Counts) -> None:
        by_key = {result.key: result for result in results}
        acks: list[tuple[OutboxEntry, OpResult]] = []
        for entry in batch:
            result = by_key.get(entry.key)
            if result is None:
                self._no_result(entry, counts)
            elif result.outcome is Outcome.RETRY:
                error = result.error if result else "no result for this operation"
                self.outbox.retry_later(
                    [entry.key], error or "retry", self._next_attempt(entry.attempts)
                )
                counts.retried += 1
            elif result.outcome.done:
                acks.append((entry, result))
            else:
                code = result.code or result.outcome.value
                error = result.error or code
                self.outbox.mark_dead(entry.key, code, error)
                counts.dead += 1
                log.warning("operation %s refused for good: %s", entry.key, code)
                self.bus.publish(OperationDead(entry.key, entry.kind, code, error))
        if acks:
            self.outbox.ack_many([(e.key, r.result) for e, r in acks])
            counts.acked += len(acks)
            latest: dict[str, dict[str, Any]] = {}
            for _entry, result in acks:
                if result.result and result.result.get("member_id"):
                    latest[str(result.result["member_id"])] = result.result
            for outcome in latest.values():
                self._remember_balance(outcome)
            for entry, result in acks:
                self.bus.publish(OperationSynced(entry.key, entry.kind, result.result or {}))

    def _no_result(self, entry: OutboxEntry, counts: _Counts) -> None:
        """The server answered the batch but not this operation: retried a bounded number
        of times (counted as server failures), then dead letter, never pending for ever."""
        failures = self.outbox.note_server_error(entry.key)
        if failures >= self.policy.max_server_errors:
            reason = f"the server gave no result for this operation {failures} times"
            self.outbox.mark_dead(entry.key, NO_RESULT, reason)
            counts.dead += 1
            log.warning("operation %s dead: no result %d times", entry.key, failures)
            self.bus.publish(OperationDead(entry.key, entry.kind, NO_RESULT, reason))
            return
        self.outbox.retry_later(
            [entry.key],
            "no result for this operation",
            self._next_attempt(entry.attempts),
            code=NO_RESULT,
        )
        counts.retried += 1

    def _remember_balance(self, result: dict[str, Any] | None) -> None:
        if result and isinstance(result.get("balance"), int) and result.get("member_id"):
            self.outbox.update_cached_balance(result["member_id"], result["balance"], self.clock())

    def _next_attempt(self, attempts: int) -> datetime:
        delay = backoff_delay(attempts, self.policy, self.rand)
        return self.clock() + timedelta(seconds=delay)

    def _went_offline(self, error: str, keys: list[str]) -> None:
        self.failures += 1
        self.online = False
        self.last_error = error
        # Entries stay due; the worker's own backoff spaces the attempts.
        self.outbox.retry_later(keys, error, self.clock(), code="offline")
        log.info("backend unreachable (%d in a row)", self.failures)

    def _probe(self) -> None:
        try:
            self.backend.ping()
        except BackendUnavailable as exc:
            self.failures += 1
            self.online = False
            self.last_error = str(exc)
        else:
            self._came_online()

    def _came_online(self) -> None:
        self.failures = 0
        self.online = True
        self.last_error = None

    def publish_status(self) -> SyncStatus:
        stats = self.outbox.stats()
        status = SyncStatus(
            online=self.online,
            pending=stats.unsent,
            dead=stats.dead,
            oldest_pending_age_s=stats.oldest_pending_age(self.clock()),
            last_error=self.last_error,
        )
        self.bus.publish(status)
        return status

    # ------------------------------------------------------------ housekeeping

    def housekeep(self) -> int:
        """Prune acknowledged entries past their retention, one short transaction per
        batch (a sale recorded meanwhile waits for one batch at most), then run the other
        housekeeping tasks. Returns the entries pruned."""
        self._last_housekeeping = time.monotonic()
        pruned = 0
        if self.acked_retention is not None:
            cutoff = self.clock() - self.acked_retention
            while not self._stop.is_set():
                count = self.outbox.prune_acked(cutoff, PRUNE_BATCH)
                pruned += count
                if count < PRUNE_BATCH:
                    break
            if pruned:
                log.info("outbox housekeeping: %d acknowledged entries pruned", pruned)
        for task in self.housekeeping_tasks:
            task()
        return pruned

    def housekeeping_due(self) -> bool:
        last = self._last_housekeeping
        return last is None or time.monotonic() - last >= self.housekeeping_interval_s

    # ------------------------------------------------------------ background loop

    def next_wait(self) -> float:
        if self.failures:
            return max(0.05, backoff_delay(self.failures, self.policy, self.rand))
        return self.policy.interval_s

    def wake(self) -> None:
        """Drain soon: a sale was just recorded, or staff pressed "sync now"."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="outbox-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.housekeeping_due():
                try:
                    self.housekeep()
                except Exception:  # retried tomorrow; sales are not held up by it
                    log.exception("outbox housekeeping failed")
            try:
                self.drain()
            except Exception:  # keep syncing whatever one pass hit; it is logged
                log.exception("sync pass failed")
            self._wake.wait(self.next_wait())
            self._wake.clear()

    def __enter__(self) -> SyncWorker:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
