from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_client.domain import Purchase, PurchaseLine, uuid7
from pos_client.operations import (
    OpRejected,
    OversizedNumber,
    RedemptionRequest,
    SaleOp,
    body_hash,
    canonical_json,
    json_problem,
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


def problem_walked_value_by_value(value: object, max_nesting: int = 32) -> bool:
    """Whether a value has a problem `json_problem` names, by the plainest walk (the
    reference the faster level-at-a-time walk must agree with)."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            if any(0xD800 <= ord(char) <= 0xDFFF for char in item):
                return True
        elif isinstance(item, OversizedNumber):
            return True
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                return True
        elif isinstance(item, dict | list):
            if level > max_nesting:
                return True
            if isinstance(item, dict):
                stack.extend((key, level) for key in item)
                stack.extend((child, level + 1) for child in item.values())
            else:
                stack.extend((child, level + 1) for child in item)
    return False


HOSTILE_TEXT = st.text(st.sampled_from(["a", "é", "\ud800", "\udfff", "😀", "\x00"]), max_size=4)
HOSTILE_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.builds(OversizedNumber, st.integers(101, 5000))
    | HOSTILE_TEXT
)


def deep(levels: int, inner: object) -> object:
    for _ in range(levels):
        inner = [inner]
    return inner


@settings(max_examples=400, deadline=None)  # the first call imports the server
@given(
    st.recursive(
        HOSTILE_LEAVES,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(HOSTILE_TEXT, children, max_size=3)
            | st.builds(deep, st.integers(1, 40), children)
        ),
        max_leaves=12,
    )
)
def test_json_problem_finds_exactly_what_a_value_by_value_walk_finds(value: object) -> None:
    assert (json_problem(value) is not None) == problem_walked_value_by_value(value)


def test_json_problem_allows_32_levels_and_refuses_33() -> None:
    assert json_problem({"x": deep(30, {"y": 1})}) is None  # the operation, 30 lists, {"y"}
    assert json_problem({"x": deep(31, {"y": 1})}) == "nested deeper than 32 levels"


def test_a_member_record_with_another_balance_keeps_every_other_field() -> None:
    from dataclasses import replace

    from pos_client.ledger.ledger import MemberRecord

    record = MemberRecord(
        "m1", "Anna", "K", "42", "4006381333931", date(1990, 2, 3), 120, datetime.now(UTC)
    )
    moved = record.with_balance(95)
    assert moved == replace(record, balance=95) and moved is not record
    assert record.balance == 120  # the original unchanged


JSON_TEXT = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(st.sampled_from('ab,[{"\\é}]')),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.sampled_from('k,[{"\\}]'), max_size=3), children, max_size=3)
    ),
    max_leaves=15,
)


def outside_strings_char_by_char(text: str) -> str:
    """The reference: JSON text outside strings, read one character at a time."""
    kept, inside, escaped = [], False, False
    for char in text:
        if inside:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                inside = False
        elif char == '"':
            inside = True
        else:
            kept.append(char)
    return "".join(kept)


@settings(max_examples=400, deadline=None)  # the first call imports the server
@given(JSON_TEXT, st.booleans(), st.integers(0, 200))
def test_outside_strings_agrees_with_a_char_by_char_reading(
    value: object, cut: bool, at: int
) -> None:
    from loyalty_server.bodies import outside_strings

    text = json.dumps(value, ensure_ascii=False)
    if cut:  # a body that ends anywhere, inside a string or an escape too
        text = text[:at]
    assert outside_strings(text) == outside_strings_char_by_char(text)
