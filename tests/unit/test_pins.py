"""Member PINs: the rules, the salted hash and its constant-time check, the lockout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pos_client.pins import hash_pin, lock_after, pin_matches, pin_problem

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("pin", "problem"),
    [
        ("123", "4 to 8 digits"),
        ("123456789", "4 to 8 digits"),
        ("12a4", "4 to 8 digits"),
        ("１２３９", "4 to 8 digits"),  # full-width digits are not typed on a keypad
        ("1234", "tried first"),
        ("0000", "tried first"),
        ("9876", "tried first"),
        ("2580", "tried first"),  # a keypad's middle column
        ("1212", "tried first"),
        ("123123", "tried first"),
        ("1999", "tried first"),  # a year
        ("4071", None),
        ("73194628", None),
    ],
)
def test_a_pin_is_four_to_eight_digits_and_not_the_first_tried(
    pin: str, problem: str | None
) -> None:
    found = pin_problem(pin)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_a_pin_is_kept_as_a_salted_hash_that_only_it_matches() -> None:
    stored = hash_pin("4071")
    assert "4071" not in stored and stored != hash_pin("4071")  # salted
    assert pin_matches("4071", stored)
    assert not pin_matches("4072", stored)
    assert not pin_matches("4071", stored.replace("scrypt$16384", "scrypt$2"))  # not ours
    assert not pin_matches("4071", "plain 2580")


def test_the_fifth_failure_in_a_row_locks_for_fifteen_minutes_then_longer() -> None:
    assert [lock_after(n, NOW) for n in range(1, 5)] == [None] * 4
    assert lock_after(5, NOW) == NOW + timedelta(minutes=15)
    assert lock_after(6, NOW) is None
    assert lock_after(10, NOW) == NOW + timedelta(minutes=30)
    assert lock_after(500, NOW) == NOW + timedelta(hours=24)
