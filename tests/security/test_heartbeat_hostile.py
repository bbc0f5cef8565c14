"""Hostile heartbeats: a terminal's heartbeat is bounded in every field. Oversized lists,
long strings, control and bidi characters, negative numbers, floats, booleans, extra
fields, a wrong mode, a body too large, no token: each refused with a 4xx, and the
terminal's last heartbeat stays as it was (none is made for a terminal that had none).
Heartbeats are rate-limited per terminal, and dead entries' keys never reach the log."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from loyalty_server.heartbeats import FleetRow, fleet
from pos_client.domain import utcnow
from pos_client.ledger import make_engine
from tests.integration.server_helpers import ServerProcess
from tests.security.attack import cli, headers

KEY = "01234567-89ab-7def-8123-456789abcdef"


def valid(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "app_version": "0.1.0",
        "mode": "cashier",
        "pending": 3,
        "dead": 1,
        "oldest_pending_s": 120,
        "readers": [{"name": "pcsc:ACR122U", "status": "connected"}],
        "dead_entries": [{"key": KEY, "reason": "unknown_member: no member", "age_s": 60}],
    }
    body.update(fields)
    return body


def post(server: ServerProcess, token: str | None, body: Any) -> requests.Response:
    return requests.post(
        server.url + "/v1/terminals/heartbeat",
        data=json.dumps(body),
        headers={**(headers(token) if token else {}), "Content-Type": "application/json"},
        timeout=30,
    )


def rows(server: ServerProcess) -> dict[str, FleetRow]:
    engine = make_engine(server.database_url)
    try:
        return {row.terminal_id: row for row in fleet(engine, utcnow())}
    finally:
        engine.dispose()


def heard(server: ServerProcess) -> dict[str, tuple[Any, ...]]:
    """Every terminal's last heartbeat as stored (silent_s left out: it moves)."""
    return {
        terminal: (
            row.received_at,
            row.app_version,
            row.mode,
            row.pending,
            row.dead_count,
            row.oldest_pending_s,
            row.readers,
            row.dead,
        )
        for terminal, row in rows(server).items()
    }


READER = {"name": "pcsc", "status": "ok"}
DEAD = {"key": KEY, "reason": "no member", "age_s": 1}
HOSTILE: dict[str, Any] = {
    "too many readers": valid(readers=[READER] * 9),
    "too many dead entries": valid(dead_entries=[DEAD] * 21),
    "a huge list": valid(dead_entries=[DEAD] * 5000),
    "a long version": valid(app_version="1" * 41),
    "a long reader name": valid(readers=[{"name": "n" * 61, "status": "ok"}]),
    "a long reader status": valid(readers=[{"name": "pcsc", "status": "s" * 61}]),
    "a long key": valid(dead_entries=[{**DEAD, "key": "k" * 65}]),
    "a long reason": valid(dead_entries=[{**DEAD, "reason": "r" * 201}]),
    "an empty version": valid(app_version=""),
    "an empty reader name": valid(readers=[{"name": "", "status": "ok"}]),
    "a newline in the version": valid(app_version="1.0\n"),
    "a NUL in a reader name": valid(readers=[{"name": "pc\x00sc", "status": "ok"}]),
    "an escape in a status": valid(readers=[{"name": "pcsc", "status": "\x1b[31mred"}]),
    "a bidi override in a reason": valid(dead_entries=[{**DEAD, "reason": "ok\u202etxt.exe"}]),
    "a zero-width space in a key": valid(dead_entries=[{**DEAD, "key": "a\u200bb"}]),
    "DEL in the version": valid(app_version="1\x7f"),
    "a C1 control in a reason": valid(dead_entries=[{**DEAD, "reason": "a\x85b"}]),
    "a lone surrogate": valid(app_version="\ud800"),
    "combining marks piled up": valid(app_version="e" + "\u0301" * 5),
    "negative pending": valid(pending=-1),
    "negative dead": valid(dead=-5),
    "negative oldest": valid(oldest_pending_s=-1),
    "negative age": valid(dead_entries=[{**DEAD, "age_s": -1}]),
    "pending too large": valid(pending=10_000_001),
    "oldest over ten years": valid(oldest_pending_s=11 * 366 * 86400),
    "a huge integer": valid(pending=10**40),
    "a float count": valid(pending=1.0),
    "a float age": valid(dead_entries=[{**DEAD, "age_s": 2.5}]),
    "a float oldest": valid(oldest_pending_s=12.0),
    "a boolean count": valid(dead=True),
    "a count as text": valid(pending="3"),
    "an extra field": valid(terminal_id="someone-else"),
    "an extra reader field": valid(readers=[{**READER, "detail": "/dev/ttyACM0"}]),
    "an extra dead field": valid(dead_entries=[{**DEAD, "phone": "+306910000001"}]),
    "a received_at of its own": valid(received_at="2030-01-01T00:00:00Z"),
    "a wrong mode": valid(mode="admin"),
    "a mode in capitals": valid(mode="KIOSK"),
    "no mode": {k: v for k, v in valid().items() if k != "mode"},
    "readers not a list": valid(readers={"name": "pcsc", "status": "ok"}),
    "a reader not an object": valid(readers=["pcsc:ok"]),
    "a list body": [valid()],
    "null": None,
    "deep nesting": valid(readers=[{"name": "a", "status": "b", "x": [[[[[[[[[]]]]]]]]]}]),
}


