"""Apply cost per sale against the length of the member's history, in one run.

For a member with 10, 1,000 and 10,000 prior transactions in the tier period, times the
ledger applying further sales for that member: one sale per transaction (Ledger.apply) and
batches (Ledger.apply_many), on SQLite and, when it can start a throwaway cluster, on
PostgreSQL. Prints ms/sale per history length and the ratio of the slowest to the fastest
(goal: within 1.2x, a sale's cost independent of the member's history).

Usage: python benchmarks/apply_cost.py [--sales N] [--histories 10,1000,10000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

# Appended, not prepended: PYTHONPATH=/path/to/other/checkout measures that code instead.
sys.path.append(str(Path(__file__).resolve().parent.parent))

from sqlalchemy import inspect

import pos_client
from pos_client.domain import Consent, Purchase, PurchaseLine, utcnow, uuid7
from pos_client.ledger import Ledger, make_engine, sqlite_url
from pos_client.ledger.schema import members, transactions
from pos_client.operations import EnrollOp, SaleOp
from pos_client.program import load_program

CONFIG_DIR = Path(pos_client.__file__).resolve().parent.parent / "config"
MEMBER = "0195f5d2-3c1e-7a4b-9d2e-5f6a7b8c9d0e"


def sale(at: datetime, index: int) -> dict[str, Any]:
    return SaleOp(
        key=uuid7(),
        member_id=MEMBER,
        terminal_id="BENCH",
        occurred_at=at,
        purchase=Purchase((PurchaseLine(Decimal(index % 90 + 10) + Decimal("0.99"), "food"),)),
    ).to_body()


def seeded_ledger(url: str, program: str, history: int) -> Ledger:
    """A ledger whose one member has `history` earning transactions this tier period,
    spread over the year so far (inserted bare: the seeding is not what is measured)."""
    ledger = Ledger(make_engine(url), load_program(program, CONFIG_DIR))
    ledger.create_schema()
    now = utcnow()
    enroll = EnrollOp(
        key=uuid7(),
        member_id=MEMBER,
        first_name="Bench",
        last_name="Mark",
        phone_key="bench-phone",
        phone_last="00",
        card_number="bench-card",
        consent=Consent("terms", now - timedelta(days=400), "bench"),
        occurred_at=now - timedelta(days=400),
    )
    ledger.apply(enroll.to_body())
    days = max((now - datetime(now.year, 1, 1, tzinfo=UTC)).days, 1)
    rows = [
        {
            "member_id": MEMBER,
            "op_key": uuid7(),
            "kind": "earn",
            "points": 10,
            "amount_minor": 1000,
            "reward_id": None,
            "occurred_at": now - timedelta(days=index % days, minutes=index % 600),
            "recorded_at": now,
        }
        for index in range(history)
    ]
    with ledger.writer.begin() as conn:
        for first in range(0, len(rows), 2000):
            conn.execute(transactions.insert(), rows[first : first + 2000])
        conn.execute(members.update().where(members.c.id == MEMBER).values(balance=10 * history))
        if inspect(conn).has_table("member_totals"):  # after: rebuild the member's totals
            from pos_client.ledger import totals

            totals.backfill(conn, ledger.zone)
    return ledger


def measure(urls: dict[int, str], program: str, count: int) -> dict[int, tuple[float, float]]:
    """Per history length: (ms per sale one at a time, ms per sale in batches of 100),
    medians of rounds. The histories take turns round by round, so a busy machine slows
    them alike and the ratio stays honest."""
    ledgers = {history: seeded_ledger(url, program, history) for history, url in urls.items()}
    single: dict[int, list[float]] = {history: [] for history in ledgers}
    batched: dict[int, list[float]] = {history: [] for history in ledgers}
    try:
        now = utcnow()
        for ledger in ledgers.values():  # warm the connection pools and statement caches
            for index in range(20):
                ledger.apply(sale(now, index))
        rounds = max(count // 20, 3)
        for _round in range(rounds):
            for history, ledger in ledgers.items():
                for index in range(20):
                    body = sale(now, index)
                    start = time.perf_counter()
                    ledger.apply(body)
                    single[history].append(time.perf_counter() - start)
                bodies = [sale(now, index) for index in range(100)]
                start = time.perf_counter()
                ledger.apply_many(bodies)
                batched[history].append((time.perf_counter() - start) / len(bodies))
        return {
            history: (
                statistics.median(single[history]) * 1000,
                statistics.median(batched[history]) * 1000,
            )
            for history in ledgers
        }
    finally:
        for ledger in ledgers.values():
            ledger.engine.dispose()


def report(label: str, figures: dict[int, tuple[float, float]]) -> None:
    print(f"\n{label}")
    head = ("prior transactions", "ms/sale (1 per commit)", "ms/sale (batch 100)")
    print(f"  {head[0]:>20}  {head[1]:>24}  {head[2]:>20}")
    for history, (single, batched) in figures.items():
        print(f"  {history:>20,}  {single:>24.3f}  {batched:>20.3f}")
    for column, name in ((0, "1 per commit"), (1, "batch 100")):
        values = [each[column] for each in figures.values()]
        ratio = max(values) / min(values)
        verdict = "ok" if ratio <= 1.2 else "over the 1.2x goal"
        print(f"  ratio slowest/fastest ({name}): {ratio:.2f}x  ({verdict})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=300, help="sales measured per history")
    parser.add_argument("--histories", default="10,1000,10000")
    parser.add_argument("--programs", default="category_tiers,stars")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    histories = [int(each) for each in args.histories.split(",")]
    programs = args.programs.split(",")
    with tempfile.TemporaryDirectory() as scratch:
        for program in programs:
            urls = {
                history: sqlite_url(Path(scratch) / f"{program}-{history}.sqlite")
                for history in histories
            }
            figures = measure(urls, program, args.sales)
            report(f"SQLite (WAL, synchronous=FULL), programme {program}", figures)
    if args.no_postgres:
        return 0
    from tests.integration.server_helpers import PostgresCluster, postgres_unavailable_reason

    reason = postgres_unavailable_reason()
    if reason is not None:
        print(f"\nPostgreSQL: skipped ({reason})")
        return 0
    cluster = PostgresCluster()
    cluster.start()
    try:
        for program in programs:
            figures = measure(
                {history: cluster.new_database() for history in histories}, program, args.sales
            )
            report(f"PostgreSQL (loopback), programme {program}", figures)
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
