"""A coalition's settlement under attack (issue 11): the report reads the whole ledger and
tells money between companies, so only a merchant's own token reads it, and only its own
share; tills, partners and guessed tokens read nothing; malformed periods and merchants are
refused with a reason and change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from loyalty_server.merchants import OPERATOR_KEY, issue_token
from pos_client.ledger import make_engine
from tests.integration.server_helpers import ServerProcess
from tests.security.attack import cli, headers, snapshot

DAY = "2026-11-01"


@pytest.fixture
def coalition(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    from tests.security.conftest import running_server

    yield from running_server(database_url, tmp_path, LOYALTY_SERVER_PROGRAM="coalition_points")


def token_of(server: ServerProcess, *who: str) -> str:
    issued = cli(server, "merchant", "token", *who)
    assert issued.returncode == 0, issued.stderr
    return issued.stdout.split("no longer works): ")[1].split()[0]


def settlement(server: ServerProcess, token: str | None, **params: Any) -> requests.Response:
    return requests.get(
        server.url + "/v1/settlement",
        params=params or {"from": DAY, "to": DAY},
        headers=headers(token) if token is not None else {},
        timeout=10,
    )


def test_only_a_merchants_own_token_reads_the_settlement_and_only_its_share(
    coalition: ServerProcess,
) -> None:
    server = coalition
    till = server.pair("Pump 1", merchant="fuel")["token"]
    partner = cli(server, "partner", "add", "nope")  # the preset has no inbound partner
    assert partner.returncode == 1
    fuel = token_of(server, "fuel")
    for token in (None, "", "lm_" + "A" * 43, till, fuel + "x", "x" * 300):
        answer = settlement(server, token)
        assert answer.status_code in (401, 403), (token, answer.text)
        assert "merchants" not in answer.text
    own = settlement(server, fuel, **{"from": DAY, "to": DAY, "merchant": "grocer"})
    assert own.status_code == 200
    assert [m["merchant"] for m in own.json()["merchants"]] == ["fuel"]  # never grocer's
    # A merchant's token opens nothing else: no member, no batch.
    for method, path in (("get", "/v1/members/x"), ("post", "/v1/operations/batch")):
        answer = requests.request(method, server.url + path, headers=headers(fuel), timeout=10)
        assert answer.status_code == 401
    assert cli(server, "merchant", "revoke", "fuel").returncode == 0
    assert settlement(server, fuel).status_code == 401


MALFORMED_PERIODS = [
    {"from": "2026-13-01", "to": DAY},
    {"from": "2026-1-1", "to": DAY},
    {"from": "20261101", "to": DAY},
    {"from": DAY},
    {"from": DAY, "to": "2026-10-31"},  # ends before it starts
    {"from": "2020-01-01", "to": "2026-01-01"},  # longer than a report reads
    {"from": "../../etc", "to": DAY},
    {"from": DAY + "\x00", "to": DAY},
    {"from": "9" * 5000, "to": DAY},
    {"from": "9999-12-01", "to": "9999-12-31"},  # past the calendar's last day
    {"from": "２０２６-11-01", "to": DAY},
]
HOSTILE_ARGUMENTS = [
    ("terminal", "add", "Till", "--merchant", "gro\x1b[31mcer"),
    ("terminal", "add", "Till", "--merchant", "nobody"),
    ("merchant", "token", "\u202egrocer"),
    ("merchant", "token", "grocer", "--operator"),
    ("settlement", "--from", "2026-11-01\x1b]0;x\x07", "--to", DAY),
    ("settlement", "--from", DAY, "--to", "2027-12-31"),
    ("settlement", "--from", "9999-12-01", "--to", "9999-12-31"),
    ("settlement", "--from", "２０２６-11-01", "--to", DAY),
    ("settlement", "--from", DAY, "--to", DAY, "--out", "/nonexistent/dir/x.csv"),
    ("settlement", "--from", DAY, "--to", DAY, "--out", "/tmp"),  # exists: never overwritten
    ("settlement", "--from", DAY, "--to", DAY, "--out", "x\x1b[31m/y.csv"),
    ("merchant", "revoke", "*"),  # the operator's key is no merchant's name
]


def test_malformed_periods_and_cli_arguments_are_refused_with_reasons_changing_nothing(
    coalition: ServerProcess,
) -> None:
    before = snapshot(coalition)
    operator = token_of(coalition, "--operator")
    for params in MALFORMED_PERIODS:
        answer = settlement(coalition, operator, **params)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.json()["detail"]
    for args in HOSTILE_ARGUMENTS:
        refused = cli(coalition, *args)
        assert refused.returncode in (1, 2), (args, refused.stdout)
        assert refused.stderr.startswith("loyalty-server: ")
        assert "\x1b" not in refused.stderr and "\u202e" not in refused.stderr
        assert "Traceback" not in refused.stderr
    assert snapshot(coalition) == before


def test_reports_are_rate_limited_per_merchant(coalition: ServerProcess) -> None:
    token = token_of(coalition, "grocer")
    codes = [settlement(coalition, token).status_code for _ in range(12)]
    assert codes[:10] == [200] * 10 and codes[10:] == [429, 429]
    assert settlement(coalition, token_of(coalition, "fuel")).status_code == 200  # its own


def test_a_programme_without_a_coalition_has_no_settlement(server: ServerProcess) -> None:
    for who in ("fuel", "--operator"):
        refused = cli(server, "merchant", "token", who)
        assert refused.returncode == 2 and "no coalition" in refused.stderr
    # A token from when the programme was a coalition reads that there is none now.
    engine = make_engine(server.database_url)
    operator = issue_token(engine, OPERATOR_KEY)
    engine.dispose()
    answer = settlement(server, operator)
    assert answer.status_code == 404 and "no coalition" in answer.text
    shown = cli(server, "settlement", "--from", DAY, "--to", DAY)
    assert shown.returncode == 2 and "no coalition" in shown.stderr
