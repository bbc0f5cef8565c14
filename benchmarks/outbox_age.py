"""Outbox cost with age: open time and `add` latency with 0 and N acknowledged entries
(default 1,000,000), side by side with ratios (goal: within 1.2x), and `outbox.add` beside a
bare write+fsync loop on the same disk (goal: within 1.25x) and beside a bare SQLite insert per
commit into the same tables (SQLite's own floor: a commit writes a 4 KiB frame for each page
it changes, here the table, three indexes and sqlite_sequence, then fsyncs).

The big outbox is built fast (executemany inside one transaction, real sale bodies), not
through `add`. Opens are timed after a clean close (as a terminal restarts), each open
being `Outbox.open()` alone. Usage:

    python benchmarks/outbox_age.py [--entries N] [--adds N] [--opens N] [--dir D]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from outbox_commit import bench_fsync, percentile, sale_body

from pos_client.domain import utcnow, uuid7
from pos_client.operations import canonical_json
from pos_client.outbox import MIGRATIONS, SCHEMA, Outbox, _ts


def build(path: Path, acked: int) -> float:
    """An outbox holding `acked` acknowledged sales (recent: within any retention). Seconds."""
    start = time.perf_counter()
    Outbox(path).open().close()
    if not acked:
        return time.perf_counter() - start
    moment = _ts(utcnow() - timedelta(hours=1))
    template = sale_body(0)
    result = canonical_json({"member_id": template["member_id"], "balance": 100, "points": 1})
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")  # the build only; Outbox opens it as usual
        conn.execute("BEGIN")
        chunk = 50_000
        for first in range(0, acked, chunk):
            rows = []
            for _ in range(min(chunk, acked - first)):
                key = uuid7()
                body = canonical_json({**template, "key": key})
                rows.append((key, "sale", template["member_id"], body, "acked", 1, moment, result))
            conn.executemany(
                "INSERT INTO entries (key, kind, member_id, body, state, attempts, created_at,"
                " updated_at, next_attempt_at, result) VALUES (?, ?, ?, ?, ?, ?, ?7, ?7, ?7, ?8)",
                rows,
            )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    Outbox(path).open().close()  # records written, closed cleanly
    return time.perf_counter() - start


def time_opens(path: Path, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        outbox = Outbox(path)
        start = time.perf_counter()
        outbox.open()
        samples.append(time.perf_counter() - start)
        outbox.close()
    return samples


def time_adds(path: Path, count: int) -> list[float]:
    bodies = [sale_body(i) for i in range(count)]
    samples = []
    with Outbox(path) as outbox:
        for body in bodies:
            start = time.perf_counter()
            outbox.add(body)
            samples.append(time.perf_counter() - start)
    return samples


@dataclass
class AgeFigures:
    entries: int
    size: int
    built_s: float
    opens: dict[str, list[float]]  # "0" and "N": seconds per open
    adds: dict[str, list[float]]  # "0" and "N": seconds per add
    fsync: list[float]  # the bare write+fsync loop, same disk
    sqlite: list[float]  # a bare SQLite insert per commit, the outbox's schema, same disk
    record_bytes: int


def measure(entries: int, adds: int, opens: int, directory: Path) -> AgeFigures:
    work = Path(tempfile.mkdtemp(prefix="bench-outbox-age-", dir=directory))
    try:
        young, old = work / "young" / "outbox.sqlite", work / "old" / "outbox.sqlite"
        build(young, 0)
        built = build(old, entries)
        size = old.stat().st_size
        record = (canonical_json(sale_body(0)) + "\n").encode()
        bench_fsync(work, 50, record)  # warm the disk path
        open_times = {name: time_opens(path, opens) for name, path in (("0", young), ("N", old))}
        # In rounds, each kind in turn: the disk is shared, so drift hits them alike.
        fsync: list[float] = []
        bare_sqlite: list[float] = []
        add_times: dict[str, list[float]] = {"0": [], "N": []}
        rounds = max(1, min(10, adds // 50))
        for round_ in range(rounds):
            share = adds // rounds + (1 if round_ < adds % rounds else 0)
            fsync += bench_fsync(work, share, record)
            add_times["0"] += time_adds(young, share)
            add_times["N"] += time_adds(old, share)
            bare_sqlite += time_bare_sqlite(work, share)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return AgeFigures(entries, size, built, open_times, add_times, fsync, bare_sqlite, len(record))


def time_bare_sqlite(directory: Path, count: int) -> list[float]:
    """SQLite's own floor: one INSERT per commit into the outbox's tables and indexes (WAL,
    synchronous=FULL), no Python around it: the pages a commit writes, and its fsync."""
    conn = sqlite3.connect(directory / "bare.sqlite", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA journal_size_limit=0")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(entries)")}
        for column, ddl in MIGRATIONS.items():
            if column not in columns:
                conn.execute(ddl)
        samples = []
        for index in range(count):
            body = sale_body(index)
            text = canonical_json(body)
            start = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO entries (key, kind, member_id, body, created_at, updated_at,"
                " next_attempt_at) VALUES (?, 'sale', ?, ?, 'x', 'x', 'x')",
                (body["key"], body["member_id"], text),
            )
            conn.execute("COMMIT")
            samples.append(time.perf_counter() - start)
    finally:
        conn.close()
    return samples


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:9.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000, help="acked entries, aged")
    parser.add_argument("--adds", type=int, default=1000)
    parser.add_argument("--opens", type=int, default=30)
    parser.add_argument("--dir", default=".", help="a folder on the disk to measure")
    args = parser.parse_args()
    figures = measure(args.entries, args.adds, args.opens, Path(args.dir))
    opens, adds, fsync = figures.opens, figures.adds, figures.fsync
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python"
        f" {platform.python_version()}, SQLite {sqlite3.sqlite_version}; in"
        f" {Path(args.dir).resolve()}; N = {args.entries:,} acked entries"
        f" ({figures.size / 2**20:.0f} MiB, built in {figures.built_s:.1f} s); {args.opens}"
        f" opens, {args.adds} adds each"
    )
    print(f"{'':<36} {'p50 ms':>9} {'p99 ms':>9}   ratio")
    for what, samples in (("open", opens), ("add", adds)):
        p50_0, p50_n = percentile(samples["0"], 0.5), percentile(samples["N"], 0.5)
        print(f"{what + ', 0 acked':<36} {ms(p50_0)} {ms(percentile(samples['0'], 0.99))}")
        print(
            f"{what + f', {args.entries:,} acked':<36} {ms(p50_n)}"
            f" {ms(percentile(samples['N'], 0.99))}   {p50_n / p50_0:.2f}x of 0 acked"
            " (goal <= 1.2x)"
        )
    add = percentile(adds["0"], 0.5)
    bare = percentile(fsync, 0.5)
    label = f"bare write+fsync ({figures.record_bytes} B)"
    print(
        f"{label:<36} {ms(bare)} {ms(percentile(fsync, 0.99))}"
        f"   outbox.add {add / bare:.2f}x of it (goal <= 1.25x)"
    )
    floor = percentile(figures.sqlite, 0.5)
    print(
        f"{'bare SQLite insert, same schema':<36} {ms(floor)}"
        f" {ms(percentile(figures.sqlite, 0.99))}   {floor / bare:.2f}x of write+fsync;"
        f" outbox.add {add / floor:.2f}x of it"
    )


if __name__ == "__main__":
    main()
