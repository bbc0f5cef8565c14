"""A coalition's settlement for a period: per merchant, the points it issued, what became of
them, and the money one merchant owes another.

Who pays for a point: the merchant whose till issued it (a sale's earning, its birthday
bonus, an action); points no merchant issued (partner transfers in, a till of the operator)
are the operator's. A member's points are spent oldest first (as expiry counts them), so
every point spent or expired is some issuer's: when a member redeems points at merchant B
that merchant A issued, A owes B A's funding rate a point; points sent to a partner or a
charity are spent at the operator, who pays for them; spent at the issuer's own tills or
expired, they cost nothing more. For each merchant:

    outstanding at the start + issued - spent - expired = outstanding at the end

A row counts in the period in which it reached the ledger (its recorded time, store days),
so a closed period's report never changes when a late offline sale arrives. Points held
behind a membership gate count as issued and outstanding (they are owed, only not yet
spendable). Money is at the funding rates of the programme the report is made with.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from pos_client.ledger import totals
from pos_client.ledger.schema import transactions
from pos_client.rules import Coalition

OPERATOR = "operator"  # the operator's id in reports (no merchant may take it)
GATE_KINDS = frozenset({"hold", "release"})  # moves between held and spendable, not issuance
# Spent at the operator whatever till recorded them: the operator pays the partner/charity.
SPENT_AT_OPERATOR = frozenset({"transfer", "donate"})
# Partner transfers in and partner offers' bonus points: the operator's (partners fund them).
ISSUED_BY_OPERATOR = frozenset({"transfer_in", "offer"})
MAX_PERIOD_DAYS = 400


class Posting(NamedTuple):
    """One ledger row, in the order the ledger posted it."""

    member_id: str
    kind: str
    points: int
    merchant: str  # the till's merchant, "" = the operator
    in_period: bool  # recorded inside the period (False: before it)


@dataclass
class MerchantFigures:
    merchant: str
    name: str
    funding_rate: Decimal
    outstanding_at_start: int = 0
    issued: int = 0
    spent: int = 0  # its points spent anywhere (redeemed, or sent to partners and charities)
    expired: int = 0  # its points expired (or taken off otherwise)
    redeemed_here: int = 0  # points redeemed at its tills, whoever issued them
    owes: Decimal = Decimal(0)  # to other merchants, for its points they took
    owed: Decimal = Decimal(0)  # by other merchants, for their points it took

    @property
    def outstanding_at_end(self) -> int:
        return self.outstanding_at_start + self.issued - self.spent - self.expired

    @property
    def net(self) -> Decimal:
        """What it is owed less what it owes: positive, it receives; negative, it pays."""
        return self.owed - self.owes

    @property
    def liability_at_end(self) -> Decimal:
        return cents(self.outstanding_at_end * self.funding_rate)


@dataclass(frozen=True)
class Payment:
    """What `payer` owes `payee` for the period, both ways netted."""

    payer: str
    payee: str
    payer_points_at_payee: int  # the payer's points spent at the payee's tills
    payee_points_at_payer: int  # and the other way
    amount: Decimal


@dataclass
class Settlement:
    start: date
    end: date  # inclusive
    currency: str
    merchants: list[MerchantFigures]
    payments: list[Payment] = field(default_factory=list)  # netted per pair, payer -> payee

    def only(self, merchant: str) -> Settlement:
        """What one merchant may see: its own row and the payments it is a party to."""
        return Settlement(
            self.start,
            self.end,
            self.currency,
            [m for m in self.merchants if m.merchant == merchant],
            [p for p in self.payments if merchant in (p.payer, p.payee)],
        )


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def party(merchant: str) -> str:
    return merchant or OPERATOR


def settle(
    postings: Iterable[Posting],
    coalition: Coalition,
    start: date,
    end: date,
    currency: str,
) -> Settlement:
    """The settlement of `postings` (every row recorded before the period's end, ordered by
    member, then as posted): see the module's docstring."""
    figures: dict[str, MerchantFigures] = {}

    def of(merchant: str) -> MerchantFigures:
        found = figures.get(merchant)
        if found is None:
            known = coalition.merchant(merchant)
            name = (
                known.name if known else (coalition.operator if merchant == OPERATOR else merchant)
            )
            rate = coalition.funding_of("" if merchant == OPERATOR else merchant)
            found = figures[merchant] = MerchantFigures(merchant, name, rate)
        return found

    for merchant in (OPERATOR, *(m.id for m in coalition.merchants)):
        of(merchant)
    taken: dict[tuple[str, str], int] = {}  # (issuer, where spent) -> points, in the period
    lots: deque[list[object]] = deque()  # the current member's [issuer, points left]
    member = None
    for row in postings:
        if row.member_id != member:
            member, lots = row.member_id, deque()
        if row.kind in GATE_KINDS or row.points == 0:
            continue
        if row.points > 0:
            issuer = OPERATOR if row.kind in ISSUED_BY_OPERATOR else party(row.merchant)
            lots.append([issuer, row.points])
            figure = of(issuer)
            if row.in_period:
                figure.issued += row.points
            else:
                figure.outstanding_at_start += row.points
            continue
        spent_at = OPERATOR if row.kind in SPENT_AT_OPERATOR else party(row.merchant)
        is_spending = row.kind == "redeem" or row.kind in SPENT_AT_OPERATOR
        if row.kind == "redeem" and row.in_period:
            of(spent_at).redeemed_here += -row.points
        due = -row.points
        while due > 0 and lots:
            lot = lots[0]
            issuer, left = str(lot[0]), int(lot[1])  # type: ignore[call-overload]
            used = min(left, due)
            due -= used
            if used == left:
                lots.popleft()
            else:
                lot[1] = left - used
            figure = of(issuer)
            if not row.in_period:
                figure.outstanding_at_start -= used
            elif is_spending:
                figure.spent += used
                if issuer != spent_at:
                    taken[(issuer, spent_at)] = taken.get((issuer, spent_at), 0) + used
            else:
                figure.expired += used
        # A member's balance never goes below zero, so points spent are always some lot's;
        # were the ledger ever inconsistent, the excess is nobody's to settle.
    payments = _netted(taken, figures)
    for payment in payments:
        figures[payment.payer].owes += payment.amount
        figures[payment.payee].owed += payment.amount
    ordered = [
        figures[OPERATOR],
        *sorted((f for key, f in figures.items() if key != OPERATOR), key=lambda f: f.merchant),
    ]
    return Settlement(start, end, currency, ordered, payments)


