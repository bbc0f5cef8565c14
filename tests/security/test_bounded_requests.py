"""Bounded, well-formed requests: size limits before parsing, the configured batch limit,
422s that never echo input, and malformed values refused for their operation alone."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from typing import Any

import pytest
import requests

from pos_client.domain import uuid7
from tests.integration.server_helpers import ServerProcess
from tests.security.attack import ANNA, batch, headers, member_id, sale, snapshot


def raw_post(server: ServerProcess, path: str, head: str, body: bytes) -> tuple[int, float]:
    """Send a request by hand (so the body can lie about or omit its length); returns the
    status and how long the answer took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
        # The server may answer and close before reading it all: that is the point.
        with contextlib.suppress(OSError):
            conn.sendall(body)
        answer = conn.recv(4096)
    return int(answer.split()[1]), time.monotonic() - started


def test_oversized_pairing_bodies_are_refused_before_parsing(server: ServerProcess) -> None:
    huge = b'{"code": "' + b"A" * (27 * 1024 * 1024) + b'"}'
    status, _ = raw_post(
        server,
        "/v1/terminals/pair",
        f"Content-Type: application/json\r\nContent-Length: {len(huge)}\r\n",
        huge[:65536],
    )
    assert status == 413
    # Streamed with no length (chunked): refused once past the limit.
    chunk = b"A" * 4096
    chunked = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    status, _ = raw_post(
        server,
        "/v1/terminals/pair",
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
        chunked * 4,
    )
    assert status == 413
    health = requests.get(server.url + "/v1/health", timeout=5)
    assert health.status_code == 401 and health.elapsed.total_seconds() < 1


def test_oversized_batches_are_refused_before_parsing(server: ServerProcess) -> None:
    token = server.pair()["token"]
    before = snapshot(server)
    anna = member_id(server, ANNA.card_number)
    body = json.dumps({"operations": [sale(anna)] * 20000}).encode()
    assert len(body) > 2 * 1024 * 1024
    response = requests.post(
        server.url + "/v1/operations/batch",
        data=body,
        headers={**headers(token), "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert len(response.content) < 200
    assert snapshot(server) == before


def test_the_configured_batch_limit_is_used_and_422s_never_echo(server: ServerProcess) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    before = snapshot(server)
    marker = "ECHO-ME-" + "x" * 40
    bodies = [sale(anna, category=marker) for _ in range(51)]  # LOYALTY_SERVER_MAX_BATCH=50
    response = requests.post(
        server.url + "/v1/operations/batch",
        json={"operations": bodies},
        headers=headers(token),
        timeout=30,
    )
    assert response.status_code == 422
    assert marker not in response.text and len(response.content) < 2000
    assert response.json()["detail"][0]["loc"] == ["body", "operations"]
    assert snapshot(server) == before
    assert [r["outcome"] for r in batch(server, token, *bodies[:50])] == ["applied"] * 50
    wrong = requests.post(
        server.url + "/v1/members/lookup",
        json={"kind": "phone", "value": marker * 10, "extra": {"deep": [marker] * 1000}},
        headers=headers(token),
        timeout=10,
    )
    assert wrong.status_code == 422 and marker not in wrong.text


MALFORMED: list[tuple[str, dict[str, Any]]] = [
    ("occurred_at far future with offset", {"occurred_at": "9999-12-31T23:00:00-05:00"}),
    ("occurred_at year one with offset", {"occurred_at": "0001-01-01T00:00:00+05:00"}),
    ("surrogate key", {"key": "\ud800" + uuid7()[1:]}),
    ("surrogate category", {"lines": [{"amount": "1.00", "category": "\ud800"}]}),
    ("surrogate in an extra field", {"note": {"\udfff": 1}}),
    ("huge amount", {"lines": [{"amount": "1e400"}]}),
    ("huge number amount", {"lines": [{"amount": 10**300}]}),
    ("huge quantity", {"lines": [{"amount": "1.00", "quantity": 10**40}]}),
    ("negative expected points", {"expected_points": -(10**20)}),
    ("float amount", {"lines": [{"amount": 1e308}]}),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[name for name, _ in MALFORMED])
def test_a_malformed_value_is_refused_alone_and_a_valid_sale_beside_it_is_stored(
    server: ServerProcess, case: tuple[str, dict[str, Any]]
) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    bad = {**sale(anna), **case[1]}
    good = sale(anna, "10.00")
    before = snapshot(server)
    results = batch(server, token, bad, good)
    assert results[0]["outcome"] == "rejected" and results[0]["status"] in (400, 422)
    assert "\ud800" not in json.dumps(results[0], ensure_ascii=False)
    assert results[1]["outcome"] == "applied"
    after = snapshot(server)
    assert (
        after["balances"][anna] == before["balances"][anna] + results[1]["result"]["points_earned"]
    )
    assert len(after["operations"]) == len(before["operations"]) + 1


def test_actions_and_enrollments_dated_out_of_range_are_refused(server: ServerProcess) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    action = {
        "type": "action",
        "key": uuid7(),
        "member_id": anna,
        "action": "review",
        "terminal_id": "T",
        "occurred_at": "9999-12-31T00:00:00+00:00",
    }
    before = snapshot(server)
    results = batch(server, token, action, sale(anna))
    assert results[0]["outcome"] == "rejected" and results[0]["status"] == 400
    assert results[1]["outcome"] == "applied"
    assert len(snapshot(server)["operations"]) == len(before["operations"]) + 1


def test_surrogates_in_pairing_and_lookups_are_422s(server: ServerProcess) -> None:
    token = server.pair()["token"]
    pair = requests.post(
        server.url + "/v1/terminals/pair",
        data=b'{"code": "ABCD\\ud800EFGH"}',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert pair.status_code == 422
    for kind in ("phone", "card_number"):
        lookup = requests.post(
            server.url + "/v1/members/lookup",
            data=b'{"kind": "' + kind.encode() + b'", "value": "12\\ud800"}',
            headers={**headers(token), "Content-Type": "application/json"},
            timeout=10,
        )
        assert lookup.status_code == 422
