"""Ledger tables in SQLAlchemy Core: portable between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.engine import Dialect


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


BIGID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrement needs INTEGER

metadata = MetaData()

members = Table(
    "members",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("first_name", String(80), nullable=False),
    Column("last_name", String(80), nullable=False, default=""),
    Column("phone_last", String(4), nullable=False, default=""),
    Column("card_number", String(64), nullable=True),
    Column("birthday", Date, nullable=True),
    Column("enrolled_at", UTCDateTime, nullable=False),
    Column("consent_text_id", String(64), nullable=False),
    Column("consent_at", UTCDateTime, nullable=False),
    Column("consent_channel", String(20), nullable=False),
    Column("marketing", Boolean, nullable=False, default=False),
    Column("balance", BigInteger, nullable=False, default=0),
    # A parent or guardian consented for a minor (the age gate). Ledger version 8, 0012.
    Column("guardian_consent", Boolean, nullable=False, server_default=false()),
)

identifiers = Table(
    "identifiers",
    metadata,
    Column("kind", String(20), primary_key=True),
    Column("value", String(128), primary_key=True),  # HMAC for phones
    Column("member_id", String(64), ForeignKey("members.id"), nullable=False, index=True),
)

operations = Table(
    "operations",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("result", Text, nullable=False),
    Column("terminal_id", String(64), nullable=False, default=""),
    Column("applied_at", UTCDateTime, nullable=False, index=True),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("member_id", String(64), ForeignKey("members.id"), nullable=False),
    # No foreign key: idempotency keys are purged after their retention window.
    Column("op_key", String(64), nullable=True, index=True),
    Column("kind", String(16), nullable=False),  # earn, redeem, birthday, action, expire, adjust
    Column("points", BigInteger, nullable=False),  # signed
    Column("amount_minor", BigInteger, nullable=False, default=0),  # spend in minor units
    Column("reward_id", String(64), nullable=True),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    # A sale's units in thousandths (kilometres, nights: programmes that earn by them) and
    # the lines carrying them (segments, stays); 0 otherwise. Ledger version 6, 0010.
    Column("units_milli", BigInteger, nullable=False, server_default=text("0")),
    Column("segments", Integer, nullable=False, server_default=text("0")),
    # The coalition merchant whose till recorded it ("" = the operator, or no coalition): its
    # points are its to fund, its redemptions its to be paid for. Ledger version 7, 0011.
    Column("merchant", String(32), nullable=False, server_default=text("''")),
)
Index("ix_transactions_member_time", transactions.c.member_id, transactions.c.occurred_at)
# Across members by time: the console's days (ledger version 11, migration 0015).
Index("ix_transactions_occurred_at", transactions.c.occurred_at)

# Inbound transfers posted by partners through the partner API: each partner's own
# reference is applied once (the primary key), a replay returns the stored first result.
partner_transfers = Table(
    "partner_transfers",
    metadata,
    Column("partner_id", String(64), primary_key=True),
    Column("reference", String(64), primary_key=True),
    Column("body_hash", String(64), nullable=False),
    Column("member_id", String(64), ForeignKey("members.id"), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("result", Text, nullable=False),
    Column("received_at", UTCDateTime, nullable=False, index=True),
)

# One birthday reward (bonus points or the birthday gift) per member per birthday year,
# however the sales are dated: the primary key is the constraint (migration 0003).
birthday_grants = Table(
    "birthday_grants",
    metadata,
    Column("member_id", String(64), ForeignKey("members.id"), primary_key=True),
    Column("year", Integer, primary_key=True),  # the year of the birthday celebrated
    Column("op_key", String(64), nullable=False),
    Column("granted_at", UTCDateTime, nullable=False),
)

# Per-member earning totals (what tier rules count: points of the earning kinds, spend and
# visits of sales), kept in the same transaction as each posting so a tier read is a handful
# of rows whatever the member's history. One row per member and store-local day, month and
# in all (grain "d", "m", "a"; `start` is the day, the month's first day, or 0001-01-01):
# a calendar year reads its months, a rolling period its whole months plus the first
# month's days, lifetime one row (migration 0005). Grain "r": the store day an operation
# was recorded on, its points credited and earnings (daily cap, review flag; 0006).
member_totals = Table(
    "member_totals",
    metadata,
    Column("member_id", String(64), ForeignKey("members.id"), primary_key=True),
    Column("grain", String(1), primary_key=True),
    Column("start", Date, primary_key=True),
    Column("points", BigInteger, nullable=False, default=0),
    Column("spend_minor", BigInteger, nullable=False, default=0),
    Column("visits", BigInteger, nullable=False, default=0),
    Column("units_milli", BigInteger, nullable=False, server_default=text("0")),
    Column("segments", BigInteger, nullable=False, server_default=text("0")),
)


# The last secure-NFC (SUN) read counter accepted per NTAG 424 DNA card (issue 12): a tap is
# accepted only with a strictly higher counter, so a replayed or copied message is refused
# (ledger version 4, migration 0007). `card` is the UID in upper-case hex, as identifiers.
# A member's PIN (its salted scrypt hash, never the PIN) and the failures in a row that
# lock it for a while (pos_client/pins.py).
# Tiers a member reached, with the last store day a sale found them reaching it: kept by
# programmes whose tiers are never lost (downgrade = never) or kept for a grace. Ledger
# version 9, migration 0013.
member_tiers = Table(
    "member_tiers",
    metadata,
    Column("member_id", String(64), ForeignKey("members.id"), primary_key=True),
    Column("tier_id", String(64), primary_key=True),
    Column("reached_on", Date, nullable=False),
)

# Staff who award points (issue 11's staff awards): their PINs' salted hashes, failures in
# a row and lock; and every award, who gave it and who approved it (an audit trail never
# purged). Ledger version 10, migration 0014.
staff_members = Table(
    "staff_members",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(80), nullable=False),
    Column("pin_hash", String(200), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("added_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime, nullable=True),
)
staff_awards = Table(
    "staff_awards",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("member_id", String(64), ForeignKey("members.id"), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("reason", String(200), nullable=False),
    Column("staff_id", String(32), nullable=False),
    Column("approver_id", String(32), nullable=True),
    Column("terminal_id", String(64), nullable=False),
    Column("awarded_at", UTCDateTime, nullable=False, index=True),
)

member_pins = Table(
    "member_pins",
    metadata,
    Column("member_id", String(64), ForeignKey("members.id"), primary_key=True),
    Column("pin_hash", String(200), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("set_at", UTCDateTime, nullable=False),
)

card_counters = Table(
    "card_counters",
    metadata,
    Column("card", String(32), primary_key=True),
    Column("counter", Integer, nullable=False),
    Column("accepted_at", UTCDateTime, nullable=False),
)


def one_of(column: Any, name: str, dialect: str) -> Any:
    """`column IN :name`, a list bound at execution. On PostgreSQL `column = ANY(:name)`
    over one array: the same statement text whatever the number of values, so it is
    compiled once and prepared by the driver (an expanded IN is new SQL for every length).
    Elsewhere an expanding IN."""
    if dialect == "postgresql":
        from sqlalchemy import any_, bindparam
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    from sqlalchemy import bindparam

    return column.in_(bindparam(name, expanding=True))


class PerDialect:
    """A statement built once per database dialect, on first use, then reused: a reused
    statement object skips SQLAlchemy's construction and cache-key work on every call."""

    def __init__(self, build: Callable[[str], Any]) -> None:
        self._build = build
        self._built: dict[str, Any] = {}

    def __getitem__(self, dialect: str) -> Any:
        statement = self._built.get(dialect)
        if statement is None:
            statement = self._built[dialect] = self._build(dialect)
        return statement
