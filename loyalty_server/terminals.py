"""Terminal registration: short-lived pairing codes that yield per-terminal tokens,
stored hashed and revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, bindparam, select

from loyalty_server.schema import pairing_codes, terminals
from pos_client.domain import utcnow, uuid7

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed by hand


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Terminal:
    id: str
    name: str
    merchant: str = ""  # its coalition merchant ("" = the operator's, or no coalition)


class PairingError(Exception):
    pass


MAX_NAME = 80  # terminals.name is VARCHAR(80)


def name_problem(name: str) -> str | None:
    """Why `name` (in NFC) cannot name a terminal, or None: 1 to 80 characters of printable
    text (the rule for members' names, letters not needed), no spaces at either end."""
    from pos_client.domain import text_problem

    if not name:
        return "a terminal needs a name"
    if len(name) > MAX_NAME:
        return f"at most {MAX_NAME} characters"
    if name != name.strip():
        return "leading or trailing spaces"
    return text_problem(name)


def add_terminal(engine: Engine, name: str, ttl_s: int, merchant: str = "") -> tuple[str, str]:
    """Register a terminal (of a coalition `merchant`, checked by the caller against the
    programme); returns (terminal id, one-time pairing code). A name that is no printable
    text of 1 to 80 characters raises ValueError (with the reason)."""
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(f"terminal name: {problem}")
    terminal_id = uuid7()
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))
    now = utcnow()
    with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        conn.execute(
            terminals.insert().values(id=terminal_id, name=name, created_at=now, merchant=merchant)
        )
        conn.execute(
            pairing_codes.insert().values(
                code_hash=digest(code),
                terminal_id=terminal_id,
                expires_at=now + timedelta(seconds=ttl_s),
            )
        )
    return terminal_id, code


def pair(engine: Engine, code: str, now: datetime | None = None) -> tuple[str, str]:
    """Trade a pairing code for a token, once. Returns (terminal id, token)."""
    now = now or utcnow()
    # A wrong guess is answered from a read (no write lock, which every sale needs too).
    with engine.connect() as reader:
        known = reader.execute(
            select(pairing_codes.c.used_at, pairing_codes.c.expires_at).where(
                pairing_codes.c.code_hash == digest(code.upper())
            )
        ).first()
    if known is None or known.used_at is not None or known.expires_at < now:
        raise PairingError("unknown, used or expired pairing code")
    token = secrets.token_urlsafe(32)
    with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        row = conn.execute(
            select(
                pairing_codes.c.terminal_id, pairing_codes.c.expires_at, pairing_codes.c.used_at
            ).where(pairing_codes.c.code_hash == digest(code.upper()))
        ).first()
        if row is None or row.used_at is not None or row.expires_at < now:
            raise PairingError("unknown, used or expired pairing code")
        terminal = conn.execute(
            select(terminals.c.revoked_at).where(terminals.c.id == row.terminal_id)
        ).first()
        if terminal is None or terminal.revoked_at is not None:
            raise PairingError("this terminal was revoked")
        conn.execute(
            pairing_codes.update()
            .where(pairing_codes.c.code_hash == digest(code.upper()))
            .values(used_at=now)
        )
        conn.execute(
            terminals.update()
            .where(terminals.c.id == row.terminal_id)
            .values(token_hash=digest(token))
        )
    return row.terminal_id, token


# Built once: every request authenticates.
_BY_TOKEN = select(terminals.c.id, terminals.c.name, terminals.c.merchant).where(
    terminals.c.token_hash == bindparam("token_hash"), terminals.c.revoked_at.is_(None)
)


def authenticate(engine: Engine, token: str) -> Terminal | None:
    with engine.connect() as conn:
        row = conn.execute(_BY_TOKEN, {"token_hash": digest(token)}).first()
    return Terminal(row.id, row.name, row.merchant) if row else None


def revoke(engine: Engine, terminal_id: str) -> bool:
    with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        result = conn.execute(
            terminals.update()
            .where(terminals.c.id == terminal_id)
            .values(revoked_at=utcnow(), token_hash=None)
        )
    return bool(result.rowcount)
