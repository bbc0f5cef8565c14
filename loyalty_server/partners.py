"""Partner programmes' credentials: one bearer token per partner, stored hashed, revocable.

A partner posts inbound transfers (its units in, credited as points) to the partner API;
terminals may not. The token is printed once by `loyalty-server partner add NAME`.
"""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, select

from loyalty_server.schema import partners
from loyalty_server.terminals import digest
from pos_client.domain import utcnow

TOKEN_PREFIX = "lp_"  # tells a partner token from a terminal token in logs and support


def add_partner(engine: Engine, partner_id: str) -> str:
    """Register (or re-key) a partner; returns its new token, which is stored only hashed."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        exists = conn.execute(select(partners.c.id).where(partners.c.id == partner_id)).first()
        if exists is None:
            conn.execute(
                partners.insert().values(id=partner_id, token_hash=digest(token), created_at=now)
            )
        else:
            conn.execute(
                partners.update()
                .where(partners.c.id == partner_id)
                .values(token_hash=digest(token), revoked_at=None)
            )
    return token


def authenticate(engine: Engine, token: str) -> str | None:
    """The partner id this token belongs to, or None (unknown or revoked)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(partners.c.id).where(
                partners.c.token_hash == digest(token), partners.c.revoked_at.is_(None)
            )
        ).first()
    return str(row[0]) if row else None


def revoke(engine: Engine, partner_id: str) -> bool:
    with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        result = conn.execute(
            partners.update()
            .where(partners.c.id == partner_id, partners.c.revoked_at.is_(None))
            .values(revoked_at=utcnow(), token_hash=None)
        )
    return bool(result.rowcount)
