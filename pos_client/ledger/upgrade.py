"""Schema versions of the embedded ledger, upgraded in place when a terminal opens it.

The store server migrates the ledger tables with alembic (loyalty_server/migrations); alembic
is a server extra and a terminal must not need it, so the embedded ledger (a local SQLite
file, or whatever `storage.ledger_url` names) carries its own version and the small table of
ordered steps below. The version is the one row of the table `ledger_version`, outside
`schema.metadata` (the server's schema never has it).

Opening (`open_schema`, from `Ledger.create_schema`):

- no tables at all: created from the models (`schema.metadata`), stamped `CURRENT`;
- tables but no `ledger_version`: a ledger of release 2026-11-25 (before versions), the
  baseline, version 1, if it has the baseline's tables and columns; else refused;
- version below `CURRENT`: the later steps run in order, then the new version is stamped,
  all in ONE transaction: a step that fails leaves the file as it was (the error names the
  step);
- version above `CURRENT` (a newer release wrote it), not a database, another program's
  database, a damaged version row: refused with a clear `LedgerSchemaError`, not modified
  (a SQLite file is first read through a read-only connection, so a refusal writes nothing,
  not even the journal mode);
- every open then checks that each table and column of the models is there: a model change
  without its step is refused on open and fails tests/integration/test_ledger_upgrade.py
  (which compares an upgraded release file with a fresh one: tables, columns, types, keys,
  indexes).

How to add a step (any table, column or index added to schema.py):

1. Write `def _vN_what(conn: Connection, context: StepContext) -> None` making the change on
   a database at version N-1, nothing else: `schema.new_table.create(conn)`,
   `schema.new_index.create(conn)`, or for a column
   `conn.exec_driver_sql("ALTER TABLE t ADD COLUMN c INTEGER NOT NULL DEFAULT 0")`. Never
   `metadata.create_all` (it would make the tables of later steps too). A table that
   summarises old rows is backfilled from them here, in the same transaction; `context`
   carries what a backfill needs beyond the rows (the store's time zone). Once a later step
   alters a table that an earlier step created from its model, freeze the earlier step's
   definition (a copy of the Table as it was, or explicit DDL), as the server's revisions do.
2. Append `Step(N, "what, in a few words", _vN_what)` to `STEPS` (versions 2, 3, ... with
   no gap; the order is the order they run in).
3. Add the server's alembic revision for the same change (loyalty_server/migrations).
4. Run tests/integration/test_ledger_upgrade.py. When the release ships, write its fixture
   (scripts/release_fixtures.py) so the next release's upgrade is tested from it.

For example, per-member period totals kept beside each posting:

    def _v3_recorded_days(conn: Connection, context: StepContext) -> None:
        backfill_v3_recorded_days(conn, context.zone)  # frozen: a copy, not totals' code

    STEPS = (..., Step(3, "member_totals rows per recorded day", _v3_recorded_days))
"""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    inspect,
    select,
)
from sqlalchemy import column as column_clause
from sqlalchemy import table as table_clause
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from pos_client.errors import LedgerSchemaError
from pos_client.ledger.schema import UTCDateTime, metadata

log = logging.getLogger(__name__)

BASELINE = 1  # the schema of release 2026-11-25, the last one without a version

version_metadata = MetaData()
ledger_version = Table(
    "ledger_version",
    version_metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
)

# The baseline's tables and columns, frozen: a file without a version must have these to be
# taken for a ledger of that release (distrust: another program's database is refused).
BASELINE_TABLES: dict[str, frozenset[str]] = {
    "members": frozenset(
        (
            "id",
            "first_name",
            "last_name",
            "phone_last",
            "card_number",
            "birthday",
            "enrolled_at",
            "consent_text_id",
            "consent_at",
            "consent_channel",
            "marketing",
            "balance",
        )
    ),
    "identifiers": frozenset(("kind", "value", "member_id")),
    "operations": frozenset(("key", "kind", "body_hash", "result", "terminal_id", "applied_at")),
    "transactions": frozenset(
        (
            "id",
            "member_id",
            "op_key",
            "kind",
            "points",
            "amount_minor",
            "reward_id",
            "occurred_at",
            "recorded_at",
        )
    ),
    "partner_transfers": frozenset(
        ("partner_id", "reference", "body_hash", "member_id", "points", "result", "received_at")
    ),
    "birthday_grants": frozenset(("member_id", "year", "op_key", "granted_at")),
}


