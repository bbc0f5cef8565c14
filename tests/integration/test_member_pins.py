"""Member PINs in the ledger, on a real SQLite file and a real PostgreSQL: only a hash kept,
failures in a row counted across tills at once, the lock, a new PIN forgetting the old."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from pos_client.demo import DEMO_MEMBERS, seed_demo_members
from pos_client.ledger import Ledger, make_engine
from pos_client.ledger.schema import member_pins
from pos_client.privacy import PhoneHasher
from tests.conftest import preset

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


@pytest.fixture
def ledger(database_url: str) -> Ledger:
    ledger = Ledger(make_engine(database_url), preset("category_tiers"))
    seed_demo_members(ledger, PhoneHasher(b"k" * 32))
    return ledger


def anna(ledger: Ledger) -> str:
    member = ledger.find_member_id("card_number", DEMO_MEMBERS[0].card_number)
    assert member is not None
    return member


def test_a_pin_is_checked_and_only_its_hash_kept(ledger: Ledger) -> None:
    member = anna(ledger)
    assert ledger.check_member_pin(member, "4071").no_pin
    ledger.set_member_pin(member, "4071")
    with ledger.engine.connect() as conn:
        stored = conn.execute(select(member_pins.c.pin_hash)).scalar_one()
    assert "4071" not in stored
    assert ledger.check_member_pin(member, "4071").ok
    wrong = ledger.check_member_pin(member, "1397")
    assert not wrong.ok and wrong.remaining == 4
    for bad in ("1234", "12", "abcd"):
        with pytest.raises(ValueError):
            ledger.set_member_pin(member, bad)
    with pytest.raises(ValueError, match="no member"):
        ledger.set_member_pin("nobody", "4071")
    ledger.engine.dispose()


def test_five_failures_in_a_row_lock_even_the_right_pin_until_the_lock_ends(
    ledger: Ledger,
) -> None:
    member = anna(ledger)
    ledger.set_member_pin(member, "4071")
    checks = [ledger.check_member_pin(member, "1397", NOW) for _ in range(5)]
    assert [c.remaining for c in checks[:4]] == [4, 3, 2, 1]
    assert checks[4].locked_until == NOW + timedelta(minutes=15)
    assert not ledger.check_member_pin(member, "4071", NOW + timedelta(minutes=14)).ok
    assert ledger.check_member_pin(member, "4071", NOW + timedelta(minutes=16)).ok
    assert ledger.check_member_pin(member, "1397", NOW + timedelta(minutes=17)).remaining == 4
    ledger.engine.dispose()


def test_guesses_from_many_tills_at_once_are_all_counted(ledger: Ledger) -> None:
    member = anna(ledger)
    ledger.set_member_pin(member, "4071")
    start = threading.Barrier(8)
    results: list[bool] = []

    def guess(pin: str) -> None:
        start.wait()
        results.append(ledger.check_member_pin(member, pin, NOW).ok)

    threads = [threading.Thread(target=guess, args=(f"{1300 + i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [False] * 8
    with ledger.engine.connect() as conn:
        failures = conn.execute(select(member_pins.c.failures)).scalar_one()
    assert failures == 5  # none lost to a race: the fifth locked it, the rest were refused
    assert ledger.check_member_pin(member, "4071", NOW).locked_until is not None
    ledger.engine.dispose()
