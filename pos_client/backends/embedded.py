"""The ledger in-process, on a local SQLite file: the terminal's default backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import OperationalError

from pos_client.domain import MemberView
from pos_client.ledger import Ledger
from pos_client.operations import OpConflict, OpRejected
from pos_client.ports import BackendUnavailable, OpResult, Outcome


class EmbeddedBackend:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def lookup(self, kind: str, value: str) -> MemberView | None:
        member_id = self.ledger.find_member_id(kind, value)
        return self.ledger.member_view(member_id) if member_id else None

    def member(self, member_id: str) -> MemberView | None:
        return self.ledger.member_view(member_id)

    def submit(self, bodies: Sequence[dict[str, Any]]) -> list[OpResult]:
        return [self._submit_one(body) for body in bodies]

    def _submit_one(self, body: dict[str, Any]) -> OpResult:
        key = str(body.get("key", ""))
        try:
            result = self.ledger.apply(body)
        except OpConflict as exc:
            return OpResult(key, Outcome.CONFLICT, code=exc.code, error=exc.message)
        except OpRejected as exc:
            return OpResult(key, Outcome.REJECTED, code=exc.code, error=exc.message)
        except OperationalError as exc:  # database locked or I/O trouble: try again later
            return OpResult(key, Outcome.RETRY, code="storage", error=str(exc.orig))
        outcome = Outcome.DUPLICATE if result.get("status") == "duplicate" else Outcome.APPLIED
        return OpResult(key, outcome, result=result)

    def ping(self) -> None:
        try:
            with self.ledger.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except OperationalError as exc:
            raise BackendUnavailable(f"ledger unavailable: {exc.orig}") from None

    def close(self) -> None:
        self.ledger.engine.dispose()
