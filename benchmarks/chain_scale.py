"""A chain's store server under load (issue 15): 10,000 sales over 2,000 members from 8
concurrent terminals, each a process draining its own outbox in batches over HTTP, to the
server on PostgreSQL with 2 uvicorn workers. Prints sustained sales/s, the deadlocks seen
(PostgreSQL's log and the server's), the batch retries the terminals saw, and the same rows
inserted bare with psycopg `executemany` as a ratio (goal >= 0.3; target 2,000 sales/s):
the very rows the server wrote, read back and written again into a new database; beside
them a stricter bare insert of fewer rows (a transaction, a key, a balance update a sale).

  --profile        also profile the server's apply path in-process (cProfile, top functions)
  --profile-only   only that (no server, no terminals)
  --rounds N       N measurements in one run (default 3: this VM's speed drifts from
                   minute to minute), each beside its own bare inserts, then the medians

Usage: python benchmarks/chain_scale.py [--sales 10000] [--members 2000] [--terminals 8]
       [--workers 2] [--batch 100] [--rounds 3] [--profile | --profile-only]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import multiprocessing
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event

from loyalty_server.cli import migrate
from pos_client.demo import _ean
from pos_client.domain import Consent, Purchase, uuid7
from pos_client.ledger import Ledger, make_engine, totals
from pos_client.operations import EnrollOp, SaleOp
from pos_client.program import load_program
from tests.conftest import CONFIG_DIR
from tests.integration.server_helpers import (
    LIMITS_LIFTED,
    PostgresCluster,
    ServerProcess,
    http_terminal,
    postgres_unavailable_reason,
)


@dataclass(frozen=True)
class TerminalRun:
    name: str
    seconds: float
    acked: int
    retried: int
    dead: int
    cpu_s: float  # this terminal process's CPU time while draining


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of a process and its live descendants, from /proc."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])
    family = {root}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in family and pid not in family:
                family.add(pid)
                grew = True
    return sum(ticks.get(pid, 0) for pid in family) / os.sysconf("SC_CLK_TCK")


def enroll_members(url: str, count: int) -> list[str]:
    ledger = Ledger(make_engine(url), load_program("category_tiers", CONFIG_DIR))
    now = datetime.now(UTC)
    ids = [uuid7() for _ in range(count)]
    bodies = [
        EnrollOp(
            key=uuid7(),
            member_id=member_id,
            first_name=f"Member{index}",
            last_name="",
            phone_key=hashlib.sha256(f"bench-phone-{index}".encode()).hexdigest(),
            phone_last="00",
            card_number=_ean(f"28{index:010d}"),
            consent=Consent("terms", now, "bench"),
            occurred_at=now,
        ).to_body()
        for index, member_id in enumerate(ids)
    ]
    for start in range(0, len(bodies), 500):
        ledger.apply_many(bodies[start : start + 500])
    if ledger.engine.dialect.name == "postgresql":
        # A live store's tables have planner statistics (autovacuum analyses them); a
        # database filled a moment ago has none, and PostgreSQL would guess.
        with ledger.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    ledger.engine.dispose()
    return ids


def sale_bodies(member_ids: list[str], count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        SaleOp(
            uuid7(),
            rng.choice(member_ids),
            "T",
            datetime.now(UTC),
            Purchase.of_amount(Decimal(rng.randint(100, 20_000)) / 100),
        ).to_body()
        for _ in range(count)
    ]


def terminal_main(
    server: ServerProcess,
    work: Path,
    name: str,
    bodies: list[dict[str, Any]],
    batch: int,
    ready: Any,
    go: Any,
    answers: Any,
) -> None:
    terminal = http_terminal(server, work / name, read_timeout_s=120)
    try:
        for body in bodies:
            terminal.outbox.add(body)
        terminal.sync.policy = replace(
            terminal.sync.policy, batch_size=batch, backoff_base_s=0.05, backoff_cap_s=1.0
        )
        ready.release()
        go.wait()
        start = time.perf_counter()
        cpu_start = time.process_time()
        acked = retried = dead = 0
        while terminal.outbox.stats().unsent:
            report = terminal.sync.drain()
            acked += report.acked
            retried += report.retried
            dead += report.dead
            if report.retried and not report.acked:
                time.sleep(0.05)
                terminal.outbox.make_due()
        answers.put(
            TerminalRun(
                name,
                time.perf_counter() - start,
                acked,
                retried,
                dead,
                time.process_time() - cpu_start,
            )
        )
    finally:
        terminal.close()


class WaitSampler:
    """Samples what the database's sessions are doing, every 50 ms, while the terminals
    drain: running, waiting for a lock, for the disk, or idle in a transaction (waiting for
    the server's Python while holding its locks)."""

    def __init__(self, url: str) -> None:
        import threading

        self.dsn = url.replace("postgresql+psycopg://", "postgresql://")
        self.counts: dict[str, int] = {}
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.wait(0.05):
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity"
                    " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                    " AND state <> 'idle'"
                ).fetchall()
                self.samples += 1
                for state, kind, name in rows:
                    what = (
                        "idle in transaction"
                        if state.startswith("idle in transaction")
                        else f"{kind}:{name}"
                        if kind
                        else "running"
                    )
                    self.counts[what] = self.counts.get(what, 0) + 1

    def summary(self) -> str:
        per = {what: n / max(self.samples, 1) for what, n in self.counts.items()}
        top = sorted(per.items(), key=lambda item: -item[1])[:6]
        return ", ".join(f"{what} {sessions:.2f}" for what, sessions in top)


