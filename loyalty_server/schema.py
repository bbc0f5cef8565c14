"""Server-only tables: terminals and their tokens, pairing codes, flags, security events."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Integer, MetaData, String, Table, Text, text

from pos_client.ledger.schema import BIGID, UTCDateTime

server_metadata = MetaData()

terminals = Table(
    "terminals",
    server_metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(80), nullable=False),
    Column("token_hash", String(64), nullable=True, unique=True),  # sha256; never the token
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    # The coalition merchant the terminal's tills belong to ("" = the operator): the
    # server's record, never the terminal's word. Revision 0011.
    Column("merchant", String(32), nullable=False, server_default=text("''")),
)

pairing_codes = Table(
    "pairing_codes",
    server_metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("terminal_id", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

flags = Table(
    "flags",
    server_metadata,
    Column("member_id", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("earnings", Integer, nullable=False),
    Column("flagged_at", UTCDateTime, nullable=False),
)

# Partner programmes posting inbound transfers: one token each, stored hashed, revocable.
partners = Table(
    "partners",
    server_metadata,
    Column("id", String(64), primary_key=True),  # the programme's partner id (give target)
    Column("token_hash", String(64), nullable=True, unique=True),  # sha256; never the token
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

# Coalition merchants reading their settlement through the API: one token each (the
# operator's under "*", which reads every merchant's), stored hashed, revocable. 0011.
merchant_tokens = Table(
    "merchant_tokens",
    server_metadata,
    Column("merchant_id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=True, unique=True),  # sha256; never the token
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

# Rate limits shared by every server process on one database: hits per key (a terminal's
# lookups, its operations, a client address's failed pairings) per second; a limit sums the
# last minute's rows. Rows older than a few minutes are pruned.
rate_counters = Table(
    "rate_counters",
    server_metadata,
    Column("key", String(160), primary_key=True),
    Column("bucket", BigInteger, primary_key=True),  # the Unix second
    Column("n", Integer, nullable=False),
)

# Client addresses locked out of pairing until a time (failed attempts past the limit).
lockouts = Table(
    "lockouts",
    server_metadata,
    Column("key", String(160), primary_key=True),
    Column("until", UTCDateTime, nullable=False),
)

# What the store should look at (issue 12): a secure card's message refused as forged or
# unreadable, or replayed (its read counter not above the last accepted). `card` is the
# card's UID in hex when the message decrypted (never in a log line), else NULL.
security_events = Table(
    "security_events",
    server_metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("terminal_id", String(64), nullable=False),
    Column("card", String(32), nullable=True),
)

# The store managers' web console (issue 13), revision 0015.
# Staff accounts: Argon2 password hashes (never the password), failures in a row and a lock.
console_users = Table(
    "console_users",
    server_metadata,
    Column("name", String(32), primary_key=True),
    Column("role", String(16), nullable=False),  # manager | auditor
    Column("password_hash", String(200), nullable=False),
    Column("failures", Integer, nullable=False, server_default=text("0")),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
)

# Signed-in browsers: the sha256 of the session id the cookie carries (the cookie alone is
# never enough: logging out deletes the row), its CSRF token and its end.
console_sessions = Table(
    "console_sessions",
    server_metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_name", String(32), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# Every change made in the console: who, when, what (an action on a target, its detail)
# and why. Never purged.
console_audit = Table(
    "console_audit",
    server_metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("user_name", String(32), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(128), nullable=False),
    Column("detail", String(400), nullable=False),
    Column("reason", String(200), nullable=False),
)

# The last heartbeat each terminal sent while syncing: what its outbox holds, its readers.
# `dead` is the dead entries it listed (JSON: key, reason, age), bounded by the API.
terminal_heartbeats = Table(
    "terminal_heartbeats",
    server_metadata,
    Column("terminal_id", String(64), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("app_version", String(40), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("pending", Integer, nullable=False),
    Column("dead_count", Integer, nullable=False),
    Column("oldest_pending_s", Integer, nullable=True),
    Column("readers", String(400), nullable=False),
    Column("dead", Text, nullable=False),
)

# Programme versions uploaded through the console, each active from `activate_at` until a
# later one's; the programme file the server starts with stands before the first.
program_versions = Table(
    "program_versions",
    server_metadata,
    Column("version", String(64), primary_key=True),
    Column("source", Text, nullable=False),
    Column("uploaded_at", UTCDateTime, nullable=False),
    Column("uploaded_by", String(32), nullable=False),
    Column("activate_at", UTCDateTime, nullable=False, index=True),
)

# A manager's decision on a flagged member-day (approve, or reverse its earnings).
flag_reviews = Table(
    "flag_reviews",
    server_metadata,
    Column("member_id", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("decision", String(16), nullable=False),  # approved | reversed
    Column("user_name", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)
