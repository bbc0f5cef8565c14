"""Every Nth free (issue 11, mechanic 4): the nights or the purchase a sale reaches, counted
over the membership; what is never free; what it is worth; the programme file's checks."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_client import rules
from pos_client.configfile import ConfigError
from pos_client.domain import Purchase, PurchaseLine
from pos_client.program import ProgramDocument
from pos_client.rules import EveryNthFree, FreeItems, NthCount
from tests.conftest import preset

D = Decimal
FIFTH_NIGHT = EveryNthFree(5, NthCount.UNITS, "5th night", excluded_categories=frozenset({"suite"}))
TENTH_COFFEE = EveryNthFree(10, NthCount.VISITS, "10th coffee", max_value=D("5.00"))


def stay(nights: int, price: str = "100.00", category: str = "") -> PurchaseLine:
    return PurchaseLine(D(price) * nights, category, units=D(nights))


def free(rule: EveryNthFree, before: int, *lines: PurchaseLine) -> FreeItems:
    return rules.free_items(rule, Purchase(lines), before, "USD")


def test_the_fifth_night_is_free_whenever_the_count_passes_a_multiple() -> None:
    assert free(FIFTH_NIGHT, 0, stay(4)) == FreeItems()
    assert free(FIFTH_NIGHT, 4, stay(1)) == FreeItems(1, D("100.00"))
    assert free(FIFTH_NIGHT, 3, stay(3)) == FreeItems(1, D("100.00"))  # the 5th of 4..6
    assert free(FIFTH_NIGHT, 0, stay(12)) == FreeItems(2, D("200.00"))  # 5th and 10th
    assert free(FIFTH_NIGHT, 5, stay(4)) == FreeItems()


def test_a_free_night_is_worth_its_lines_price_a_night() -> None:
    # nights 4 and 5: the 5th falls on the second line, at 180 a night
    assert free(FIFTH_NIGHT, 3, stay(1, "90.00"), stay(2, "180.00")) == FreeItems(1, D("180.00"))


def test_a_suite_night_counts_but_is_never_the_free_one() -> None:
    assert free(FIFTH_NIGHT, 4, stay(1, "400.00", "suite")) == FreeItems()
    # the suite night is the 5th; the next room night is the 6th: nothing free
    assert free(FIFTH_NIGHT, 4, stay(1, "400.00", "suite"), stay(1)) == FreeItems()


def test_the_tenth_purchase_is_free_up_to_its_most() -> None:
    coffee = PurchaseLine(D("4.20"), "", quantity=1)
    two_cakes = PurchaseLine(D("13.00"), "", quantity=2)
    assert free(TENTH_COFFEE, 8, coffee) == FreeItems()
    assert free(TENTH_COFFEE, 9, coffee) == FreeItems(1, D("4.20"))
    assert free(TENTH_COFFEE, 9, coffee, two_cakes) == FreeItems(1, D("5.00"))  # capped
    assert free(TENTH_COFFEE, 19, coffee) == FreeItems(1, D("4.20"))


def test_a_free_one_is_never_worth_more_than_the_sale_and_rounds_down_to_cents() -> None:
    odd = PurchaseLine(D("100.00"), "", units=D(3))  # 33.333… a night
    assert free(EveryNthFree(3, NthCount.UNITS, "3rd"), 0, odd) == FreeItems(1, D("33.33"))
    yen = rules.free_items(EveryNthFree(3, NthCount.UNITS, "3rd"), Purchase((odd,)), 0, "JPY")
    assert yen.value == D("33")


@given(
    before=st.integers(0, 500),
    nights=st.lists(st.integers(1, 40), min_size=1, max_size=5),
    n=st.integers(2, 12),
)
def test_free_nights_over_many_sales_are_one_in_n_whatever_the_split(
    before: int, nights: list[int], n: int
) -> None:
    rule = EveryNthFree(n, NthCount.UNITS, "nth")
    counted, total_free = before, 0
    for count in nights:
        total_free += free(rule, counted, stay(count)).count
        counted += count
    assert total_free == counted // n - before // n
    assert free(rule, before, *(stay(count) for count in nights)).count == total_free


def test_the_hotel_preset_gives_every_fifth_night_but_not_with_points_as_money() -> None:
    hotel = preset("hotel_nights")
    assert hotel.every_nth is not None and hotel.every_nth.n == 5
    assert not hotel.every_nth.with_points_as_money
    member = hotel.tiers.tiers[0]
    purchase = Purchase((stay(5, "120.00"),))
    found = rules.free_items(hotel.every_nth, purchase, 0, hotel.currency)
    assert (found.count, found.value) == (1, D("120.00"))
    # the free night earns nothing: 5 points a dollar on the 480 paid
    earned = rules.earn_points(hotel, purchase, member, free=found)
    assert earned.points == 2400


def test_the_free_night_is_taken_off_its_own_line_not_spread_over_the_sale() -> None:
    hotel = preset("hotel_nights")
    assert hotel.every_nth is not None
    rooms = PurchaseLine(D("100.00"), units=D(5))  # 20 a night: the 5th is free
    dinner = PurchaseLine(D("1000.00"), "dining")  # 2 points a dollar
    purchase = Purchase((rooms, dinner))
    found = rules.free_items(hotel.every_nth, purchase, 0, hotel.currency)
    assert found.by_line == (D("20.00"), D("0.00"))
    earned = rules.earn_points(hotel, purchase, hotel.tiers.tiers[0], free=found)
    assert earned.points == 80 * 5 + 1000 * 2  # not 2,454: the dinner earns in full


BASE = """
id = "t"
name = "T"
currency = "USD"
[earn]
rate = 1
[tiers]
[[tiers.levels]]
id = "member"
name = "Member"
"""


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('n = 1\ncount = "visits"\nname = "x"', "n"),
        ('n = 5000\ncount = "visits"\nname = "x"', "at most 1000"),
        ('n = 5\ncount = "nights"\nname = "x"', "count"),
        ('n = 5\ncount = "units"\nname = "x"', "needs \\[earn.by_unit\\]"),
        ('n = 5\ncount = "visits"\nname = "x"\nfree = true', "unknown setting"),
        ('n = 5\ncount = "visits"\nname = "x"\nmax_value = 0', "max_value"),
        ('n = 5\ncount = "visits"', "name"),
    ],
)
def test_a_bad_every_nth_table_is_refused_naming_the_key(table: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        ProgramDocument.of(BASE + "\n[every_nth]\n" + table + "\n").parse("test")


def test_free_units_are_counted_only_in_whole_units() -> None:
    # Half nights would add up to a free one priced at a whole night's rate.
    text = (
        BASE + '[earn.by_unit]\nunit = "night"\n[every_nth]\nn = 5\ncount = "units"\nname = "x"\n'
    )
    with pytest.raises(ConfigError, match="decimals = 0"):
        ProgramDocument.of(text).parse("test")
    whole = text.replace('unit = "night"', 'unit = "night"\ndecimals = 0')
    program = ProgramDocument.of(whole).parse("test")
    with pytest.raises(rules.RulesError, match="whole units"):
        rules.earn_points(
            program,
            Purchase((PurchaseLine(D("50.00"), units=D("0.5")),)),
            program.tiers.tiers[0],
        )
