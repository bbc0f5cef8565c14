"""Several real server processes on one PostgreSQL database, many terminals sending batches
at once (each batch also resent to the other server at the same moment): every per-member
rule holds, every operation is applied exactly once, no batch fails or asks to retry, and
the rate limits and the pairing lockout count across processes."""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from loyalty_server.cli import migrate
from loyalty_server.schema import flags
from pos_client.demo import _ean
from pos_client.domain import Consent, Purchase, uuid7
from pos_client.ledger import Ledger, make_engine
from pos_client.ledger.schema import birthday_grants, members, transactions
from pos_client.operations import ActionOp, EnrollOp, GiveOp, SaleOp
from pos_client.program import load_program
from tests.conftest import CONFIG_DIR
from tests.integration.server_helpers import (
    PostgresCluster,
    ServerProcess,
    postgres_unavailable_reason,
)

PG_REASON = postgres_unavailable_reason()
pytestmark = pytest.mark.skipif(PG_REASON is not None, reason=PG_REASON or "")

# Wellness-like: 10 points per dollar, a once-a-day and a twice-a-day action, a birthday
# bonus, a charity to give points to.
PROGRAM = """
id = "concurrency"
name = "Concurrency"
currency = "USD"
unit_name = "points"

[units]
en = ["point", "points"]

[earn]
mode = "per_amount"
rate = 10
unit = 1

[tiers]
basis = "spend"
period = "calendar_year"

[[tiers.levels]]
id = "member"
name = "Member"
threshold = 0

[[actions]]
id = "weight_check"
name = "Weight check"
points = 20

[[actions]]
id = "blood_pressure"
name = "Blood pressure check"
points = 50
max_per_day = 2

[birthday]
points = 100
window_days = 31

[[charities]]
id = "hospital"
name = "Hospital"
points_per_unit = 1000
unit_name = "USD"
"""

DAY_CAP = 5_000  # LOYALTY_SERVER_MAX_POINTS_PER_MEMBER_PER_DAY for these servers


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.stop()


def program_file(tmp_path: Path) -> Path:
    path = tmp_path / "concurrency.toml"
    path.write_text(PROGRAM)
    return path


def start_servers(url: str, tmp_path: Path, **env: str) -> list[ServerProcess]:
    """Two servers on one database: one with two uvicorn workers, one with one."""
    servers = [ServerProcess(url, tmp_path / "a", **env), ServerProcess(url, tmp_path / "b", **env)]
    servers[0].workers = 2
    for server in servers:
        server.workdir.mkdir(parents=True, exist_ok=True)
        server.start()
    return servers


def enrollment(
    index: int, prefix: str = "29", birthday: date | None = None, invited_by: str = ""
) -> dict[str, Any]:
    """A new member's enrollment (card numbers by `prefix` and `index`)."""
    now = datetime.now(UTC)
    return EnrollOp(
        key=uuid7(),
        member_id=uuid7(),
        first_name=f"M{prefix}{index}",
        last_name="",
        phone_key=hashlib.sha256(f"phone{prefix}{index}".encode()).hexdigest(),
        phone_last="00",
        card_number=_ean(f"{prefix}{index:010d}"),
        consent=Consent("terms", now, "seed"),
        occurred_at=now,
        birthday=birthday,
        invited_by=invited_by,
    ).to_body()


def enroll(ledger: Ledger, index: int, birthday: date | None = None) -> str:
    body = enrollment(index, birthday=birthday)
    ledger.apply(body)
    return str(body["member_id"])


def sale(member: str, amount: str) -> dict[str, Any]:
    return SaleOp(
        uuid7(), member, "T", datetime.now(UTC), Purchase.of_amount(Decimal(amount))
    ).to_body()


def action(member: str, name: str) -> dict[str, Any]:
    return ActionOp(uuid7(), member, name, "T", datetime.now(UTC)).to_body()


def give(member: str, points: int) -> dict[str, Any]:
    return GiveOp(uuid7(), member, "hospital", points, "T", datetime.now(UTC)).to_body()


