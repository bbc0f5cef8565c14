"""Console sessions: a random session id in a signed, HttpOnly, SameSite=Strict cookie; the
server keeps only its sha256 with the account, a CSRF token and an end (logging out deletes
it, so a copied cookie dies with the session). Every form carries the CSRF token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from loyalty_server.console.accounts import User
from loyalty_server.schema import console_sessions, console_users
from pos_client.domain import utcnow

COOKIE = "console_session"
LOGIN_COOKIE = "console_login"  # the login form's CSRF token, before any session
LIFETIME = timedelta(hours=8)  # a shift; then log in again


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def cookie_key(store_key: bytes) -> bytes:
    """The cookies' signing key, derived from the store's key (every worker has it)."""
    return hmac.new(store_key, b"console session cookies", hashlib.sha256).digest()


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    id_hash: str


class Signer:
    """Signs and checks cookie values (itsdangerous, with an age limit)."""

    def __init__(self, key: bytes) -> None:
        from itsdangerous import URLSafeTimedSerializer

        self._serializer = URLSafeTimedSerializer(key, salt="console")

    def sign(self, value: str) -> str:
        return str(self._serializer.dumps(value))

    def unsign(self, cookie: str, max_age: timedelta = LIFETIME) -> str | None:
        from itsdangerous import BadData

        if not cookie or len(cookie) > 512:
            return None
        try:
            value = self._serializer.loads(cookie, max_age=int(max_age.total_seconds()))
        except BadData:
            return None
        return value if isinstance(value, str) and 0 < len(value) <= 128 else None


def start(engine: Engine, user: User, now: datetime | None = None) -> tuple[str, str]:
    """A new session for `user`: (session id for the cookie, its CSRF token). Ended
    sessions are swept on the way."""
    now = now or utcnow()
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        conn.execute(console_sessions.delete().where(console_sessions.c.expires_at < now))
        conn.execute(
            console_sessions.insert().values(
                id_hash=_digest(session_id),
                user_name=user.name,
                csrf=csrf,
                created_at=now,
                expires_at=now + LIFETIME,
            )
        )
    return session_id, csrf


_SESSION = select(
    console_sessions.c.csrf,
    console_sessions.c.id_hash,
    console_users.c.name,
    console_users.c.role,
).join(console_users, console_users.c.name == console_sessions.c.user_name)


def find(engine: Engine, session_id: str, now: datetime | None = None) -> Session | None:
    """The live session with this id, of an account not disabled, or None."""
    now = now or utcnow()
    with engine.connect() as conn:
        row = conn.execute(
            _SESSION.where(
                console_sessions.c.id_hash == _digest(session_id),
                console_sessions.c.expires_at > now,
                console_users.c.disabled_at.is_(None),
            )
        ).first()
    return None if row is None else Session(User(row.name, row.role), row.csrf, row.id_hash)


def end(engine: Engine, session: Session) -> None:
    with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        conn.execute(console_sessions.delete().where(console_sessions.c.id_hash == session.id_hash))


def same_token(given: str | None, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())
