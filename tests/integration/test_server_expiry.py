"""Expiry on the store server: `loyalty-server expire` as cron runs it (a real process, on
SQLite and PostgreSQL, two at once), the members' view and history over HTTP, the
in-process schedule, and the store's time zone setting."""

from __future__ import annotations

import subprocess
import threading
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from loyalty_server.cli import migrate
from loyalty_server.settings import ServerSettings
from pos_client.domain import Consent, Purchase, PurchaseLine, utcnow, uuid7
from pos_client.ledger import Ledger, make_engine
from pos_client.ledger.expiry import ExpirySchedule, next_run, parse_time_of_day
from pos_client.operations import EnrollOp, SaleOp
from pos_client.program import load_program
from tests.conftest import CONFIG_DIR, REPO
from tests.integration.server_helpers import (
    PostgresCluster,
    ServerProcess,
    postgres_unavailable_reason,
)

PG_REASON = postgres_unavailable_reason()
RIGA = "Europe/Riga"


def stars_ledger(url: str) -> Ledger:
    return Ledger(make_engine(url), load_program("stars", CONFIG_DIR), zone=ZoneInfo(RIGA))


def member_with_stars(ledger: Ledger, handle: str, earned_days_ago: list[int]) -> str:
    member_id = f"member-{handle}"
    joined = utcnow() - timedelta(days=800)
    ledger.apply(
        EnrollOp(
            key=uuid7(),
            member_id=member_id,
            first_name="Anna",
            last_name="Karenina",
            phone_key=f"phone-{handle}",
            phone_last="89",
            card_number=f"29000000{handle}",
            consent=Consent("terms", joined, "test"),
            occurred_at=joined,
        ).to_body()
    )
    for days in earned_days_ago:
        ledger.apply(
            SaleOp(
                key=uuid7(),
                member_id=member_id,
                terminal_id="T",
                occurred_at=utcnow() - timedelta(days=days),
                purchase=Purchase((PurchaseLine(Decimal("4.50"), ""),)),
            ).to_body()
        )
    return member_id


def expire_command(server: ServerProcess, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        server.command("expire", *args),
        cwd=REPO,
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_expire_command_expires_once_even_run_twice_at_once(
    database_url: str, tmp_path: Path
) -> None:
    ledger = stars_ledger(database_url)
    old = [member_with_stars(ledger, f"{index:05d}", [400, 390, 5]) for index in range(12)]
    fresh = member_with_stars(ledger, "99999", [20])
    ledger.engine.dispose()
    server = ServerProcess(
        database_url, tmp_path, LOYALTY_SERVER_PROGRAM="stars", LOYALTY_SERVER_TIMEZONE=RIGA
    )
    runs = [expire_command(server), expire_command(server)]  # cron on two servers at once
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _out, err in outputs]
    lines = [line for out, _err in outputs for line in out.splitlines()]
    expired = {line.split()[1].rstrip(":"): line for line in lines if line.startswith("member ")}
    assert sorted(expired) == sorted(old) and fresh not in expired
    ledger = stars_ledger(database_url)
    for member_id in old:
        record = ledger.member(member_id)
        assert record is not None and record.balance == 1  # the star of 5 days ago
    assert ledger.balance_mismatches() == []
    text = "\n".join(out + err for out, err in outputs)
    assert "29000000" not in text and "phone-" not in text  # no card or phone, ever
    again = expire_command(server, "--as-of", date.today().isoformat())
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert "expired 0 point(s) of 0 member(s)" in out


def test_members_see_what_expires_soon_and_expiry_in_their_history(
    database_url: str, tmp_path: Path
) -> None:
    ledger = stars_ledger(database_url)
    soon = member_with_stars(ledger, "00001", [400, 355, 355, 3])  # two due in ~10 days
    ledger.run_expiry(utcnow())
    ledger.engine.dispose()
    server = ServerProcess(
        database_url, tmp_path, LOYALTY_SERVER_PROGRAM="stars", LOYALTY_SERVER_TIMEZONE=RIGA
    )
    server.start()
    try:
        token = server.pair()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        view = requests.get(f"{server.url}/v1/members/{soon}", headers=auth, timeout=10).json()
        history = requests.get(
            f"{server.url}/v1/members/{soon}/history", headers=auth, timeout=10
        ).json()
    finally:
        server.stop()
    assert (view["balance"], view["points_expiring"]) == (3, 2)
    due = date.fromisoformat(view["expiring_on"])  # the terminal shows the day too
    assert 8 <= (due - utcnow().date()).days <= 11
    assert [item["points"] for item in history if item["kind"] == "expire"] == [-1]


def test_a_server_refuses_a_time_zone_it_does_not_know(tmp_path: Path) -> None:
    server = ServerProcess(
        f"sqlite+pysqlite:///{tmp_path}/s.sqlite", tmp_path, LOYALTY_SERVER_TIMEZONE="Mars/Base"
    )
    run = expire_command(server)
    _out, err = run.communicate(timeout=60)
    assert run.returncode == 2
    assert "LOYALTY_SERVER_TIMEZONE" in err and "Traceback" not in err
    with pytest.raises(ValueError, match="HH:MM"):
        ServerSettings(expiry_time="25")
    with pytest.raises(ValueError, match="not a time of day"):
        parse_time_of_day("24:00")


