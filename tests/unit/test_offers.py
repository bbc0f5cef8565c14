"""Partner offers by phone, no promo code (issue 11, mechanic 6), as pure rules: who an offer
is open to and when, what it gives a sale, and the programme file's checks."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_client.configfile import ConfigError
from pos_client.domain import MemberStats, OfferLeft, Purchase, PurchaseLine
from pos_client.program import ProgramDocument
from pos_client.rules import OfferKind, Program, offer_gives, offer_open, offers_for_sale

D = Decimal
HEAD = """
id = "o"
name = "O"
currency = "EUR"
[earn]
rate = 1
[categories.coffee]
name = "Coffee"
[categories.wash]
name = "Wash"
[tiers]
[[tiers.levels]]
id = "member"
name = "Member"
[[tiers.levels]]
id = "gold"
name = "Gold"
threshold = 1000
"""
OFFERS = """
[[offers]]
id = "welcome"
partner = "Cinema"
name = "2.00 off"
kind = "discount"
value = "2.00"
min_spend = "10.00"
new_members_months = 3

[[offers]]
id = "coffee"
partner = "BeanBar"
name = "150 bonus"
kind = "bonus_points"
points = 150
categories = ["coffee"]
max_uses_per_member = 3

[[offers]]
id = "wash"
partner = "Sparkle"
name = "free wash"
kind = "free_item"
categories = ["wash"]
value = "12.00"
min_tier = "gold"
valid_from = 2026-11-01
valid_until = "2026-11-30"
"""


def program(offers: str = OFFERS) -> Program:
    return ProgramDocument.of(HEAD + offers).parse("o.toml")


def sale(*lines: tuple[str, str]) -> Purchase:
    return Purchase(tuple(PurchaseLine(D(amount), category, "") for amount, category in lines))


DAY = date(2026, 11, 15)


def test_an_offer_is_open_within_its_dates_tier_and_segment() -> None:
    p = program()
    welcome, _coffee, wash = p.offers
    member, gold = p.tiers.tiers
    new, old = MemberStats(tenure_months=2), MemberStats(tenure_months=3)
    assert offer_open(p, welcome, member, new, DAY) and not offer_open(p, welcome, member, old, DAY)
    assert offer_open(p, wash, gold, old, DAY) and not offer_open(p, wash, member, old, DAY)
    assert not offer_open(p, wash, gold, old, date(2026, 10, 31))
    assert offer_open(p, wash, gold, old, date(2026, 11, 30))
    assert not offer_open(p, wash, gold, old, date(2026, 12, 1))


def test_what_each_kind_gives_a_sale() -> None:
    welcome, coffee, wash = program().offers
    assert offer_gives(welcome, sale(("9.99", "")), D("9.99")) is None  # under its minimum
    got = offer_gives(welcome, sale(("10.00", "")), D("10.00"))
    assert got is not None and (got.discount, got.points) == (D("2.00"), 0)
    assert offer_gives(coffee, sale(("5.00", "")), D("5.00")) is None  # no coffee in it
    got = offer_gives(coffee, sale(("5.00", ""), ("3.00", "coffee")), D("8.00"))
    assert got is not None and (got.discount, got.points) == (D(0), 150)
    got = offer_gives(wash, sale(("9.00", "wash"), ("15.00", "wash"), ("40.00", "")), D("64.00"))
    assert got is not None and got.discount == D("12.00")  # the dearest wash, at most 12.00
    got = offer_gives(wash, sale(("9.00", "wash")), D("4.00"))
    assert got is not None and got.discount == D("4.00")  # never more than is left to pay


def test_a_sale_gets_its_open_offers_each_on_what_is_left_to_pay() -> None:
    p = program(OFFERS.replace('value = "2.00"', 'value = "8.00"'))
    left = (OfferLeft("welcome", 1), OfferLeft("coffee", 3), OfferLeft("wash", 1))
    got = offers_for_sale(p, left, sale(("10.00", "wash"), ("2.00", "coffee")), D("12.00"))
    assert [(o.offer_id, o.discount, o.points) for o in got] == [
        ("welcome", D("8.00"), 0),
        ("coffee", D(0), 150),
        ("wash", D("4.00"), 0),  # 12.00 - 8.00 left
    ]
    spent = offers_for_sale(p, (OfferLeft("welcome", 0),), sale(("10.00", "")), D("10.00"))
    assert spent == ()  # no use left


@given(
    st.lists(
        st.tuples(st.decimals("0.01", "500", places=2), st.sampled_from(["", "coffee", "wash"])),
        min_size=1,
        max_size=6,
    ),
    st.decimals("0", "1", places=2),
)
def test_offers_never_take_more_than_is_left_to_pay_nor_give_negative(
    lines: list[tuple[Decimal, str]], share: Decimal
) -> None:
    p = program(OFFERS.replace('value = "2.00"', 'value = "300.00"'))
    purchase = sale(*((str(a), c) for a, c in lines))
    left_to_pay = (purchase.total * share).quantize(D("0.01"))
    everything = tuple(OfferLeft(o.id, 1) for o in p.offers)
    got = offers_for_sale(p, everything, purchase, left_to_pay)
    assert all(o.discount >= 0 and o.points >= 0 for o in got)
    assert sum(o.discount for o in got) <= left_to_pay


@pytest.mark.parametrize(
    ("offer", "problem"),
    [
        ('id = "a"\npartner = "P"\nname = "N"\nkind = "discount"', "needs the money"),
        ('id = "a"\npartner = "P"\nname = "N"\nkind = "bonus_points"', "need how many"),
        ('id = "a"\npartner = "P"\nname = "N"\nkind = "free_item"\nvalue = "1"', "skus"),
        ('id = "a"\npartner = "P"\nname = "N"\nkind = "gift"', "expected one of"),
        ('id = "A!"\npartner = "P"\nname = "N"\nkind = "bonus_points"\npoints = 1', "offer id"),
        (
            'id = "a"\npartner = "P"\nname = "N"\nkind = "bonus_points"\npoints = 1000000',
            "at most 100000",
        ),
        (
            'id = "a"\npartner = "P"\nname = "N"\nkind = "discount"\nvalue = "1"\n'
            'categories = ["wine"]',
            "no category 'wine'",
        ),
        (
            'id = "a"\npartner = "P"\nname = "N"\nkind = "discount"\nvalue = "1"\n'
            'min_tier = "platinum"',
            "no tier 'platinum'",
        ),
        (
            'id = "a"\npartner = "P"\nname = "N"\nkind = "discount"\nvalue = "1"\n'
            'valid_from = "2026-12-01"\nvalid_until = "2026-11-01"',
            "before valid_from",
        ),
        (
            'id = "a"\npartner = "P"\nname = "N"\nkind = "discount"\nvalue = "1"\n'
            'valid_from = "1 Dec"',
            "YYYY-MM-DD",
        ),
        (
            'id = "a"\npartner = "P"\nname = "N"\nkind = "discount"\nvalue = "1"\n'
            "max_uses_per_member = 0",
            "at least 1",
        ),
        (
            'id = "a"\npartner = "P"\nname = "N"\nkind = "discount"\nvalue = "1"\ncode = "X"',
            "unknown",
        ),
        ('id = "a"\npartner = ""\nname = "N"\nkind = "discount"\nvalue = "1"', "1 to 80"),
    ],
)
def test_a_malformed_offer_is_refused_naming_its_key(offer: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=r"offers\[0\]") as caught:
        program(f"[[offers]]\n{offer}\n")
    assert problem in str(caught.value)


def test_an_offer_named_twice_or_too_many_are_refused() -> None:
    one = '[[offers]]\nid = "a"\npartner = "P"\nname = "N"\nkind = "discount"\nvalue = "1"\n'
    with pytest.raises(ConfigError, match="named twice"):
        program(one * 2)
    many = "".join(one.replace('"a"', f'"a{i}"') for i in range(51))
    with pytest.raises(ConfigError, match="at most 50 offers"):
        program(many)
    assert program(one).offers[0].kind is OfferKind.DISCOUNT


def test_a_free_item_is_one_item_of_a_line_not_the_whole_line() -> None:
    _welcome, _coffee, wash = program(OFFERS.replace('value = "12.00"', 'value = "100.00"')).offers
    five = Purchase((PurchaseLine(D("60.00"), "wash", "", quantity=5),))
    got = offer_gives(wash, five, D("60.00"))
    assert got is not None and got.discount == D("12.00")  # one of five washes at 12.00


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('kind = "discount"\nvalue = "0.005"', "in cents"),
        ('kind = "discount"\nvalue = "1e29"', "at most 1000000"),
        ('kind = "discount"\nvalue = "1"\nmin_spend = "1e400"', "min_spend"),
        ('kind = "free_item"\nskus = [""]', "skus[0]"),
        ('kind = "free_item"\nskus = ["A\\u0000"]', "skus[0]"),
        ('kind = "discount"\nvalue = "1"\npoints = 5', "gives money off"),
        ('kind = "bonus_points"\npoints = 5\nvalue = "1"', "not money"),
        (
            'kind = "discount"\nvalue = "1"\nnew_members_months = 3\nmin_tenure_months = 12',
            "never open",
        ),
        ('kind = "discount"\nvalue = "1"\nnames = { ru = "a\\u0007" }', "control"),
    ],
)
def test_offer_values_items_and_names_are_bounded(extra: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        program(f'[[offers]]\nid = "a"\npartner = "P"\nname = "N"\n{extra}\n')
    assert problem in str(caught.value)


def test_new_members_cannot_be_told_by_active_months() -> None:
    source = HEAD.replace("[tiers]\n", '[tiers]\ntenure = "active_months"\n') + OFFERS
    with pytest.raises(ConfigError, match="months since joining"):
        ProgramDocument.of(source).parse("o.toml")
