"""Server-only tables: terminals and their tokens, pairing codes, flags, security events."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Integer, MetaData, String, Table, text

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