@dataclass(frozen=True)
class StepContext:
    """What a step may need beyond the database's own rows."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))  # the store's time zone


@dataclass(frozen=True)
class Step:
    version: int  # the schema version once this step has run
    summary: str
    apply: Callable[[Connection, StepContext], None]


# Frozen: the rows these backfills read and write as they were at their version (lightweight
# table clauses, not the models), so a later model change never rewrites an old step. The
# server's revisions 0005 and 0006 run the same functions.
_TRANSACTIONS_V1 = table_clause(
    "transactions",
    column_clause("member_id"),
    column_clause("kind"),
    column_clause("points"),
    column_clause("amount_minor"),
    column_clause("occurred_at", UTCDateTime()),
    column_clause("recorded_at", UTCDateTime()),
)
_TOTALS_V2 = table_clause(
    "member_totals",
    column_clause("member_id"),
    column_clause("grain"),
    column_clause("start", Date()),
    column_clause("points"),
    column_clause("spend_minor"),
    column_clause("visits"),
)


def _insert_sums(conn: Connection, sums: dict[tuple[str, str, date], list[int]]) -> int:
    values = [
        {
            "member_id": member_id,
            "grain": grain,
            "start": start,
            "points": total[0],
            "spend_minor": total[1],
            "visits": total[2],
        }
        for (member_id, grain, start), total in sorted(sums.items())
    ]
    for first in range(0, len(values), 1000):
        conn.execute(_TOTALS_V2.insert(), values[first : first + 1000])
    return len(values)


def backfill_v2_period_totals(conn: Connection, zone: ZoneInfo) -> int:
    """Version 2's member_totals (grains d, m, a) from the transactions; rows written."""
    sums: dict[tuple[str, str, date], list[int]] = defaultdict(lambda: [0, 0, 0])
    rows = conn.execute(
        select(
            _TRANSACTIONS_V1.c.member_id,
            _TRANSACTIONS_V1.c.kind,
            _TRANSACTIONS_V1.c.points,
            _TRANSACTIONS_V1.c.amount_minor,
            _TRANSACTIONS_V1.c.occurred_at,
        ).where(_TRANSACTIONS_V1.c.kind.in_(("earn", "birthday", "action")))
    )
    for member_id, kind, points, amount_minor, occurred_at in rows:
        if kind == "earn":
            added = (int(points), int(amount_minor), 1)
        elif points:
            added = (int(points), 0, 0)
        else:
            continue
        day = occurred_at.astimezone(zone).date()
        for grain, start in (("d", day), ("m", day.replace(day=1)), ("a", date(1, 1, 1))):
            total = sums[(member_id, grain, start)]
            for index, value in enumerate(added):
                total[index] += value
    return _insert_sums(conn, sums)


def backfill_v3_recorded_days(conn: Connection, zone: ZoneInfo) -> int:
    """Version 3's recorded-day rows (grain r: points credited, earnings) from the
    transactions, replacing any there; rows written."""
    conn.execute(_TOTALS_V2.delete().where(_TOTALS_V2.c.grain == "r"))
    sums: dict[tuple[str, str, date], list[int]] = defaultdict(lambda: [0, 0, 0])
    rows = conn.execute(
        select(
            _TRANSACTIONS_V1.c.member_id,
            _TRANSACTIONS_V1.c.kind,
            _TRANSACTIONS_V1.c.points,
            _TRANSACTIONS_V1.c.recorded_at,
        ).where(_TRANSACTIONS_V1.c.kind.in_(("earn", "birthday", "action", "transfer_in")))
    )
    for member_id, kind, points, recorded_at in rows:
        credited = int(points) if int(points) > 0 else 0
        earnings = 1 if kind in ("earn", "action", "transfer_in") else 0
        if not credited and not earnings:
            continue
        total = sums[(member_id, "r", recorded_at.astimezone(zone).date())]
        total[0] += credited
        total[2] += earnings
    return _insert_sums(conn, sums)


