"""Per-member earning totals by store-local day, month and in all (table member_totals).

Tier rules count points of the earning kinds, spend, visits, units (kilometres, nights: in
thousandths) and segments (lines carrying units) of sales over a period; these rows hold
those sums (`Sums`, in that order), moved in the same transaction as each posting, so a
read is a handful of rows however long the member's history is.

Grains: "d" (the store day an operation occurred), "m" (its month), "a" (in all), and "r"
(the store day it was *recorded*, by the server's clock): points credited that day (the
daily cap) in `points` and earnings recorded that day (the review flag) in `visits`, so
neither rule sums the day's transactions.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Date, and_, bindparam, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from pos_client.ledger.schema import PerDialect, member_totals, one_of, transactions

EARNING_KINDS = ("earn", "birthday", "action")
# Count toward the daily cap (partner offers' bonus points too).
EARNED_KINDS = ("earn", "birthday", "action", "transfer_in", "offer", "award")
FLAGGED_KINDS = ("earn", "action", "transfer_in")  # count toward the review flag
ALL_START = date(1, 1, 1)  # the start of the lifetime row (grain "a")
RECORDED = "r"  # the grain of the store day an operation was recorded on


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """The store's calendar day of an aware moment."""
    return moment.astimezone(zone).date()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC moment the store's `day` begins (local midnight)."""
    return datetime.combine(day, time(), zone).astimezone(UTC)


@lru_cache(maxsize=16)
def day_and_start(moment: datetime, zone: ZoneInfo) -> tuple[date, datetime]:
    """The store day of `moment` and the UTC moment it began. Cached: a batch asks it for
    its one time (Ledger's BATCH_NOW) once per operation."""
    day = local_day(moment, zone)
    return day, day_start(day, zone)