def post_batch(
    server: ServerProcess, token: str, bodies: list[dict[str, Any]]
) -> requests.Response:
    return requests.post(
        server.url + "/v1/operations/batch",
        json={"operations": bodies},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def test_concurrent_terminals_on_several_servers_keep_every_rule_and_apply_once(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres.new_database()
    migrate(url)
    program = program_file(tmp_path)
    ledger = Ledger(make_engine(url), load_program(str(program), CONFIG_DIR))
    today = datetime.now(UTC).date()
    acting = enroll(ledger, 1)
    birthday = enroll(ledger, 2, birthday=today.replace(year=1992))  # a leap year
    giver = enroll(ledger, 3)
    ledger.apply(sale(giver, "1000.00"))  # 10,000 points to give away
    capped = enroll(ledger, 4)
    crowd = [enroll(ledger, 10 + n) for n in range(30)]
    assert ledger.member(giver) is not None and ledger.member(giver).balance == 10_000  # type: ignore[union-attr]
    servers = start_servers(
        url,
        tmp_path,
        LOYALTY_SERVER_PROGRAM=str(program),
        LOYALTY_SERVER_MAX_POINTS_PER_MEMBER_PER_DAY=str(DAY_CAP),
        LOYALTY_SERVER_FLAG_EARNINGS_PER_DAY="3",  # every batch races to flag the same members
    )
    try:
        tokens = [servers[n % 2].pair(f"t{n}")["token"] for n in range(8)]
        rng = random.Random(15)
        batches: list[tuple[str, list[dict[str, Any]]]] = []
        for token in tokens:
            for _ in range(5):
                bodies = [
                    action(acting, "weight_check"),
                    action(acting, "blood_pressure"),
                    action(acting, "weight_check"),
                    sale(birthday, "1.00"),
                    sale(birthday, "2.00"),
                    give(giver, 1000),
                    give(giver, 1000),
                    sale(capped, "100.00"),  # 1,000 points each; the day's cap is 5,000
                    *(sale(member, "1.00") for member in rng.sample(crowd, 12)),
                ]
                rng.shuffle(bodies)  # members locked in every order a batch may list them
                batches.append((token, bodies))
        failures: list[str] = []
        outcomes: dict[str, list[str]] = {}
        guard = threading.Lock()

        def send(token: str, bodies: list[dict[str, Any]], server: ServerProcess) -> None:
            response = post_batch(server, token, bodies)
            with guard:
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                    return
                for result in response.json()["results"]:
                    outcomes.setdefault(result["key"], []).append(
                        result.get("code") or result["outcome"]
                    )

        # Each batch goes to both servers at once: the second copy must come back duplicate.
        with ThreadPoolExecutor(16) as pool:
            jobs = [
                pool.submit(send, token, bodies, server)
                for token, bodies in batches
                for server in servers
            ]
            for job in jobs:
                job.result()
    finally:
        for server in servers:
            server.stop()

    assert failures == []
    every = [body for _token, bodies in batches for body in bodies]
    assert len(outcomes) == len(every)
    # No operation was asked to retry: deadlocks and serialisation failures stay inside.
    assert not any(code in ("retry", "storage") for seen in outcomes.values() for code in seen)
    for body in every:
        seen = sorted(outcomes[body["key"]])
        if "applied" in seen:
            assert seen == ["applied", "duplicate"], seen  # the copy: the first result
        else:
            assert len(seen) == 2 and "duplicate" not in seen, seen  # refused both times
    applied = [body for body in every if "applied" in outcomes[body["key"]]]
    by_kind = Counter((body["member_id"], body.get("action") or body["type"]) for body in applied)
    assert by_kind[(acting, "weight_check")] == 1  # once a day
    assert by_kind[(acting, "blood_pressure")] == 2  # twice a day
    assert by_kind[(giver, "give")] == 10  # 10 x 1,000 of 10,000: never below zero
    assert by_kind[(capped, "sale")] == DAY_CAP // 1000  # the member's points per day
    assert by_kind[(birthday, "sale")] == 80  # every sale, one bonus
    refused = Counter(
        code
        for body in every
        for code in outcomes[body["key"]]
        if code not in ("applied", "duplicate")
    )
    assert set(refused) <= {
        "action_refused",
        "insufficient_points",
        "give_refused",
        "limit_member_day",
    }

    engine = ledger.engine
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).where(
                    transactions.c.member_id == birthday, transactions.c.kind == "birthday"
                )
            ).scalar_one()
            == 1
        )
        assert (
            conn.execute(
                select(func.count()).where(birthday_grants.c.member_id == birthday)
            ).scalar_one()
            == 1
        )
        assert (
            conn.execute(select(members.c.balance).where(members.c.id == giver)).scalar_one() == 0
        )
        assert conn.execute(select(func.min(members.c.balance))).scalar_one() >= 0
        # Exactly once: one posting per applied key (two for the sale with the bonus).
        postings = Counter(
            row[0]
            for row in conn.execute(
                select(transactions.c.op_key).where(transactions.c.kind != "birthday")
            )
        )
        flagged = {row[0] for row in conn.execute(select(flags.c.member_id))}
    for body in applied:
        assert postings[body["key"]] == 1, body["type"]
    for body in every:
        if body not in applied:
            assert postings[body["key"]] == 0
    assert ledger.balance_mismatches() == []
    assert {birthday, capped} <= flagged  # flagged once each, never a 500 for the race
    for server in servers:
        log = server.log_path.read_text()
        assert "Traceback" not in log, log[-3000:]
    engine.dispose()


