"""Coalition merchants' credentials for reading their settlement: one bearer token per
merchant (and one for the operator, who reads every merchant's), stored hashed, revocable.
The token is printed once by `loyalty-server merchant token ID` (or `--operator`)."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, select

from loyalty_server.schema import merchant_tokens
from loyalty_server.terminals import digest
from pos_client.domain import utcnow

TOKEN_PREFIX = "lm_"  # tells a merchant token from a terminal's or a partner's
OPERATOR_KEY = "*"  # the operator's row: not a merchant id (ids are letters, digits, - and _)


def issue_token(engine: Engine, merchant_id: str) -> str:
    """A new token for `merchant_id` (or OPERATOR_KEY); any earlier one stops working."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        found = conn.execute(
            select(merchant_tokens.c.merchant_id).where(
                merchant_tokens.c.merchant_id == merchant_id
            )
        ).first()
        if found is None:
            conn.execute(
                merchant_tokens.insert().values(
                    merchant_id=merchant_id, token_hash=digest(token), created_at=now
                )
            )
        else:
            conn.execute(
                merchant_tokens.update()
                .where(merchant_tokens.c.merchant_id == merchant_id)
                .values(token_hash=digest(token), revoked_at=None, created_at=now)
            )
    return token


def authenticate(engine: Engine, token: str) -> str | None:
    """The merchant id (or OPERATOR_KEY) this token belongs to; None if unknown or revoked."""
    with engine.connect() as conn:
        row = conn.execute(
            select(merchant_tokens.c.merchant_id).where(
                merchant_tokens.c.token_hash == digest(token),
                merchant_tokens.c.revoked_at.is_(None),
            )
        ).first()
    return str(row[0]) if row else None


def revoke(engine: Engine, merchant_id: str) -> bool:
    with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        result = conn.execute(
            merchant_tokens.update()
            .where(
                merchant_tokens.c.merchant_id == merchant_id,
                merchant_tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow(), token_hash=None)
        )
    return bool(result.rowcount)