def _v2_member_totals(conn: Connection, context: StepContext) -> None:
    frozen = MetaData()
    Table("members", frozen, Column("id", String(64), primary_key=True))  # referenced only
    Table(
        "member_totals",
        frozen,
        Column("member_id", String(64), ForeignKey("members.id"), primary_key=True),
        Column("grain", String(1), primary_key=True),
        Column("start", Date, primary_key=True),
        Column("points", BigInteger, nullable=False),
        Column("spend_minor", BigInteger, nullable=False),
        Column("visits", BigInteger, nullable=False),
    ).create(conn)
    backfill_v2_period_totals(conn, context.zone)


def _v3_recorded_days(conn: Connection, context: StepContext) -> None:
    backfill_v3_recorded_days(conn, context.zone)


def _v4_card_counters(conn: Connection, _context: StepContext) -> None:
    frozen = MetaData()
    Table(
        "card_counters",
        frozen,
        Column("card", String(32), primary_key=True),
        Column("counter", Integer, nullable=False),
        Column("accepted_at", DateTime(timezone=True), nullable=False),
    ).create(conn)


def _v5_member_pins(conn: Connection, _context: StepContext) -> None:
    frozen = MetaData()
    Table("members", frozen, Column("id", String(64), primary_key=True))
    Table(
        "member_pins",
        frozen,
        Column("member_id", String(64), ForeignKey("members.id"), primary_key=True),
        Column("pin_hash", String(200), nullable=False),
        Column("failures", Integer, nullable=False),
        Column("locked_until", DateTime(timezone=True), nullable=True),
        Column("set_at", DateTime(timezone=True), nullable=False),
    ).create(conn)


def _v6_units(conn: Connection, _context: StepContext) -> None:
    # Nothing to backfill: no sale before this version carried units.
    for table, segments in (("transactions", "INTEGER"), ("member_totals", "BIGINT")):
        conn.exec_driver_sql(
            f"ALTER TABLE {table} ADD COLUMN units_milli BIGINT NOT NULL DEFAULT 0"
        )
        conn.exec_driver_sql(
            f"ALTER TABLE {table} ADD COLUMN segments {segments} NOT NULL DEFAULT 0"
        )


def _v7_merchant(conn: Connection, _context: StepContext) -> None:
    # Nothing to backfill: before this version no till belonged to a coalition merchant.
    conn.exec_driver_sql(
        "ALTER TABLE transactions ADD COLUMN merchant VARCHAR(32) NOT NULL DEFAULT ''"
    )


def _v8_guardian_consent(conn: Connection, _context: StepContext) -> None:
    # Nothing to backfill: before this version no programme had an age gate.
    false = "0" if conn.dialect.name == "sqlite" else "false"  # as the model's false() renders
    conn.exec_driver_sql(
        f"ALTER TABLE members ADD COLUMN guardian_consent BOOLEAN NOT NULL DEFAULT {false}"
    )


def _v9_member_tiers(conn: Connection, _context: StepContext) -> None:
    # Nothing to backfill: before this version no programme kept tiers.
    frozen = MetaData()
    Table("members", frozen, Column("id", String(64), primary_key=True))
    Table(
        "member_tiers",
        frozen,
        Column("member_id", String(64), ForeignKey("members.id"), primary_key=True),
        Column("tier_id", String(64), primary_key=True),
        Column("reached_on", Date, nullable=False),
    ).create(conn)


def _v10_staff_awards(conn: Connection, _context: StepContext) -> None:
    frozen = MetaData()
    Table("members", frozen, Column("id", String(64), primary_key=True))
    Table(
        "staff_members",
        frozen,
        Column("id", String(32), primary_key=True),
        Column("name", String(80), nullable=False),
        Column("pin_hash", String(200), nullable=False),
        Column("failures", Integer, nullable=False),
        Column("locked_until", DateTime(timezone=True), nullable=True),
        Column("added_at", DateTime(timezone=True), nullable=False),
        Column("removed_at", DateTime(timezone=True), nullable=True),
    ).create(conn)
    Table(
        "staff_awards",
        frozen,
        Column("key", String(64), primary_key=True),
        Column("member_id", String(64), ForeignKey("members.id"), nullable=False),
        Column("points", BigInteger, nullable=False),
        Column("reason", String(200), nullable=False),
        Column("staff_id", String(32), nullable=False),
        Column("approver_id", String(32), nullable=True),
        Column("terminal_id", String(64), nullable=False),
        Column("awarded_at", DateTime(timezone=True), nullable=False, index=True),
    ).create(conn)


