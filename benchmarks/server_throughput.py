"""Draining 10,000 queued sales to the server on loopback, batched versus one request per
sale, in one run; and the server's sustained sales/s on SQLite and on PostgreSQL.

Usage: python benchmarks/server_throughput.py [--sales 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loyalty_server.cli import migrate
from pos_client.demo import DEMO_MEMBERS
from pos_client.domain import Purchase
from pos_client.sync import SyncPolicy
from tests.integration.server_helpers import (
    LIMITS_LIFTED,
    PostgresCluster,
    ServerProcess,
    http_terminal,
    postgres_unavailable_reason,
)


def drain_time(server: ServerProcess, work: Path, name: str, sales: int, batch: int) -> float:
    terminal = http_terminal(server, work / name)
    try:
        session = terminal.checkout.identify(DEMO_MEMBERS[1].card_number)
        for _ in range(sales):
            terminal.checkout.earn(session, Purchase.of_amount(Decimal("1.00")))
        terminal.sync.policy = SyncPolicy(batch_size=batch)
        start = time.perf_counter()
        while terminal.outbox.stats().unsent:
            terminal.sync.drain()
        return time.perf_counter() - start
    finally:
        terminal.close()


def run_on(url: str, work: Path, sales: int, one_by_one: bool) -> tuple[float, float | None]:
    migrate(url)
    # 10,000 sales from one terminal in a few seconds are over its per-minute allowance
    # (3,000) and the daily cap of one member.
    server = ServerProcess(url, work, **LIMITS_LIFTED)
    server.seed()
    server.start()
    try:
        batched = drain_time(server, work, "batched", sales, 100)
        single = drain_time(server, work, "single", sales, 1) if one_by_one else None
    finally:
        server.stop()
    return batched, single


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sales", type=int, default=10_000)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; {args.sales} sales per drain, loopback HTTP")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        batched, single = run_on(
            f"sqlite+pysqlite:///{work}/server.sqlite", work / "sqlite", args.sales, True
        )
        assert single is not None
        print(
            f"SQLite      batched (100/request): {batched:7.1f} s"
            f"  = {args.sales / batched:6.0f} sales/s"
        )
        print(
            f"SQLite      one request per sale:  {single:7.1f} s"
            f"  = {args.sales / single:6.0f} sales/s"
        )
        print(f"            ratio one-by-one / batched: {single / batched:.2f}x")
        reason = postgres_unavailable_reason()
        if reason:
            print(f"PostgreSQL  skipped: {reason}")
            return
        cluster = PostgresCluster()
        cluster.start()
        try:
            pg_batched, _ = run_on(cluster.new_database(), work / "pg", args.sales, False)
        finally:
            cluster.stop()
        print(
            f"PostgreSQL  batched (100/request): {pg_batched:7.1f} s"
            f"  = {args.sales / pg_batched:6.0f} sales/s"
        )


if __name__ == "__main__":
    main()
