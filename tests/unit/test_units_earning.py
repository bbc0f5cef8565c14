"""Earning by units (kilometres, nights), tiers by units, segments and tenure, and status that
holds to the end of the next period (issue 11, mechanics 1 and 2): pure rules and the
programme file's checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_client import rules
from pos_client.configfile import ConfigError
from pos_client.domain import MemberStats, Purchase, PurchaseLine
from pos_client.operations import OpRejected, SaleOp, body_hash, parse_operation
from pos_client.program import ProgramDocument, program_to_json
from pos_client.rules import RulesError, UnitRounding
from tests.conftest import CONFIG_DIR, preset

D = Decimal

BASE = """
id = "t"
name = "T"
currency = "EUR"
[earn]
rate = 1
[tiers]
basis = "points"
[[tiers.levels]]
id = "member"
name = "Member"
threshold = 0
"""


def parsed(text: str) -> rules.Program:
    return ProgramDocument.of(text).parse("test")


def with_units(**settings: str) -> rules.Program:
    lines = "\n".join(f"{key} = {value}" for key, value in settings.items())
    return parsed(BASE + '\n[earn.by_unit]\nunit = "km"\n' + lines + "\n")


def line(units: str | None, amount: str = "100.00", category: str = "") -> PurchaseLine:
    return PurchaseLine(D(amount), category, units=None if units is None else D(units))


def earned(program: rules.Program, *lines: PurchaseLine, tier: rules.Tier | None = None) -> int:
    return rules.earn_points(program, Purchase(lines), tier or program.tiers.tiers[0]).points


# ------------------------------------------------------------------ earning by units


def test_units_earn_per_unit_and_the_price_earns_nothing_without_with_amount() -> None:
    program = with_units(rate="1", per="10")
    assert earned(program, line("1234")) == 123  # 1 point per 10 km, floored
    assert earned(program, line(None, "500.00")) == 0  # a line with no units earns nothing


def test_with_amount_the_lines_also_earn_per_currency() -> None:
    program = with_units(rate="1", per="10", with_amount="true")
    assert earned(program, line("1234", "50.00")) == 123 + 50


@pytest.mark.parametrize(("rounding", "points"), [("floor", 12), ("nearest", 13), ("ceiling", 13)])
def test_points_by_units_round_by_the_programmes_rule(rounding: str, points: int) -> None:
    program = with_units(rate="1", per="100", rounding=f'"{rounding}"')
    assert earned(program, line("1250")) == points  # 12.5 points


def test_nearest_rounds_half_up_once_a_sale_not_per_line() -> None:
    program = with_units(rate="1", per="100", rounding='"nearest"')
    # 0.4 + 0.4 = 0.8: one point for the sale, where rounding each line would give none
    assert earned(program, line("40"), line("40")) == 1


def test_category_rates_apply_to_units_and_the_minimum_per_line() -> None:
    program = parsed(
        BASE
        + """
