"""Inbound partner transfers come from partners, never from a terminal."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from pos_client.domain import uuid7
from tests.integration.server_helpers import ServerProcess
from tests.security.attack import ANNA, BOB, batch, cli, headers, member_id, sale, snapshot


def partner_token(server: ServerProcess, name: str = "sky-miles") -> str:
    added = cli(server, "partner", "add", name)
    assert added.returncode == 0, added.stderr
    token = added.stdout.split("token (shown once, give it to the partner): ")[1].split()[0]
    return token


def transfer(
    server: ServerProcess, token: str, reference: str, units: int, card: str = ANNA.card_number
) -> requests.Response:
    return requests.post(
        server.url + "/v1/partner/transfers",
        json={"reference": reference, "card_number": card, "units": units},
        headers=headers(token),
        timeout=10,
    )


def receive(member: str, units: int, reference: str = "SKY-1") -> dict[str, Any]:
    return {
        "type": "receive",
        "key": uuid7(),
        "member_id": member,
        "partner_id": "sky-miles",
        "units": units,
        "reference": reference,
        "occurred_at": "2026-01-01T00:00:00+00:00",
    }


def test_a_terminal_cannot_mint_points_with_receive(server: ServerProcess) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    before = snapshot(server)
    results = batch(server, token, *[receive(anna, 1_000_000_000) for _ in range(25)])
    assert {(r["outcome"], r["status"], r["code"]) for r in results} == {
        ("rejected", 403, "not_allowed")
    }
    assert all("partner" in r["error"] or "receive" in r["error"] for r in results)
    assert snapshot(server) == before


def test_receive_is_refused_alone_and_the_rest_of_the_batch_applies(
    server: ServerProcess,
) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    before = snapshot(server)
    results = batch(server, token, receive(anna, 5), sale(anna, "10.00"))
    assert [r["outcome"] for r in results] == ["rejected", "applied"]
    after = snapshot(server)
    assert (
        after["balances"][anna] == before["balances"][anna] + results[1]["result"]["points_earned"]
    )
    assert after["transactions"][: len(before["transactions"])] == before["transactions"]


def test_partner_transfer_applies_once_per_reference(server: ServerProcess) -> None:
    token = partner_token(server)
    anna = member_id(server, ANNA.card_number)
    before = snapshot(server)
    first = transfer(server, token, "SKY-991", 25)
    assert first.status_code == 200, first.text
    credited = first.json()["points"]
    assert first.json()["status"] == "applied" and credited > 0
    assert "balance" not in first.json()  # a partner learns nothing about the member
    replays = [transfer(server, token, "SKY-991", 25) for _ in range(24)]
    assert {r.status_code for r in replays} == {200}
    assert {r.json()["status"] for r in replays} == {"duplicate"}
    assert {r.json()["points"] for r in replays} == {credited}
    after = snapshot(server)
    assert after["balances"][anna] == before["balances"][anna] + credited
    assert len(after["transactions"]) == len(before["transactions"]) + 1
    changed = transfer(server, token, "SKY-991", 26)
    assert changed.status_code == 409
    assert snapshot(server) == after


def test_concurrent_replays_of_one_reference_credit_once(server: ServerProcess) -> None:
    token = partner_token(server)
    bob = member_id(server, BOB.card_number)
    before = snapshot(server)
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: transfer(server, token, "SKY-RACE", 10, BOB.card_number), range(16))
        )
    assert {a.status_code for a in answers} == {200}
    assert [a.json()["status"] for a in answers].count("applied") == 1
    after = snapshot(server)
    assert after["balances"][bob] == before["balances"][bob] + answers[0].json()["points"]


def test_partner_daily_cap_from_config(server: ServerProcess) -> None:
    token = partner_token(server)
    # sky-miles: 50,000 points a day (tests/security/conftest.py); its rate is per unit.
    first = transfer(server, token, "SKY-A", 1)
    per_unit = first.json()["points"]
    units = 50_000 // per_unit
    before = snapshot(server)
    over = transfer(server, token, "SKY-B", units)
    assert over.status_code == 429 and "daily cap" in over.json()["detail"]
    assert snapshot(server) == before
    fits = transfer(server, token, "SKY-C", units - 1)
    assert fits.status_code == 200


def test_partner_credentials_are_the_partners_own(server: ServerProcess) -> None:
    terminal_token = server.pair()["token"]
    before = snapshot(server)
    assert transfer(server, terminal_token, "SKY-X", 5).status_code == 401
    assert transfer(server, "lp_guess", "SKY-X", 5).status_code == 401
    token = partner_token(server)
    # A partner token is no terminal token either.
    health = requests.get(server.url + "/v1/health", headers=headers(token), timeout=10)
    assert health.status_code == 401
    revoked = cli(server, "partner", "revoke", "sky-miles")
    assert revoked.returncode == 0, revoked.stderr
    assert transfer(server, token, "SKY-X", 5).status_code == 401
    assert snapshot(server) == before
    # Only partners of the programme that transfer in can be given a token.
    assert cli(server, "partner", "add", "skin-cancer-fund").returncode == 1
    assert cli(server, "partner", "add", "nobody").returncode == 1


def test_partner_tokens_are_stored_hashed(server: ServerProcess) -> None:
    from sqlalchemy import select

    from loyalty_server.schema import partners

    token = partner_token(server)
    with server.ledger().engine.connect() as conn:
        stored = conn.execute(select(partners.c.token_hash)).scalar_one()
    assert token not in stored and len(stored) == 64


def test_partner_units_must_be_a_json_integer(server: ServerProcess) -> None:
    token = partner_token(server)
    before = snapshot(server)
    for units in ("25", 25.0, " 25 ", "2_5", True):
        response = requests.post(
            server.url + "/v1/partner/transfers",
            json={"reference": f"LOOSE-{units!r}", "card_number": ANNA.card_number, "units": units},
            headers=headers(token),
            timeout=10,
        )
        assert response.status_code == 422, (units, response.status_code)
    assert snapshot(server) == before


def test_frequent_partner_transfers_flag_the_member_for_review(server: ServerProcess) -> None:
    from sqlalchemy import select

    from loyalty_server.schema import flags

    token = partner_token(server)
    bob = member_id(server, BOB.card_number)
    for n in range(25):  # LOYALTY_SERVER_FLAG_EARNINGS_PER_DAY: 20 by default
        answer = transfer(server, token, f"SKY-F{n}", 10, card=BOB.card_number)
        assert answer.status_code == 200, answer.text
    ledger = server.ledger()
    with ledger.engine.connect() as conn:
        rows = conn.execute(select(flags.c.member_id, flags.c.earnings)).all()
    ledger.engine.dispose()
    assert [r.member_id for r in rows] == [bob]
    assert rows[0].earnings >= 21