def drive(
    server: ServerProcess,
    work: Path,
    members: list[str],
    sales: int,
    terminals: int,
    batch: int,
    watch: dict[str, int],
) -> tuple[float, list[TerminalRun], dict[str, float]]:
    """Runs the terminals; also returns the CPU seconds each watched process tree spent."""
    context = multiprocessing.get_context("fork")
    ready = context.Semaphore(0)
    go = context.Event()
    answers = context.Queue()
    share = sales // terminals
    children = [
        context.Process(
            target=terminal_main,
            args=(
                server,
                work,
                f"t{n}",
                sale_bodies(members, share + (sales % terminals if n == 0 else 0), n),
                batch,
                ready,
                go,
                answers,
            ),
        )
        for n in range(terminals)
    ]
    for child in children:
        child.start()
    for _ in children:
        ready.acquire()
    cpu_before = {name: tree_cpu_seconds(pid) for name, pid in watch.items()}
    sampler = WaitSampler(server.database_url)
    sampler.thread.start()
    start = time.perf_counter()
    go.set()
    runs = [answers.get(timeout=3600) for _ in children]
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.thread.join()
    print(
        "  database sessions busy, on average (sampled every 50 ms; 'idle in transaction':"
        " holding a transaction while the server's Python runs, 'Lock:...': waiting for"
        f" another transaction's row, 'IO:...': the disk): {sampler.summary()}"
    )
    cpu = {name: tree_cpu_seconds(pid) - cpu_before[name] for name, pid in watch.items()}
    for child in children:
        child.join()
    return wall, runs, cpu


def bare_executemany(url: str, members: list[str], sales: int, batch: int) -> float:
    """The rows a sale writes (an operations row, a transactions row, the member's balance),
    inserted bare: psycopg executemany, one transaction per batch, one connection."""
    import psycopg

    bodies = sale_bodies(members, sales, 99)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        start = time.perf_counter()
        for first in range(0, len(bodies), batch):
            chunk = bodies[first : first + batch]
            now = datetime.now(UTC)
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO operations (key, kind, body_hash, result, terminal_id,"
                    " applied_at) VALUES (%s, 'sale', %s, '{}', 'bare', %s)",
                    [(b["key"], "0" * 64, now) for b in chunk],
                )
                cur.executemany(
                    "INSERT INTO transactions (member_id, op_key, kind, points, amount_minor,"
                    " occurred_at, recorded_at) VALUES (%s, %s, 'earn', 10, 1000, %s, %s)",
                    [(b["member_id"], b["key"], now, now) for b in chunk],
                )
                cur.executemany(
                    "UPDATE members SET balance = balance + 10 WHERE id = %s",
                    [(b["member_id"],) for b in sorted(chunk, key=lambda b: b["member_id"])],
                )
        return time.perf_counter() - start


