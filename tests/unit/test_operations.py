from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_client.domain import Purchase, PurchaseLine, uuid7
from pos_client.operations import (
    OpRejected,
    RedemptionRequest,
    SaleOp,
    body_hash,
    canonical_json,
    parse_operation,
)


def sale() -> SaleOp:
    return SaleOp(
        key=uuid7(),
        member_id="m1",
        terminal_id="T1",
        occurred_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
        purchase=Purchase((PurchaseLine(Decimal("12.50"), "cosmetics", "LIP"),)),
        redemption=RedemptionRequest(reward_id="gift-card-25", points=5000),
        expected_points=25,
    )


def test_sale_round_trips_through_json_body() -> None:
    op = sale()
    assert parse_operation(op.to_body()) == op


def test_body_hash_ignores_key_order_but_not_content() -> None:
    body = sale().to_body()
    reordered = dict(reversed(list(body.items())))
    assert body_hash(body) == body_hash(reordered)
    changed = {**body, "lines": [{**body["lines"][0], "amount": "12.51"}]}
    assert body_hash(changed) != body_hash(body)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.pop("key"),
        lambda b: b.update(type="refund"),
        lambda b: b.update(lines=[]),
        lambda b: b.update(lines=[{"amount": "-1"}]),
        lambda b: b.update(lines=[{"amount": 1.5}]),
        lambda b: b.update(occurred_at="yesterday"),
        lambda b: b.update(occurred_at="2026-11-25T12:00:00"),
        lambda b: b.update(redemption="all of it"),
    ],
)
def test_malformed_bodies_are_rejected_permanently(mutate: object) -> None:
    body = sale().to_body()
    mutate(body)  # type: ignore[operator]
    with pytest.raises(OpRejected) as caught:
        parse_operation(body)
    assert caught.value.code == "bad_request"


def test_uuid7_is_version_7_and_ordered() -> None:
    keys = [uuid7() for _ in range(5000)]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    parsed = uuid.UUID(keys[0])
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    millis = int(parsed.hex[:12], 16)
    assert abs(millis / 1000 - datetime.now(UTC).timestamp()) < 60


def test_money_must_be_decimal() -> None:
    with pytest.raises(TypeError):
        PurchaseLine(12.5)  # type: ignore[arg-type]


# What an operation can hold as JSON: text (any code point but surrogates), integers within
# what a body may carry, booleans, null, and objects and lists of those (no floats: no
# operation field takes one).
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.text(st.characters(blacklist_categories=("Cs",))),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(st.characters(blacklist_categories=("Cs",))), children, max_size=4
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6))
def test_canonical_json_is_the_standard_encoders_sorted_compact_spelling(body: dict) -> None:
    # Stored hashes were made by the standard encoder: a faster spelling must be the same.
    assert canonical_json(body) == json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def test_canonical_json_spells_integers_past_64_bits() -> None:
    assert canonical_json({"b": 2**64, "a": -(10**30)}) == f'{{"a":-{10**30},"b":{2**64}}}'


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_an_operation_holding_nan_or_infinity_is_refused(number: str) -> None:
    body = json.loads(json.dumps(sale().to_body())[:-1] + f', "weight": {number}}}')
    with pytest.raises(OpRejected, match="NaN or Infinity"):
        parse_operation(body)
