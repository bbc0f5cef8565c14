"""Each shipped program preset behaves as its documentation says."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pos_client import rules
from pos_client.domain import MemberStats, Purchase, PurchaseLine
from pos_client.rules import RulesError
from tests.conftest import preset

D = Decimal


def tier(program: rules.Program, **stats: object) -> rules.Tier:
    return rules.tier_for(program.tiers, MemberStats(**stats))  # type: ignore[arg-type]


# ------------------------------------------------------------------ stars


def test_stars_one_star_per_purchase_whatever_the_amount() -> None:
    stars = preset("stars")
    welcome = tier(stars)
    for amount in ("1.50", "3.75", "120.00"):
        assert rules.earn_points(stars, Purchase.of_amount(D(amount)), welcome).points == 1


def test_stars_levels_at_5_and_30_stars() -> None:
    stars = preset("stars")
    assert tier(stars, points_in_period=4).id == "welcome"
    assert tier(stars, points_in_period=5).id == "green"
    assert tier(stars, points_in_period=29).id == "green"
    assert tier(stars, points_in_period=30).id == "gold"


def test_stars_free_drink_every_15_stars_only_at_gold() -> None:
    stars = preset("stars")
    green, gold = stars.tiers.by_id("green"), stars.tiers.by_id("gold")
    with pytest.raises(RulesError, match="needs tier gold"):
        rules.plan_reward(stars, "free-drink", 29, green)
    balance = 45
    drinks = 0
    while True:
        try:
            plan = rules.plan_reward(stars, "free-drink", balance, gold)
        except RulesError:
            break
        balance -= plan.points
        drinks += 1
    assert (drinks, balance) == (3, 0)


@pytest.mark.parametrize("level", ["welcome", "green", "gold"])
def test_stars_birthday_drink_at_every_level_and_free(level: str) -> None:
    stars = preset("stars")
    plan = rules.plan_reward(
        stars, "birthday-drink", 0, stars.tiers.by_id(level), birthday_available=True
    )
    assert (plan.points, plan.reward_id) == (0, "birthday-drink")
    with pytest.raises(RulesError, match="birthday"):
        rules.plan_reward(stars, "birthday-drink", 0, stars.tiers.by_id(level))


# ------------------------------------------------------------------ category tiers


def test_category_tiers_rates_by_category_and_featured_item() -> None:
    beauty = preset("category_tiers")
    member = tier(beauty)
    basket = Purchase(
        (
            PurchaseLine(D("10.00"), ""),
            PurchaseLine(D("10.00"), "cosmetics"),
            PurchaseLine(D("10.00"), "fragrance"),
            PurchaseLine(D("10.00"), "cosmetics", "FEAT-SERUM-50"),
        )
    )
    breakdown = rules.earn_points(beauty, basket, member)
    assert [line.points for line in breakdown.lines] == [D(10), D(20), D(20), D(30)]
    assert breakdown.points == 80


def test_category_tiers_floor_once_per_sale() -> None:
    beauty = preset("category_tiers")
    member = tier(beauty)
    assert rules.earn_points(beauty, Purchase.of_amount(D("10.99")), member).points == 10
    halves = Purchase((PurchaseLine(D("0.50")), PurchaseLine(D("0.50"))))
    assert rules.earn_points(beauty, halves, member).points == 1


def test_category_tiers_four_per_dollar_after_3500_spent_in_the_year() -> None:
    beauty = preset("category_tiers")
    assert tier(beauty, spend_in_period=D("3499.99")).id == "member"
    platinum = tier(beauty, spend_in_period=D("3500.00"))
    assert platinum.id == "platinum"
    basket = Purchase(
        (
            PurchaseLine(D("10.00"), ""),
            PurchaseLine(D("10.00"), "cosmetics"),
            PurchaseLine(D("10.00"), "", "FEAT-PALETTE-12"),
        )
    )
    assert rules.earn_points(beauty, basket, platinum).points == 120
    assert beauty.tiers.period is rules.TierPeriod.CALENDAR_YEAR


def test_category_tiers_5000_points_buy_a_25_dollar_gift_card() -> None:
    beauty = preset("category_tiers")
    member = tier(beauty)
    plan = rules.plan_reward(beauty, "gift-card-25", 5000, member)
    assert plan.points == 5000
    reward = beauty.reward("gift-card-25")
    assert (reward.kind, reward.value) == (rules.RewardKind.GIFT_CARD, D("25.00"))
    with pytest.raises(RulesError, match="needs 5000 points; balance is 4999"):
        rules.plan_reward(beauty, "gift-card-25", 4999, member)


def test_category_tiers_gift_card_with_points_plus_cash() -> None:
    beauty = preset("category_tiers")
    plan = rules.plan_reward(beauty, "gift-card-25", 3000, tier(beauty), option=0)
    assert (plan.points, plan.cash_due) == (2500, D("12.50"))


# ------------------------------------------------------------------ wellness blocks


def test_wellness_ten_points_per_dollar_and_none_on_prescriptions() -> None:
    wellness = preset("wellness_blocks")
    member = tier(wellness)
    assert rules.earn_points(wellness, Purchase.of_amount(D("12.34")), member).points == 123
    rx = Purchase.of_amount(D("50.00"), "pharmacy")
    assert rules.earn_points(wellness, rx, member).points == 0


@pytest.mark.parametrize(
    ("action", "points"), [("weight_check", 20), ("blood_pressure", 50), ("vaccination", 500)]
)
def test_wellness_points_for_actions(action: str, points: int) -> None:
    wellness = preset("wellness_blocks")
    assert rules.action_points(wellness, action) == points
    with pytest.raises(RulesError, match="already recorded"):
        rules.action_points(wellness, action, done_today=1)


def test_wellness_blocks_of_5000_for_5_dollars_partly_or_all_at_once() -> None:
    wellness = preset("wellness_blocks")
    one = rules.plan_money_blocks(wellness, 1, 12_000, D("20.00"))
    assert (one.points, one.discount, one.cash_due) == (5000, D("5.00"), D("15.00"))
    everything = rules.plan_money_blocks(wellness, None, 12_000, D("20.00"))
    assert (everything.blocks, everything.points, everything.discount) == (2, 10_000, D("10.00"))
    with pytest.raises(RulesError, match="balance is 12000"):
        rules.plan_money_blocks(wellness, 3, 12_000, D("20.00"))
    small_basket = rules.plan_money_blocks(wellness, None, 12_000, D("7.00"))
    assert small_basket.blocks == 1
    with pytest.raises(RulesError, match="not enough points"):
        rules.plan_money_blocks(wellness, None, 4_999, D("20.00"))


def test_wellness_points_spent_as_money_earn_nothing() -> None:
    wellness = preset("wellness_blocks")
    member = tier(wellness)
    purchase = Purchase.of_amount(D("20.00"))
    assert rules.earn_points(wellness, purchase, member, discount=D("10.00")).points == 100


# ------------------------------------------------------------------ airline miles


def flight(miles: str, cabin: str = "", fare: str = "250.00") -> PurchaseLine:
    return PurchaseLine(D(fare), cabin, units=D(miles))


def test_airline_miles_earn_by_distance_and_cabin_not_by_fare() -> None:
    airline = preset("airline_miles")
    member = tier(airline)
    for cabin, miles in (("", 3858), ("premium", 5787), ("business", 7716), ("first", 11574)):
        purchase = Purchase((flight("3858", cabin, fare="99.00"),))
        assert rules.earn_points(airline, purchase, member).points == miles
    dearer = Purchase((flight("3858", fare="2500.00"),))
    assert rules.earn_points(airline, dearer, member).points == 3858  # the fare earns nothing


def test_airline_miles_a_short_hop_earns_125_and_no_segment_is_longer_than_12000() -> None:
    airline = preset("airline_miles")
    member = tier(airline)
    assert rules.earn_points(airline, Purchase((flight("90"),)), member).points == 125
    with pytest.raises(RulesError, match="over the programme's 12000"):
        rules.earn_points(airline, Purchase((flight("12001"),)), member)


def test_airline_miles_status_by_35000_miles_or_30_segments_and_100000_or_60() -> None:
    airline = preset("airline_miles")
    assert tier(airline, units_in_period=D(34999), segments_in_period=29).id == "member"
    assert tier(airline, units_in_period=D(35000)).id == "frequent_traveller"
    assert tier(airline, segments_in_period=30).id == "frequent_traveller"
    assert tier(airline, units_in_period=D(100000)).id == "senator"
    assert tier(airline, segments_in_period=60).id == "senator"


def test_airline_miles_status_holds_to_the_end_of_the_next_year() -> None:
    airline = preset("airline_miles")
    last_year = MemberStats(units_in_period=D(100000))
    assert tier(airline, previous_period=last_year).id == "senator"
    assert tier(airline, previous_period=MemberStats(segments_in_period=30)).id == (
        "frequent_traveller"
    )


def test_airline_miles_status_earns_more_award_miles_and_opens_the_lounge() -> None:
    airline = preset("airline_miles")
    ft, senator = airline.tiers.by_id("frequent_traveller"), airline.tiers.by_id("senator")
    purchase = Purchase((flight("1000"),))
    assert rules.earn_points(airline, purchase, ft).points == 1250
    assert rules.earn_points(airline, purchase, senator).points == 1500
    with pytest.raises(RulesError, match="needs tier frequent_traveller"):
        rules.plan_reward(airline, "lounge-pass", 8000, tier(airline))
    assert rules.plan_reward(airline, "lounge-pass", 8000, ft).points == 8000
    assert rules.plan_reward(airline, "upgrade-voucher", 15000, tier(airline)).points == 15000


# ------------------------------------------------------------------ hotel nights


def test_hotel_nights_earn_by_the_bill_and_status_by_nights() -> None:
    hotel = preset("hotel_nights")
    member = tier(hotel)
    room, dinner = PurchaseLine(D("240.00"), units=D(2)), PurchaseLine(D("40.00"), "dining")
    two_nights = Purchase((room, dinner))
    assert rules.earn_points(hotel, two_nights, member).points == 1200 + 80
    assert tier(hotel, units_in_period=D(9)).id == "member"
    assert tier(hotel, units_in_period=D(10)).id == "silver"
    assert tier(hotel, units_in_period=D(40)).id == "gold"
    assert tier(hotel, points_in_period=75000).id == "gold"
    assert tier(hotel, units_in_period=D(60)).id == "diamond"
    assert tier(hotel, previous_period=MemberStats(units_in_period=D(60))).id == "diamond"
    assert rules.earn_points(hotel, two_nights, hotel.tiers.by_id("diamond")).points == 2560
