"""The replay check of secure-NFC card taps (issue 12): a card's SUN message is accepted only
if its read counter is strictly higher than the last one accepted for that card.

One statement decides, atomically, on SQLite and PostgreSQL alike: an UPDATE that moves the
card's counter only upwards, else an INSERT for a card never seen that does nothing if
another transaction inserted it first. Two terminals presenting the same message at once:
on PostgreSQL the second UPDATE waits for the first's row lock and then finds the counter
no longer lower (READ COMMITTED re-reads the row), and the second INSERT waits for the
first's key and does nothing; on SQLite the writers are serialised (BEGIN IMMEDIATE). In
every case exactly one is accepted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, update
from sqlalchemy.dialects import postgresql, sqlite

from pos_client.ledger.schema import card_counters

MAX_COUNTER = 0xFFFFFF  # the card's SDMReadCtr is three bytes

# RETURNING tells what was written (a driver's rowcount for an INSERT that did nothing
# is -1 with psycopg here, not 0).
_INSERT_NEW = {
    "sqlite": sqlite.insert(card_counters).on_conflict_do_nothing().returning(card_counters.c.card),
    "postgresql": postgresql.insert(card_counters)
    .on_conflict_do_nothing()
    .returning(card_counters.c.card),
}


def card_key(uid: bytes) -> str:
    """How a card is keyed: its UID in upper-case hex (as the identifiers table has it)."""
    return uid.hex().upper()


def accept_counter(writer: Engine, uid: bytes, counter: int, now: datetime) -> bool:
    """Whether a tap with this read counter is new for the card (recorded as its last):
    False for a counter at or below the last accepted one (a replay, or a copy of an
    earlier message). `writer` begins transactions that write (BEGIN IMMEDIATE on SQLite)."""
    if not 0 <= counter <= MAX_COUNTER:
        raise ValueError("a card's read counter is 0 to 16,777,215")
    card = card_key(uid)
    with writer.begin() as conn:
        moved = conn.execute(
            update(card_counters)
            .where(card_counters.c.card == card, card_counters.c.counter < counter)
            .values(counter=counter, accepted_at=now)
            .returning(card_counters.c.card)
        ).first()
        if moved is not None:
            return True
        inserted = conn.execute(
            _INSERT_NEW[conn.dialect.name],
            {"card": card, "counter": counter, "accepted_at": now},
        ).first()
        return inserted is not None


def last_counter(engine: Engine, uid: bytes) -> int | None:
    """The last read counter accepted for the card (None: never seen)."""
    with engine.connect() as conn:
        row = conn.execute(
            card_counters.select().where(card_counters.c.card == card_key(uid))
        ).first()
    return None if row is None else int(row.counter)
