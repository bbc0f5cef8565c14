"""The age gate at enrollment (issue 11, mechanic 3), as pure rules."""

from __future__ import annotations

from datetime import date

import pytest

from pos_client.configfile import ConfigError
from pos_client.program import ProgramDocument
from pos_client.rules import MembershipGate, age_on, enrollment_refusal

GATE = MembershipGate(min_age=18, guardian_from_age=13)
DAY = date(2026, 11, 26)


def test_age_counts_whole_years_and_a_leap_day_birthday_turns_on_the_first_of_march() -> None:
    assert age_on(date(2008, 11, 26), DAY) == 18
    assert age_on(date(2008, 11, 27), DAY) == 17
    assert age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18


@pytest.mark.parametrize(
    ("birthday", "guardian", "code"),
    [
        (None, False, "birthday_required"),
        (None, True, "birthday_required"),
        (date(2008, 11, 26), False, None),  # eighteen today
        (date(2008, 11, 27), False, "guardian_required"),  # a day short
        (date(2008, 11, 27), True, None),
        (date(2013, 11, 26), True, None),  # thirteen today, with a guardian
        (date(2013, 11, 27), True, "too_young"),  # a guardian cannot consent for a 12-year-old
        (date(2020, 1, 1), False, "too_young"),
    ],
)
def test_the_gate_asks_a_birthday_then_an_age_then_a_guardian_in_between(
    birthday: date | None, guardian: bool, code: str | None
) -> None:
    found = enrollment_refusal(GATE, birthday, DAY, guardian)
    assert (found[0] if found else None) == code


def test_without_a_guardian_age_a_minor_cannot_join_at_all() -> None:
    found = enrollment_refusal(MembershipGate(min_age=16), date(2012, 1, 1), DAY, True)
    assert found is not None and found[0] == "too_young" and "guardian" not in found[1]
    assert enrollment_refusal(MembershipGate(), None, DAY, False) is None  # no gate


@pytest.mark.parametrize(
    ("membership", "problem"),
    [
        ("guardian_from_age = 13", "below min_age"),
        ("min_age = 18\nguardian_from_age = 18", "below min_age"),
        ("min_age = 0", "at least 1"),
        ("min_age = 200", "at most 120"),
        ('min_age = "adult"', "whole number"),
        ("min_age = 18\nparental = true", "unknown setting"),
    ],
)
def test_a_malformed_age_gate_is_refused_naming_its_key(membership: str, problem: str) -> None:
    source = (
        'id = "a"\nname = "A"\n[earn]\nrate = 1\n[tiers]\n[[tiers.levels]]\nid = "m"\n'
        f'name = "M"\n[membership]\n{membership}\n'
    )
    with pytest.raises(ConfigError, match="membership") as caught:
        ProgramDocument.of(source).parse("a.toml")
    assert problem in str(caught.value)
