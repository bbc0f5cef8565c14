"""Properties over any input: identification, NDEF parsing, framing and the rules either
give a typed result or a clear error, never an unexpected exception."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.serial_scanner import LineFramer, decode_frame
from pos_client import rules
from pos_client.domain import Identity
from pos_client.identify import IdentifyError, identify
from pos_client.operations import OpRejected, parse_operation
from tests.conftest import preset

REGIONS = st.sampled_from(["US", "RU", "UA", "GR", "DE"])
HINTS = st.sampled_from([None, "phone", "nfc", "barcode"])


@settings(max_examples=400)
@given(raw=st.binary(max_size=200), region=REGIONS, hint=HINTS)
def test_any_bytes_from_a_scanner_identify_or_fail_clearly(
    raw: bytes, region: str, hint: str | None
) -> None:
    for frame in LineFramer(b"\r", max_length=64).feed(raw + b"\r"):
        text, error = decode_frame(frame, "ascii")
        if error is not None:
            assert isinstance(error, str) and error
            continue
        assert text is not None
        try:
            identity = identify(text, region, hint)
        except IdentifyError as exc:
            assert str(exc)
        else:
            assert isinstance(identity, Identity) and identity.value


@settings(max_examples=400)
@given(text=st.text(max_size=40), region=REGIONS)
def test_any_phone_text_is_e164_or_a_clear_error(text: str, region: str) -> None:
    try:
        identity = identify(text, region, "phone")
    except IdentifyError as exc:
        assert str(exc)
    else:
        assert identity.value.startswith("+") and identity.value[1:].isdigit()


@settings(max_examples=400)
@given(memory=st.binary(max_size=300))
def test_any_ndef_memory_parses_or_fails_clearly(memory: bytes) -> None:
    pytest.importorskip("ndef")
    from drivers.pcsc import CardReadError, NdefPolicy, member_from_ndef, ndef_tlv

    try:
        message, needed = ndef_tlv(memory)
    except CardReadError:
        return
    assert message is None or isinstance(message, bytes)
    assert needed is None or needed > len(memory)
    for field in ("text", "uri"):
        try:
            member = member_from_ndef(memory, NdefPolicy(field))
        except CardReadError:
            continue
        assert member is None or isinstance(member, str)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.floats(allow_nan=False),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400)
@given(
    body=st.dictionaries(
        st.sampled_from(
            [
                "type",
                "key",
                "member_id",
                "lines",
                "occurred_at",
                "redemption",
                "points",
                "target_id",
                "consent",
                "phone_key",
                "first_name",
            ]
        ),
        json_values | st.sampled_from(["sale", "enroll", "action", "give", "receive"]),
        max_size=8,
    )
)
def test_any_operation_body_parses_or_is_rejected(body: dict[str, object]) -> None:
    try:
        parse_operation(body)
    except OpRejected as exc:
        assert exc.code == "bad_request" and exc.message


@given(
    balance=st.integers(0, 10**6),
    points=st.integers(-10, 10**6),
    target=st.sampled_from(["sky-miles", "skin-cancer-fund", "nowhere"]),
)
def test_giving_never_exceeds_the_balance(balance: int, points: int, target: str) -> None:
    program = preset("category_tiers")
    try:
        plan = rules.plan_give(program, target, points, balance)
    except rules.RulesError:
        return
    assert 0 < plan.points <= balance
    assert plan.converted == Decimal(plan.points // plan.target.points_per_unit)
