"""A stateful test of outbox + sync against a model: any sequence of sales, outages,
lost responses, refusals, crashes and retries loses nothing and applies nothing twice."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pos_client.domain import MemberView
from pos_client.outbox import EntryState, Outbox
from pos_client.ports import BackendUnavailable, OpResult, Outcome
from pos_client.sync import SyncPolicy, SyncWorker
from tests.integration.ledger_helpers import sale_body


class ModelBackend:
    """Applies each key once; can be down, lose the answer after committing, or refuse."""

    def __init__(self) -> None:
        self.online = True
        self.lose_next_answer = False
        self.refused: set[str] = set()
        self.applied: dict[str, int] = {}

    def lookup(self, kind: str, value: str) -> MemberView | None:
        return None

    def member(self, member_id: str) -> MemberView | None:
        return None

    def ping(self) -> None:
        if not self.online:
            raise BackendUnavailable("down")

    def submit(self, bodies: Sequence[dict[str, Any]]) -> list[OpResult]:
        self.ping()
        results = []
        for body in bodies:
            key = body["key"]
            if key in self.refused:
                results.append(OpResult(key, Outcome.REJECTED, code="refused", error="no"))
                continue
            outcome = Outcome.DUPLICATE if key in self.applied else Outcome.APPLIED
            self.applied[key] = 1  # a real ledger applies a key once, whatever comes again
            results.append(OpResult(key, outcome, {"status": outcome.value}))
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise BackendUnavailable("answer lost after commit")
        return results

    def close(self) -> None:
        pass


class OutboxMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="outbox-model-"))
        self.backend = ModelBackend()
        self.outbox = Outbox(self.dir / "o.sqlite").open()
        self.worker = self._worker()
        self.recorded: list[str] = []

    def _worker(self) -> SyncWorker:
        return SyncWorker(
            self.outbox,
            self.backend,
            policy=SyncPolicy(batch_size=3, backoff_base_s=0.0, backoff_cap_s=0.0),
            rand=lambda: 0.0,
        )

    @rule(count=st.integers(1, 4))
    def record_sales(self, count: int) -> None:
        for _ in range(count):
            self.recorded.append(self.outbox.add(sale_body("m1", "1.00")).key)

    @rule()
    def go_offline(self) -> None:
        self.backend.online = False

    @rule()
    def go_online(self) -> None:
        self.backend.online = True

    @rule()
    def lose_the_next_answer(self) -> None:
        self.backend.lose_next_answer = True

    @precondition(lambda self: bool(self.recorded))
    @rule(index=st.integers(0, 1000))
    def refuse_a_sale(self, index: int) -> None:
        self.backend.refused.add(self.recorded[index % len(self.recorded)])

    @rule()
    def drain(self) -> None:
        self.outbox.make_due()
        self.worker.drain()

    @rule()
    def crash_mid_send(self) -> None:
        """The drainer claimed a batch and died before any answer: reopen everything."""
        with self.outbox.drain_lock():
            self.outbox.claim(3)
        self.outbox.close()
        self.outbox = Outbox(self.dir / "o.sqlite").open()
        self.worker = self._worker()

    @rule()
    def staff_retries_dead(self) -> None:
        self.backend.refused.clear()
        self.outbox.requeue_dead()

    @invariant()
    def nothing_recorded_is_lost(self) -> None:
        keys = {entry.key for entry in self.outbox.entries(limit=100_000)}
        assert set(self.recorded) <= keys

    @invariant()
    def acked_means_applied_once(self) -> None:
        for entry in self.outbox.entries(EntryState.ACKED, limit=100_000):
            assert self.backend.applied.get(entry.key) == 1

    def teardown(self) -> None:
        # Heal everything and drain: every sale ends applied exactly once.
        self.backend.online = True
        self.backend.lose_next_answer = False
        self.backend.refused.clear()
        self.outbox.requeue_dead()
        for _ in range(50):
            self.outbox.make_due()
            self.worker.drain()
            if self.outbox.stats().unsent == 0:
                break
        stats = self.outbox.stats()
        assert (stats.unsent, stats.dead) == (0, 0)
        assert set(self.backend.applied) == set(self.recorded)
        assert self.outbox.integrity_check() == "ok"
        self.outbox.close()
        shutil.rmtree(self.dir, ignore_errors=True)


OutboxMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
test_outbox_and_sync_against_a_model = OutboxMachine.TestCase
