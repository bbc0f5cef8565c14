"""Staff awards over HTTP, as tills and attackers send them (issue 11, mechanic 8): a real
till awards with its staff's PINs; the server checks every PIN, the approval above the
programme's size, and what a till may not claim; PIN guessing is slowed per till and never
logged; every award lands in the audit trail `loyalty-server staff awards` prints."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from pos_client.checkout import CheckoutError
from pos_client.domain import uuid7
from tests.integration.server_helpers import REPO, ServerProcess, http_terminal
from tests.security.attack import ANNA, cli, headers, member_id, snapshot

PROGRAM = (
    'id = "s"\nname = "S"\n[earn]\nrate = 1\n[tiers]\n[[tiers.levels]]\nid = "m"\nname = "M"\n'
    "[staff_awards]\nmax_points = 1000\napproval_over = 200\n"
)


@pytest.fixture
def awarding(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    from tests.security.conftest import running_server

    program = tmp_path / "staff.toml"
    program.write_text(PROGRAM)
    yield from running_server(database_url, tmp_path, LOYALTY_SERVER_PROGRAM=str(program))


def add_staff(server: ServerProcess, staff_id: str, pin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        server.command("staff", "add", staff_id, "--name", staff_id.title()),
        cwd=REPO,
        env=server.env,
        input=pin + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )


def post(server: ServerProcess, token: str, **fields: Any) -> requests.Response:
    body = {
        "key": uuid7(),
        "member_id": fields.pop("member_id"),
        "points": 50,
        "reason": "a suggestion",
        "staff_id": "ana",
        "staff_pin": "4826",
        **fields,
    }
    return requests.post(
        server.url + "/v1/staff/awards", json=body, headers=headers(token), timeout=10
    )


def test_a_till_awards_with_its_staffs_pins_and_the_audit_trail_keeps_it(
    awarding: ServerProcess, tmp_path: Path
) -> None:
    server = awarding
    assert add_staff(server, "ana", "4826").returncode == 0
    assert add_staff(server, "ben", "7391").returncode == 0
    weak = add_staff(server, "cat", "1234")
    assert weak.returncode == 2 and "1234" not in weak.stdout
    with http_terminal(server, tmp_path / "till", program=str(tmp_path / "staff.toml")) as till:
        session = till.checkout.identify(ANNA.card_number)
        before = session.view.balance
        small = till.checkout.award(session, 150, "a great suggestion", ("ana", "4826"))
        assert (small["status"], small["balance"]) == ("applied", before + 150)
        with pytest.raises(CheckoutError) as refused:
            till.checkout.award(session, 500, "big", ("ana", "4826"))
        assert refused.value.code == "approval_required"
        with pytest.raises(CheckoutError) as wrong:
            till.checkout.award(session, 500, "big", ("ana", "4826"), ("ben", "0000"))
        assert wrong.value.code == "approver_refused"
        big = till.checkout.award(session, 500, "big", ("ana", "4826"), ("ben", "7391"))
        assert big["approver_id"] == "ben"
    audit = cli(server, "staff", "awards", "--days", "1").stdout.splitlines()
    assert len(audit) == 2
    assert "+150  by ana  at " in audit[0] and "a great suggestion" in audit[0]
    assert "+500  by ana approved by ben" in audit[1]
    log = server.log_path.read_text()
    assert "4826" not in log and "7391" not in log and "0000" not in log


def test_what_a_till_sends_that_the_server_refuses(awarding: ServerProcess) -> None:
    server = awarding
    assert add_staff(server, "ana", "4826").returncode == 0
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    before = snapshot(server)
    cases = {
        "a PIN of letters": ({"staff_pin": "abcd"}, 422),
        "an extra field": ({"approved": True}, 422),
        "points as text": ({"points": "50"}, 422),
        "no points": ({"points": 0}, 422),
        "too many points": ({"points": 5000}, 422),
        "an approver without PIN": ({"approver_id": "ben"}, 400),
        "approving oneself": (
            {"points": 500, "approver_id": "ana", "approver_pin": "4826"},
            422,
        ),
        "a reason of controls": ({"reason": "\u202egoodwill"}, 400),
        "no such member": ({"member_id": "nobody"}, 404),
    }
    for name, (fields, status) in cases.items():
        answer = post(server, token, **{"member_id": anna, **fields})
        assert answer.status_code == status, (name, answer.text)
    assert requests.post(server.url + "/v1/staff/awards", json={}, timeout=10).status_code == 401
    assert snapshot(server) == before
    key = uuid7()
    assert post(server, token, member_id=anna, key=key).status_code == 200
    assert post(server, token, member_id=anna, key=key).json()["status"] == "duplicate"
    assert post(server, token, member_id=anna, key=key, points=60).status_code == 409


def test_pin_guessing_is_slowed_per_till_and_locks_the_staff_member(
    awarding: ServerProcess,
) -> None:
    server = awarding
    assert add_staff(server, "ana", "4826").returncode == 0
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    codes = [
        post(server, token, member_id=anna, staff_pin=f"{9000 + n}").status_code for n in range(22)
    ]
    assert codes[:20] == [422] * 20 and codes[20:] == [429, 429]
    other = server.pair("other")["token"]
    locked = post(server, other, member_id=anna)  # the right PIN, from another till
    assert locked.status_code == 422 and "locked" in locked.json()["detail"]