def server_rows(url: str) -> tuple[list[tuple[Any, ...]], dict[str, list[tuple[Any, ...]]]]:
    """The rows the server wrote for the round's sales: their operations rows in the order
    applied, and their transactions rows by operation key."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        claims = conn.execute(
            "SELECT key, kind, body_hash, result, terminal_id, applied_at FROM operations"
            " WHERE kind = 'sale' ORDER BY applied_at, key"
        ).fetchall()
        postings: dict[str, list[tuple[Any, ...]]] = {}
        for row in conn.execute(
            "SELECT member_id, op_key, kind, points, amount_minor, reward_id, occurred_at,"
            " recorded_at, units_milli, segments, merchant FROM transactions ORDER BY id"
        ):
            postings.setdefault(row[1], []).append(row)
    return claims, postings


def bare_same_rows(
    url: str,
    written: tuple[list[tuple[Any, ...]], dict[str, list[tuple[Any, ...]]]],
    member_map: dict[str, str],
    batch: int,
) -> float:
    """The very rows the server wrote for the sales (operations, transactions, the four
    member_totals rows each posting adds to, the balance), inserted bare: psycopg
    executemany, one transaction per batch of sales, one connection."""
    import psycopg

    claims, postings = written
    zone = ZoneInfo("UTC")  # the server's (LOYALTY_SERVER_TIMEZONE unset)
    batches = []
    for first in range(0, len(claims), batch):
        chunk = claims[first : first + batch]
        rows = [(member_map[p[0]], *p[1:]) for claim in chunk for p in postings.get(claim[0], ())]
        sums: list[dict[str, Any]] = []
        moves: list[tuple[int, str]] = []
        for member_id, _key, kind, points, amount, _r, occurred, recorded, units, segs, _m in rows:
            # The totals rows each posting adds to, as the ledger makes them.
            added = totals.counts(kind, points, amount, units, segs)
            if added is not None:
                sums += totals.rows_for(member_id, totals.local_day(occurred, zone), added)
            recorded_sums = totals.recorded_counts(kind, points)
            if recorded_sums is not None:
                day = totals.local_day(recorded, zone)
                sums.append(totals.recorded_row(member_id, day, recorded_sums))
            moves.append((points, member_id))
        # Summed per row key as the server stages them: the same rows, no more.
        summed: dict[tuple[Any, ...], list[int]] = {}
        for row in sums:
            key = (row["member_id"], row["grain"], row["start"])
            into = summed.setdefault(key, [0] * len(totals.SUM_FIELDS))
            for index, field in enumerate(totals.SUM_FIELDS):
                into[index] += row[field]
        delta: dict[str, int] = {}
        for points, member_id in moves:
            delta[member_id] = delta.get(member_id, 0) + points
        batches.append(
            (
                chunk,
                rows,
                [(*key, *values) for key, values in sorted(summed.items())],
                [(points, member_id) for member_id, points in sorted(delta.items()) if points],
            )
        )
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        start = time.perf_counter()
        for chunk, rows, summed_rows, moves in batches:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO operations (key, kind, body_hash, result, terminal_id,"
                    " applied_at) VALUES (%s, %s, %s, %s, %s, %s)",
                    chunk,
                )
                cur.executemany(
                    "INSERT INTO transactions (member_id, op_key, kind, points, amount_minor,"
                    " reward_id, occurred_at, recorded_at, units_milli, segments, merchant)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    rows,
                )
                cur.executemany(
                    "INSERT INTO member_totals (member_id, grain, start, points, spend_minor,"
                    " visits, units_milli, segments) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (member_id, grain, start) DO UPDATE SET"
                    " points = member_totals.points + excluded.points,"
                    " spend_minor = member_totals.spend_minor + excluded.spend_minor,"
                    " visits = member_totals.visits + excluded.visits,"
                    " units_milli = member_totals.units_milli + excluded.units_milli,"
                    " segments = member_totals.segments + excluded.segments",
                    summed_rows,
                )
                cur.executemany("UPDATE members SET balance = balance + %s WHERE id = %s", moves)
        return time.perf_counter() - start


def profile_apply(url: str, members: list[str], sales: int, batch: int) -> str:
    """The server's apply path in-process (Ledger.apply_many with the server's checks)."""
    from loyalty_server import strict
    from pos_client.ledger.ledger import Limits

    program = load_program("category_tiers", CONFIG_DIR)
    ledger = Ledger(
        make_engine(url),
        program,
        Limits(max_points_per_member_per_day=10**9),
        check=strict.checker(program.currency),
    )
    plain = sale_bodies(members, sales, 8)
    start, cpu_start = time.perf_counter(), time.process_time()
    for first in range(0, len(plain), batch):
        ledger.apply_many(plain[first : first + batch], terminal_id="plain")
    unprofiled = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    bodies = sale_bodies(members, sales, 7)
    profiler = cProfile.Profile()
    statements = [0]
    spent: dict[str, list[float]] = {}

    def count(conn: Any, *_args: Any) -> None:
        statements[0] += 1
        conn.info["statement_started"] = time.perf_counter()

    def timed(conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        entry = spent.setdefault(" ".join(sql.split())[:110], [0, 0.0])
        entry[0] += 1
        entry[1] += time.perf_counter() - conn.info.pop("statement_started")

    event.listen(ledger.engine, "before_cursor_execute", count)
    event.listen(ledger.engine, "after_cursor_execute", timed)
    start = time.perf_counter()
    profiler.enable()
    for first in range(0, len(bodies), batch):
        ledger.apply_many(bodies[first : first + batch], terminal_id="profile")
    profiler.disable()
    seconds = time.perf_counter() - start
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(int(os.environ.get("PROFILE_TOP", "12")))
    ledger.engine.dispose()
    by_time = sorted(spent.items(), key=lambda item: -item[1][1])[:12]
    out.write("statements by time spent (count, ms in all, SQL):\n")
    for sql, (times, total) in by_time:
        out.write(f"  {times:6d} {total * 1000:8.1f}  {sql}\n")
    return (
        f"in-process apply: {sales / unprofiled:.0f} sales/s, {cpu / sales * 1000:.3f} ms CPU"
        f" a sale in this process ({sales} sales, no profiler);"
        f" {sales / seconds:.0f} sales/s under cProfile ({sales} more,"
        f" {statements[0] / sales:.2f} statements per sale)\n{out.getvalue()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sales", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--terminals", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-only", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    reason = postgres_unavailable_reason()
    if reason:
        print(f"skipped: {reason}")
        return
    load = os.getloadavg()[0]
    print(
        f"machine: {os.cpu_count()} cores (load {load:.1f} at start: other work shares them);"
        f" {args.sales} sales over {args.members} members, {args.terminals} terminals,"
        f" batches of {args.batch}, server with {args.workers} workers, PostgreSQL, loopback"
    )
    cluster = PostgresCluster()
    cluster.start()
    if args.profile_only:
        try:
            url = cluster.new_database()
            migrate(url)
            print(profile_apply(url, enroll_members(url, args.members), args.sales, args.batch))
        finally:
            cluster.stop()
        return
    rates: list[tuple[float, float, float]] = []
    try:
        for round_number in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"-- round {round_number} of {args.rounds}")
            with tempfile.TemporaryDirectory() as scratch:
                rates.append(run_round(cluster, args, Path(scratch)))
    finally:
        cluster.stop()
    if len(rates) > 1:
        ours = sorted(rate for rate, _same, _fewer in rates)
        ratios = sorted(rate / same for rate, same, _fewer in rates)
        fewer = sorted(rate / bare for rate, _same, bare in rates)
        print(
            f"over {len(rates)} rounds: median {statistics.median(ours):.0f} sales/s"
            f" (from {ours[0]:.0f} to {ours[-1]:.0f}; target 2,000:"
            f" {verdict(statistics.median(ours) >= TARGET_RATE)}), median ratio to the same"
            f" rows bare {statistics.median(ratios):.2f} (from {ratios[0]:.2f} to"
            f" {ratios[-1]:.2f}; goal >= 0.3:"
            f" {verdict(statistics.median(ratios) >= TARGET_RATIO)}),"
            f" to fewer rows bare {statistics.median(fewer):.2f}"
        )


TARGET_RATE, TARGET_RATIO = 2000, 0.3  # issue 15's acceptance, on a 2-core machine


def verdict(met: bool) -> str:
    return "met" if met else "not met"


def run_round(
    cluster: PostgresCluster, args: argparse.Namespace, work: Path
) -> tuple[float, float, float]:
    """One measurement: the server drained by the terminals, then the bare inserts, each
    on a new database; prints the round's figures, returns (sales/s, bare sales/s)."""
    url = cluster.new_database()
    migrate(url)
    members = enroll_members(url, args.members)
    server = ServerProcess(url, work, **LIMITS_LIFTED)
    server.workers = args.workers
    server.start()
    try:
        assert server.process is not None
        postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
        wall, runs, cpu = drive(
            server,
            work,
            members,
            args.sales,
            args.terminals,
            args.batch,
            {"server": server.process.pid, "PostgreSQL": postmaster},
        )
    finally:
        server.stop()
    server_log = server.log_path.read_text(errors="replace")
    pg_log = (cluster.data / "log").read_text(errors="replace")
    ledger = Ledger(make_engine(url), load_program("category_tiers", CONFIG_DIR))
    mismatches = ledger.balance_mismatches()
    ledger.engine.dispose()
    written = server_rows(url)
    same_url = cluster.new_database()
    migrate(same_url)
    same_members = enroll_members(same_url, args.members)
    member_map = dict(zip(members, same_members, strict=True))
    same = bare_same_rows(same_url, written, member_map, args.batch)
    bare_url = cluster.new_database()
    migrate(bare_url)
    bare_members = enroll_members(bare_url, args.members)
    bare = bare_executemany(bare_url, bare_members, args.sales, args.batch)
    profile = (
        profile_apply(bare_url, bare_members, min(args.sales, 3000), args.batch)
        if args.profile
        else ""
    )
    acked = sum(r.acked for r in runs)
    ours = acked / wall
    bare_rate = args.sales / bare
    print(
        f"server, {args.terminals} terminals: {acked} sales acked in {wall:6.1f} s"
        f" = {ours:6.0f} sales/s (target 2,000: {verdict(ours >= TARGET_RATE)})"
    )
    print(
        f"  deadlocks: {pg_log.count('deadlock detected')} in PostgreSQL's log,"
        f" {server_log.count('deadlock')} in the server's;"
        f" transactions retried in the server: {server_log.count('batch transaction retried')}"
    )
    print(
        f"  batch retries seen by the terminals: {sum(r.retried for r in runs)};"
        f" dead letters: {sum(r.dead for r in runs)}; balance mismatches: {len(mismatches)}"
    )
    print(
        "  per terminal: "
        + ", ".join(f"{r.name} {r.acked / r.seconds:.0f}/s" for r in sorted(runs, key=str))
    )
    cpu["terminals"] = sum(r.cpu_s for r in runs)
    print(
        f"  CPU while draining ({wall:.1f} s wall x {os.cpu_count()} cores ="
        f" {wall * (os.cpu_count() or 1):.1f} core-s): "
        + ", ".join(
            f"{name} {seconds:.1f} s ({seconds * 1000 / max(acked, 1):.2f} ms/sale)"
            for name, seconds in cpu.items()
        )
    )
    same_rate = len(written[0]) / same
    print(
        "bare psycopg executemany of the same rows (1 connection, a transaction per 100 sales;"
        " the very operations, transactions, member_totals and balance rows the server wrote):"
        f" {len(written[0])} sales in {same:6.2f} s = {same_rate:6.0f} sales/s"
    )
    ratio = ours / same_rate
    print(f"ratio server / bare: {ratio:.2f} (goal >= 0.3: {verdict(ratio >= TARGET_RATIO)})")
    print(
        "bare psycopg executemany of fewer rows (per sale a transaction, an operation key, a"
        f" balance update): {args.sales} sales in {bare:6.2f} s = {bare_rate:6.0f} sales/s;"
        f" ratio server / that: {ours / bare_rate:.2f}"
    )
    if profile:
        print(profile)
    return ours, same_rate, bare_rate


if __name__ == "__main__":
    main()
