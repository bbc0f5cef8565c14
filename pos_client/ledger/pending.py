"""A batch's writes held in memory and flushed once, set-based (issue 15, item 2).

While a batch is applied without savepoints, each operation stages the rows it writes
(transactions, its idempotency record, totals, birthday grants, its balance move) here
instead of sending a statement each; at the end of the batch they go to the database in a
handful of executemany statements. The state an operation reads (balance, tier totals,
points of the day, action counts, birthday grants) is the database's, read once per batch
where it can be, plus what the batch's earlier operations staged: the rules decide exactly
as if every operation had been written at once.

An operation's staged rows join the batch only when it succeeds (`commit_op`): one refused
half way leaves nothing behind, with no savepoint. Reads are exact because every row they
sum belongs to a member whose row the batch holds locked (or to a member the batch itself
enrolled), so no other transaction changes them until the batch commits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam

from pos_client.ledger import totals
from pos_client.ledger.schema import birthday_grants, members, operations, transactions
from pos_client.ledger.totals import Sums

PENDING = "pos_client.ledger.pending"  # Connection.info key, while a batch is buffered

# Built once: compiled once per process, a flush pays for parameters only.
_MOVE_BALANCE = (
    members.update()
    .where(members.c.id == bindparam("m_id"))
    .values(balance=members.c.balance + bindparam("m_delta"))
)


class FlushRefused(Exception):
    """The database refused a flushed row (a unique key, a value out of range): the batch
    is applied again with a savepoint per operation, so each gets its own outcome."""


class PendingClaim(NamedTuple):
    """A staged idempotency record, shaped as the row `_previous_from` reads."""

    body_hash: str
    result: str
    terminal_id: str


@dataclass
class _OpWrites:
    transactions: list[dict[str, Any]] = field(default_factory=list)
    totals: list[dict[str, Any]] = field(default_factory=list)
    balances: dict[str, tuple[int, int]] = field(default_factory=dict)  # delta, new balance
    claims: list[dict[str, Any]] = field(default_factory=list)
    grants: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BatchWrites:
    """What a batch has staged, and what it has read once from the database."""

    transactions: list[dict[str, Any]] = field(default_factory=list)
    by_member: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    totals: dict[tuple[str, str, date], list[int]] = field(default_factory=dict)
    totals_by_member: dict[str, set[tuple[str, date]]] = field(
        default_factory=lambda: defaultdict(set)
    )
    deltas: dict[str, int] = field(default_factory=dict)  # balance moves per member
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)  # by key
    grants: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    # Read once from the database (constant during the batch: see the module's docstring).
    stats_read: dict[tuple[str, date | None], Sums] = field(default_factory=dict)
    day_read: dict[tuple[str, date], int] = field(default_factory=dict)  # by store day
    # Earnings recorded on the day before the batch, read with day_read (the review flag).
    earnings_read: dict[tuple[str, date], int] = field(default_factory=dict)
    birthday_read: dict[tuple[str, int], bool] = field(default_factory=dict)
    op: _OpWrites = field(default_factory=_OpWrites)

    # ------------------------------------------------------------ one operation

    def begin_op(self) -> None:
        self.op = _OpWrites()

    def abort_op(self) -> None:
        self.op = _OpWrites()

    def commit_op(self) -> dict[str, int]:
        """The operation succeeded: its rows join the batch. Returns its members' new
        balances (for the batch's member cache)."""
        op, self.op = self.op, _OpWrites()
        self.transactions.extend(op.transactions)
        for row in op.transactions:
            self.by_member[row["member_id"]].append(row)
        for row in op.totals:
            key = (row["member_id"], row["grain"], row["start"])
            total = self.totals.get(key)
            if total is None:
                self.totals[key] = [row[name] for name in totals.SUM_FIELDS]
                self.totals_by_member[row["member_id"]].add((row["grain"], row["start"]))
            else:
                for index, name in enumerate(totals.SUM_FIELDS):
                    total[index] += row[name]
        for row in op.claims:
            self.claims[row["key"]] = row
        for row in op.grants:
            self.grants[(row["member_id"], row["year"])] = row
        for member_id, (delta, _balance) in op.balances.items():
            self.deltas[member_id] = self.deltas.get(member_id, 0) + delta
        return {member_id: balance for member_id, (_delta, balance) in op.balances.items()}

    def stage_transaction(self, row: dict[str, Any], sums: list[dict[str, Any]]) -> None:
        """A transaction and the totals rows it adds to (`totals.rows_for`, `recorded_row`)."""
        self.op.transactions.append(row)
        self.op.totals.extend(sums)

    def stage_balance(self, member_id: str, delta: int, balance: int) -> None:
        earlier = self.op.balances.get(member_id, (0, 0))[0]
        self.op.balances[member_id] = (earlier + delta, balance)

    def staged_balance(self, member_id: str) -> int | None:
        """This operation's own balance for the member so far (None: not moved yet)."""
        moved = self.op.balances.get(member_id)
        return None if moved is None else moved[1]

    def stage_claim(self, row: dict[str, Any]) -> None:
        self.op.claims.append(row)

    def stage_grant(self, row: dict[str, Any]) -> None:
        self.op.grants.append(row)

    # ------------------------------------------------------------ reads

    def claim(self, key: str) -> PendingClaim | None:
        row = self.claims.get(key)
        if row is None:
            return None
        return PendingClaim(row["body_hash"], row["result"], row["terminal_id"])

    def granted(self, member_id: str, year: int) -> bool:
        """Whether the batch (or this operation) has given this birthday year already."""
        return (member_id, year) in self.grants or any(
            row["member_id"] == member_id and row["year"] == year for row in self.op.grants
        )

    def staged_totals(self, member_id: str, start: date | None) -> Sums:
        """The batch's totals for the member from the store day `start` on (None: in all)."""
        points = spend = visits = units = segments = 0
        for grain, row_start in self.totals_by_member.get(member_id, ()):
            if totals.in_range(grain, row_start, start):
                total = self.totals[(member_id, grain, row_start)]
                points += total[0]
                spend += total[1]
                visits += total[2]
                units += total[3]
                segments += total[4]
        return points, spend, visits, units, segments

    def active_months(self, member_id: str) -> set[date]:
        """The months in which the batch staged a sale for the member."""
        return {
            start
            for grain, start in self.totals_by_member.get(member_id, ())
            if grain == "m" and self.totals[(member_id, grain, start)][2] > 0
        }

    def staged_rows(self, member_id: str) -> list[dict[str, Any]]:
        """The member's transactions staged by the batch's earlier operations."""
        return self.by_member.get(member_id, [])

    def earnings_on(self, day: date) -> dict[str, int]:
        """Members' earnings recorded on `day` with the batch's (those read ahead)."""
        return {
            member_id: read + self.totals.get((member_id, totals.RECORDED, day), (0, 0, 0))[2]
            for (member_id, read_day), read in self.earnings_read.items()
            if read_day == day
        }

    # ------------------------------------------------------------ the flush

    def flush(self, conn: Connection) -> None:
        """Send what the batch staged, rows in key order (two concurrent batches never wait
        for each other in a cycle): on PostgreSQL one statement per table over arrays
        (unnest), elsewhere one executemany per table."""
        claims = [self.claims[key] for key in sorted(self.claims)]
        sums: list[tuple[Any, ...]] = [
            (member_id, grain, start, *total)
            for (member_id, grain, start), total in sorted(self.totals.items())
        ]
        grants = [self.grants[key] for key in sorted(self.grants)]
        moves = [
            {"m_id": member_id, "m_delta": delta}
            for member_id, delta in sorted(self.deltas.items())
            if delta
        ]
        if conn.dialect.name == "postgresql":
            for statement, arrays in (
                (_PG_CLAIMS, _PG_CLAIMS.arrays(claims)),
                (_PG_TRANSACTIONS, _PG_TRANSACTIONS.arrays(self.transactions)),
                (_PG_TOTALS, _PG_TOTALS.columns_of(sums)),  # straight from the tuples
                (_PG_GRANTS, _PG_GRANTS.arrays(grants)),
                (_PG_MOVES, _PG_MOVES.arrays(moves)),
            ):
                if arrays["c0"]:
                    conn.exec_driver_sql(statement.sql, arrays)
            return
        sum_rows = [totals.row_of(row[0], row[1], row[2], row[3:]) for row in sums]
        for table_statement, rows in (
            (operations.insert(), claims),
            (transactions.insert(), self.transactions),
            (totals.UPSERT[conn.dialect.name], sum_rows),
            (birthday_grants.insert(), grants),
            (_MOVE_BALANCE, moves),
        ):
            if rows:
                conn.execute(table_statement, rows)


@dataclass(frozen=True)
class _Unnest:
    """A PostgreSQL statement over parallel arrays: one statement, one plan, any row count."""

    sql: str
    columns: tuple[str, ...]  # the row dict's keys, in the arrays' order

    def arrays(self, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        return {
            f"c{index}": [row[column] for row in rows] for index, column in enumerate(self.columns)
        }

    def columns_of(self, rows: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
        """The arrays of rows given as tuples in the columns' order."""
        columns = list(zip(*rows, strict=True)) or [()] * len(self.columns)
        return {f"c{index}": list(column) for index, column in enumerate(columns)}


def _insert(table: str, columns: dict[str, str], tail: str = "") -> _Unnest:
    """INSERT INTO table (columns) SELECT * FROM unnest(one array per column)."""
    names = ", ".join(f'"{name}"' for name in columns)
    # %(name)b: the arrays travel in binary (no per-element quoting to build or parse).
    arrays = ", ".join(f"%(c{i})b::{kind}[]" for i, kind in enumerate(columns.values()))
    sql = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}){tail}"
    return _Unnest(sql, tuple(columns))


_PG_CLAIMS = _insert(
    "operations",
    {
        "key": "text",
        "kind": "text",
        "body_hash": "text",
        "result": "text",
        "terminal_id": "text",
        "applied_at": "timestamptz",
    },
)
_PG_TRANSACTIONS = _insert(
    "transactions",
    {
        "member_id": "text",
        "op_key": "text",
        "kind": "text",
        "points": "bigint",
        "amount_minor": "bigint",
        "reward_id": "text",
        "occurred_at": "timestamptz",
        "recorded_at": "timestamptz",
        "units_milli": "bigint",
        "segments": "integer",
        "merchant": "text",
    },
)
_PG_TOTALS = _insert(
    "member_totals",
    {
        "member_id": "text",
        "grain": "text",
        "start": "date",
        "points": "bigint",
        "spend_minor": "bigint",
        "visits": "bigint",
        "units_milli": "bigint",
        "segments": "bigint",
    },
    " ON CONFLICT (member_id, grain, start) DO UPDATE SET"
    " points = member_totals.points + excluded.points,"
    " spend_minor = member_totals.spend_minor + excluded.spend_minor,"
    " visits = member_totals.visits + excluded.visits,"
    " units_milli = member_totals.units_milli + excluded.units_milli,"
    " segments = member_totals.segments + excluded.segments",
)
_PG_GRANTS = _insert(
    "birthday_grants",
    {"member_id": "text", "year": "integer", "op_key": "text", "granted_at": "timestamptz"},
)
_PG_MOVES = _Unnest(
    "UPDATE members SET balance = members.balance + v.delta"
    " FROM unnest(%(c0)b::text[], %(c1)b::bigint[]) AS v(id, delta) WHERE members.id = v.id",
    ("m_id", "m_delta"),
)