[earn.by_unit]
unit = "mi"
minimum_per_line = 125
[earn.by_unit.category_rates]
business = 2
[categories.business]
name = "Business"
"""
    )
    assert earned(program, line("3858", category="business")) == 7716
    assert earned(program, line("90")) == 125  # a short hop earns the minimum
    assert earned(program, line("90", category="business")) == 250


def test_a_line_over_the_programmes_most_is_refused_not_capped() -> None:
    program = with_units(max_per_line="12000")
    assert earned(program, line("12000")) == 12000
    with pytest.raises(RulesError, match="over the programme's 12000") as refused:
        earned(program, line("12000.001"))
    assert refused.value.code == "units_over_limit"


def test_the_tiers_multiplier_applies_to_units() -> None:
    airline = preset("airline_miles")
    senator = airline.tiers.by_id("senator")
    assert earned(airline, line("1000"), tier=senator) == 1500


def test_points_spent_as_money_earn_no_units_either() -> None:
    program = with_units()
    purchase = Purchase((line("1000", "100.00"),))
    half = rules.earn_points(program, purchase, program.tiers.tiers[0], discount=D("50.00"))
    assert half.points == 500


def test_the_breakdown_says_the_units_counted() -> None:
    airline = preset("airline_miles")
    breakdown = rules.earn_points(
        airline, Purchase((line("90", category="business"),)), airline.tiers.tiers[0]
    )
    (only,) = breakdown.lines
    assert (only.units, only.rate, only.basis) == (D(125), D(2), "units")
    assert "125 units x 2" in breakdown.explain()[0]


@given(
    units=st.lists(
        st.one_of(st.none(), st.decimals(min_value=0, max_value=12000, places=3)), max_size=6
    ),
    amounts=st.lists(
        st.decimals(min_value=D("0.01"), max_value=9999, places=2), min_size=6, max_size=6
    ),
    rounding=st.sampled_from(list(UnitRounding)),
    with_amount=st.booleans(),
)
def test_earning_by_units_is_never_negative_and_grows_with_units(
    units: list[Decimal | None], amounts: list[Decimal], rounding: UnitRounding, with_amount: bool
) -> None:
    program = with_units(
        rate="1.5", per="7", rounding=f'"{rounding.value}"', with_amount=str(with_amount).lower()
    )
    lines = [PurchaseLine(amount, units=u) for u, amount in zip(units, amounts, strict=False)]
    if not lines:
        return
    points = earned(program, *lines)
    assert points >= 0
    more = [replace(item, units=(item.units or D(0)) + 1) for item in lines]
    assert earned(program, *more) >= points


# ------------------------------------------------------------------ the programme file


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"units_per": "1"}, "unknown setting"),
        ({"max_per_line": "10000000"}, "at most"),
        ({"minimum_per_line": "500", "max_per_line": "100"}, "more than max_per_line"),
        ({"rounding": '"up"'}, "rounding"),
        ({"rate": "-1"}, "rate"),
        ({"per": "0"}, "per"),
    ],
)
def test_a_bad_by_unit_table_is_refused_naming_the_key(
    settings: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        with_units(**settings)


def test_a_by_unit_table_needs_a_unit_name() -> None:
    with pytest.raises(ConfigError, match="unit"):
        parsed(BASE + "\n[earn.by_unit]\nrate = 1\n")


def test_a_by_unit_category_needs_a_display_name() -> None:
    with pytest.raises(ConfigError, match="needs a display name"):
        parsed(BASE + '\n[earn.by_unit]\nunit = "km"\ncategory_rates = { business = 2 }\n')


TIERS = """
id = "t"
name = "T"
currency = "EUR"
[earn]
rate = 1
[earn.by_unit]
unit = "km"
[tiers]
basis = "units"
period = "calendar_year"
{policy}
[[tiers.levels]]
id = "member"
name = "Member"
threshold = 0
[[tiers.levels]]
id = "gold"
name = "Gold"
threshold = 1000
{gold}
"""


def tiered(policy: str = "", gold: str = "") -> rules.Program:
    return parsed(TIERS.format(policy=policy, gold=gold))


@pytest.mark.parametrize(
    ("policy", "gold", "problem"),
    [
        ("", "or_thresholds = { miles = 3 }", "not a tier measure"),
        ("", "or_thresholds = { segments = -3 }", "segments"),
        ('downgrade = "sometimes"', "", "downgrade"),
        ('tenure = "years"', "", "tenure"),
        ("", "min_tenure_months = -1", "min_tenure_months"),
    ],
)
def test_bad_tier_rules_are_refused_naming_the_key(policy: str, gold: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        tiered(policy, gold)


def test_status_to_the_next_periods_end_needs_a_period() -> None:
    text = TIERS.format(policy='downgrade = "period_end"', gold="").replace(
        'period = "calendar_year"', 'period = "lifetime"'
    )
    with pytest.raises(ConfigError, match="needs a period"):
        parsed(text)


# ------------------------------------------------------------------ tiers


def test_a_tier_is_reached_by_its_threshold_or_any_other_one() -> None:
    program = tiered(gold="or_thresholds = { segments = 30, spend = 5000 }")
    assert rules.tier_for(program.tiers, MemberStats(units_in_period=D(999))).id == "member"
    assert rules.tier_for(program.tiers, MemberStats(units_in_period=D(1000))).id == "gold"
    assert rules.tier_for(program.tiers, MemberStats(segments_in_period=30)).id == "gold"
    assert rules.tier_for(program.tiers, MemberStats(spend_in_period=D(5000))).id == "gold"
    assert rules.tier_for(program.tiers, MemberStats(segments_in_period=29)).id == "member"


def test_a_tier_needing_tenure_waits_for_it() -> None:
    program = tiered(gold="min_tenure_months = 12")
    early = MemberStats(units_in_period=D(5000), tenure_months=11)
    assert rules.tier_for(program.tiers, early).id == "member"
    assert rules.tier_for(program.tiers, replace(early, tenure_months=12)).id == "gold"
    upcoming = rules.next_tier(program.tiers, early)
    assert upcoming is not None and upcoming[0].id == "gold" and upcoming[1] == 0


def test_a_tier_reached_last_period_holds_this_one_only_with_period_end() -> None:
    last_year = MemberStats(units_in_period=D(1200))
    this_year = MemberStats(units_in_period=D(10), previous_period=last_year)
    held = tiered('downgrade = "period_end"')
    immediate = tiered()
    assert rules.tier_for(held.tiers, this_year).id == "gold"
    assert rules.tier_for(immediate.tiers, this_year).id == "member"
    assert rules.next_tier(held.tiers, this_year) is None  # gold is the top


@pytest.mark.parametrize(
    ("first", "today", "months"),
    [
        (date(2025, 1, 31), date(2025, 2, 28), 0),
        (date(2025, 1, 31), date(2025, 3, 1), 1),
        (date(2025, 1, 15), date(2026, 1, 15), 12),
        (date(2025, 1, 15), date(2026, 1, 14), 11),
        (date(2026, 1, 15), date(2025, 1, 14), 0),
    ],
)
def test_whole_months_of_membership(first: date, today: date, months: int) -> None:
    assert rules.whole_months(first, today) == months


# ------------------------------------------------------------------ the operation


def sale(*lines: PurchaseLine) -> SaleOp:
    from datetime import UTC, datetime

    return SaleOp(
        "01a21874-0000-7000-8000-000000000001",
        "m1",
        "T",
        datetime(2026, 11, 26, 12, tzinfo=UTC),
        Purchase(lines),
    )


def test_a_sale_carries_its_units_and_one_without_hashes_as_before() -> None:
    body = sale(line("3858.5", category="business")).to_body()
    assert body["lines"][0]["units"] == "3858.5"
    op = parse_operation(body)
    assert isinstance(op, SaleOp) and op.purchase.lines[0].units == D("3858.5")
    plain = sale(line(None)).to_body()
    assert "units" not in plain["lines"][0]
    assert body_hash(plain) == body_hash({**plain, "lines": [dict(plain["lines"][0])]})


@pytest.mark.parametrize("units", ["-1", "1e3", "10000000", "1.2345", 12, "NaN", "", " 1"])
def test_bad_units_in_a_sale_are_refused_naming_the_field(units: object) -> None:
    body = sale(line("1")).to_body()
    body["lines"][0]["units"] = units
    with pytest.raises(OpRejected, match=r"lines\[0\]\.units"):
        parse_operation(body)


def test_the_rules_as_json_carry_the_unit_earning_and_tier_rules() -> None:
    airline = program_to_json(preset("airline_miles"))
    assert airline["earn"]["by_unit"]["minimum_per_line"] == "125"
    assert airline["tiers"]["downgrade"] == "period_end"
    assert airline["tiers"]["levels"][1]["or_thresholds"] == {"segments": "30"}
    assert "by_unit" not in program_to_json(preset("stars"))["earn"]


def test_every_preset_still_loads() -> None:
    from pos_client.program import load_program, preset_names

    for name in preset_names(CONFIG_DIR):
        load_program(name, CONFIG_DIR)


# ------------------------------------------------------------------ units a programme cannot count


def test_units_are_refused_where_the_programme_earns_by_none_naming_the_line() -> None:
    stars = preset("stars")
    with pytest.raises(
        RulesError, match=r"lines\[1\]\.units: this programme earns by no units"
    ) as no:
        earned(stars, line(None), line("5"))
    assert no.value.code == "units_not_earned"


@pytest.mark.parametrize(
    ("lines", "code", "named"),
    [
        ([line("3", "0")], "units_underpriced", "lines[0].amount"),
        ([line("2", "39.98")], "units_underpriced", "lines[0].amount"),  # under 20 a night
        ([line(None), line("1.5", "100")], "units_not_whole", "lines[1].units"),
        ([line("1", "40")] * 21, "units_too_many_lines", "lines: at most 20"),
        ([line("91", "9000")], "units_over_limit", "lines[0].units"),
    ],
)
def test_units_a_programme_cannot_count_are_refused_whatever_the_sale_earns(
    lines: list[PurchaseLine], code: str, named: str
) -> None:
    hotel = preset("hotel_nights")
    with pytest.raises(RulesError) as refused:
        rules.check_units(hotel, Purchase(tuple(lines)))
    assert refused.value.code == code and str(refused.value).startswith(named)
    rules.check_units(hotel, Purchase((line("2", "40.00"),)))  # 20 a night: counted


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (BASE.replace('basis = "points"', 'basis = "units"'), "need \\[earn.by_unit\\]"),
        (BASE.replace('basis = "points"', 'basis = "sometimes"'), "^config key 'tiers.basis'"),
        (BASE + '[earn.by_unit]\nunit = "km"\nrate = 1e300\n', "at most 10000"),
        (BASE + '[earn.by_unit]\nunit = "km"\nmax_lines_per_sale = 501\n', "at most 500"),
        (
            BASE
            + '[every_nth]\nn = 5\ncount = "visits"\nname = "x"\nexcluded_categories = ["x"]\n',
            "no category 'x'",
        ),
    ],
)
def test_programme_mistakes_about_units_are_refused_once_and_clearly(
    text: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem) as refused:
        parsed(text)
    assert str(refused.value).count("config key") == 1
