"""Expiry dates in store days: `months` later, clamped to the month's last day."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from pos_client.rules import expiry_cutoff, expiry_date


def test_points_earned_on_a_month_end_expire_on_the_shorter_months_last_day() -> None:
    assert expiry_date(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert expiry_date(date(2027, 12, 31), 2) == date(2028, 2, 29)
    assert expiry_date(date(2025, 12, 10), 12) == date(2026, 12, 10)


def test_on_28_february_every_late_january_day_has_expired() -> None:
    assert expiry_cutoff(date(2026, 2, 28), 1) == date(2026, 2, 1)
    assert expiry_cutoff(date(2026, 2, 27), 1) == date(2026, 1, 28)


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
    st.integers(min_value=1, max_value=60),
)
def test_the_cutoff_splits_expired_days_from_the_rest(today: date, months: int) -> None:
    cutoff = expiry_cutoff(today, months)
    assert expiry_date(cutoff - timedelta(days=1), months) <= today  # the last expired day
    assert expiry_date(cutoff, months) > today  # the first day not expired
