"""Enumeration (issue 10, item 5): pairing guesses are throttled per client address with a
lockout and logged without the code; card lookups and member reads are limited per
terminal like phone lookups; lookups answer with masked card numbers only, and a terminal
on the HTTP backend works with them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select

from loyalty_server.schema import pairing_codes, terminals
from pos_client.domain import Purchase
from pos_client.identify import gs1_check_digit
from tests.integration.server_helpers import ServerProcess, http_terminal
from tests.security.attack import ANNA, BOB, headers, member_id, snapshot


def pairing_state(server: ServerProcess) -> list[Any]:
    ledger = server.ledger()
    with ledger.engine.connect() as conn:
        rows = [
            tuple(r)
            for r in conn.execute(
                select(pairing_codes.c.code_hash, pairing_codes.c.used_at).order_by(
                    pairing_codes.c.code_hash
                )
            )
        ]
        rows += [
            tuple(r)
            for r in conn.execute(
                select(terminals.c.id, terminals.c.token_hash).order_by(terminals.c.id)
            )
        ]
    ledger.engine.dispose()
    return rows


def pair(server: ServerProcess, code: str) -> requests.Response:
    return requests.post(server.url + "/v1/terminals/pair", json={"code": code}, timeout=10)


def test_pairing_guesses_are_locked_out_and_logged_without_the_code(
    server: ServerProcess,
) -> None:
    real = server.pairing_code("victim")
    before, recorded = pairing_state(server), snapshot(server)
    guesses = [f"GUESS{n:05d}X" for n in range(12)]
    statuses = [pair(server, code).status_code for code in guesses]
    assert statuses == [403] * 10 + [429] * 2  # 10 failures a minute, then locked out
    locked = pair(server, real)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 200
    assert "token" not in locked.text
    # Refused before parsing: garbage from a locked-out address is a 429 too, not a 422.
    garbage = requests.post(
        server.url + "/v1/terminals/pair",
        data=b"not json",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert garbage.status_code == 429
    assert pairing_state(server) == before and snapshot(server) == recorded
    log = server.log_path.read_text()
    assert "locked out for 300 s" in log and "127.0.0.1" in log
    assert not any(code in log for code in [*guesses, real])
    assert "Traceback" not in log


def test_a_forged_forwarded_for_header_does_not_dodge_the_pairing_lockout(
    server: ServerProcess,
) -> None:
    """Proxy headers are believed only from LOYALTY_SERVER_TRUSTED_PROXIES (none here)."""
    statuses = [
        requests.post(
            server.url + "/v1/terminals/pair",
            json={"code": f"WRONG{n:05d}"},
            headers={"X-Forwarded-For": f"10.0.{n}.1"},
            timeout=10,
        ).status_code
        for n in range(12)
    ]
    assert statuses == [403] * 10 + [429] * 2


def test_card_lookups_and_member_reads_are_rate_limited_per_terminal(
    server: ServerProcess,
) -> None:
    token = server.pair("a")["token"]
    other = server.pair("b")["token"]
    anna = member_id(server, ANNA.card_number)
    statuses = []
    for n in range(20):
        guess = f"2900000{n:05d}"  # well-formed card numbers, as an enumerator would try
        statuses.append(
            requests.post(
                server.url + "/v1/members/lookup",
                json={"kind": "card_number", "value": guess + str(gs1_check_digit(guess))},
                headers=headers(token),
                timeout=10,
            ).status_code
        )
    for _ in range(12):
        statuses.append(
            requests.get(
                server.url + f"/v1/members/{anna}", headers=headers(token), timeout=10
            ).status_code
        )
    # 30 a minute (LOYALTY_SERVER_LOOKUPS_PER_MINUTE): 20 card guesses, 10 reads, then 429.
    assert statuses[-2:] == [429, 429] and 429 not in statuses[:30]
    refused = requests.get(server.url + f"/v1/members/{anna}", headers=headers(token), timeout=10)
    assert refused.status_code == 429 and "Karenina" not in refused.text
    # Another terminal has its own allowance.
    assert (
        requests.get(server.url + f"/v1/members/{anna}", headers=headers(other), timeout=10)
    ).status_code == 200


def test_lookups_answer_masked_card_numbers(server: ServerProcess) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    for response in (
        requests.post(
            server.url + "/v1/members/lookup",
            json={"kind": "card_number", "value": ANNA.card_number},
            headers=headers(token),
            timeout=10,
        ),
        requests.get(server.url + f"/v1/members/{anna}", headers=headers(token), timeout=10),
    ):
        assert response.status_code == 200
        assert response.json()["card_number"] == "**** " + ANNA.card_number[-4:]
        assert ANNA.card_number not in response.text


def test_a_terminal_works_with_masked_answers(server: ServerProcess, tmp_path: Path) -> None:
    with http_terminal(server, tmp_path / "t1") as terminal:
        session = terminal.checkout.identify("]E0" + BOB.card_number)
        assert session.online and session.view.card_number == "**** " + BOB.card_number[-4:]
        sale = terminal.checkout.earn(session, Purchase.of_amount(Decimal("10.00")))
        report = terminal.sync.drain()
        assert (report.acked, report.dead, report.online) == (1, 0, True)
        again = terminal.checkout.identify(BOB.card_number)
        assert again.view.balance == session.view.balance + sale.expected_points
