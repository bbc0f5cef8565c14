"""Member PINs over HTTP against a live server: a PIN is set and checked, never echoed or
logged; hostile bodies are refused and change nothing; the fifth wrong PIN in a row locks
it across terminals; the terminal's HTTP backend reads the answers strictly."""

from __future__ import annotations

import pytest
import requests

from pos_client.backends.http import HttpBackend
from tests.integration.server_helpers import ServerProcess
from tests.security.attack import ANNA, headers, member_id


def post(server: ServerProcess, token: str, path: str, body: object) -> requests.Response:
    return requests.post(server.url + path, json=body, headers=headers(token), timeout=30)


def test_a_pin_is_set_checked_and_locked_across_terminals(server: ServerProcess) -> None:
    lanes = [server.pair("lane-1")["token"], server.pair("lane-2")["token"]]
    anna = member_id(server, ANNA.card_number)
    path = f"/v1/members/{anna}/pin"
    assert post(server, lanes[0], path, {"pin": "4071"}).status_code == 204
    right = post(server, lanes[0], path + "/check", {"pin": "4071"}).json()
    assert right["ok"] is True
    answers = [
        post(server, lanes[i % 2], path + "/check", {"pin": "1397"}).json() for i in range(5)
    ]
    assert [a["remaining"] for a in answers[:4]] == [4, 3, 2, 1]
    assert answers[4]["locked_until"] is not None
    locked = post(server, lanes[1], path + "/check", {"pin": "4071"}).json()
    assert locked["ok"] is False and locked["locked_until"] is not None
    log = server.log_path.read_text()
    assert "4071" not in log and "1397" not in log and anna not in log


@pytest.mark.parametrize(
    "body",
    [
        {"pin": "12ab"},
        {"pin": 4071},
        {"pin": "4071", "extra": 1},
        {"pin": "9" * 17},
        {"pin": ""},
        {},
        {"pin": "1234"},  # checked by the rules for a new PIN: tried first
        {"pin": "40712"},  # fine as a PIN, so this one is set
    ],
)
def test_a_pin_that_cannot_be_one_is_refused_and_changes_nothing(
    server: ServerProcess, body: object
) -> None:
    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    answer = post(server, token, f"/v1/members/{anna}/pin", body)
    if body == {"pin": "40712"}:
        assert answer.status_code == 204
        return
    assert answer.status_code == 422, answer.text
    check = post(server, token, f"/v1/members/{anna}/pin/check", {"pin": "4071"}).json()
    assert check["no_pin"] is True


def test_pins_of_no_member_or_a_hostile_id_are_refused(server: ServerProcess) -> None:
    token = server.pair()["token"]
    assert post(server, token, "/v1/members/nobody/pin", {"pin": "4071"}).status_code == 404
    assert post(server, token, "/v1/members/..%2Fx/pin/check", {"pin": "4071"}).status_code in (
        404,
        422,
    )


def test_the_terminals_http_backend_checks_pins(server: ServerProcess) -> None:
    backend = HttpBackend(server.url, server.pair()["token"])
    try:
        anna = member_id(server, ANNA.card_number)
        assert backend.check_pin(anna, "4071").no_pin
        backend.set_pin(anna, "4071")
        assert backend.check_pin(anna, "4071").ok
        wrong = backend.check_pin(anna, "1397")
        assert not wrong.ok and wrong.remaining == 4
        with pytest.raises(ValueError, match="tried first"):
            backend.set_pin(anna, "1111")
    finally:
        backend.close()


def test_a_set_pin_is_never_replaced_silently_and_a_lock_is_a_security_event(
    server: ServerProcess,
) -> None:
    import subprocess

    from sqlalchemy import select

    from loyalty_server.schema import security_events
    from tests.conftest import REPO

    token = server.pair()["token"]
    anna = member_id(server, ANNA.card_number)
    path = f"/v1/members/{anna}/pin"
    assert post(server, token, path, {"pin": "4071"}).status_code == 204
    silent = post(server, token, path, {"pin": "5182"})
    assert silent.status_code == 409 and "give it" in silent.json()["detail"]
    wrong = post(server, token, path, {"pin": "5182", "current_pin": "1397"})
    assert wrong.status_code == 403
    check = post(server, token, path + "/check", {"pin": "1397"}).json()
    assert check["remaining"] == 3  # the wrong current PIN counted as a failure
    for _ in range(3):  # guessing through the change endpoint locks it all the same
        post(server, token, path, {"pin": "5182", "current_pin": "1397"})
    locked = post(server, token, path, {"pin": "5182", "current_pin": "4071"})
    assert locked.status_code == 403  # locked: not even the right one changes it
    ledger = server.ledger()
    with ledger.engine.connect() as conn:
        kinds = conn.execute(select(security_events.c.kind)).scalars().all()
    ledger.engine.dispose()
    assert kinds == ["pin_locked"]
    reset = subprocess.run(
        server.command("member", "pin-reset", ANNA.card_number),
        cwd=REPO,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert reset.returncode == 0, reset.stderr
    assert post(server, token, path, {"pin": "5182"}).status_code == 204
    assert post(server, token, path + "/check", {"pin": "5182"}).json()["ok"] is True
    log = server.log_path.read_text()
    assert "member PIN set at terminal" in log and "4071" not in log and "5182" not in log
    assert "wrong current member PIN at terminal" in log
