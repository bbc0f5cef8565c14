"""The server records the terminal from its token, never from the body, and a key belongs
to the terminal that first used it."""

from __future__ import annotations

from sqlalchemy import select

from pos_client.ledger.schema import operations
from tests.integration.server_helpers import ServerProcess
from tests.security.attack import ANNA, batch, member_id, sale, snapshot


def recorded_terminal(server: ServerProcess, key: str) -> str:
    with server.ledger().engine.connect() as conn:
        return str(
            conn.execute(
                select(operations.c.terminal_id).where(operations.c.key == key)
            ).scalar_one()
        )


def test_a_body_cannot_claim_another_terminal(server: ServerProcess) -> None:
    a = server.pair("A")
    d = server.pair("D")
    anna = member_id(server, ANNA.card_number)
    forged = [sale(anna, terminal_id=a["terminal_id"]), sale(anna, terminal_id="HQ-ADMIN")]
    results = batch(server, d["token"], *forged)
    assert [r["outcome"] for r in results] == ["applied", "applied"]
    assert [recorded_terminal(server, body["key"]) for body in forged] == [d["terminal_id"]] * 2


def test_a_key_replayed_by_another_terminal_is_refused_without_its_result(
    server: ServerProcess,
) -> None:
    a = server.pair("A")
    b = server.pair("B")
    anna = member_id(server, ANNA.card_number)
    body = sale(anna, "25.00")
    first = batch(server, a["token"], body)[0]
    assert first["outcome"] == "applied"
    before = snapshot(server)
    stolen = batch(server, b["token"], body)[0]
    assert (stolen["outcome"], stolen["status"], stolen["code"]) == ("conflict", 409, "key_taken")
    assert stolen["result"] is None
    assert str(first["result"]["balance"]) not in stolen["error"]
    # The same key with another body says the same: nothing tells B what A's body was.
    other = batch(server, b["token"], {**body, "lines": [{"amount": "1.00"}]})[0]
    assert (other["outcome"], other["code"], other["error"]) == (
        "conflict",
        "key_taken",
        stolen["error"],
    )
    assert snapshot(server) == before
    # The terminal that owns the key still gets its first result back.
    again = batch(server, a["token"], body)[0]
    assert (
        again["outcome"] == "duplicate" and again["result"]["balance"] == first["result"]["balance"]
    )
