"""A coalition in the programme file (issue 11, mechanic 5): merchants with their own
earning rates and funding rates, validated with errors naming the key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from pos_client.configfile import ConfigError
from pos_client.domain import Purchase, PurchaseLine
from pos_client.program import ProgramDocument, load_program, program_to_json
from pos_client.program_words import describe_program
from pos_client.rules import earn_points, program_at_merchant

REPO = Path(__file__).resolve().parents[2]
HEAD = 'id = "c"\nname = "C"\n[earn]\nrate = 1\n[tiers]\n[[tiers.levels]]\nid = "m"\nname = "M"\n'
A = '[[coalition.merchants]]\nid = "a"\nname = "A"\n'
B = '[[coalition.merchants]]\nid = "b"\nname = "B"\n'
RATE = 'funding_rate = "0.01"\n'


def parse(coalition: str) -> object:
    source = f'{HEAD}[coalition]\noperator = "Op"\n{coalition}'
    return ProgramDocument.of(source).parse("c.toml")


@pytest.mark.parametrize(
    ("coalition", "problem"),
    [
        (RATE + A, "two or more"),
        (RATE + A + A, "named twice"),
        (RATE + A.replace('"a"', '"A b"') + B, "lower-case letters"),
        (RATE + A.replace('"a"', '"operator"') + B, "'operator' names"),
        (RATE + A + 'funding_rate = "500"\n' + B, "at most 100"),
        (RATE + A + 'funding_rate = "0"\n' + B, "at least 0.0001"),
        (RATE + A + "category_rates = { wine = 3 }\n" + B, "no category 'wine'"),
        (RATE + A + "rate = -1\n" + B, "at least 0"),
        (RATE + A + "rate = 20000\n" + B, "at most 10000"),
        (RATE + A + 'colour = "red"\n' + B, "unknown setting"),
        (RATE + 'operator_rate = "1"\n' + A + B, "unknown setting"),
        (A + B, "coalition.funding_rate"),
        (RATE + A.replace('name = "A"', 'name = "A\\u001b[31m"') + B, "control"),
        (RATE.replace('"0.01"', '"0.0100001"') + A + B, "at most 6 decimals"),
        ("operator_x = 1\n", "unknown setting"),
        (RATE + A + B.replace('name = "B"\n', ""), "merchants[1].name"),
    ],
)
def test_a_malformed_coalition_is_refused_naming_its_key(coalition: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="coalition") as caught:
        parse(coalition)
    assert problem in str(caught.value)


def test_an_empty_coalition_table_is_refused() -> None:
    with pytest.raises(ConfigError, match="empty"):
        ProgramDocument.of(HEAD + "[coalition]\n").parse("c.toml")


def test_a_merchant_without_a_funding_rate_funds_at_the_operators() -> None:
    program = parse('funding_rate = "0.02"\n' + A + B + 'funding_rate = "0.005"\n')
    coalition = program.coalition  # type: ignore[attr-defined]
    assert coalition.funding_of("a") == Decimal("0.02")
    assert coalition.funding_of("b") == Decimal("0.005")
    assert coalition.funding_of("") == Decimal("0.02")


def test_each_merchant_earns_at_its_rates_over_the_programmes() -> None:
    program = load_program("coalition_points", REPO / "config")
    shop = Purchase((PurchaseLine(Decimal("10.00"), "shop", ""),))
    fuel = Purchase((PurchaseLine(Decimal("60.00"), "fuel", ""),))
    tier = program.tiers.tiers[0]
    earned = {
        merchant: (
            earn_points(program_at_merchant(program, merchant), shop, tier).points,
            earn_points(program_at_merchant(program, merchant), fuel, tier).points,
        )
        for merchant in ("", "grocer", "fuel", "pharmacy", "gone")
    }
    assert earned == {
        "": (10, 60),  # the operator's tills: the base rate
        "grocer": (10, 60),
        "fuel": (20, 30),  # 2 a euro in the shop, 0.5 on fuel
        "pharmacy": (20, 120),
        "gone": (10, 60),  # a merchant no longer in the programme: the base rate
    }


def test_the_coalition_travels_to_terminals_and_reads_in_words() -> None:
    program = load_program("coalition_points", REPO / "config")
    data = program_to_json(program)["coalition"]
    assert [m["id"] for m in data["merchants"]] == ["grocer", "fuel", "pharmacy"]
    assert data["merchants"][1]["category_rates"] == {"shop": "2"}
    words = "\n".join(describe_program(program))
    assert "RoadStar fuel stations" in words and "0.012" in words
    assert "settle" in words
