"""What the attacks share: requests as a terminal or a partner, and a snapshot of everything
recorded (balances, transactions, applied keys) to prove an attack changed nothing."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import requests
from sqlalchemy import select

from pos_client.demo import DEMO_MEMBERS
from pos_client.domain import Purchase, uuid7
from pos_client.ledger.schema import members, operations, transactions
from pos_client.operations import SaleOp
from tests.conftest import REPO
from tests.integration.server_helpers import ServerProcess

ANNA, BOB = DEMO_MEMBERS[0], DEMO_MEMBERS[1]


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def batch(server: ServerProcess, token: str, *bodies: dict[str, Any]) -> list[dict[str, Any]]:
    response = requests.post(
        server.url + "/v1/operations/batch",
        json={"operations": list(bodies)},
        headers=headers(token),
        timeout=30,
    )
    assert response.status_code == 200, response.text[:500]
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def member_id(server: ServerProcess, card_number: str) -> str:
    found = server.ledger().find_member_id("card_number", card_number)
    assert found is not None
    return found


def sale(member: str, amount: str = "10.00", **fields: Any) -> dict[str, Any]:
    body = SaleOp(
        uuid7(), member, "T", datetime.now(UTC), Purchase.of_amount(Decimal(amount))
    ).to_body()
    body.update(fields)
    return body


def snapshot(server: ServerProcess) -> dict[str, Any]:
    """Everything recorded: balances, every transaction row, every applied key."""
    ledger = server.ledger()
    with ledger.engine.connect() as conn:
        balances = dict(conn.execute(select(members.c.id, members.c.balance)).all())
        rows = conn.execute(
            select(
                transactions.c.id,
                transactions.c.member_id,
                transactions.c.kind,
                transactions.c.points,
                transactions.c.op_key,
            ).order_by(transactions.c.id)
        ).all()
        keys = conn.execute(
            select(operations.c.key, operations.c.terminal_id, operations.c.result).order_by(
                operations.c.key
            )
        ).all()
    ledger.engine.dispose()
    return {
        "balances": balances,
        "transactions": [tuple(r) for r in rows],
        "operations": [tuple(r) for r in keys],
    }


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        server.command(*args),
        cwd=REPO,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
