from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_client import rules
from pos_client.domain import MemberStats, Purchase, PurchaseLine
from pos_client.rules import ExpiryPolicy, Lot, RulesError
from tests.conftest import preset

D = Decimal
PROGRAMS = {name: preset(name) for name in ("stars", "category_tiers", "wellness_blocks")}

amounts = st.decimals(min_value=D("0.00"), max_value=D("99999.99"), places=2)
categories = st.sampled_from(["", "cosmetics", "fragrance", "pharmacy", "skincare"])
skus = st.sampled_from(["", "FEAT-SERUM-50", "BAG-01"])
lines = st.builds(PurchaseLine, amount=amounts, category=categories, sku=skus)
purchases = st.lists(lines, min_size=1, max_size=8).map(lambda ls: Purchase(tuple(ls)))


@given(purchase=purchases, name=st.sampled_from(sorted(PROGRAMS)), spend=amounts)
def test_points_are_never_negative_and_floor_is_stable(
    purchase: Purchase, name: str, spend: Decimal
) -> None:
    program = PROGRAMS[name]
    tier = rules.tier_for(program.tiers, MemberStats(spend_in_period=spend))
    first = rules.earn_points(program, purchase, tier)
    again = rules.earn_points(program, Purchase(tuple(reversed(purchase.lines))), tier)
    assert first.points >= 0
    assert first.points == again.points  # the order of lines never changes the result
    assert first.points <= sum((line.points for line in first.lines), D(0)) + 1


@given(
    balance=st.integers(min_value=0, max_value=10**7),
    total=amounts,
    blocks=st.none() | st.integers(min_value=-2, max_value=50),
)
def test_money_blocks_never_spend_beyond_balance_or_total(
    balance: int, total: Decimal, blocks: int | None
) -> None:
    program = PROGRAMS["wellness_blocks"]
    try:
        plan = rules.plan_money_blocks(program, blocks, balance, total)
    except RulesError:
        return
    assert 0 < plan.points <= balance
    assert D(0) < plan.discount <= total
    assert plan.cash_due == total - plan.discount


@given(
    balance=st.integers(min_value=0, max_value=20_000),
    reward=st.sampled_from(["gift-card-25"]),
    option=st.none() | st.just(0),
)
def test_rewards_never_spend_beyond_balance(balance: int, reward: str, option: int | None) -> None:
    program = PROGRAMS["category_tiers"]
    tier = program.tiers.tiers[0]
    try:
        plan = rules.plan_reward(program, reward, balance, tier, option=option)
    except RulesError:
        return
    assert plan.points <= balance


def test_discount_larger_than_total_is_refused() -> None:
    program = PROGRAMS["wellness_blocks"]
    with pytest.raises(RulesError):
        rules.earn_points(
            program, Purchase.of_amount(D("5")), program.tiers.tiers[0], discount=D("6")
        )


def test_birthday_bonus_points_are_added_once_per_sale() -> None:
    program = PROGRAMS["category_tiers"]
    tier = program.tiers.tiers[0]
    result = rules.earn_points(program, Purchase.of_amount(D("10")), tier, birthday_bonus_due=True)
    assert (result.points, result.birthday_bonus) == (110, 100)
    assert "birthday bonus: 100" in result.explain()


@pytest.mark.parametrize(
    ("birthday", "today", "inside"),
    [
        (date(1990, 5, 10), date(2026, 5, 10), True),
        (date(1990, 5, 10), date(2026, 6, 8), True),
        (date(1990, 5, 10), date(2026, 6, 9), False),
        (date(1990, 5, 10), date(2026, 5, 9), False),
        (date(1990, 12, 20), date(2027, 1, 5), True),  # window runs over new year
        (date(1992, 2, 29), date(2026, 3, 1), True),  # leap-day birthday in a common year
        (None, date(2026, 1, 1), False),
    ],
)
def test_birthday_window(birthday: date | None, today: date, inside: bool) -> None:
    assert rules.birthday_in_window(birthday, today, 30) is inside


