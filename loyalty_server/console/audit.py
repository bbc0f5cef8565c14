"""The console's audit log: every change, who made it, when, what and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from loyalty_server.schema import console_audit
from pos_client.domain import utcnow


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    user_name: str
    action: str
    target: str
    detail: str
    reason: str


def record(
    conn: Connection,
    user_name: str,
    action: str,
    target: str,
    detail: str = "",
    reason: str = "",
    now: datetime | None = None,
) -> None:
    """Write one entry, in the caller's transaction (the change and its record together)."""
    conn.execute(
        console_audit.insert().values(
            at=now or utcnow(),
            user_name=user_name[:32],
            action=action[:32],
            target=target[:128],
            detail=detail[:400],
            reason=reason[:200],
        )
    )


def recent(engine: Engine, limit: int = 200, offset: int = 0) -> list[AuditEntry]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(console_audit).order_by(console_audit.c.id.desc()).limit(limit).offset(offset)
        ).all()
    return [AuditEntry(r.at, r.user_name, r.action, r.target, r.detail, r.reason) for r in rows]
