"""Staff accounts of the console: names, roles, Argon2 password hashes, a lock after
failures in a row. The password itself is never stored nor logged."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from loyalty_server.schema import console_sessions, console_users
from pos_client.domain import utcnow

ROLES = ("manager", "auditor")
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
FAILURES_BEFORE_LOCK = 5
LOCK = timedelta(minutes=15)

# Argon2id at its library defaults costs 64 MiB and tens of milliseconds a hash: at most two
# at once in a process, so a burst of logins cannot take the server's memory.
_HASHING = threading.BoundedSemaphore(2)


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def can_change(self) -> bool:
        return self.role == "manager"


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    locked_until: datetime | None = None
    locked_now: bool = False  # this very attempt locked the account
    known: bool = True  # the name is an active account's (the caller never says so)


def name_problem(name: str) -> str | None:
    if not NAME.fullmatch(name):
        return "a name is 1 to 32 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
    return None


def password_problem(password: str) -> str | None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        return "a password has no control characters"
    return None


def hash_password(password: str) -> str:
    from argon2 import PasswordHasher

    with _HASHING:
        return PasswordHasher().hash(password)


def _verify(password_hash: str, password: str) -> bool:
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    with _HASHING:
        try:
            return PasswordHasher().verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


# Checked against when the name is unknown, so an unknown name costs what a known one does.
_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(hash_password("not anybody's password at all"))
    return _DUMMY[0]


def add_user(engine: Engine, name: str, role: str, password: str) -> None:
    """Add a staff account, or give an existing one a new role and password (and unlock
    it). Raises ValueError with the reason for a bad name, role or password."""
    problem = (
        name_problem(name)
        or (None if role in ROLES else f"a role is one of {', '.join(ROLES)}")
        or password_problem(password)
    )
    if problem:
        raise ValueError(problem)
    password_hash = hash_password(password)
    now = utcnow()
    with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        known = conn.execute(
            select(console_users.c.name).where(console_users.c.name == name)
        ).first()
        if known is None:
            conn.execute(
                console_users.insert().values(
                    name=name,
                    role=role,
                    password_hash=password_hash,
                    failures=0,
                    created_at=now,
                )
            )
        else:
            conn.execute(
                console_users.update()
                .where(console_users.c.name == name)
                .values(
                    role=role,
                    password_hash=password_hash,
                    failures=0,
                    locked_until=None,
                    disabled_at=None,
                )
            )
            # A new password ends the sessions the old one opened (it may have leaked).
            conn.execute(console_sessions.delete().where(console_sessions.c.user_name == name))


def disable_user(engine: Engine, name: str) -> bool:
    with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        done = conn.execute(
            console_users.update()
            .where(console_users.c.name == name, console_users.c.disabled_at.is_(None))
            .values(disabled_at=utcnow())
        ).rowcount
        conn.execute(console_sessions.delete().where(console_sessions.c.user_name == name))
    return bool(done)


def list_users(engine: Engine) -> list[tuple[str, str, bool]]:
    """(name, role, active) of every account, by name."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                console_users.c.name, console_users.c.role, console_users.c.disabled_at
            ).order_by(console_users.c.name)
        ).all()
    return [(row.name, row.role, row.disabled_at is None) for row in rows]


def log_in(engine: Engine, name: str, password: str, now: datetime | None = None) -> LoginResult:
    """The account if `password` is its own and it is neither locked nor disabled. The
    FAILURES_BEFORE_LOCK-th wrong password in a row locks it for LOCK, during which even
    the right password is refused. An unknown name costs the same hash."""
    now = now or utcnow()
    if name_problem(name) is not None or len(password) > MAX_PASSWORD:
        _verify(_dummy_hash(), password[:MAX_PASSWORD])
        return LoginResult(None, known=False)
    with engine.connect() as conn:
        row = conn.execute(select(console_users).where(console_users.c.name == name)).first()
    if row is None or row.disabled_at is not None:
        _verify(_dummy_hash(), password)
        return LoginResult(None, known=False)
    if row.locked_until is not None and row.locked_until > now:
        _verify(_dummy_hash(), password)  # as long as any other answer
        return LoginResult(None, row.locked_until)
    right = _verify(row.password_hash, password)
    with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        if right:
            conn.execute(
                console_users.update()
                .where(console_users.c.name == name)
                .values(failures=0, locked_until=None)
            )
            return LoginResult(User(row.name, row.role))
        # Counted in the database (every worker sees it), from its current value.
        failures = conn.execute(
            select(console_users.c.failures).where(console_users.c.name == name)
        ).scalar_one()
        failures += 1
        locked = now + LOCK if failures >= FAILURES_BEFORE_LOCK else None
        conn.execute(
            console_users.update()
            .where(console_users.c.name == name)
            .values(failures=0 if locked else failures, locked_until=locked)
        )
    return LoginResult(None, locked, locked is not None)