def _netted(
    taken: dict[tuple[str, str], int], figures: dict[str, MerchantFigures]
) -> list[Payment]:
    """One payment per pair of merchants: what each owes the other, at each issuer's
    funding rate, netted; in cents."""
    pairs = sorted({(min(a, b), max(a, b)) for a, b in taken})
    payments = []
    for first, second in pairs:
        first_at_second = taken.get((first, second), 0)
        second_at_first = taken.get((second, first), 0)
        amount = cents(
            first_at_second * figures[first].funding_rate
            - second_at_first * figures[second].funding_rate
        )
        if amount >= 0:
            payments.append(Payment(first, second, first_at_second, second_at_first, amount))
        else:
            payments.append(Payment(second, first, second_at_first, first_at_second, -amount))
    return payments


def period_bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The store days `start`..`end` (inclusive) as UTC moments [from, to)."""
    if end < start:
        raise ValueError("the period ends before it starts")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise ValueError(f"a period of at most {MAX_PERIOD_DAYS} days")
    try:
        return totals.day_start(start, zone), totals.day_start(end + timedelta(days=1), zone)
    except OverflowError:  # the calendar's first or last days, in some zones
        raise ValueError("a period within the years 2 to 9998") from None


def ledger_postings(engine: Engine, begins: datetime, ends: datetime) -> Iterator[Posting]:
    """Every row recorded before `ends`, by member and in posting order, streamed."""
    query = (
        select(
            transactions.c.member_id,
            transactions.c.kind,
            transactions.c.points,
            transactions.c.merchant,
            transactions.c.recorded_at,
        )
        .where(transactions.c.recorded_at < ends)
        .order_by(transactions.c.member_id, transactions.c.id)
    )
    with engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=2000).execute(query)
        for member_id, kind, points, merchant, recorded_at in rows:
            yield Posting(member_id, kind, int(points), merchant, recorded_at >= begins)


def settlement_for(
    engine: Engine,
    coalition: Coalition,
    start: date,
    end: date,
    zone: ZoneInfo,
    currency: str,
) -> Settlement:
    """The settlement of the store days `start`..`end` (inclusive) from the ledger."""
    begins, ends = period_bounds(start, end, zone)
    return settle(ledger_postings(engine, begins, ends), coalition, start, end, currency)


CSV_COLUMNS = (
    "merchant",
    "name",
    "funding_rate",
    "outstanding_at_start",
    "issued",
    "spent",
    "expired",
    "outstanding_at_end",
    "redeemed_here",
    "owes",
    "owed",
    "net",
    "liability_at_end",
)
PAYMENT_COLUMNS = ("payer", "payee", "payer_points_at_payee", "payee_points_at_payer", "amount")


MONEY_COLUMNS = frozenset({"owes", "owed", "net"})
COUNT_COLUMNS = CSV_COLUMNS[3:9]  # points: numbers in the API's answer


def merchant_row(figure: MerchantFigures) -> dict[str, str]:
    row = {}
    for name in CSV_COLUMNS:
        value = getattr(figure, name)
        row[name] = str(cents(value) if name in MONEY_COLUMNS else value)
    return row


def payment_row(payment: Payment) -> dict[str, str]:
    return {
        "payer": payment.payer,
        "payee": payment.payee,
        "payer_points_at_payee": str(payment.payer_points_at_payee),
        "payee_points_at_payer": str(payment.payee_points_at_payer),
        "amount": str(payment.amount),
    }


def settlement_json(report: Settlement) -> dict[str, Any]:
    """The report as the API answers it: points as numbers, money as decimal text."""
    merchants = []
    for figure in report.merchants:
        row: dict[str, Any] = dict(merchant_row(figure))
        merchants.append(row | {name: int(row[name]) for name in COUNT_COLUMNS})
    return {
        "start": str(report.start),
        "end": str(report.end),
        "currency": report.currency,
        "merchants": merchants,
        "payments": [
            {
                **payment_row(payment),
                "payer_points_at_payee": payment.payer_points_at_payee,
                "payee_points_at_payer": payment.payee_points_at_payer,
            }
            for payment in report.payments
        ],
    }
