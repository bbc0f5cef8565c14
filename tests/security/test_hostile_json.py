"""Hostile JSON inside one operation (second review, item 4): an unpaired surrogate in a
key, a 4300-digit integer, nesting past 32 levels, no object at all: each refuses its own
operation with the reason and the rest of the batch is applied. A body the parser cannot
read safely (nested past 256 levels, not UTF-8) is one clear 400. Never a 5xx or a
traceback (the fixture reads the server's log)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from tests.integration.server_helpers import ServerProcess
from tests.security.attack import ANNA, headers, member_id, sale, snapshot


def with_raw(body: dict[str, Any], raw_field: str) -> str:
    """The operation's JSON with `raw_field` (JSON text, as an attacker writes it) added."""
    return json.dumps(body)[:-1] + ", " + raw_field + "}"


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def batch_of(*operations: str) -> str:
    """A batch body from operations' JSON texts."""
    return '{"operations": [' + ", ".join(operations) + "]}"


def post(server: ServerProcess, token: str, text: str) -> requests.Response:
    return requests.post(
        server.url + "/v1/operations/batch",
        data=text.encode(),
        headers={**headers(token), "Content-Type": "application/json"},
        timeout=30,
    )


HOSTILE = {
    "unpaired surrogate in a key of the operation": (
        '"\\ud800": 1',
        "text that is not valid UTF-8 (an unpaired surrogate)",
    ),
    "unpaired surrogate in a key inside a line": (
        '"meta": {"lines": [{"\\udfff": "x"}]}',
        "text that is not valid UTF-8 (an unpaired surrogate)",
    ),
    "a 4300-digit integer": ('"points": ' + "9" * 4300, "a number of more than 100 digits"),
    "a 4301-digit integer": ('"x": -' + "7" * 4301, "a number of more than 100 digits"),
    # Python's parser reads these; JSON has none, and a hash would spell NaN as null.
    "NaN": ('"x": NaN', "a number JSON cannot hold (NaN or Infinity)"),
    "-Infinity inside a line": (
        '"meta": {"lines": [{"weight": -Infinity}]}',
        "a number JSON cannot hold (NaN or Infinity)",
    ),
    # The operation is level 1: "x" holding 32 lists reaches level 33.
    "nesting of 33 levels": ('"x": ' + nested(32), "nested deeper than 32 levels"),
    "nesting of 200 levels": ('"x": ' + nested(199), "nested deeper than 32 levels"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_json_in_one_operation_refuses_that_operation_alone(
    server: ServerProcess, case: str
) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    raw, reason = HOSTILE[case]
    good = [sale(anna, "1.00") for _ in range(2)]
    text = batch_of(json.dumps(good[0]), with_raw(sale(anna, "1.00"), raw), json.dumps(good[1]))
    response = post(server, token, text)
    assert response.status_code == 200, response.text[:300]
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["applied", "rejected", "applied"], results
    assert (results[1]["status"], results[1]["code"]) == (400, "bad_request")
    assert results[1]["error"] == reason


def test_an_operation_with_no_key_or_type_is_refused_alone(server: ServerProcess) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    keyless, typeless = sale(anna, "1.00"), sale(anna, "1.00")
    del keyless["key"], typeless["type"]
    text = json.dumps({"operations": [sale(anna, "1.00"), keyless, typeless, {}]})
    results = post(server, token, text).json()["results"]
    assert [r["outcome"] for r in results] == ["applied"] + ["rejected"] * 3, results
    assert results[1]["error"] == "key: missing or of the wrong type"
    assert results[2]["error"] == results[3]["error"] == "unknown operation type"


@pytest.mark.parametrize(
    "bad",
    [5, None, "sale", [1], {"type": "sale"}, {"key": "k"}, {"key": 7, "type": "sale"}],
    ids=["number", "null", "string", "list", "no key", "no type", "number key"],
)
def test_an_operation_that_is_no_object_or_lacks_key_or_type_is_refused_alone(
    server: ServerProcess, bad: Any
) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    before = snapshot(server)
    good = sale(anna, "1.00")
    response = post(server, token, json.dumps({"operations": [good, bad, sale(anna, "2.00")]}))
    assert response.status_code == 200, response.text[:300]
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["applied", "rejected", "applied"], results
    assert results[0]["key"] == good["key"]
    expected_key = "k" if isinstance(bad, dict) and bad.get("key") == "k" else ""
    assert (results[1]["key"], results[1]["status"], results[1]["code"]) == (
        expected_key,
        400,
        "bad_request",
    )
    after = snapshot(server)
    earned = results[0]["result"]["points_earned"] + results[2]["result"]["points_earned"]
    assert after["balances"][anna] == before["balances"][anna] + earned


def test_an_operation_nested_exactly_32_levels_is_applied(server: ServerProcess) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    text = batch_of(with_raw(sale(anna, "1.00"), '"x": ' + nested(31)))
    [result] = post(server, token, text).json()["results"]
    assert result["outcome"] == "applied", result


@pytest.mark.parametrize("levels", [300, 5000])
def test_a_body_nested_past_what_can_be_parsed_is_one_clear_400(
    server: ServerProcess, levels: int
) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    before = snapshot(server)
    text = batch_of(
        json.dumps(sale(anna, "1.00")), with_raw(sale(anna, "1.00"), '"x": ' + nested(levels))
    )
    response = post(server, token, text)
    assert response.status_code == 400, response.text[:300]
    assert response.json() == {
        "detail": "the body is nested deeper than 256 levels (an operation may nest at most 32)"
    }
    assert snapshot(server) == before


def test_a_body_of_more_json_values_than_a_batch_needs_is_one_clear_413_before_parsing(
    server: ServerProcess,
) -> None:
    """Half a million levels of nesting, or a million empty objects, inside the 2 MiB limit:
    refused by counting, before any value is made."""
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    before = snapshot(server)
    # Limits of the suite: 50 operations a batch, 20 lines a sale.
    limit = 2 * (50 * (16 + 8 * 6 + 5) + 20 * 6)
    for raw in ('"x": ' + nested(500_000), '"x": [' + ",".join(["{}"] * 400_000) + "]"):
        text = batch_of(json.dumps(sale(anna, "1.00")), with_raw(sale(anna, "1.00"), raw))
        response = post(server, token, text)
        assert response.status_code == 413, response.text[:300]
        assert response.json() == {
            "detail": f"the body holds more than {limit} JSON values; send fewer or smaller "
            "operations"
        }
    # Commas and brackets inside strings are no values: a batch of such text applies.
    text = batch_of(*[json.dumps(sale(anna, "1.00", note="[{,}]" * 100)) for _ in range(50)])
    response = post(server, token, text)
    assert response.status_code == 200, response.text[:300]
    assert {r["outcome"] for r in response.json()["results"]} == {"applied"}
    after = snapshot(server)
    assert after["transactions"][: len(before["transactions"])] == before["transactions"]


def test_a_string_that_never_closes_is_counted_in_linear_time_without_a_token(
    server: ServerProcess,
) -> None:
    """Over the value limit in commas, then an unterminated string of 1 MiB of escaped
    quotes: counted in one pass (a regular expression over whole strings took 14 s for
    120 KB of it, hours for 2 MiB, holding a worker before any token was checked)."""
    token = server.pair()["token"]
    text = "[" + "," * 75_001 + '"' + '\\"' * 500_000
    started = time.monotonic()
    response = requests.post(
        server.url + "/v1/operations/batch",
        data=text.encode(),
        headers={"Content-Type": "application/json"},
        timeout=120,
    )
    answered_in = time.monotonic() - started
    assert response.status_code in (401, 413), response.text[:300]
    assert answered_in < 10, f"{answered_in:.1f} s"  # quadratic: over an hour
    health = requests.get(server.url + "/v1/health", headers=headers(token), timeout=10)
    assert health.status_code == 200


def test_a_body_that_is_not_utf8_is_one_clear_400(server: ServerProcess) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    body = json.dumps({"operations": [sale(anna, "1.00", first="\u00e9")]}).encode()
    latin1 = body.replace(b"\\u00e9", "\u00e9".encode("latin-1"))
    response = requests.post(
        server.url + "/v1/operations/batch",
        data=latin1,
        headers={**headers(token), "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "the body is not UTF-8 text"}
