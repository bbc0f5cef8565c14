"""Hypothesis fuzzing of the batch and pairing endpoints against a live server: arbitrary
JSON (lone surrogates, extreme numbers and dates, huge strings, deep nesting) and
operation-shaped bodies. Never a 5xx or a traceback; balances move only by what applied
operations report. A bounded run here; many more examples with POS_CLIENT_SOAK=1."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from loyalty_server.schema import pairing_codes, terminals
from pos_client.demo import DEMO_MEMBERS
from tests.integration.server_helpers import ServerProcess
from tests.security.attack import headers, member_id, sale, snapshot
from tests.security.conftest import running_server

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
SOAK = bool(os.environ.get("POS_CLIENT_SOAK"))
BATCH_EXAMPLES = 2000 if SOAK else 120
PAIR_EXAMPLES = 1000 if SOAK else 80

surrogates = st.integers(0xD800, 0xDFFF).map(chr)
any_char = st.characters(codec=None, exclude_categories=()) | surrogates
texts = (
    st.text(any_char, max_size=40)
    | st.builds(lambda c, n: c * n, any_char, st.integers(1000, 300_000))  # huge strings
    | st.sampled_from(["", " 10 ", "1_000", "١٠", "1e400", "NaN", "-0", "0x10", "\x00"])
)
numbers = (
    st.integers(-(2**70), 2**70)
    | st.sampled_from([10**300, -(10**300), 2**63, 2**63 - 1, -(2**63), 2**64])
    | st.floats(allow_nan=True, allow_infinity=True)
)
dates = st.sampled_from(
    [
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:00:00-05:00",
        "0001-01-01T00:00:00+14:00",
        "1970-01-01T00:00:00Z",
        "2026-02-30T00:00:00+00:00",
        "2026-11-25T25:61:00+00:00",
        "2026-11-25T10:00:00",  # no offset
    ]
) | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
# Times near now, inside and just outside the bounds, so some operations really apply.
recent = st.integers(-70 * 86400, 3600).map(
    lambda s: (datetime.now(UTC) + timedelta(seconds=s)).isoformat()
)
scalars = st.none() | st.booleans() | numbers | texts | dates
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
    max_leaves=30,
)


def operation_like(members: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies shaped like operations, so fuzzing reaches the rules, not just the parser."""
    line = st.fixed_dictionaries(
        {"amount": st.sampled_from(["10.00", "0", "9999999.99"]) | texts | numbers},
        optional={"category": json_values, "sku": json_values, "quantity": json_values},
    )
    return st.fixed_dictionaries(
        {
            "type": st.sampled_from(["sale", "enroll", "action", "give", "receive"]) | texts,
            "key": st.uuids().map(str) | texts | numbers,
            "member_id": st.sampled_from(members) | texts,
            "occurred_at": recent | dates | json_values,
        },
        optional={
            "lines": st.lists(line, max_size=4) | json_values,
            "redemption": json_values,
            "points": numbers,
            "action": json_values,
            "target_id": st.sampled_from(["sky-miles", "red-cross"]) | texts,
            "units": numbers,
            "first_name": texts,
            "phone_key": texts,
            "card_number": texts,
            "consent": json_values,
            "birthday": dates | texts,
        },
    )


def encode(value: Any) -> bytes:
    # ensure_ascii: lone surrogates travel as \\ud800 escapes, as an attacker would send them
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


@pytest.fixture
def fuzz_server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """The suite's server, with room for every fuzzed operation in a minute."""
    yield from running_server(
        database_url, tmp_path, LOYALTY_SERVER_OPERATIONS_PER_TERMINAL_PER_MINUTE="1000000"
    )


def test_fuzzed_batches_never_5xx_and_move_balances_only_by_applied_operations(
    fuzz_server: ServerProcess,
) -> None:
    server = fuzz_server
    token = server.pair()["token"]
    members = [member_id(server, m.card_number) for m in DEMO_MEMBERS]
    before = snapshot(server)["balances"]
    moved: dict[str, int] = {}
    session = requests.Session()
    session.headers.update({**headers(token), "Content-Type": "application/json"})
    valid = st.builds(
        lambda member, amount, when: sale(member, amount, occurred_at=when),
        st.sampled_from(members),
        st.sampled_from(["0", "1.00", "10.00", "99.99"]),
        recent,
    )
    bodies = st.lists(valid | operation_like(members) | json_values, min_size=1, max_size=4)
    whole = st.one_of(bodies.map(lambda ops: {"operations": ops}), json_values)

    @settings(
        max_examples=BATCH_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(whole)
    def post(body: Any) -> None:
        response = session.post(server.url + "/v1/operations/batch", data=encode(body), timeout=30)
        assert response.status_code < 500, response.text[:300]
        assert response.status_code in (200, 400, 413, 422), response.status_code
        if response.status_code != 200:
            return
        for result in response.json()["results"]:
            if result["outcome"] == "applied" and result["result"]:
                applied = result["result"]
                points = int(applied.get("points_earned", 0)) - int(
                    applied.get("points_redeemed", 0)
                )
                if points:
                    moved[applied["member_id"]] = moved.get(applied["member_id"], 0) + points

    post()
    assert moved, "no fuzzed operation applied: the bodies never reached the rules"
    after = snapshot(server)["balances"]
    for member in set(before) | set(after):
        assert after.get(member, 0) == before.get(member, 0) + moved.get(member, 0), member
    ledger = server.ledger()
    assert ledger.balance_mismatches() == []
    ledger.engine.dispose()


def pairing_state(server: ServerProcess) -> list[Any]:
    ledger = server.ledger()
    with ledger.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(pairing_codes.c.used_at))]
        rows += [tuple(r) for r in conn.execute(select(terminals.c.token_hash))]
    ledger.engine.dispose()
    return rows


def test_fuzzed_pairing_never_5xx_and_pairs_nothing(fuzz_server: ServerProcess) -> None:
    server = fuzz_server
    server.pairing_code("waiting")
    before = pairing_state(server)
    session = requests.Session()
    code_like = st.fixed_dictionaries({"code": texts | json_values})

    @settings(
        max_examples=PAIR_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(code_like | json_values | st.binary(max_size=2000))
    def post(body: Any) -> None:
        data = body if isinstance(body, bytes) else encode(body)
        response = session.post(
            server.url + "/v1/terminals/pair",
            data=data,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code in (400, 403, 413, 422, 429), response.status_code

    post()
    assert pairing_state(server) == before
