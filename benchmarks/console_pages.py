"""Every console page under 200 ms p95 at a store's scale: 100,000 members and 1,000,000
transactions on PostgreSQL (issue 13's console).

Seeds a throwaway PostgreSQL cluster in bulk (psycopg COPY, not the API): members and their
identifiers (card number for all, a keyed phone for most, a card UID for some), a year of
transactions (mostly earn, some redeem, expire, birthday; balances consistent, never
negative), the sales of the last 90 days in `operations`, the members' lifetime and monthly
totals, ~50 terminals with heartbeats (some with dead entries), ~200 flags and ~2,000 audit
entries; then VACUUM ANALYZE (a live store's autovacuum would have). Starts the server as a
real process on loopback, signs a manager in through the login form like a browser, and
times each page sequentially with `requests` (3 warm-up requests, then N). Prints one table:
page, p50, p95, max, and whether p95 is under 200 ms; the dashboard's cold computation (the
first request after the server starts; it caches its figures for 30 s) and how long its
expiring figures (a background thread) take to appear; the CSV downloads apart (total time
and rows/s: downloads, not pages).

Usage: python benchmarks/console_pages.py [--members 100000] [--transactions 1000000]
       [--requests 50] [--program stars] [--seed 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

# Appended, not prepended: PYTHONPATH=/path/to/other/checkout measures that code instead.
sys.path.append(str(Path(__file__).resolve().parent.parent))

import requests

from loyalty_server.cli import migrate
from pos_client.privacy import PhoneHasher
from tests.console_client import ConsoleUser, add_user
from tests.integration.server_helpers import (
    PostgresCluster,
    ServerProcess,
    postgres_unavailable_reason,
)

GOAL_S = 0.200  # p95 of every page
WARM_UP = 3
FIRST_NAMES = (  # noqa: SIM905
    "Anna Olga Maria Elena Irina Natalia Svetlana Tatiana Julia Daria Alina Ksenia Sofia "
    "Polina Victoria Ivan Sergey Alexey Dmitry Andrey Pavel Mikhail Nikolai Artem Maxim Egor "
    "Oleg Roman Denis Kirill Peter Paul John James Mary Linda Sarah Emma Lucas Noah Liam Mia "
    "Zoe Leo Hugo Clara Nina Vera Lev Boris"
).split()
LAST_NAMES = "Ivanov Petrov Sidorov Smirnov Kuznetsov Popov Sokolov Lebedev Novak Martin".split()  # noqa: SIM905
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def dsn_of(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def phone_of(index: int) -> str:
    """A valid Russian mobile number, one per member index."""
    return f"+7912{index:07d}"


def card_of(index: int) -> str:
    return f"28{index:011d}"


@dataclass
class Seeded:
    members: int = 0
    transactions: int = 0
    operations: int = 0
    identifiers: int = 0
    totals: int = 0
    terminals: int = 0
    heartbeats: int = 0
    flags: int = 0
    audit: int = 0
    seconds: float = 0.0
    heavy: str = ""  # a member with many transactions
    heavy_count: int = 0
    light: str = ""  # a member with few
    light_count: int = 0
    card: str = ""  # a card number to search
    phone: str = ""  # a whole phone to search
    first_name: str = ""  # with `digits`, a name search
    digits: str = ""


def member_id_of(index: int) -> str:
    # uuid7-shaped, sortable, deterministic
    return f"0190{index:08x}-7000-8000-{index:012x}"


def seed(url: str, hasher: PhoneHasher, members: int, count: int, seed_value: int) -> Seeded:
    """Bulk-load a store: COPY with the foreign-key triggers off (session_replication_role
    replica: the rows are consistent by construction), then VACUUM ANALYZE."""
    import psycopg

    rng = random.Random(seed_value)
    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    year = timedelta(days=365)
    seeded = Seeded(members=members)
    # How many transactions each member has: one member with many (the heavy page), the
    # rest spread at random (a few members get none).
    heavy_count = min(5000, count // 10)
    per_member = [0] * members
    per_member[0] = heavy_count
    for _ in range(count - heavy_count):
        per_member[rng.randrange(1, members) if members > 1 else 0] += 1
    light = next((i for i in range(1, members) if 1 <= per_member[i] <= 3), 1 % members)
    seeded.heavy, seeded.heavy_count = member_id_of(0), per_member[0]
    seeded.light, seeded.light_count = member_id_of(light), per_member[light]
    terminal_ids = [f"0191{n:08x}-7000-8000-{n:012x}" for n in range(50)]
    balances = [0] * members
    sales_since = now - timedelta(days=90)
    operations: list[tuple[str, str, datetime]] = []
    with psycopg.connect(dsn_of(url)) as conn:
        conn.execute("SET session_replication_role = replica")
        with conn.cursor() as cur:
            # Staged member by member (to keep each balance), then appended in time order,
            # as a live store's table grows: the last days' rows lie together, one member's
            # rows spread over the table.
            cur.execute(
                "CREATE TEMP TABLE staged (member_id text, op_key text, kind text,"
                " points bigint, amount_minor bigint, reward_id text, occurred_at timestamptz,"
                " recorded_at timestamptz)"
            )
            with cur.copy(
                "COPY staged (member_id, op_key, kind, points, amount_minor, reward_id,"
                " occurred_at, recorded_at) FROM STDIN"
            ) as copy:
                for index in range(members):
                    member_id = member_id_of(index)
                    moments = sorted(now - year * rng.random() for _ in range(per_member[index]))
                    balance = 0
                    for moment in moments:
                        roll = rng.random()
                        reward = None
                        if roll < 0.08 and balance >= 100:
                            kind, points, amount = (
                                "redeem",
                                -min(balance, 100 * rng.randint(1, 5)),
                                0,
                            )
                            reward = "discount"
                        elif roll < 0.11 and balance > 0:
                            kind, points, amount = "expire", -min(balance, rng.randint(1, 300)), 0
                        elif roll < 0.13:
                            kind, points, amount = "birthday", 200, 0
                        else:
                            amount = rng.randint(100, 20_000)
                            kind, points = "earn", amount // 100
                        balance += points
                        key = None
                        if kind in ("earn", "redeem") and moment >= sales_since:
                            key = f"bench-{len(operations):012d}"
                            operations.append((key, rng.choice(terminal_ids), moment))
                        copy.write_row(
                            (member_id, key, kind, points, amount, reward, moment, moment)
                        )
                    balances[index] = balance
            cur.execute(
                "INSERT INTO transactions (member_id, op_key, kind, points, amount_minor,"
                " reward_id, occurred_at, recorded_at) SELECT member_id, op_key, kind, points,"
                " amount_minor, reward_id, occurred_at, recorded_at FROM staged"
                " ORDER BY recorded_at"
            )
            cur.execute("DROP TABLE staged")
            seeded.transactions = count
            operations.sort(key=lambda row: row[2])
            with cur.copy(
                "COPY operations (key, kind, body_hash, result, terminal_id, applied_at) FROM STDIN"
            ) as copy:
                for key, terminal_id, moment in operations:
                    copy.write_row(
                        (key, "sale", "0" * 64, '{"status":"applied"}', terminal_id, moment)
                    )
            seeded.operations = len(operations)
            del operations
            with cur.copy(
                "COPY members (id, first_name, last_name, phone_last, card_number, birthday,"
                " enrolled_at, consent_text_id, consent_at, consent_channel, marketing, balance,"
                " guardian_consent) FROM STDIN"
            ) as copy:
                for index in range(members):
                    enrolled = now - timedelta(days=365 + 365 * rng.random())
                    if index % 100 == 7:  # a few enrolled in the last 30 days
                        enrolled = now - timedelta(days=30 * rng.random())
                    birthday = (
                        date(1950 + index % 55, index % 12 + 1, index % 28 + 1)
                        if index % 3
                        else None
                    )
                    copy.write_row(
                        (
                            member_id_of(index),
                            FIRST_NAMES[index % len(FIRST_NAMES)],
                            LAST_NAMES[index % len(LAST_NAMES)],
                            phone_of(index)[-4:] if index % 10 < 7 else "",
                            card_of(index),
                            birthday,
                            enrolled,
                            "terms",
                            enrolled,
                            "bench",
                            index % 2 == 0,
                            balances[index],
                            False,
                        )
                    )
            with cur.copy("COPY identifiers (kind, value, member_id) FROM STDIN") as copy:
                for index in range(members):
                    member_id = member_id_of(index)
                    copy.write_row(("card_number", card_of(index), member_id))
                    seeded.identifiers += 1
                    if index % 10 < 7:  # a phone for 70%
                        copy.write_row(("phone", hasher.phone_key(phone_of(index)), member_id))
                        seeded.identifiers += 1
                    if index % 5 == 0:  # a card UID for 20%
                        copy.write_row(("card_uid", f"04{index:012X}", member_id))
                        seeded.identifiers += 1
            # Tier totals (what member_view reads): lifetime and monthly rows, from the
            # very transactions, as the ledger would have kept them (earn: points, spend,
            # a visit; birthday: points), and the day rows of the oldest months (a rolling
            # period's first, partial month). The server's zone is UTC.
            local_day = "(occurred_at AT TIME ZONE 'UTC')::date"
            cur.execute(
                "INSERT INTO member_totals (member_id, grain, start, points, spend_minor,"
                " visits, units_milli, segments)"
                " SELECT member_id, 'a', DATE '0001-01-01', sum(points), sum(amount_minor),"
                " count(*) FILTER (WHERE kind = 'earn'), 0, 0 FROM transactions"
                " WHERE kind IN ('earn', 'birthday') GROUP BY member_id"
                " UNION ALL"
                " SELECT member_id, 'm', date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date,"
                " sum(points), sum(amount_minor), count(*) FILTER (WHERE kind = 'earn'), 0, 0"
                " FROM transactions WHERE kind IN ('earn', 'birthday')"
                " GROUP BY 1, 3"
                " UNION ALL"
                f" SELECT member_id, 'd', {local_day}, sum(points), sum(amount_minor),"
                " count(*) FILTER (WHERE kind = 'earn'), 0, 0"
                " FROM transactions WHERE kind IN ('earn', 'birthday')"
                f" AND {local_day} < date_trunc('month', now() AT TIME ZONE 'UTC')::date"
                " - interval '10 months' GROUP BY 1, 3"
            )
            seeded.totals = cur.rowcount
            # The fleet: 50 terminals, 3 revoked, 45 heard from (5 of them silent for
            # hours), 10 holding dead entries (up to 20 each).
            with cur.copy(
                "COPY terminals (id, name, token_hash, created_at, revoked_at, merchant) FROM STDIN"
            ) as copy:
                for n, terminal_id in enumerate(terminal_ids):
                    copy.write_row(
                        (
                            terminal_id,
                            f"Till {n + 1}",
                            hashlib.sha256(terminal_id.encode()).hexdigest(),
                            now - timedelta(days=400),
                            now - timedelta(days=10) if n >= 47 else None,
                            "",
                        )
                    )
            seeded.terminals = len(terminal_ids)
            with cur.copy(
                "COPY terminal_heartbeats (terminal_id, received_at, app_version, mode,"
                " pending, dead_count, oldest_pending_s, readers, dead) FROM STDIN"
            ) as copy:
                for n, terminal_id in enumerate(terminal_ids[:45]):
                    dead = [
                        {
                            "key": f"dead-{n}-{k}",
                            "reason": "member unknown: enrolled on another store's server",
                            "age_s": 3600 * (k + 1),
                        }
                        for k in range(rng.randint(1, 20) if n % 4 == 0 and n < 40 else 0)
                    ]
                    silent = n >= 40
                    copy.write_row(
                        (
                            terminal_id,
                            now - timedelta(hours=5 if silent else 0, seconds=rng.randint(0, 60)),
                            "1.4.2",
                            "kiosk" if n % 5 == 0 else "cashier",
                            rng.randint(0, 30),
                            len(dead),
                            rng.randint(1, 600),
                            '[["pcsc:ACS ACR122U","connected"],["scanner:serial","connected"]]',
                            json.dumps(dead, separators=(",", ":")),
                        )
                    )
            seeded.heartbeats = 45
            flag_rows = {
                (
                    member_id_of(rng.randrange(members)),
                    (now - timedelta(days=rng.randrange(90))).date(),
                )
                for _ in range(200)
            }
            with cur.copy("COPY flags (member_id, day, earnings, flagged_at) FROM STDIN") as copy:
                for member_id, day in flag_rows:
                    copy.write_row(
                        (
                            member_id,
                            day,
                            rng.randint(20, 80),
                            datetime(day.year, day.month, day.day, 18, tzinfo=UTC),
                        )
                    )
            with cur.copy(
                "COPY flag_reviews (member_id, day, decision, user_name, at) FROM STDIN"
            ) as copy:
                for member_id, day in list(flag_rows)[:60]:
                    copy.write_row((member_id, day, "approved", "bench", now))
            seeded.flags = len(flag_rows)
            with cur.copy(
                "COPY console_audit (at, user_name, action, target, detail, reason) FROM STDIN"
            ) as copy:
                for n in range(2000):
                    copy.write_row(
                        (
                            now - timedelta(minutes=(2000 - n) * 260),
                            "manager",
                            ("adjust", "sign-in", "export", "link-card")[n % 4],
                            f"member {member_id_of(rng.randrange(members))}",
                            "+50 points",
                            "goodwill after a complaint",
                        )
                    )
            seeded.audit = 2000
        conn.commit()
    with psycopg.connect(dsn_of(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    seeded.seconds = time.perf_counter() - started
    seeded.card = card_of(light)
    seeded.phone = phone_of(3)
    seeded.first_name = FIRST_NAMES[3 % len(FIRST_NAMES)].lower()
    seeded.digits = phone_of(3)[-4:]
    return seeded


# ---------------------------------------------------------------- measuring


@dataclass
class Figures:
    seeded: Seeded
    postgres: str
    program: str
    pages: dict[str, list[float]] = field(default_factory=dict)
    cold_dashboard_s: float = 0.0
    later_dashboard_s: float = 0.0  # a request once the first figures are 31 s old
    expiring_after_s: float | None = None
    downloads: list[tuple[str, float, int]] = field(default_factory=list)  # name, s, rows


def pct(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def timed(call: Callable[[], requests.Response], count: int) -> list[float]:
    for _ in range(WARM_UP):
        assert call().status_code == 200
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        answer = call()
        samples.append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.text[:300]
    return samples


def measure(
    members: int, transactions: int, count: int, program: str = "stars", seed_value: int = 1
) -> Figures:
    reason = postgres_unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    cluster = PostgresCluster()
    cluster.start()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            url = cluster.new_database()
            migrate(url)
            server = ServerProcess(
                url,
                Path(scratch),
                LOYALTY_SERVER_PROGRAM=program,
                # Latency, not the searches' per-account bounds, is measured here.
                LOYALTY_SERVER_CONSOLE_SEARCHES_PER_MINUTE="100000",
                LOYALTY_SERVER_CONSOLE_PHONE_SEARCHES_PER_MINUTE="100000",
            )
            seeded = seed(url, server.hasher(), members, transactions, seed_value)
            import psycopg

            with psycopg.connect(dsn_of(url)) as conn:
                version = conn.execute("SHOW server_version").fetchone()
            figures = Figures(seeded, str(version[0] if version else "?"), program)
            add_user(server, "bench", "manager")
            server.start()
            try:
                measure_pages(server, figures, count)
            finally:
                server.stop()
    finally:
        cluster.stop()
    return figures


def measure_pages(server: ServerProcess, figures: Figures, count: int) -> None:
    seeded = figures.seeded
    user = ConsoleUser(server)
    assert user.log_in("bench").status_code == 303
    # The dashboard cold: the first request after the server started computes the figures
    # and starts counting the expiring points on a thread.
    start = time.perf_counter()
    first = user.get("/")
    figures.cold_dashboard_s = time.perf_counter() - start
    assert first.status_code == 200
    computed_at = time.perf_counter()
    page = first.text
    while "being counted" in page and time.perf_counter() - start < 600:
        time.sleep(0.05)
        page = user.get("/").text
    if "being counted" not in page:
        figures.expiring_after_s = time.perf_counter() - start
    found = CSRF.search(page)
    assert found, "no CSRF token on the dashboard"
    csrf = found.group(1)

    def get(path: str) -> Callable[[], requests.Response]:
        return lambda: user.get(path)

    def search(**form: str) -> Callable[[], requests.Response]:
        def call() -> requests.Response:
            answer = user.http.post(user.base + "/members", data={**form, "csrf": csrf}, timeout=30)
            assert "/console/members/" in answer.text, "the search found nobody"
            return answer

        return call

    pages: list[tuple[str, Callable[[], requests.Response]]] = [
        ("/console/ (dashboard, cached)", get("/")),
        ("/console/members", get("/members")),
        ("search by card number", search(by="card", value=seeded.card)),
        (
            "search by first name + last 4 digits",
            search(by="name", first_name=seeded.first_name, value=seeded.digits),
        ),
        ("search by whole phone", search(by="phone", value=seeded.phone)),
        (f"member page, {seeded.heavy_count:,} transactions", get(f"/members/{seeded.heavy}")),
        (f"member page, {seeded.light_count} transactions", get(f"/members/{seeded.light}")),
        ("/console/terminals", get("/terminals")),
        ("/console/dead-letters", get("/dead-letters")),
        ("/console/flags", get("/flags")),
        ("/console/program", get("/program")),
        ("/console/audit", get("/audit")),
        ("/console/exports (the page)", get("/exports")),
    ]
    for name, call in pages:
        figures.pages[name] = timed(call, count)
    # The dashboard once its figures' 30 s are over: refreshed ahead on a thread while
    # the page is visited, it is not computed on the request any more.
    time.sleep(max(0.0, 31 - (time.perf_counter() - computed_at)))
    start = time.perf_counter()
    assert user.get("/").status_code == 200
    figures.later_dashboard_s = time.perf_counter() - start
    today = datetime.now(UTC).date()
    month_ago = today - timedelta(days=30)
    for name, path in (
        (
            f"transactions.csv, {month_ago}..{today}",
            f"/exports/transactions.csv?start={month_ago}&end={today}",
        ),
        ("members.csv", "/exports/members.csv"),
    ):
        start = time.perf_counter()
        rows = 0
        with user.get(path, stream=True) as answer:
            assert answer.status_code == 200
            for line in answer.iter_lines():
                rows += bool(line)
        figures.downloads.append((name, time.perf_counter() - start, rows - 1))


def report(figures: Figures) -> list[str]:
    s = figures.seeded
    lines = [
        f"machine: {os.cpu_count()} cores (load {os.getloadavg()[0]:.1f}: other work shares"
        f" them); PostgreSQL {figures.postgres}, loopback, one server process,"
        f" programme {figures.program}",
        f"seeded in {s.seconds:.1f} s (COPY, then VACUUM ANALYZE): {s.members:,} members,"
        f" {s.identifiers:,} identifiers, {s.transactions:,} transactions, {s.operations:,}"
        f" sale operations (90 days), {s.totals:,} member_totals rows, {s.terminals}"
        f" terminals ({s.heartbeats} heartbeats), {s.flags} flags, {s.audit:,} audit entries",
    ]
    header = ("page", "p50 ms", "p95 ms", "max ms", "p95 < 200 ms")
    rows = [
        (
            name,
            f"{pct(samples, 0.5) * 1e3:.1f}",
            f"{pct(samples, 0.95) * 1e3:.1f}",
            f"{max(samples) * 1e3:.1f}",
            "yes" if pct(samples, 0.95) < GOAL_S else "NO",
        )
        for name, samples in figures.pages.items()
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    count = len(next(iter(figures.pages.values()), []))
    lines.append(f"{count} sequential requests a page after {WARM_UP} warm-up requests:")
    lines += [line.format(*header), line.format(*("-" * w for w in widths))]
    lines += [line.format(*row) for row in rows]
    expiring = (
        "not within 600 s"
        if figures.expiring_after_s is None
        else f"{figures.expiring_after_s * 1e3:.0f} ms after it"
    )
    lines.append(
        f"dashboard figures computed on the request (the first after the server started):"
        f" {figures.cold_dashboard_s * 1e3:.0f} ms; a request once they were 31 s old"
        f" (refreshed ahead on a thread): {figures.later_dashboard_s * 1e3:.0f} ms;"
        f" expiring figures (background thread) shown {expiring}"
    )
    lines.append("downloads (not pages; streamed whole):")
    for name, seconds, rows_read in figures.downloads:
        lines.append(
            f"  {name}: {rows_read:,} rows in {seconds:.2f} s = {rows_read / seconds:,.0f} rows/s"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--program",
        default="stars",
        help="the server's programme (stars: points expire after 12 months, tiers over a"
        " rolling 12 months: the dearest member page and expiring figures)",
    )
    args = parser.parse_args()
    reason = postgres_unavailable_reason()
    if reason:
        print(f"skipped: {reason}")
        return
    print(f"scale: {args.members:,} members, {args.transactions:,} transactions", flush=True)
    figures = measure(args.members, args.transactions, args.requests, args.program, args.seed)
    print("\n".join(report(figures)))


if __name__ == "__main__":
    main()