@pytest.fixture
def token(server: ServerProcess) -> str:
    return server.pair("till")["token"]


def test_each_hostile_heartbeat_is_refused_and_changes_nothing(
    server: ServerProcess, token: str
) -> None:
    other = server.pair("other")["token"]
    assert post(server, token, valid()).status_code == 200
    before = heard(server)
    assert len(before) == 2 and sum(row[0] is not None for row in before.values()) == 1
    for name, body in HOSTILE.items():
        for who in (token, other):  # one with a heartbeat on record, one without
            response = post(server, who, body)
            assert 400 <= response.status_code < 500, (name, response.status_code)
            assert response.status_code != 429, name
            assert "\x00" not in response.text and "\u202e" not in response.text
    assert heard(server) == before


def test_a_body_too_large_raw_bytes_and_bad_json_are_refused(
    server: ServerProcess, token: str
) -> None:
    url = server.url + "/v1/terminals/heartbeat"
    big = json.dumps(valid(app_version="x" * 200_000))
    answers = [
        requests.post(url, data=big, headers=headers(token), timeout=30).status_code,
        requests.post(url, data=b"\xff\xfe{", headers=headers(token), timeout=30).status_code,
        requests.post(url, data=b'{"mode": ', headers=headers(token), timeout=30).status_code,
        requests.post(url, data=b"[" * 5000, headers=headers(token), timeout=30).status_code,
    ]
    assert answers[0] == 413
    assert all(400 <= status < 500 for status in answers), answers
    assert all(row.received_at is None for row in rows(server).values())


def test_no_wrong_or_revoked_token_stores_nothing(server: ServerProcess, token: str) -> None:
    answer = server.pair("gone")
    assert cli(server, "terminal", "revoke", answer["terminal_id"]).returncode == 0
    for who in (None, "wrong-token", answer["token"], "x" * 300):
        response = post(server, who, valid())
        assert response.status_code == 401, who
        assert response.headers.get("WWW-Authenticate") == "Bearer"
    assert all(row.received_at is None for row in rows(server).values())


def test_heartbeats_are_rate_limited_per_terminal_and_keys_stay_out_of_the_log(
    server: ServerProcess, token: str
) -> None:
    statuses = [post(server, token, valid(pending=n)).status_code for n in range(60)]
    assert statuses == [200] * 60
    refused = post(server, token, valid(pending=999))
    assert refused.status_code == 429 and refused.headers.get("Retry-After") == "60"
    other = server.pair("other")["token"]
    assert post(server, other, valid()).status_code == 200  # its own allowance
    (kept,) = [row for row in rows(server).values() if row.name == "till"]
    assert kept.pending == 59  # the refused one changed nothing
    assert KEY not in server.log_path.read_text()


def test_what_a_terminal_says_is_its_own_and_the_time_is_the_servers(
    server: ServerProcess, token: str
) -> None:
    before = utcnow()
    assert post(server, token, valid(mode="kiosk")).json() == {"status": "ok"}
    after = utcnow()
    (row,) = [row for row in rows(server).values() if row.received_at is not None]
    assert row.name == "till" and row.mode == "kiosk"
    assert row.received_at is not None and before <= row.received_at <= after