def test_rate_limits_and_pairing_lockout_are_shared_by_server_processes(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres.new_database()
    migrate(url)
    ledger = Ledger(make_engine(url), load_program("category_tiers", CONFIG_DIR))
    member = enroll(ledger, 1)
    ledger.engine.dispose()
    servers = start_servers(
        url,
        tmp_path,
        LOYALTY_SERVER_PHONE_LOOKUPS_PER_MINUTE="5",
        LOYALTY_SERVER_OPERATIONS_PER_TERMINAL_PER_MINUTE="120",
        LOYALTY_SERVER_PAIRING_FAILURES_PER_MINUTE="4",
        LOYALTY_SERVER_MAX_BATCH="50",
    )
    try:
        token = servers[0].pair()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        codes = [
            requests.post(
                servers[n % 2].url + "/v1/members/lookup",
                headers=auth,
                json={"kind": "phone", "value": "0a" * 32},
                timeout=10,
            ).status_code
            for n in range(8)
        ]
        assert codes == [404] * 5 + [429] * 3  # five per minute, whichever server asks

        # Six batches of 50 in parallel, three to each server: 120 a minute in all.
        with ThreadPoolExecutor(6) as pool:
            answers = list(
                pool.map(
                    lambda n: post_batch(
                        servers[n % 2], token, [sale(member, "0.01") for _ in range(50)]
                    ),
                    range(6),
                )
            )
        assert {a.status_code for a in answers} == {200}
        results = [r for a in answers for r in a.json()["results"]]
        assert sum(r["outcome"] == "applied" for r in results) == 120
        assert {r["code"] for r in results if r["outcome"] != "applied"} == {"rate_limited"}
        # LOYALTY_SERVER_MAX_BATCH is what bounds a batch, on every server.
        for server in servers:
            over = post_batch(server, token, [sale(member, "0.01") for _ in range(51)])
            assert over.status_code == 422 and "operations" in over.text

        # Wrong pairing codes, alternating between servers: locked out after four in all,
        # on both servers, a right code too.
        statuses = [
            requests.post(
                servers[n % 2].url + "/v1/terminals/pair", json={"code": "WRONGCODE1"}, timeout=10
            ).status_code
            for n in range(4)
        ]
        assert statuses == [403] * 4
        right = servers[0].pairing_code("late")
        for server in servers:
            locked = requests.post(
                server.url + "/v1/terminals/pair", json={"code": right}, timeout=10
            )
            assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    finally:
        for server in servers:
            server.stop()


def test_enrollments_by_invitation_beside_sales_to_the_inviter_never_deadlock(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    """An enrollment locks its inviter (to count the invitations) with the batch's other
    members, in their order: a batch selling to both the inviter and another member never
    waits for it in a cycle (the inviter was locked mid-transaction: 87 deadlocks and a 503
    in an outside review)."""
    url = postgres.new_database()
    migrate(url)
    program = tmp_path / "invited.toml"
    program.write_text(
        PROGRAM.replace(
            'unit_name = "points"',
            'unit_name = "points"\n\n[membership]\n'
            "invitation = true\ninvitations_per_member = 1000",
            1,
        )
    )
    ledger = Ledger(make_engine(url), load_program(str(program), CONFIG_DIR))
    founders = []
    for index in range(2):
        body = enrollment(index, prefix="27")
        assert ledger.apply(body, founder=True)["status"] == "applied"
        founders.append(str(body["member_id"]))
    inviter, other = sorted(founders)  # the inviter first in id order
    deadlocks_before = (postgres.data / "log").read_text(errors="replace").count("deadlock")
    server = ServerProcess(url, tmp_path / "s", LOYALTY_SERVER_PROGRAM=str(program))
    server.workers = 2
    server.workdir.mkdir(parents=True, exist_ok=True)
    server.start()
    statuses: list[int] = []
    enrolled: list[str] = []
    try:
        token = server.pair("till")["token"]

        def newcomer(index: int) -> dict[str, Any]:
            return enrollment(index, prefix="26", invited_by=inviter)

        batches = []
        for index in range(40):
            if index % 2:
                batches.append(
                    [
                        *(sale(other, "1.00") for _ in range(15)),
                        newcomer(index),
                        sale(other, "1.00"),
                    ]
                )
            else:
                batches.append(
                    [
                        *(sale(inviter, "1.00") for _ in range(15)),
                        *(sale(other, "1.00") for _ in range(15)),
                    ]
                )

        def send(bodies: list[dict[str, Any]]) -> None:
            response = post_batch(server, token, bodies)
            statuses.append(response.status_code)
            if response.status_code == 200:
                enrolled.extend(
                    r["key"] for r in response.json()["results"] if r["outcome"] == "applied"
                )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(send, batches))
    finally:
        server.stop()
    assert statuses == [200] * len(batches)
    log = (postgres.data / "log").read_text(errors="replace")
    assert log.count("deadlock") == deadlocks_before
    assert "batch transaction retried" not in server.log_path.read_text()
    every = [body["key"] for bodies in batches for body in bodies]
    assert sorted(enrolled) == sorted(every)  # all applied, the 20 newcomers included
    assert ledger.balance_mismatches() == []
    ledger.engine.dispose()
