"""`pos-client program show` explains every rule of a programme in plain sentences."""

from __future__ import annotations

import pytest

from pos_client.program import ProgramDocument, load_program, preset_names
from pos_client.program_words import describe_program
from tests.conftest import CONFIG_DIR


@pytest.mark.parametrize(
    ("preset", "sentences"),
    [
        (
            "airline_miles",
            [
                "Earning by miles flown: 1 mile per mile flown on each line that carries miles"
                " flown, rounded down once a sale; the price earns nothing.",
                "  Business: 2 miles per mile flown.",
                "  A line counts at least 125 miles flown.",
                "  A line of more than 12,000 miles flown is refused.",
                "  A tier reached in one period holds to the end of the next.",
            ],
        ),
        (
            "hotel_nights",
            [
                "  Gold (gold): 40 nights or 75,000 points earned; earns x1.8; perks: 80 % bonus"
                " points, room upgrade, breakfast.",
                "Every 5th night free: every 5th night over the membership is free, worth its"
                " line's price a night (at most 500 USD); never a line of Suite (whose units"
                " still count); not in"
                " a sale that spends points as money.",
            ],
        ),
        (
            "coalition_points",
            [
                "  RoadStar fuel stations (fuel): earns 0.5 points per 1 EUR, 2 on Station shop;"
                " each point it issues costs it 0.012 EUR, paid to the merchant where it is"
                " spent.",
                "Offer from StarCinema, Welcome: 2.00 off from StarCinema (cinema-welcome):"
                " 2 EUR off the sale (a sale of at least 10 EUR; in a member's first 3 months);"
                " once a member, by itself, no code.",
                "Offer from SparkleWash, A free car wash for members of a year (sparkle-wash):"
                " one of its items free, the dearest, worth at most 12 EUR (a sale with Car"
                " wash; after 12 months of membership); 2 times a member, by itself, no code.",
            ],
        ),
        (
            "wellness_blocks",
            [
                "Points as money: every 5,000 points pay 5 USD of a purchase.",
                "Action Vaccination (vaccination): 500 points, at most 1 a day.",
                "Expiry: points expire 12 months after they are earned.",
            ],
        ),
    ],
)
def test_a_presets_rules_are_said_in_words(preset: str, sentences: list[str]) -> None:
    said = describe_program(load_program(preset, CONFIG_DIR))
    for sentence in sentences:
        assert sentence in said


def test_every_preset_is_described_without_an_id_where_a_name_exists() -> None:
    for name in preset_names(CONFIG_DIR):
        program = load_program(name, CONFIG_DIR)
        said = "\n".join(describe_program(program))
        for tier in program.tiers.tiers:
            assert f"{tier.name} ({tier.id})" in said
        for reward in program.catalog:
            assert reward.name in said


BASE = """
id = "t"
name = "T"
currency = "EUR"
[earn]
rate = 1
[tiers]
basis = "visits"
[[tiers.levels]]
id = "member"
name = "Member"
[[tiers.levels]]
id = "regular"
name = "Regular"
threshold = 10
min_tenure_months = 12
[expiry]
{expiry}
"""


@pytest.mark.parametrize(
    ("expiry", "sentence"),
    [
        (
            'mode = "period_end"',
            "Expiry: points earned in a calendar year expire at that year's end",
        ),
        ('mode = "period_end"\nyears = 1', "at the end of the next year"),
        ('mode = "inactivity"\nmonths = 18', "Expiry: all points expire after 18 months without"),
    ],
)
def test_expiry_and_tenure_are_said_in_words(expiry: str, sentence: str) -> None:
    program = ProgramDocument.of(BASE.format(expiry=expiry)).parse("t")
    said = "\n".join(describe_program(program))
    assert sentence in said
    assert "Regular (regular): 10 visits; after 12 months of membership." in said


def test_a_membership_gate_and_ordinals_are_said_in_words() -> None:
    from pos_client.program_words import ordinal

    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "101st",
        "111th",
    ]
    text = BASE.format(expiry="months = 12") + '[membership]\nmin_spend = "100.00"\n'
    said = "\n".join(describe_program(ProgramDocument.of(text).parse("t")))
    assert "are held until 100 EUR is spent in all, then released at once." in said