def _month(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


# (points, spend in minor units, visits, units in thousandths, segments)
Sums = tuple[int, int, int, int, int]
SUM_FIELDS = ("points", "spend_minor", "visits", "units_milli", "segments")
NO_SUMS: Sums = (0, 0, 0, 0, 0)


def counts(
    kind: str, points: int, amount_minor: int, units_milli: int = 0, segments: int = 0
) -> Sums | None:
    """What a posting adds to the totals; None: nothing."""
    if kind == "earn":
        return points, amount_minor, 1, units_milli, segments
    if kind in EARNING_KINDS and points:
        return points, 0, 0, 0, 0
    return None


def recorded_counts(kind: str, points: int) -> Sums | None:
    """What a posting adds to its recorded day's row (points credited in `points`,
    earnings in `visits`); None: nothing."""
    credited = points if kind in EARNED_KINDS and points > 0 else 0
    earnings = 1 if kind in FLAGGED_KINDS else 0
    if not credited and not earnings:
        return None
    return credited, 0, earnings, 0, 0


def row_of(member_id: str, grain: str, start: date, sums: Any) -> dict[str, Any]:
    """A member_totals row: `sums` in the order of SUM_FIELDS."""
    points, spend_minor, visits, units_milli, segments = sums
    return {
        "member_id": member_id,
        "grain": grain,
        "start": start,
        "points": points,
        "spend_minor": spend_minor,
        "visits": visits,
        "units_milli": units_milli,
        "segments": segments,
    }


def recorded_row(member_id: str, day: date, added: Sums) -> dict[str, Any]:
    return row_of(member_id, RECORDED, day, added)


def _upsert(dialect: Any) -> Any:
    statement = dialect.insert(member_totals)
    return statement.on_conflict_do_update(
        index_elements=[member_totals.c.member_id, member_totals.c.grain, member_totals.c.start],
        set_={
            "points": member_totals.c.points + statement.excluded.points,
            "spend_minor": member_totals.c.spend_minor + statement.excluded.spend_minor,
            "visits": member_totals.c.visits + statement.excluded.visits,
            "units_milli": member_totals.c.units_milli + statement.excluded.units_milli,
            "segments": member_totals.c.segments + statement.excluded.segments,
        },
    )


# Built once: the compiled statements are cached, a sale pays for parameters only.
UPSERT = {"sqlite": _upsert(sqlite), "postgresql": _upsert(postgresql)}
_SUM_COLUMNS = (
    func.coalesce(func.sum(member_totals.c.points), 0),
    func.coalesce(func.sum(member_totals.c.spend_minor), 0),
    func.coalesce(func.sum(member_totals.c.visits), 0),
    func.coalesce(func.sum(member_totals.c.units_milli), 0),
    func.coalesce(func.sum(member_totals.c.segments), 0),
)
# The rows `read` sums: the lifetime row, or from the day `first` on (whole months from
# `whole` on, the first month's remaining days before it).
_ALL_ROWS = and_(member_totals.c.grain == "a", member_totals.c.start == ALL_START)
_ROWS_FROM = or_(
    and_(member_totals.c.grain == "m", member_totals.c.start >= bindparam("whole", type_=Date)),
    and_(
        member_totals.c.grain == "d",
        member_totals.c.start >= bindparam("first", type_=Date),
        member_totals.c.start < bindparam("whole", type_=Date),
    ),
)
_SUMS = select(*_SUM_COLUMNS).where(member_totals.c.member_id == bindparam("member_id"))
READ_ALL = _SUMS.where(_ALL_ROWS)
READ_FROM = _SUMS.where(_ROWS_FROM)


def _many(where: Any) -> PerDialect:
    """`_SUMS` per member for a list of members (bound as `ids`), grouped by member."""
    return PerDialect(
        lambda dialect: (
            select(member_totals.c.member_id, *_SUM_COLUMNS)
            .where(one_of(member_totals.c.member_id, "ids", dialect), where)
            .group_by(member_totals.c.member_id)
        )
    )


_READ_MANY_ALL = _many(_ALL_ROWS)
_READ_MANY_FROM = _many(_ROWS_FROM)
_READ_RECORDED = PerDialect(
    lambda dialect: select(
        member_totals.c.member_id, member_totals.c.points, member_totals.c.visits
    ).where(
        one_of(member_totals.c.member_id, "ids", dialect),
        member_totals.c.grain == RECORDED,
        member_totals.c.start == bindparam("day", type_=Date),
    )
)


_ACTIVE_MONTHS = select(member_totals.c.start).where(
    member_totals.c.member_id == bindparam("member_id"),
    member_totals.c.grain == "m",
    member_totals.c.visits > 0,
    member_totals.c.start <= bindparam("today", type_=Date),
)


def active_months(conn: Connection, member_id: str, today: date) -> list[date]:
    """The first days of the calendar months up to `today` in which the member bought
    (one row a month: a long membership costs a few hundred small rows at most)."""
    return [
        row[0] for row in conn.execute(_ACTIVE_MONTHS, {"member_id": member_id, "today": today})
    ]


def bump(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add rows (`rows_for`, `recorded_row`) to the member's totals: one upsert."""
    conn.execute(UPSERT[conn.dialect.name], rows)


def read_recorded(conn: Connection, member_ids: list[str], day: date) -> dict[str, tuple[int, int]]:
    """(points credited, earnings) recorded on the store day `day`, per member, one statement
    per 1,000 (a member with no row: not in the answer, zeros)."""
    found: dict[str, tuple[int, int]] = {}
    statement = _READ_RECORDED[conn.dialect.name]
    for first in range(0, len(member_ids), 1000):
        rows = conn.execute(statement, {"ids": member_ids[first : first + 1000], "day": day})
        found.update((row[0], (int(row[1]), int(row[2]))) for row in rows)
    return found


def read(conn: Connection, member_id: str, start: date | None) -> Sums:
    """The sums from the store-local day `start` on (None: in all): whole months from their
    month rows, the first month's remaining days from days."""
    if start is None:
        row = conn.execute(READ_ALL, {"member_id": member_id}).one()
    else:
        whole = start if start.day == 1 else _next_month(start)
        row = conn.execute(
            READ_FROM, {"member_id": member_id, "first": start, "whole": whole}
        ).one()
    points, spend, visits, units_milli, segments = row
    return int(points), int(spend), int(visits), int(units_milli), int(segments)


def read_many(conn: Connection, member_ids: list[str], start: date | None) -> dict[str, Sums]:
    """`read` for many members in one statement per 1,000 (a batch's members; a member with
    no rows yet is not in the answer: zeros)."""
    if start is None:
        statement = _READ_MANY_ALL[conn.dialect.name]
        bounds: dict[str, Any] = {}
    else:
        statement = _READ_MANY_FROM[conn.dialect.name]
        bounds = {"first": start, "whole": start if start.day == 1 else _next_month(start)}
    found: dict[str, Sums] = {}
    for first in range(0, len(member_ids), 1000):
        rows = conn.execute(statement, {"ids": member_ids[first : first + 1000], **bounds})
        found.update(
            (row[0], (int(row[1]), int(row[2]), int(row[3]), int(row[4]), int(row[5])))
            for row in rows
        )
    return found


def in_range(grain: str, row_start: date, start: date | None) -> bool:
    """Whether a totals row (grain, its start) is one `read` sums from `start` on."""
    if start is None:
        return grain == "a"
    whole = start if start.day == 1 else _next_month(start)
    if grain == "m":
        return row_start >= whole
    return grain == "d" and start <= row_start < whole


def rows_for(member_id: str, day: date, added: Sums) -> list[dict[str, Any]]:
    """The day, month and lifetime rows a posting on the store day `day` adds to."""
    return [
        row_of(member_id, grain, start, added)
        for grain, start in (("d", day), ("m", _month(day)), ("a", ALL_START))
    ]


def backfill(conn: Connection, zone: ZoneInfo) -> int:
    """Rebuild every member's totals from the transactions (the migration, an embedded ledger
    that predates the table, or a store that changed its time zone); returns rows written."""
    conn.execute(member_totals.delete())
    sums: dict[tuple[str, str, date], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    rows = conn.execute(
        select(
            transactions.c.member_id,
            transactions.c.kind,
            transactions.c.points,
            transactions.c.amount_minor,
            transactions.c.occurred_at,
            transactions.c.recorded_at,
            transactions.c.units_milli,
            transactions.c.segments,
        ).where(transactions.c.kind.in_(EARNED_KINDS))
    )
    for member_id, kind, points, amount_minor, occurred_at, recorded_at, units, segs in rows:
        recorded = recorded_counts(kind, int(points))
        if recorded is not None:
            total = sums[(member_id, RECORDED, local_day(recorded_at, zone))]
            for index, value in enumerate(recorded):
                total[index] += value
        added = counts(kind, int(points), int(amount_minor), int(units), int(segs))
        if added is None:
            continue
        day = local_day(occurred_at, zone)
        for key in (
            (member_id, "d", day),
            (member_id, "m", _month(day)),
            (member_id, "a", ALL_START),
        ):
            total = sums[key]
            for index, value in enumerate(added):
                total[index] += value
    values = [
        row_of(member_id, grain, start, total) for (member_id, grain, start), total in sums.items()
    ]
    for chunk in range(0, len(values), 1000):
        conn.execute(member_totals.insert(), values[chunk : chunk + 1000])
    return len(values)