def _v11_transactions_time(conn: Connection, _context: StepContext) -> None:
    # The console's days (today, the last 30) read transactions by time, across members.
    conn.exec_driver_sql("CREATE INDEX ix_transactions_occurred_at ON transactions (occurred_at)")


# The steps after the baseline, in order (see the module docstring to add one).
STEPS: tuple[Step, ...] = (
    Step(2, "member_totals, backfilled from transactions", _v2_member_totals),
    Step(3, "member_totals rows per recorded day (daily cap, review flags)", _v3_recorded_days),
    Step(4, "card_counters: the last secure-NFC read counter accepted per card", _v4_card_counters),
    Step(5, "member_pins: members' PIN hashes and failures in a row", _v5_member_pins),
    Step(6, "units and segments of sales in transactions and member_totals", _v6_units),
    Step(7, "the coalition merchant of each transaction", _v7_merchant),
    Step(8, "members' guardian consent (the age gate)", _v8_guardian_consent),
    Step(9, "member_tiers: tiers reached and kept (downgrade never, grace)", _v9_member_tiers),
    Step(10, "staff_members and staff_awards: staff awards and their audit", _v10_staff_awards),
    Step(11, "an index on transactions' time (the console's days)", _v11_transactions_time),
)


def current_version(steps: Sequence[Step] = STEPS) -> int:
    return steps[-1].version if steps else BASELINE


CURRENT = current_version()


@dataclass(frozen=True)
class Opened:
    """What opening did: `before` is None for a database created afresh."""

    before: int | None
    after: int

    @property
    def upgraded(self) -> bool:
        return self.before is not None and self.before != self.after


def open_schema(
    engine: Engine, context: StepContext | None = None, steps: Sequence[Step] | None = None
) -> Opened:
    """Create, check or upgrade the ledger's schema (see the module docstring); `steps`
    replaces STEPS (tests)."""
    steps = STEPS if steps is None else steps
    _check_steps(steps)
    context = context or StepContext()
    where = _describe_location(engine)
    path = _sqlite_path(engine)
    if path is not None and path.exists() and path.stat().st_size > 0:
        # Read-only first: a file this release refuses, or already current, is not touched.
        reader = create_engine(
            "sqlite+pysqlite://",
            creator=lambda: sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True),
        )
        try:
            with _errors_as_refusal(where), reader.connect() as conn:
                version, stamped = _found_version(conn, steps, where)
                if stamped and version == current_version(steps):
                    _check_models(conn, where, version)
                    return Opened(version, version)
        except LedgerSchemaError as exc:
            # Not a database, or damaged: refused. A file SQLite cannot read without writing
            # (a write-ahead log to recover) is decided again below, under the write lock.
            if not isinstance(exc.__cause__, OperationalError):
                raise
        finally:
            reader.dispose()
    writer = engine.execution_options(sqlite_begin="IMMEDIATE")
    with _errors_as_refusal(where), writer.begin() as conn:
        # Decided again under the write lock: another process may have upgraded meanwhile.
        version, stamped = _found_version(conn, steps, where)
        target = current_version(steps)
        if version is None:
            metadata.create_all(conn)
            version_metadata.create_all(conn)
            conn.execute(ledger_version.insert().values(version=target))
        elif version < target or not stamped:
            _run_steps(conn, version, steps, context, where)
        _check_models(conn, where, target)
    if version is not None and version < target:
        log.warning("ledger schema upgraded from version %d to %d", version, target)
    elif version is not None and not stamped:
        log.info("ledger schema version %d recorded", target)
    return Opened(version, target)


