"""Per-member totals, expiry that runs and the store's days, on a real SQLite ledger."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select

from pos_client.domain import uuid7
from pos_client.ledger import Ledger, make_engine, sqlite_url
from pos_client.ledger.ledger import Limits
from pos_client.ledger.schema import transactions
from pos_client.operations import GiveOp, OpRejected, RedemptionRequest
from tests.conftest import preset
from tests.integration.ledger_helpers import NOW, action_body, enroll, sale_body

RIGA = ZoneInfo("Europe/Riga")  # UTC+2 in winter, +3 in summer
HONOLULU = ZoneInfo("Pacific/Honolulu")  # UTC-10


def drop_units_columns(
    conn: Any, tables: tuple[str, ...] = ("transactions", "member_totals")
) -> None:
    """Back to version 5: no units or segments columns, nor version 7's merchant (SQLite
    3.35+ drops columns)."""
    conn.exec_driver_sql("ALTER TABLE transactions DROP COLUMN merchant")
    conn.exec_driver_sql("ALTER TABLE members DROP COLUMN guardian_consent")  # version 8's
    for table in tables:
        for column in ("units_milli", "segments"):
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")


def zoned_ledger(path: Path, program: str = "category_tiers", zone: ZoneInfo = RIGA) -> Ledger:
    ledger = Ledger(make_engine(sqlite_url(path)), preset(program), zone=zone)
    ledger.create_schema()
    return ledger


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]


def assert_totals_match_sums(ledger: Ledger, member_id: str, days: list[date]) -> None:
    with ledger.engine.connect() as conn:
        for day in days:
            assert ledger.stats(conn, member_id, day) == ledger.stats_from_transactions(
                conn, member_id, day
            ), day


@pytest.mark.parametrize("program", ["category_tiers", "stars", "wellness_blocks"])
def test_totals_equal_the_sums_they_replace_after_a_mixed_history(
    tmp_path: Path, program: str
) -> None:
    ledger = zoned_ledger(tmp_path / "l.sqlite", program)
    member = enroll(ledger, birthday=date(1990, 3, 1))
    start = NOW - timedelta(days=400)
    applied = 0
    for index in range(60):
        at = start + timedelta(days=index * 7, hours=index % 24)
        amount = f"{(index * 37) % 400 + 1}.{index % 100:02d}"
        try:
            ledger.apply(sale_body(member, amount, "cosmetics" if index % 3 else "", at=at))
            applied += 1
        except OpRejected:
            pass
        if program == "wellness_blocks" and index % 5 == 0:
            ledger.apply(action_body(member, "vaccination", at=at + timedelta(minutes=5)))
        if index % 9 == 4:  # spend some: redemptions never move the tier statistics
            balance = ledger.member(member).balance  # type: ignore[union-attr]
            request = (
                RedemptionRequest(blocks=1)
                if program == "wellness_blocks"
                else RedemptionRequest(reward_id="free-drink", points=15)
                if program == "stars"
                else None
            )
            if request is not None and balance >= 1000:
                with contextlib.suppress(OpRejected):  # a block may cost more than the sale
                    ledger.apply(sale_body(member, "50.00", at=at, redemption=request))
    ledger.run_expiry(NOW)
    assert applied > 40
    days = [NOW.date() - timedelta(days=offset) for offset in (0, 1, 31, 95, 200, 365, 366, 700)]
    days += [date(NOW.year, 1, 1), date(NOW.year - 1, 12, 31), date(NOW.year, 3, 1)]
    assert_totals_match_sums(ledger, member, days)
    assert ledger.balance_mismatches() == []


def test_an_embedded_ledger_from_before_the_totals_gains_them_backfilled(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    ledger = zoned_ledger(path)
    member = enroll(ledger)
    for index in range(12):
        ledger.apply(sale_body(member, "100.00", at=NOW - timedelta(days=30 * index)))
    with ledger.writer.begin() as conn:
        conn.exec_driver_sql("DROP TABLE member_totals")  # the previous release's database:
        conn.exec_driver_sql("DROP TABLE card_counters")  # no totals, no later tables,
        conn.exec_driver_sql("DROP TABLE member_pins")
        conn.exec_driver_sql("DROP TABLE member_tiers")
        conn.exec_driver_sql("DROP TABLE staff_awards")
        conn.exec_driver_sql("DROP TABLE staff_members")
        conn.exec_driver_sql("DROP INDEX ix_transactions_occurred_at")  # version 11's
        drop_units_columns(conn, ("transactions",))  # versions 6 and 7's
        conn.exec_driver_sql("DROP TABLE ledger_version")  # no version
    ledger.engine.dispose()
    reopened = zoned_ledger(path)
    view = reopened.member_view(member, NOW.date())
    assert view is not None and view.stats.visits_in_period == 11  # this calendar year's
    assert_totals_match_sums(reopened, member, [NOW.date(), NOW.date() - timedelta(days=200)])


def capped_ledger(path: Path, cap: int) -> Ledger:
    ledger = Ledger(
        make_engine(sqlite_url(path)),
        preset("category_tiers"),
        Limits(max_points_per_member_per_day=cap),
        zone=RIGA,
    )
    ledger.create_schema()
    return ledger


def test_the_daily_cap_reads_the_days_row_not_the_days_transactions(tmp_path: Path) -> None:
    """However many earnings a member has today, a sale reads one recorded-day row: no
    statement of the apply path reads the transactions table, and the cap still holds."""
    ledger = capped_ledger(tmp_path / "l.sqlite", cap=1_000)
    member = enroll(ledger)
    for _ in range(40):
        ledger.apply(sale_body(member, "10.00"))  # 10 points each: 400 today
    ledger.apply_many([sale_body(member, "10.00") for _ in range(40)])  # 800
    seen: list[str] = []
    event.listen(
        ledger.engine, "before_cursor_execute", lambda *args: seen.append(" ".join(args[2].split()))
    )
    ledger.apply(sale_body(member, "10.00"))
    ledger.apply_many([sale_body(member, "10.00") for _ in range(3)])
    reads = [sql for sql in seen if sql.startswith("SELECT") and "FROM transactions" in sql]
    assert reads == []
    with pytest.raises(OpRejected, match=r"\(840 today\)"):
        ledger.apply(sale_body(member, "2000.00"))
    [outcome] = ledger.apply_many([sale_body(member, "2000.00")])
    assert isinstance(outcome, OpRejected) and outcome.code == "limit_member_day"


def test_a_ledger_at_version_2_gains_todays_recorded_row_and_the_cap_counts_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.sqlite"
    ledger = capped_ledger(path, cap=1_000)
    member = enroll(ledger)
    ledger.apply_many([sale_body(member, "100.00") for _ in range(9)])  # 900 points today
    with ledger.writer.begin() as conn:  # the previous version: no recorded-day rows
        conn.exec_driver_sql("DELETE FROM member_totals WHERE grain = 'r'")
        conn.exec_driver_sql("DROP TABLE card_counters")  # version 4's
        conn.exec_driver_sql("DROP TABLE member_pins")  # version 5's
        conn.exec_driver_sql("DROP TABLE member_tiers")  # version 9's
        conn.exec_driver_sql("DROP TABLE staff_awards")  # version 10's
        conn.exec_driver_sql("DROP TABLE staff_members")
        conn.exec_driver_sql("DROP INDEX ix_transactions_occurred_at")  # version 11's
        drop_units_columns(conn)  # versions 6 and 7's
        conn.exec_driver_sql("UPDATE ledger_version SET version = 2")
    ledger.engine.dispose()
    reopened = capped_ledger(path, cap=1_000)
    with pytest.raises(OpRejected, match=r"\(900 today\)"):
        reopened.apply(sale_body(member, "200.00"))
    reopened.apply(sale_body(member, "100.00"))  # exactly the cap


def test_a_sale_at_23_30_local_on_31_december_counts_in_that_years_tier(tmp_path: Path) -> None:
    ledger = zoned_ledger(tmp_path / "l.sqlite")
    member = enroll(ledger)
    new_years_eve = local(RIGA, 2025, 12, 31, 23, 30)  # 21:30 UTC: the same day either way
    late = local(RIGA, 2026, 1, 1, 0, 30)  # 22:30 UTC on 31 December: 2026 in Riga
    ledger.apply(sale_body(member, "4000.00", at=new_years_eve))
    ledger.apply(sale_body(member, "10.00", at=late))
    last_year = ledger.member_view(member, date(2025, 12, 31))
    this_year = ledger.member_view(member, date(2026, 1, 1))
    assert last_year is not None and this_year is not None
    assert last_year.stats.spend_in_period == 4010  # every sale from 1 January 2025 on
    assert this_year.stats.spend_in_period == 10  # 00:30 local is the new year's
    assert (last_year.tier_id, this_year.tier_id) == ("platinum", "member")


def test_a_sale_at_23_30_local_west_of_utc_counts_in_that_years_tier(tmp_path: Path) -> None:
    ledger = zoned_ledger(tmp_path / "l.sqlite", zone=HONOLULU)
    member = enroll(ledger)
    late = local(HONOLULU, 2025, 12, 31, 23, 30)  # 09:30 UTC on 1 January 2026
    ledger.apply(sale_body(member, "4000.00", at=late))
    result = ledger.apply(sale_body(member, "10.00", at=local(HONOLULU, 2025, 12, 31, 23, 45)))
    assert result["tier"] == "platinum"  # the first sale is in 2025's period, as is this one
    january = ledger.apply(sale_body(member, "10.00", at=local(HONOLULU, 2026, 1, 1, 0, 5)))
    assert january["tier"] == "member"


def test_a_once_a_day_action_at_23_59_and_00_01_local_is_two_days(tmp_path: Path) -> None:
    ledger = zoned_ledger(tmp_path / "l.sqlite", "wellness_blocks")
    member = enroll(ledger)
    before = local(RIGA, 2026, 11, 20, 23, 59)  # 21:59 UTC
    after = local(RIGA, 2026, 11, 21, 0, 1)  # 22:01 UTC: the same UTC day as `before`
    assert ledger.apply(action_body(member, "vaccination", at=before))["points_earned"] == 500
    assert ledger.apply(action_body(member, "vaccination", at=after))["points_earned"] == 500
    with pytest.raises(OpRejected, match="already recorded"):
        ledger.apply(action_body(member, "vaccination", at=after + timedelta(hours=23)))


def test_the_birthday_begins_and_ends_at_local_midnight(tmp_path: Path) -> None:
    ledger = zoned_ledger(tmp_path / "l.sqlite", "stars")
    window = ledger.program.birthday.window_days
    member = enroll(ledger, birthday=date(1990, 3, 5))
    drink = RedemptionRequest(reward_id="birthday-drink")
    eve = local(RIGA, 2026, 3, 4, 23, 59)  # 21:59 UTC on 4 March
    with pytest.raises(OpRejected, match="birthday reward is not available"):
        ledger.apply(sale_body(member, "0.00", at=eve, redemption=drink))
    midnight = local(RIGA, 2026, 3, 5, 0, 1)  # 22:01 UTC on 4 March: the birthday in Riga
    assert ledger.apply(sale_body(member, "0.00", at=midnight, redemption=drink))["reward_id"]
    other = enroll(ledger, "m2", "p2", birthday=date(1990, 3, 5))
    last = date(2026, 3, 5) + timedelta(days=window)  # the first day after the window
    past = local(RIGA, last.year, last.month, last.day, 0, 1)  # still the window's in UTC
    with pytest.raises(OpRejected, match="birthday reward is not available"):
        ledger.apply(sale_body(other, "0.00", at=past, redemption=drink))


def test_points_expire_at_the_store_midnight_and_show_as_expiring_first(tmp_path: Path) -> None:
    ledger = zoned_ledger(tmp_path / "l.sqlite", "wellness_blocks")  # 12 months
    member = enroll(ledger)
    earned_at = local(RIGA, 2025, 12, 10, 0, 30)  # 22:30 UTC on 9 December
    ledger.apply(sale_body(member, "100.00", at=earned_at))  # 1000 points
    fresh = local(RIGA, 2026, 11, 1, 12, 0)
    ledger.apply(sale_body(member, "10.00", at=fresh))  # 100 points
    soon = ledger.member_view(member, date(2026, 11, 20))
    assert soon is not None and soon.points_expiring == 1000  # 10 December is within 30 days
    assert soon.expiring_on == date(2026, 12, 10)  # the store day they go
    far = ledger.member_view(member, date(2026, 11, 1))
    assert far is not None and far.points_expiring == 0
    assert ledger.run_expiry(local(RIGA, 2026, 12, 9, 23, 59)) == 0  # the day before, local
    assert ledger.run_expiry(local(RIGA, 2026, 12, 10, 0, 1)) == 1000  # 22:01 UTC, 9 Dec
    view = ledger.member_view(member, date(2026, 12, 10))
    assert view is not None and (view.balance, view.points_expiring) == (100, 0)
    with ledger.engine.connect() as conn:
        kinds = [row[0] for row in conn.execute(select(transactions.c.kind))]
    assert kinds.count("expire") == 1


def test_spent_points_are_not_expired_and_spending_uses_the_oldest_first(
    tmp_path: Path,
) -> None:
    ledger = zoned_ledger(tmp_path / "l.sqlite", "wellness_blocks")
    member = enroll(ledger)
    ledger.apply(sale_body(member, "600.00", at=NOW - timedelta(days=400)))  # 6000, old
    ledger.apply(sale_body(member, "50.00", at=NOW - timedelta(days=10)))  # 500, fresh
    redeemed = ledger.apply(
        sale_body(
            member, "20.00", at=NOW - timedelta(days=5), redemption=RedemptionRequest(blocks=1)
        )
    )
    assert redeemed["points_redeemed"] == 5000  # taken from the old points, first
    assert ledger.run_expiry(NOW) == 1000
    left = 500 + redeemed["points_earned"]
    assert ledger.member(member).balance == left  # type: ignore[union-attr]
    assert ledger.balance_mismatches() == []


def test_two_expiry_runs_at_once_expire_each_point_once(tmp_path: Path) -> None:
    ledger = zoned_ledger(tmp_path / "l.sqlite", "wellness_blocks")
    for index in range(30):
        member = enroll(ledger, f"m{index}", f"p{index}")
        ledger.apply(sale_body(member, "10.00", at=NOW - timedelta(days=400 + index)))
    other = zoned_ledger(tmp_path / "l.sqlite", "wellness_blocks")
    barrier = threading.Barrier(2)
    results: list[int] = []

    def run(target: Ledger) -> None:
        barrier.wait()
        results.append(sum(points for _m, points in target.expire(NOW, chunk=7)))

    threads = [threading.Thread(target=run, args=(each,)) for each in (ledger, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 30 * 100
    assert ledger.run_expiry(NOW) == 0
    assert ledger.balance_mismatches() == []


def test_giving_points_away_moves_the_balance_never_the_tier_statistics(tmp_path: Path) -> None:
    ledger = zoned_ledger(tmp_path / "l.sqlite", "wellness_blocks")
    member = enroll(ledger)
    ledger.apply(sale_body(member, "300.00", at=NOW - timedelta(days=3)))
    before = ledger.member_view(member, NOW.date())
    give = GiveOp(
        key=uuid7(),
        member_id=member,
        terminal_id="T",
        occurred_at=NOW,
        target_id="childrens-hospital",
        points=1000,
    )
    assert ledger.apply(give.to_body())["points_redeemed"] == 1000
    after = ledger.member_view(member, NOW.date())
    assert before is not None and after is not None
    assert (after.balance, after.stats) == (before.balance - 1000, before.stats)
    assert_totals_match_sums(ledger, member, [NOW.date()])
    assert ledger.balance_mismatches() == []
