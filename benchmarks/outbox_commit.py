"""Outbox durable commit latency versus the disk's physical limit, in one run.

Prints p50/p99 latency and throughput for:
  - outbox.add(): one sale per durable SQLite commit (WAL, synchronous=FULL)
  - a bare loop of the same number of same-sized writes, each followed by fsync(),
    to a file in the same directory (the limit: one durable write per sale)
and the ratio between them.  Usage: python benchmarks/outbox_commit.py [--count N] [--dir D]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from pos_client.domain import Purchase, PurchaseLine, utcnow, uuid7
from pos_client.operations import SaleOp, canonical_json
from pos_client.outbox import Outbox


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def sale_body(index: int) -> dict[str, object]:
    from decimal import Decimal

    return SaleOp(
        key=uuid7(),
        member_id="0195f5d2-3c1e-7a4b-9d2e-5f6a7b8c9d0e",
        terminal_id="BENCH",
        occurred_at=utcnow(),
        purchase=Purchase((PurchaseLine(Decimal(index % 500) + Decimal("0.99"), "cosmetics"),)),
        expected_points=index % 500,
    ).to_body()


def bench_outbox(directory: Path, count: int) -> list[float]:
    samples = []
    with Outbox(directory / "bench-outbox.sqlite") as outbox:
        bodies = [sale_body(i) for i in range(count)]
        for body in bodies:
            start = time.perf_counter()
            outbox.add(body)
            samples.append(time.perf_counter() - start)
    return samples


def bench_fsync(directory: Path, count: int, record: bytes) -> list[float]:
    samples = []
    descriptor = os.open(directory / "bench-fsync.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for _ in range(count):
            start = time.perf_counter()
            os.write(descriptor, record)
            os.fsync(descriptor)
            samples.append(time.perf_counter() - start)
    finally:
        os.close(descriptor)
    return samples


def row(name: str, samples: list[float]) -> str:
    p50, p99 = percentile(samples, 0.50), percentile(samples, 0.99)
    rate = len(samples) / sum(samples)
    return f"{name:<34} {p50 * 1e3:>9.3f} {p99 * 1e3:>9.3f} {rate:>12.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--dir", default=".", help="a folder on the disk to measure")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-outbox-", dir=args.dir))
    try:
        record = (canonical_json(sale_body(0)) + "\n").encode()
        bench_fsync(directory, 50, record)  # warm the disk path
        fsync_samples = bench_fsync(directory, args.count, record)
        outbox_samples = bench_outbox(directory, args.count)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()};"
        f" {args.count} commits each, in {Path(args.dir).resolve()}"
    )
    print(f"{'':<34} {'p50 ms':>9} {'p99 ms':>9} {'commits/s':>12}")
    print(row("outbox.add (WAL, synchronous=FULL)", outbox_samples))
    print(row(f"bare write+fsync ({len(record)} B)", fsync_samples))
    p50_ratio = percentile(outbox_samples, 0.5) / percentile(fsync_samples, 0.5)
    p99_ratio = percentile(outbox_samples, 0.99) / percentile(fsync_samples, 0.99)
    mean_ratio = statistics.fmean(outbox_samples) / statistics.fmean(fsync_samples)
    print(
        f"ratio outbox / fsync limit: p50 {p50_ratio:.2f}x, p99 {p99_ratio:.2f}x,"
        f" mean {mean_ratio:.2f}x"
    )


if __name__ == "__main__":
    main()
