"""The replay check of secure-NFC taps (issue 12): a card's message is accepted only with a
read counter above the last accepted one, atomically. On a real SQLite file and a real
PostgreSQL, migrated by the server's migrations; concurrent presentations from threads
that each hold their own connection, released together."""

from __future__ import annotations

import threading

import pytest

from pos_client.ledger import Ledger, make_engine
from pos_client.ledger.card_counters import last_counter
from tests.conftest import preset

CARD = bytes.fromhex("04958CAA5C5E80")
OTHER = bytes.fromhex("04DE5F1EACC040")


@pytest.fixture
def ledger(database_url: str) -> Ledger:
    return Ledger(make_engine(database_url), preset("category_tiers"))


def test_a_card_is_accepted_only_with_a_rising_counter(ledger: Ledger) -> None:
    assert ledger.accept_card_counter(CARD, 8)  # first seen
    assert not ledger.accept_card_counter(CARD, 8)  # the same message again: a replay
    assert not ledger.accept_card_counter(CARD, 7)  # an older message
    assert ledger.accept_card_counter(CARD, 9)
    assert ledger.accept_card_counter(CARD, 20)  # taps elsewhere in between: fine
    assert not ledger.accept_card_counter(CARD, 19)
    assert ledger.accept_card_counter(OTHER, 1)  # each card counts for itself
    assert (last_counter(ledger.engine, CARD), last_counter(ledger.engine, OTHER)) == (20, 1)
    ledger.engine.dispose()


def test_a_counter_a_card_cannot_hold_is_refused(ledger: Ledger) -> None:
    for counter in (-1, 0x1000000):
        with pytest.raises(ValueError, match="read counter"):
            ledger.accept_card_counter(CARD, counter)
    assert last_counter(ledger.engine, CARD) is None
    ledger.engine.dispose()


def presented_at_once(ledger: Ledger, card: bytes, counter: int, terminals: int) -> list[bool]:
    """`terminals` threads present the same message at the same moment."""
    start = threading.Barrier(terminals)
    verdicts: list[bool] = []
    lock = threading.Lock()

    def present() -> None:
        start.wait()
        verdict = ledger.accept_card_counter(card, counter)
        with lock:
            verdicts.append(verdict)

    threads = [threading.Thread(target=present) for _ in range(terminals)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return verdicts


def test_the_same_message_presented_at_once_by_eight_terminals_is_accepted_once(
    ledger: Ledger,
) -> None:
    for round_number in range(15):
        card = bytes([0x04, round_number]) + bytes(5)
        # A card never seen (the INSERT race), then one seen before (the UPDATE race).
        first = presented_at_once(ledger, card, 5, 8)
        later = presented_at_once(ledger, card, 6, 8)
        assert sorted(first) == [False] * 7 + [True], round_number
        assert sorted(later) == [False] * 7 + [True], round_number
        assert last_counter(ledger.engine, card) == 6
    ledger.engine.dispose()