def test_the_daily_run_is_at_the_stores_local_time() -> None:
    riga = ZoneInfo(RIGA)
    at = time(3, 30)
    winter = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)  # 04:00 in Riga: today's run is past
    assert next_run(winter, at, riga) == datetime(2026, 1, 11, 1, 30, tzinfo=UTC)
    summer = datetime(2026, 7, 10, 0, 0, tzinfo=UTC)  # 03:00 in Riga (UTC+3)
    assert next_run(summer, at, riga) == datetime(2026, 7, 10, 0, 30, tzinfo=UTC)
    # 29 March 2026: Riga's clocks jump from 03:00 to 04:00, 03:30 never shows.
    spring = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)  # 02:00 local
    assert next_run(spring, at, riga) - spring <= timedelta(hours=2)


def test_the_schedule_expires_points_when_its_time_comes(tmp_path: Path) -> None:
    url = f"sqlite+pysqlite:///{tmp_path}/s.sqlite"
    migrate(url)
    ledger = stars_ledger(url)
    member = member_with_stars(ledger, "00001", [400, 2])
    riga = ZoneInfo(RIGA)
    fire = datetime.combine(date(2026, 11, 26), time(3, 30), riga)
    ticks = iter([fire - timedelta(seconds=0.3), fire, fire + timedelta(days=1, seconds=-0.2)])
    done = threading.Event()

    def clock() -> datetime:
        moment = next(ticks, None)
        if moment is None:  # the next day's run has come: nothing more is due
            done.set()
            return fire + timedelta(days=1, seconds=-0.2)
        return moment

    schedule = ExpirySchedule(ledger, time(3, 30), clock=clock)
    schedule.start()
    try:
        assert done.wait(10)
    finally:
        schedule.stop()
    record = ledger.member(member)
    assert record is not None and record.balance == 1
    assert ledger.balance_mismatches() == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0005_backfills_the_totals_from_existing_transactions(
    backend: str, tmp_path: Path, postgres: PostgresCluster | None
) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from loyalty_server.cli import MIGRATIONS

    if backend == "sqlite":
        url = f"sqlite+pysqlite:///{tmp_path}/old.sqlite"
    else:
        if postgres is None:
            pytest.skip(PG_REASON or "")
        url = postgres.new_database()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0003")  # the previous release's schema: no member_totals
    engine = make_engine(url)
    riga = ZoneInfo(RIGA)
    late = datetime(2025, 12, 31, 23, 30, tzinfo=riga).astimezone(UTC)  # 2025 in Riga
    early = datetime(2026, 1, 1, 0, 30, tzinfo=riga).astimezone(UTC)  # 2026 in Riga
    stamp = (lambda moment: moment.replace(tzinfo=None)) if backend == "sqlite" else (lambda m: m)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO members (id, first_name, last_name, phone_last, enrolled_at,"
                " consent_text_id, consent_at, consent_channel, marketing, balance) VALUES"
                " ('m1', 'Anna', 'K', '89', :at, 'terms', :at, 'test', false, 600)"
            ),
            {"at": stamp(late - timedelta(days=30))},
        )
        for kind, points, amount, at in (
            ("earn", 400, 40000, late),
            ("earn", 100, 10000, early),
            ("action", 200, 0, early),
            ("redeem", -100, 0, early),
        ):
            conn.execute(
                text(
                    "INSERT INTO transactions (member_id, kind, points, amount_minor,"
                    " occurred_at, recorded_at) VALUES ('m1', :kind, :points, :amount, :at, :at)"
                ),
                {"kind": kind, "points": points, "amount": amount, "at": stamp(at)},
            )
    engine.dispose()
    subprocess.run(
        [*ServerProcess(url, tmp_path).command("migrate")],
        cwd=REPO,
        env={**ServerProcess(url, tmp_path).env, "LOYALTY_SERVER_TIMEZONE": RIGA},
        check=True,
        capture_output=True,
        timeout=120,
    )
    ledger = Ledger(make_engine(url), load_program("category_tiers", CONFIG_DIR), zone=riga)
    with ledger.engine.connect() as conn:
        for day in (date(2025, 12, 31), date(2026, 1, 1), date(2026, 6, 1)):
            assert ledger.stats(conn, "m1", day) == ledger.stats_from_transactions(conn, "m1", day)
        assert ledger.stats(conn, "m1", date(2025, 12, 31)).visits_in_period == 2
        new_year = ledger.stats(conn, "m1", date(2026, 1, 1))
    assert (new_year.points_in_period, new_year.visits_in_period) == (300, 1)
    ledger.engine.dispose()


def test_expiry_is_never_run_ahead_of_the_calendar(database_url: str, tmp_path: Path) -> None:
    """`--as-of` a day after today is refused with its reason and expires nothing (an
    outside review wiped every balance with `--as-of 2030-01-01`: expiry cannot be undone)."""
    ledger = stars_ledger(database_url)
    member = member_with_stars(ledger, "00042", [20, 5])
    ledger.engine.dispose()
    server = ServerProcess(
        database_url, tmp_path, LOYALTY_SERVER_PROGRAM="stars", LOYALTY_SERVER_TIMEZONE=RIGA
    )
    run = expire_command(server, "--as-of", "2030-01-01")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 2 and out == ""
    assert "--as-of 2030-01-01: after today" in err and "Traceback" not in err
    ledger = stars_ledger(database_url)
    record = ledger.member(member)
    assert record is not None and record.balance == 2
    ledger.engine.dispose()
