"""`make bench`: one table of every figure, each beside its limit or peer, in one run.

  outbox commit      vs a bare fsync loop (the limit) and persist-queue's SQLiteAckQueue
                     (the library a user would pick), WAL + synchronous=FULL for both;
  outbox age         open and add with 0 and 1,000,000 acknowledged entries (issue 15);
  drain 10,000       batched versus one request per sale (SQLite server), PostgreSQL batched;
  identify-to-member embedded ledger, and the HTTP server on loopback;
  tap-to-event       real pcscd, versus bare detection + transmit; scan-to-event (pty)
                     versus a bare read;
  app                tap -> next screen drawn (real touches), reader event -> member screen,
                     cold start, resident memory, each beside its goal (issue 16);
  offline key        one guess at a cached phone's key: the old HMAC versus scrypt;
  printing           a receipt on a loopback ESC/POS printer versus a bare send (issue 14);
  camera             frames decoded versus bare zxing-cpp, first frame to member (issue 14);
  console            every console page's p50/p95 against 200 ms on PostgreSQL with 100,000
                     members and 1,000,000 transactions (--quick: 5,000 and 50,000), the
                     dashboard computed, the CSV downloads (benchmarks/console_pages.py).
Usage: python benchmarks/table.py [--quick]   (--quick: smaller counts, for a smoke run)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

Row = tuple[str, str, str, str, str]  # what, p50, tail, rate, against what (ratio)


def pct(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def ms(value: float) -> str:
    return f"{value * 1e3:.3f}" if value < 0.01 else f"{value * 1e3:.1f}"


def outbox_rows(count: int) -> list[Row]:
    from outbox_commit import bench_fsync, bench_outbox, sale_body

    from pos_client.operations import canonical_json

    work = Path(tempfile.mkdtemp(prefix="bench-", dir="."))
    try:
        record = (canonical_json(sale_body(0)) + "\n").encode()
        bench_fsync(work, 50, record)
        fsync = bench_fsync(work, count, record)
        ours = bench_outbox(work, count)
        peer = bench_persist_queue(work, count)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows: list[Row] = [
        (
            "outbox.add (durable commit)",
            ms(pct(ours, 0.5)),
            "p99 " + ms(pct(ours, 0.99)),
            f"{count / sum(ours):.0f}/s",
            "",
        ),
        (
            "  limit: write + fsync, same disk",
            ms(pct(fsync, 0.5)),
            "p99 " + ms(pct(fsync, 0.99)),
            f"{count / sum(fsync):.0f}/s",
            f"ours {pct(ours, 0.5) / pct(fsync, 0.5):.2f}x",
        ),
    ]
    if isinstance(peer, str):
        rows.append(("  peer: persist-queue", "-", "-", "-", peer))
    else:
        rows.append(
            (
                "  peer: persist-queue SQLiteAckQueue",
                ms(pct(peer, 0.5)),
                "p99 " + ms(pct(peer, 0.99)),
                f"{count / sum(peer):.0f}/s",
                f"ours {pct(ours, 0.5) / pct(peer, 0.5):.2f}x",
            )
        )
    return rows


def outbox_age_rows(entries: int) -> list[Row]:
    from outbox_age import measure

    figures = measure(entries, 300, 20, Path("."))
    rows: list[Row] = []
    for what, samples in (("open", figures.opens), ("add", figures.adds)):
        young, old = samples["0"], samples["N"]
        rows.append((f"outbox {what}, 0 acked", ms(pct(young, 0.5)), "", "", ""))
        rows.append(
            (
                f"  {what} with {entries:,} acked",
                ms(pct(old, 0.5)),
                "",
                "",
                f"{pct(old, 0.5) / pct(young, 0.5):.2f}x of 0 (goal 1.2x)",
            )
        )
    return rows


def bench_persist_queue(work: Path, count: int) -> list[float] | str:
    try:
        from persistqueue import SQLiteAckQueue
    except ImportError:
        return "not installed (pip install persist-queue)"
    from outbox_commit import sale_body

    queue = SQLiteAckQueue(str(work / "pq"), auto_commit=True, multithreading=True)
    for connection in {id(c): c for c in (queue._conn, queue._putter)}.values():
        if connection is not None:  # the same durability as the outbox
            connection.execute("PRAGMA synchronous=FULL")
    bodies = [sale_body(i) for i in range(count)]
    samples = []
    for body in bodies:
        start = time.perf_counter()
        queue.put(body)
        samples.append(time.perf_counter() - start)
    queue.close()
    return samples


def drain_rows(sales: int) -> list[Row]:
    from server_throughput import run_on

    from tests.integration.server_helpers import PostgresCluster, postgres_unavailable_reason

    work = Path(tempfile.mkdtemp(prefix="bench-drain-"))
    try:
        batched, single = run_on(
            f"sqlite+pysqlite:///{work}/server.sqlite", work / "sqlite", sales, True
        )
        assert single is not None
        rows: list[Row] = [
            (
                f"drain {sales} sales, batched (SQLite)",
                "-",
                f"{batched:.1f} s total",
                f"{sales / batched:.0f}/s",
                "",
            ),
            (
                "  one request per sale (SQLite)",
                "-",
                f"{single:.1f} s total",
                f"{sales / single:.0f}/s",
                f"batched {single / batched:.2f}x faster",
            ),
        ]
        reason = postgres_unavailable_reason()
        if reason:
            rows.append(("  PostgreSQL", "-", "-", "-", f"skipped: {reason}"))
        else:
            cluster = PostgresCluster()
            cluster.start()
            try:
                pg, _ = run_on(cluster.new_database(), work / "pg", sales, False)
            finally:
                cluster.stop()
            rows.append(
                (
                    f"drain {sales} sales, batched (PostgreSQL)",
                    "-",
                    f"{pg:.1f} s total",
                    f"{sales / pg:.0f}/s",
                    "",
                )
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def identify_rows(count: int) -> list[Row]:
    from loyalty_server.cli import migrate
    from pos_client.bootstrap import build_terminal
    from pos_client.demo import DEMO_MEMBERS, seed_demo_members
    from tests.conftest import make_settings
    from tests.integration.server_helpers import ServerProcess, http_terminal

    work = Path(tempfile.mkdtemp(prefix="bench-identify-"))
    raws = [m.card_number for m in DEMO_MEMBERS]

    def time_identify(terminal: Any) -> list[float]:
        samples = []
        for index in range(count):
            start = time.perf_counter()
            terminal.checkout.identify(raws[index % len(raws)], "barcode")
            samples.append(time.perf_counter() - start)
        return samples

    try:
        with build_terminal(make_settings(work / "embedded")) as terminal:
            assert terminal.ledger is not None
            seed_demo_members(terminal.ledger, terminal.checkout.hasher)
            embedded = time_identify(terminal)
        url = f"sqlite+pysqlite:///{work}/server.sqlite"
        migrate(url)
        server = ServerProcess(url, work)
        server.seed()
        server.start()
        try:
            with http_terminal(server, work / "http") as terminal:
                remote = time_identify(terminal)
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return [
        (
            "identify-to-member, embedded ledger",
            ms(pct(embedded, 0.5)),
            "p95 " + ms(pct(embedded, 0.95)),
            f"{count / sum(embedded):.0f}/s",
            "",
        ),
        (
            "identify-to-member, HTTP server (loopback)",
            ms(pct(remote, 0.5)),
            "p95 " + ms(pct(remote, 0.95)),
            f"{count / sum(remote):.0f}/s",
            f"{pct(remote, 0.5) / pct(embedded, 0.5):.1f}x embedded",
        ),
    ]


def reader_rows(taps: int, lines: int) -> list[Row]:
    from reader_latency import pcsc_samples, serial_samples

    driver, bare = serial_samples(lines)
    rows: list[Row] = [
        (
            "scan-to-event, serial driver (pty)",
            ms(pct(driver, 0.5)),
            "p95 " + ms(pct(driver, 0.95)),
            "",
            "",
        ),
        (
            "  limit: bare pty read",
            ms(pct(bare, 0.5)),
            "p95 " + ms(pct(bare, 0.95)),
            "",
            f"driver {pct(driver, 0.5) / pct(bare, 0.5):.1f}x",
        ),
    ]
    samples = pcsc_samples(taps)
    if isinstance(samples, str):
        rows.append(("tap-to-event, PC/SC", "-", "-", "-", f"skipped: {samples}"))
        return rows
    tap, detect, transmit = samples
    rows += [
        (
            "tap-to-event, PC/SC driver (real pcscd)",
            ms(pct(tap, 0.5)),
            "p95 " + ms(pct(tap, 0.95)),
            "",
            "",
        ),
        (
            "  limit: bare detection + UID read",
            ms(pct(detect, 0.5)),
            "p95 " + ms(pct(detect, 0.95)),
            "",
            f"driver {pct(tap, 0.5) / pct(detect, 0.5):.2f}x",
        ),
        (
            "  limit: bare pyscard transmit",
            ms(pct(transmit, 0.5)),
            "p95 " + ms(pct(transmit, 0.95)),
            "",
            "",
        ),
    ]
    return rows


def app_rows(taps: int, starts: int) -> list[Row]:
    from ui_latency import GOAL_COLD_START_S, GOAL_RSS_MB, GOAL_TAP_P95_S, fmt_load, measure

    result = measure(taps, starts)
    tapped, bare_app = result["tapped"], result["bare"]
    touch, reader, frame = tapped["touch_s"], tapped["reader_s"], tapped["bare_s"]
    colds = [tapped["cold_start_s"]] + [run["cold_start_s"] for run in result["startups"]]
    cold = statistics.median(colds)
    start_mem, end_mem = tapped["memory_start"], tapped["memory_end"]
    worst = max([end_mem["rss"]] + [run["memory_start"]["rss"] for run in result["startups"]])

    def verdict(ok: bool) -> str:
        return "pass" if ok else "MISS"

    touch_p95 = pct(touch, 0.95)
    http = result.get("http", [])
    http_rows: list[Row] = []
    if http:
        http_cold = statistics.median(run["cold_start_s"] for run in http)
        http_rss = max(run["memory_start"]["rss"] for run in http)
        http_rows = [
            (
                "app on HTTP backend (production): cold start",
                f"{http_cold:.2f} s",
                "",
                "",
                f"goal <= {GOAL_COLD_START_S} s: {verdict(http_cold <= GOAL_COLD_START_S)};"
                " stub server on loopback, no SQLAlchemy",
            ),
            (
                "app on HTTP backend (production): RSS after start",
                f"{http_rss:.0f} MB",
                "",
                "",
                f"goal <= {GOAL_RSS_MB:.0f} MB: {verdict(http_rss <= GOAL_RSS_MB)}"
                f" (worst of {len(http)})",
            ),
        ]
    return [
        (
            "app: tap -> next screen drawn (real touches)",
            ms(pct(touch, 0.5)),
            "p95 " + ms(touch_p95),
            "",
            f"goal p95 <= {GOAL_TAP_P95_S * 1e3:.0f} ms: {verdict(touch_p95 <= GOAL_TAP_P95_S)}"
            f" (n {len(touch)}, load {fmt_load(result['load_before'])})",
        ),
        (
            "app: reader event -> member screen drawn",
            ms(pct(reader, 0.5)),
            "p95 " + ms(pct(reader, 0.95)),
            "",
            "",
        ),
        (
            "  limit: member screen drawn, no reader",
            ms(pct(frame, 0.5)),
            "p95 " + ms(pct(frame, 0.95)),
            "",
            f"reader {pct(reader, 0.5) / pct(frame, 0.5):.2f}x",
        ),
        (
            "app (embedded ledger): cold start to first frame",
            f"{cold:.2f} s",
            "",
            "",
            f"goal <= {GOAL_COLD_START_S} s: {verdict(cold <= GOAL_COLD_START_S)}; runs "
            f"{', '.join(f'{c:.2f}' for c in colds)}; bare Kivy {bare_app['cold_start_s']:.2f} s",
        ),
        (
            "app (embedded ledger): resident memory",
            f"{start_mem['rss']:.0f} MB",
            f"{end_mem['rss']:.0f} MB end",
            "",
            f"goal <= {GOAL_RSS_MB:.0f} MB: {verdict(worst <= GOAL_RSS_MB)}; driver libs "
            f"{start_mem['driver']:.0f} MB; bare Kivy {bare_app['memory_start']['rss']:.0f} MB",
        ),
        *http_rows,
    ]


def abuse_rows(seconds: float) -> list[Row]:
    """/v1/health under 1,000 bad pairing guesses and 20 oversized bodies a second."""
    from health_under_abuse import run

    with tempfile.TemporaryDirectory() as scratch:
        result = run(Path(scratch), seconds, 1000.0, 20.0)
    rest = [v / 1000 for v in result.rest]
    abused = [v / 1000 for v in result.abused]
    answered = sum(result.guesses.values()) / result.elapsed
    ratio = pct(abused, 0.95) / pct(rest, 0.95)
    return [
        ("/v1/health at rest", ms(pct(rest, 0.5)), ms(pct(rest, 0.95)) + " p95", "", ""),
        (
            "/v1/health, 1,000 bad pairings + 20 oversized bodies /s offered",
            ms(pct(abused, 0.5)),
            ms(pct(abused, 0.95)) + " p95",
            f"{answered:.0f} guesses/s answered",
            f"goal p95 < 100 ms; {ratio:.2f}x at rest",
        ),
    ]


def offline_key_rows(guesses: int) -> list[Row]:
    """One guess at an offline-cache phone key: the old HMAC beside the scrypt KDF."""
    from offline_lookup_cost import SECONDS_PER_YEAR, measure

    from pos_client.privacy import OFFLINE_LOOKUP_COST

    fast, samples = measure(guesses)
    slow = statistics.median(samples)
    mib = OFFLINE_LOOKUP_COST.memory_bytes / 2**20
    return [
        ("offline phone key guess, old HMAC", ms(fast), "", "", "the fast form replaced"),
        (
            f"offline phone key guess, scrypt ({mib:.0f} MiB)",
            ms(slow),
            ms(max(samples)) + " max",
            f"10^9 numbers: {slow * 1e9 / SECONDS_PER_YEAR:.1f} core-years",
            f"goal 50-100 ms; {slow / fast:,.0f}x the HMAC "
            f"({fast * 1e9 / 3600:.1f} core-hours for 10^9)",
        ),
    ]


def printing_rows(receipts: int) -> list[Row]:
    """A receipt printed on the loopback ESC/POS printer, beside a bare send of its bytes."""
    from printing import measure

    rows: list[Row] = []
    for figure in measure(receipts):
        bare = statistics.median(figure.bare_sends)
        rows.append(
            (
                f"receipt printed, {figure.label}, {figure.receipt_bytes:,} bytes",
                ms(statistics.median(figure.prints)),
                ms(pct(figure.prints, 0.95)) + " p95",
                f"render {ms(statistics.median(figure.renders))} ms",
                f"{statistics.median(figure.prints) / bare:.0f}x a bare send of its bytes",
            )
        )
    return rows


def camera_rows(presentations: int) -> list[Row]:
    """Camera frames decoded a second beside bare zxing-cpp; first frame to member."""
    from camera import measure

    figures = measure(presentations)
    rows: list[Row] = [
        (
            "camera frames read + decoded (640x480)",
            ms(1 / figures.reader_fps),
            "",
            f"{figures.reader_fps:.0f} frames/s",
            f"bare zxing-cpp {figures.bare_fps:.0f}/s; "
            f"{figures.bare_fps / figures.reader_fps:.2f}x",
        )
    ]
    if figures.latencies:
        rows.append(
            (
                "camera: card's first frame -> member identified",
                ms(statistics.median(figures.latencies)),
                ms(pct(figures.latencies, 0.95)) + " p95",
                f"{len(figures.latencies)}/{figures.presentations} found",
                "8 decodes/s, linear codes read twice",
            )
        )
    return rows


def console_rows(members: int, transactions: int, count: int) -> list[Row]:
    """Each console page on PostgreSQL at a store's scale (issue 13): p50, p95 beside the
    200 ms goal; the dashboard's figures computed (uncached); the CSV downloads."""
    from console_pages import GOAL_S, measure

    from tests.integration.server_helpers import postgres_unavailable_reason

    reason = postgres_unavailable_reason()
    if reason:
        return [("console pages", "-", "-", "-", f"skipped: {reason}")]
    figures = measure(members, transactions, count)
    scale = f"{members:,} members, {transactions:,} transactions"
    rows: list[Row] = [
        (f"console pages, PostgreSQL, {scale} (seeded in {figures.seeded.seconds:.0f} s)",)
        + ("",) * 4
    ]
    for name, samples in figures.pages.items():
        p95 = pct(samples, 0.95)
        rows.append(
            (
                "  " + name,
                ms(pct(samples, 0.5)),
                ms(p95) + " p95",
                "",
                f"goal p95 < 200 ms: {'met' if p95 < GOAL_S else 'NOT met'}",
            )
        )
    rows.append(
        (
            "  dashboard: first request (figures computed), one 31 s later",
            ms(figures.cold_dashboard_s),
            ms(figures.later_dashboard_s),
            "",
            "figures refreshed ahead on a thread; expiring figures on a thread"
            + (
                ""
                if figures.expiring_after_s is None
                else f", shown after {ms(figures.expiring_after_s)} ms"
            ),
        )
    )
    for name, seconds, rows_read in figures.downloads:
        rows.append(
            (
                f"  download {name}",
                "-",
                f"{seconds:.2f} s total",
                f"{rows_read / seconds:,.0f} rows/s",
                "",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quick = args.quick
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    sections: list[tuple[str, Callable[[], list[Row]]]] = [
        ("outbox", lambda: outbox_rows(300 if quick else 2000)),
        ("outbox age", lambda: outbox_age_rows(20_000 if quick else 1_000_000)),
        ("drain", lambda: drain_rows(300 if quick else 10_000)),
        ("identify", lambda: identify_rows(100 if quick else 500)),
        ("readers", lambda: reader_rows(5 if quick else 100, 100 if quick else 1000)),
        ("app", lambda: app_rows(22 if quick else 200, 2 if quick else 5)),
        ("abuse", lambda: abuse_rows(3 if quick else 10)),
        ("offline key", lambda: offline_key_rows(5 if quick else 30)),
        ("printing", lambda: printing_rows(20 if quick else 200)),
        ("camera", lambda: camera_rows(3 if quick else 12)),
        (
            "console",
            lambda: console_rows(
                5_000 if quick else 100_000, 50_000 if quick else 1_000_000, 10 if quick else 50
            ),
        ),
    ]
    rows: list[Row] = []
    for name, measure in sections:
        started = time.monotonic()
        rows += measure()
        print(
            f"[{name} measured in {time.monotonic() - started:.0f} s]", file=sys.stderr, flush=True
        )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; all figures from this one run"
    )
    header = ("measure", "p50 ms", "tail ms", "rate", "against")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))


if __name__ == "__main__":
    main()
