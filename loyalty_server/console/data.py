"""What the console's pages show, read from the store's database: plain functions over an
engine (and the ledger for member views), returning small dataclasses."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, case, distinct, func, or_, select

from pos_client.domain import mask_tail
from pos_client.ledger import totals
from pos_client.ledger.schema import identifiers, members, transactions
from pos_client.rules import Program

log = logging.getLogger("loyalty_server.console")
DAYS = 30
T = TypeVar("T")


@dataclass(frozen=True)
class DayFigures:
    day: date
    sales: int = 0
    earned: int = 0
    spent: int = 0
    active: int = 0
    enrolled: int = 0
    net: int = 0  # every posting's points: what the liability moved by


@dataclass(frozen=True)
class Dashboard:
    today: DayFigures
    period: DayFigures  # the last DAYS days together (active: distinct members)
    days: list[DayFigures]  # oldest first, today last
    liability: list[tuple[date, int]]  # outstanding points at each day's end
    balance: int  # outstanding points now
    members: int
    point_value: Decimal | None  # money per point, when the programme spends points as money
    as_of: datetime

    def money(self, points: int) -> Decimal | None:
        return (
            None
            if self.point_value is None
            else (points * self.point_value).quantize(Decimal("0.01"))
        )


def point_value(program: Program) -> Decimal | None:
    pam = program.points_as_money
    return None if pam is None else pam.block_value / pam.block_points


def day_starts(today: date, zone: ZoneInfo, count: int) -> list[datetime]:
    """The UTC starts of the `count` store days ending today, and of tomorrow (count + 1)."""
    first = today - timedelta(days=count - 1)
    return [totals.day_start(first + timedelta(days=i), zone) for i in range(count + 1)]


def bucket(column: Any, starts: list[datetime]) -> Any:
    """Which day (0 = the first) `column` falls on, given the days' UTC starts: a CASE that
    reads alike on SQLite and PostgreSQL (store days are not UTC days)."""
    return case(*((column < start, index) for index, start in enumerate(starts[1:])), else_=-1)


def dashboard(engine: Engine, program: Program, zone: ZoneInfo, now: datetime) -> Dashboard:
    today = totals.local_day(now, zone)
    starts = day_starts(today, zone, DAYS)
    since, until = starts[0], starts[-1]
    when = transactions.c.occurred_at
    tx_day = bucket(when, starts).label("b")
    positive = (transactions.c.points > 0) & (transactions.c.kind != "adjust")
    negative = (transactions.c.points < 0) & transactions.c.kind.not_in(("expire", "adjust"))
    # A sale with loyalty: one that earned or spent points (its rows share its key).
    sale_row = transactions.c.kind.in_(("earn", "redeem"))
    by_day: dict[int, dict[str, int]] = {i: {} for i in range(DAYS)}
    with engine.connect() as conn:
        for row in conn.execute(
            select(
                tx_day,
                func.coalesce(func.sum(case((positive, transactions.c.points), else_=0)), 0),
                func.coalesce(func.sum(case((negative, -transactions.c.points), else_=0)), 0),
                func.count(
                    distinct(case((transactions.c.kind != "expire", transactions.c.member_id)))
                ),
                func.coalesce(func.sum(transactions.c.points), 0),
                func.count(distinct(case((sale_row, transactions.c.op_key)))),
            )
            .where(when >= since, when < until)
            .group_by(tx_day)
        ):
            by_day.setdefault(row[0], {}).update(
                earned=int(row[1]),
                spent=int(row[2]),
                active=int(row[3]),
                net=int(row[4]),
                sales=int(row[5]),
            )
        enrol_day = bucket(members.c.enrolled_at, starts).label("b")
        for row in conn.execute(
            select(enrol_day, func.count())
            .where(members.c.enrolled_at >= since, members.c.enrolled_at < until)
            .group_by(enrol_day)
        ):
            by_day.setdefault(row[0], {})["enrolled"] = int(row[1])
        active = int(
            conn.execute(
                select(func.count(distinct(transactions.c.member_id))).where(
                    when >= since, when < until, transactions.c.kind != "expire"
                )
            ).scalar_one()
        )
        balance, count = conn.execute(
            select(func.coalesce(func.sum(members.c.balance), 0), func.count())
        ).one()
        # Postings dated after today (a terminal's clock ahead) are in the balance too.
        later = int(
            conn.execute(
                select(func.coalesce(func.sum(transactions.c.points), 0)).where(when >= until)
            ).scalar_one()
        )
    days = [
        DayFigures(today - timedelta(days=DAYS - 1 - i), **by_day.get(i, {})) for i in range(DAYS)
    ]
    liability = []
    outstanding = int(balance) - later
    for figures in reversed(days):
        liability.append((figures.day, outstanding))
        outstanding -= figures.net
    liability.reverse()
    period = DayFigures(
        days[0].day,
        sales=sum(d.sales for d in days),
        earned=sum(d.earned for d in days),
        spent=sum(d.spent for d in days),
        active=active,
        enrolled=sum(d.enrolled for d in days),
        net=sum(d.net for d in days),
    )
    return Dashboard(
        days[-1], period, days, liability, int(balance), int(count), point_value(program), now
    )


class Cached(Generic[T]):
    """A value computed at most every `ttl` seconds in this process (dashboards read the
    whole ledger; a manager pressing reload need not), never older than `ttl` when given.

    Once asked for, it is recomputed ahead on a thread before it gets `ttl` old, for as long
    as it keeps being asked for (`idle` seconds at most without a request): a page waits for
    the computation only the first time, or after a quiet spell."""

    def __init__(self, compute: Callable[[], T], ttl: float, idle: float = 600.0) -> None:
        self._compute = compute
        self._ttl = ttl
        self._idle = idle
        self._value: tuple[float, T] | None = None
        self._asked = 0.0
        self._refreshing = False
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            self._asked = time.monotonic()
            if self._value is None or time.monotonic() - self._value[0] > self._ttl:
                started = time.monotonic()
                self._value = (started, self._compute())
            if not self._refreshing:
                self._refreshing = True
                threading.Thread(target=self._refresh, name="console-cache", daemon=True).start()
            return self._value[1]

    def _refresh(self) -> None:
        """Recompute at 3/4 of `ttl`, while asked for: the value stays younger than `ttl`."""
        try:
            while True:
                with self._lock:
                    computed = self._value[0] if self._value else 0.0
                    if time.monotonic() - self._asked > self._idle:
                        return
                wait = computed + self._ttl * 0.75 - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                    continue
                started = time.monotonic()
                value = self._compute()
                with self._lock:
                    if self._value is None or self._value[0] < started:
                        self._value = (started, value)
        except Exception:  # the next page computes it itself, and starts a refresher again
            log.exception("console figures: refreshing ahead failed")
            return
        finally:
            with self._lock:
                self._refreshing = False


class Background(Generic[T]):
    """A slow value (points expiring across every member) computed on a thread, at most
    every `ttl` seconds: a page shows the last one, or none yet, and never waits for it."""

    def __init__(self, compute: Callable[[], T], ttl: float) -> None:
        self._compute = compute
        self._ttl = ttl
        self._value: tuple[float, T] | None = None
        self._running = False
        self._lock = threading.Lock()

    def peek(self) -> T | None:
        with self._lock:
            stale = self._value is None or time.monotonic() - self._value[0] > self._ttl
            if stale and not self._running:
                self._running = True
                threading.Thread(target=self._run, name="console-figures", daemon=True).start()
            return None if self._value is None else self._value[1]

    def _run(self) -> None:
        try:
            value = self._compute()
            with self._lock:
                self._value = (time.monotonic(), value)
        finally:
            with self._lock:
                self._running = False


# ---------------------------------------------------------------- members


@dataclass(frozen=True)
class MemberRow:
    id: str
    first_name: str
    last_name: str
    phone_last: str
    card_number: str | None
    balance: int
    enrolled_at: datetime


MEMBER_ROW = select(
    members.c.id,
    members.c.first_name,
    members.c.last_name,
    members.c.phone_last,
    members.c.card_number,
    members.c.balance,
    members.c.enrolled_at,
)
MAX_RESULTS = 50
DIGITS = re.compile(r"[0-9]{2,4}")


def by_ids(engine: Engine, ids: list[str]) -> list[MemberRow]:
    if not ids:
        return []
    with engine.connect() as conn:
        rows = conn.execute(MEMBER_ROW.where(members.c.id.in_(ids[:MAX_RESULTS]))).all()
    return [MemberRow(*row) for row in rows]


def by_name_and_digits(engine: Engine, first_name: str, digits: str) -> list[MemberRow]:
    """Members of this first name (any case) whose phone ends with `digits` (2 to 4; the
    ledger keeps a phone's last 2 to 4 digits)."""
    if not DIGITS.fullmatch(digits) or not 1 <= len(first_name) <= 80:
        return []
    with engine.connect() as conn:
        rows = conn.execute(
            MEMBER_ROW.where(
                func.lower(members.c.first_name) == first_name.strip().lower(),
                members.c.phone_last != "",
                or_(
                    members.c.phone_last == digits,
                    members.c.phone_last == digits[-2:],
                    members.c.phone_last.like(f"%{digits}"),
                ),
            ).limit(MAX_RESULTS * 4)
        ).all()
    found = [MemberRow(*row) for row in rows]
    # A stored '45' matches typed '2345'; a stored '2345' matches '45' or '345' or '2345'.
    return [m for m in found if m.phone_last.endswith(digits) or digits.endswith(m.phone_last)][
        :MAX_RESULTS
    ]


@dataclass(frozen=True, order=True)
class CardRow:
    kind: str
    shown: str  # masked: the last 4 characters
    blocked: bool


def member_cards(engine: Engine, member_id: str) -> list[CardRow]:
    from pos_client.ledger.ledger import (
        BLOCKED_CARD_NUMBER,
        BLOCKED_CARD_UID,
        CARD_KINDS,
        PRINTED_CARD_KINDS,
    )

    blocked = (BLOCKED_CARD_UID, BLOCKED_CARD_NUMBER)
    kinds = (*CARD_KINDS, *PRINTED_CARD_KINDS, *blocked)
    with engine.connect() as conn:
        rows = conn.execute(
            select(identifiers.c.kind, identifiers.c.value).where(
                identifiers.c.member_id == member_id, identifiers.c.kind.in_(kinds)
            )
        ).all()
    return sorted(CardRow(kind, mask_tail(value, 4), kind in blocked) for kind, value in rows)


@dataclass(frozen=True)
class HistoryRow:
    occurred_at: datetime
    kind: str
    points: int
    amount_minor: int
    reward_id: str | None


def member_history(engine: Engine, member_id: str, limit: int = 50) -> list[HistoryRow]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                transactions.c.occurred_at,
                transactions.c.kind,
                transactions.c.points,
                transactions.c.amount_minor,
                transactions.c.reward_id,
            )
            .where(transactions.c.member_id == member_id)
            .order_by(transactions.c.occurred_at.desc(), transactions.c.id.desc())
            .limit(limit)
        ).all()
    return [HistoryRow(*row) for row in rows]


CARD_UID = re.compile(r"(?:[0-9A-F]{2}){4,10}")
CARD_NUMBER = re.compile(r"[0-9A-Za-z]{4,64}")


def card_problem(kind: str, value: str) -> str | None:
    checks = {"card_uid": CARD_UID, "card_number": CARD_NUMBER}
    pattern = checks.get(kind)
    if pattern is None:
        return "a card is linked by its UID or its number"
    if not pattern.fullmatch(value):
        return (
            "a card UID is 8 to 20 hex digits"
            if kind == "card_uid"
            else "a card number is 4 to 64 letters or digits"
        )
    if kind == "card_number" and value.isdigit() and len(value) in (8, 12, 13):
        from pos_client.identify import IdentifyError, parse_ean

        try:  # an EAN/UPC number a till would refuse is no card to link
            parse_ean(value)
        except IdentifyError:
            return "the card number's check digit is wrong (mistyped?)"
    return None
