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


def test_a_pin_is_changed_only_over_the_one_checked(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change checks the current PIN, hashes the new one (slowly), then writes: a reset or
    another change landing in between wins, and this change is refused, not laid over it.
    And a "change" of a PIN that does not exist is no way to set a first one."""
    from pos_client import pins

    member = anna(ledger)
    with pytest.raises(pins.PinRefused) as nothing:
        ledger.set_member_pin(member, "4071", current_pin="0000")
    assert nothing.value.code == "pin_not_set"
    ledger.set_member_pin(member, "4071")
    slow_hash = pins.hash_pin

    def reset_meanwhile(pin: str, salt: bytes | None = None) -> str:
        monkeypatch.setattr(pins, "hash_pin", slow_hash)  # once
        ledger.reset_member_pin(member)  # staff reset it while the change was hashing
        ledger.set_member_pin(member, "5182")  # and the member chose a new one
        return slow_hash(pin, salt)

    monkeypatch.setattr(pins, "hash_pin", reset_meanwhile)
    with pytest.raises(pins.PinRefused) as lost:
        ledger.set_member_pin(member, "7304", current_pin="4071")
    assert lost.value.code == "pin_changed"
    monkeypatch.setattr(pins, "hash_pin", slow_hash)
    assert ledger.check_member_pin(member, "5182").ok
    assert not ledger.check_member_pin(member, "7304").ok
    ledger.engine.dispose()