def test_expiry_consumes_oldest_lots_first() -> None:
    jan = datetime(2025, 1, 15, tzinfo=UTC)
    jun = datetime(2025, 6, 15, tzinfo=UTC)
    lots = [Lot(jan, 100), Lot(jun, 50)]
    policy = ExpiryPolicy(months=12)
    # Before a year has passed, nothing expires.
    assert rules.expiring_points(lots, 0, 0, datetime(2026, 1, 14, tzinfo=UTC), policy) == 0
    # 30 points spent came out of January's lot: 70 of it expire.
    assert rules.expiring_points(lots, 30, 0, datetime(2026, 1, 15, tzinfo=UTC), policy) == 70
    # Already expired points are not expired twice.
    assert rules.expiring_points(lots, 30, 70, datetime(2026, 2, 1, tzinfo=UTC), policy) == 0
    assert rules.expiring_points(lots, 30, 70, datetime(2026, 6, 15, tzinfo=UTC), policy) == 50
    assert (
        rules.expiring_points(lots, 0, 0, datetime(2030, 1, 1, tzinfo=UTC), ExpiryPolicy(None)) == 0
    )


def test_add_months_clamps_to_month_end() -> None:
    assert rules.add_months(datetime(2025, 1, 31, tzinfo=UTC), 1).day == 28
    assert rules.add_months(datetime(2025, 11, 30, tzinfo=UTC), 3).month == 2


def test_next_tier_and_next_reward_progress() -> None:
    beauty = PROGRAMS["category_tiers"]
    upcoming = rules.next_tier(beauty.tiers, MemberStats(spend_in_period=D("3000")))
    assert upcoming is not None and upcoming[0].id == "platinum" and upcoming[1] == D("500")
    assert rules.next_tier(beauty.tiers, MemberStats(spend_in_period=D("9000"))) is None
    assert rules.next_reward(beauty, 4200, beauty.tiers.tiers[0]) == ("$25 gift card", 800)
    wellness = PROGRAMS["wellness_blocks"]
    assert rules.next_reward(wellness, 12_000, wellness.tiers.tiers[0]) == ("5.00 off", 3000)


def test_reward_offers_mark_what_is_affordable_and_birthday_gift() -> None:
    stars = PROGRAMS["stars"]
    gold = stars.tiers.by_id("gold")
    offers = rules.reward_offers(stars, 20, gold, birthday_available=True)
    assert [(o.reward_id, o.affordable) for o in offers] == [
        ("birthday-drink", True),
        ("free-drink", True),
    ]
    assert rules.reward_offers(stars, 20, stars.tiers.by_id("green"), False) == ()


def test_max_points_per_sale_caps_earning() -> None:
    program = PROGRAMS["category_tiers"]
    capped = rules.Program(**{**program.__dict__, "earn": rules.EarnPolicy(max_points_per_sale=50)})
    result = rules.earn_points(capped, Purchase.of_amount(D("80")), capped.tiers.tiers[0])
    assert (result.points, result.capped) == (50, True)


def test_tiers_by_visits_with_their_own_multiplier() -> None:
    policy = rules.TierPolicy(
        basis=rules.TierBasis.VISITS,
        period=rules.TierPeriod.ROLLING_12_MONTHS,
        tiers=(
            rules.Tier("regular", "Regular"),
            rules.Tier(
                "friend", "Friend", threshold=D(10), multiplier=D("1.5"), perks=("free coffee",)
            ),
        ),
    )
    program = rules.Program(
        id="visits",
        name="Visits",
        currency="EUR",
        unit_name="points",
        earn=rules.EarnPolicy(rate=D(2)),
        tiers=policy,
    )
    assert rules.tier_for(policy, MemberStats(visits_in_period=9)).id == "regular"
    friend = rules.tier_for(policy, MemberStats(visits_in_period=10))
    assert friend.perks == ("free coffee",)
    result = rules.earn_points(program, Purchase.of_amount(D("10.00")), friend)
    assert result.points == 30  # 2 per euro x 1.5
    assert rules.period_start(policy.period, date(2026, 11, 25)) == date(2025, 11, 25)


def test_a_reward_behind_a_level_says_how_many_points_still_open_it() -> None:
    stars = preset("stars")  # free drink: 15 stars, at Gold (30 stars earned in 12 months)
    welcome = rules.locked_reward(stars, 2, MemberStats(points_in_period=2))
    assert welcome is not None
    assert (welcome.reward.id, welcome.tier.id, welcome.remaining) == ("free-drink", "gold", 28)
    assert welcome.progress == pytest.approx(2 / 30)
    # Earned 29 but spent down to 3: one star opens Gold, twelve more buy the drink.
    spent = rules.locked_reward(stars, 3, MemberStats(points_in_period=29))
    assert spent is not None and spent.remaining == 12
    assert rules.locked_reward(stars, 40, MemberStats(points_in_period=40)) is None  # at Gold
    # Levels reached by spend: points do not open them; the screen names the level instead.
    assert rules.locked_reward(preset("category_tiers"), 0, MemberStats()) is None