def _run_steps(
    conn: Connection, version: int, steps: Sequence[Step], context: StepContext, where: str
) -> None:
    for step in steps:
        if step.version <= version:
            continue
        try:
            step.apply(conn, context)
        except Exception as exc:
            raise LedgerSchemaError(
                f"the ledger {where} could not be upgraded from schema version {version}:"
                f" step {step.version} ({step.summary}) failed: {type(exc).__name__}: {exc};"
                " the ledger was left as it was",
                code="ledger_upgrade_failed",
            ) from exc
    if not inspect(conn).has_table(ledger_version.name):
        version_metadata.create_all(conn)
    conn.execute(ledger_version.delete())
    conn.execute(ledger_version.insert().values(version=current_version(steps)))


def _found_version(conn: Connection, steps: Sequence[Step], where: str) -> tuple[int | None, bool]:
    """The database's schema version (None: no tables at all, a new ledger) and whether the
    database says so itself (False: a ledger of the baseline release, before versions)."""
    found = inspect(conn)
    names = set(found.get_table_names())
    if not names:
        return None, False
    stamped = ledger_version.name in names
    if stamped:
        rows = conn.exec_driver_sql(f"SELECT * FROM {ledger_version.name}").all()
        if len(rows) != 1 or len(rows[0]) != 1 or type(rows[0][0]) is not int:
            raise LedgerSchemaError(
                f"the ledger {where} has a damaged schema version ({len(rows)} row(s) in"
                f" {ledger_version.name}); it was not modified",
            )
        version: int = rows[0][0]
        if version < BASELINE:
            raise LedgerSchemaError(
                f"the ledger {where} claims schema version {version}, which no release"
                " wrote; it was not modified",
            )
    else:
        missing = [
            f"{table}.{column}" if table in names else table
            for table, columns in BASELINE_TABLES.items()
            for column in (
                sorted(columns - {c["name"] for c in found.get_columns(table)})
                if table in names
                else [""]
            )
        ]
        if missing:
            raise LedgerSchemaError(
                f"{where} is not a loyalty ledger this release can open (missing:"
                f" {', '.join(missing[:8])}{', ...' if len(missing) > 8 else ''});"
                " it was not modified",
                code="ledger_foreign",
            )
        version = BASELINE
    newest = current_version(steps)
    if version > newest:
        raise LedgerSchemaError(
            f"the ledger {where} was written by a newer release (schema version {version};"
            f" this release knows up to {newest}); it was not modified: run the newer"
            " release, or restore a backup made by this one",
            code="ledger_newer",
        )
    return version, stamped


def _check_models(conn: Connection, where: str, version: int) -> None:
    """Every table and column of the models must be there (a step may not be forgotten)."""
    found = inspect(conn)
    names = set(found.get_table_names())
    missing: list[str] = []
    for table in metadata.sorted_tables:
        if table.name not in names:
            missing.append(table.name)
            continue
        have = {c["name"] for c in found.get_columns(table.name)}
        missing.extend(f"{table.name}.{c.name}" for c in table.columns if c.name not in have)
    if missing:
        raise LedgerSchemaError(
            f"the ledger {where} at schema version {version} lacks {', '.join(missing)}:"
            " damaged, or a model change without its upgrade step"
            " (pos_client/ledger/upgrade.py); it was not modified",
        )


def _check_steps(steps: Sequence[Step]) -> None:
    expected = list(range(BASELINE + 1, BASELINE + 1 + len(steps)))
    if [step.version for step in steps] != expected:
        raise ValueError(f"ledger upgrade steps must be versions {expected}, in order")


def _sqlite_path(engine: Engine) -> Path | None:
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        return None  # a URI filename: no read-only pre-check, the transaction still guards
    return Path(url.database)


def _describe_location(engine: Engine) -> str:
    path = _sqlite_path(engine)
    if path is not None:
        return str(path)
    return engine.url.render_as_string(hide_password=True)


@contextmanager
def _errors_as_refusal(where: str) -> Iterator[None]:
    """SQLite's "file is not a database" and the like, as a clear LedgerSchemaError."""
    try:
        yield
    except SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        raise LedgerSchemaError(
            f"the ledger {where} cannot be opened ({type(detail).__name__}: {detail});"
            " it was not modified",
            code="ledger_unreadable",
        ) from exc
