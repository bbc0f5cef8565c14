"""The embedded ledger carries a schema version and upgrades in place when a terminal opens
it: the previous release's data folder (tests/fixtures/release-2026-11-25, written by
scripts/release_fixtures.py) opens with today's code, data intact, with the schema of a new
ledger; a newer, foreign or damaged file is refused and left as it was; a failing step
leaves the file as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    inspect,
    text,
)

from pos_client.bootstrap import build_terminal
from pos_client.demo import DEMO_MEMBERS
from pos_client.domain import Purchase
from pos_client.errors import LedgerSchemaError
from pos_client.ledger import Ledger, make_engine, sqlite_url, upgrade
from pos_client.ledger.schema import metadata
from pos_client.ledger.upgrade import (
    BASELINE,
    BASELINE_TABLES,
    CURRENT,
    Step,
    StepContext,
    open_schema,
)
from tests.conftest import REPO, make_settings, preset

RELEASE = REPO / "tests" / "fixtures" / "release-2026-11-25" / "data"
ANNA, BOB = DEMO_MEMBERS[0], DEMO_MEMBERS[1]


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """A copy of the previous release's data folder (its ledger has no version yet)."""
    data = tmp_path / "data"
    shutil.copytree(RELEASE, data)
    return data


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


# Columns later versions added to the release's tables (their values: what each step set).
ADDED_COLUMNS = {
    "transactions": ("units_milli", "segments", "merchant"),
    "members": ("guardian_consent",),
}


def table_rows(path: Path, tables: Iterator[str] | list[str] | None = None) -> dict[str, Any]:
    """Every row of the release's tables (or of `tables`), sorted, in the release's
    columns (a later version's added columns are checked apart)."""
    conn = read_only(path)
    try:
        names = list(tables or BASELINE_TABLES)
        found = {}
        for name in names:
            columns = [
                row[1]
                for row in conn.execute(f"PRAGMA table_info({name})")
                if row[1] not in ADDED_COLUMNS.get(name, ())
            ]
            listed = ", ".join(f'"{column}"' for column in columns)
            found[name] = sorted(conn.execute(f"SELECT {listed} FROM {name}").fetchall())
        return found
    finally:
        conn.close()


def recorded_version(path: Path) -> int | None:
    conn = read_only(path)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name='ledger_version'").fetchall():
            return None
        ((version,),) = conn.execute("SELECT version FROM ledger_version").fetchall()
        return int(version)
    finally:
        conn.close()


def describe(path: Path) -> dict[str, Any]:
    """Tables, columns (name, type, nullability, default), keys and indexes of a ledger."""
    engine = create_engine(sqlite_url(path))
    try:
        found = inspect(engine)
        return {
            table: {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], c["default"])
                    for c in found.get_columns(table)
                ],
                "primary_key": found.get_pk_constraint(table)["constrained_columns"],
                "foreign_keys": sorted(
                    (tuple(fk["constrained_columns"]), fk["referred_table"])
                    for fk in found.get_foreign_keys(table)
                ),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                    for i in found.get_indexes(table)
                ),
                "unique": sorted(
                    tuple(u["column_names"]) for u in found.get_unique_constraints(table)
                ),
            }
            for table in sorted(found.get_table_names())
        }
    finally:
        engine.dispose()


def logical_state(path: Path) -> tuple[dict[str, Any], dict[str, Any], int | None]:
    return describe(path), table_rows(path, list(describe(path))), recorded_version(path)


def open_ledger(path: Path, steps: tuple[Step, ...] | None = None) -> upgrade.Opened:
    engine = make_engine(sqlite_url(path))
    try:
        return open_schema(engine, StepContext(), steps)
    finally:
        engine.dispose()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------ the previous release's ledger


def test_the_previous_releases_ledger_opens_with_its_data_intact_and_takes_a_sale(
    release: Path,
) -> None:
    ledger_file = release / "ledger.sqlite"
    before = table_rows(ledger_file)
    assert before["members"] and before["transactions"] and before["identifiers"]
    assert recorded_version(ledger_file) is None  # written before versions

    with build_terminal(make_settings(release)) as terminal:
        assert recorded_version(ledger_file) == CURRENT
        assert table_rows(ledger_file) == before  # members, balances, history, keys as they were
        conn = read_only(ledger_file)
        try:  # the release's sales carried no units
            assert conn.execute(
                "SELECT count(*) FROM transactions WHERE units_milli != 0 OR segments != 0"
            ).fetchall() == [(0,)]
        finally:
            conn.close()
        # The members are found by their keys: card numbers and card UIDs.
        anna = terminal.checkout.identify(ANNA.card_number, "barcode")
        assert anna.online and anna.view.display_name.startswith(ANNA.first_name)
        assert BOB.card_uid is not None
        bob_by_uid = terminal.checkout.identify(BOB.card_uid, "nfc")
        assert (
            bob_by_uid.view.member_id == terminal.checkout.identify(BOB.card_number).view.member_id
        )
        receipt = terminal.checkout.earn(anna, Purchase.of_amount(Decimal("40.00")))
        report = terminal.sync.drain()  # the release's pending sales, then this one
        assert report.dead == 0 and report.acked >= 1
        assert receipt.expected_points > 0

    after = table_rows(ledger_file)
    for table in ("identifiers", "partner_transfers", "birthday_grants"):
        assert after[table] == before[table]
    assert set(before["transactions"]) <= set(after["transactions"])  # history kept as it was
    assert set(before["operations"]) <= set(after["operations"])  # idempotency keys too
    conn = read_only(ledger_file)
    try:
        sale = conn.execute(
            "SELECT member_id, kind, points FROM transactions WHERE op_key = ?", (receipt.key,)
        ).fetchall()
        assert sale == [(anna.view.member_id, "earn", receipt.expected_points)]
        sums = dict(
            conn.execute("SELECT member_id, sum(points) FROM transactions GROUP BY member_id")
        )
        balances = dict(conn.execute("SELECT id, balance FROM members"))
    finally:
        conn.close()
    assert balances == {member: sums.get(member, 0) for member in balances}


def test_the_upgraded_previous_release_has_the_schema_of_a_new_ledger(
    release: Path, tmp_path: Path
) -> None:
    """A model change (table, column, type, index) without an upgrade step fails here."""
    fresh = tmp_path / "fresh"
    with build_terminal(make_settings(fresh)):
        pass
    with build_terminal(make_settings(release)):
        pass
    upgraded, new = describe(release / "ledger.sqlite"), describe(fresh / "ledger.sqlite")
    assert set(metadata.tables) | {"ledger_version"} == set(new)
    assert upgraded == new
    assert recorded_version(release / "ledger.sqlite") == recorded_version(fresh / "ledger.sqlite")


def test_a_model_table_without_its_upgrade_step_is_refused_on_open_and_changes_nothing(
    release: Path,
) -> None:
    ledger_file = release / "ledger.sqlite"
    before = logical_state(ledger_file)
    forgotten = Table("forgotten", metadata, Column("id", Integer, primary_key=True))
    try:
        with pytest.raises(LedgerSchemaError, match=r"lacks forgotten.*upgrade step"):
            open_ledger(ledger_file)
    finally:
        metadata.remove(forgotten)
    assert logical_state(ledger_file) == before


def test_a_new_ledger_records_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    opened = open_ledger(path)
    assert opened.before is None and opened.after == CURRENT
    assert recorded_version(path) == CURRENT
    assert open_ledger(path) == upgrade.Opened(CURRENT, CURRENT)


# ------------------------------------------------------------ the steps


# Steps a later release might add, after the real ones: a table summarising old rows (with
# its backfill), then a column and an index on it.
FIRST = CURRENT + 1
member_sales = Table(
    "member_sales",
    MetaData(),
    Column("member_id", String(64), primary_key=True),
    Column("sales", Integer, nullable=False),
    Column("spend_minor", Integer, nullable=False),
)
ran: list[str] = []


def _member_sales(conn: Connection, context: StepContext) -> None:
    ran.append("member_sales")
    member_sales.create(conn)
    conn.execute(
        text(
            "INSERT INTO member_sales (member_id, sales, spend_minor)"
            " SELECT member_id, count(*), sum(amount_minor) FROM transactions"
            " WHERE kind = 'earn' GROUP BY member_id"
        )
    )


def _sales_index(conn: Connection, context: StepContext) -> None:
    ran.append("sales_index")
    conn.exec_driver_sql("ALTER TABLE member_sales ADD COLUMN last_kind VARCHAR(16)")
    conn.exec_driver_sql("CREATE INDEX ix_member_sales_sales ON member_sales (sales)")


SALES = Step(FIRST, "member_sales, backfilled from transactions", _member_sales)
INDEX = Step(FIRST + 1, "member_sales.last_kind and an index", _sales_index)
LATER = (*upgrade.STEPS, SALES, INDEX)


def test_steps_run_in_order_once_and_backfill_a_new_table_from_the_old_rows(
    release: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger_file = release / "ledger.sqlite"
    monkeypatch.setattr(upgrade, "STEPS", LATER)
    ran.clear()
    with build_terminal(make_settings(release)):
        pass
    assert ran == ["member_sales", "sales_index"]
    assert recorded_version(ledger_file) == FIRST + 1
    conn = read_only(ledger_file)
    try:
        backfilled = sorted(conn.execute("SELECT member_id, sales, spend_minor FROM member_sales"))
        expected = sorted(
            conn.execute(
                "SELECT member_id, count(*), sum(amount_minor) FROM transactions"
                " WHERE kind = 'earn' GROUP BY member_id"
            )
        )
    finally:
        conn.close()
    assert backfilled == expected and len(backfilled) == 3  # three members have sales
    assert "ix_member_sales_sales" in {
        index[0] for index in describe(ledger_file)["member_sales"]["indexes"]
    }
    with build_terminal(make_settings(release)):
        pass
    assert ran == ["member_sales", "sales_index"]  # not again


def test_a_ledger_part_way_runs_only_the_steps_after_its_version(release: Path) -> None:
    ledger_file = release / "ledger.sqlite"
    ran.clear()
    assert open_ledger(ledger_file, (*upgrade.STEPS, SALES)) == upgrade.Opened(BASELINE, FIRST)
    assert open_ledger(ledger_file, LATER) == upgrade.Opened(FIRST, FIRST + 1)
    assert ran == ["member_sales", "sales_index"]


def test_a_failing_step_leaves_the_ledger_as_it_was_and_says_which_step(release: Path) -> None:
    ledger_file = release / "ledger.sqlite"
    before = logical_state(ledger_file)

    def _breaks(conn: Connection, context: StepContext) -> None:
        conn.exec_driver_sql("UPDATE members SET balance = balance + 1000")
        conn.exec_driver_sql("ALTER TABLE member_sales ADD COLUMN sales INTEGER")  # exists

    steps = (*upgrade.STEPS, SALES, Step(FIRST + 1, "a step that fails", _breaks))
    with pytest.raises(LedgerSchemaError, match=rf"step {FIRST + 1} \(a step that fails\)"):
        open_ledger(ledger_file, steps)
    assert logical_state(ledger_file) == before  # no member_sales, no version, balances
    with pytest.raises(LedgerSchemaError, match="left as it was") as error:
        open_ledger(ledger_file, steps)
    assert error.value.code == "ledger_upgrade_failed"
    assert logical_state(ledger_file) == before
    assert open_ledger(ledger_file, LATER) == upgrade.Opened(BASELINE, FIRST + 1)  # fixed


def test_two_processes_opening_an_old_ledger_at_once_upgrade_it_once(release: Path) -> None:
    """A terminal starting while doctor runs: the second waits for the first's upgrade, finds
    the new version under the write lock and runs no step again."""
    ledger_file = release / "ledger.sqlite"
    script = (
        "import sys, time\n"
        "from pos_client.ledger import make_engine, sqlite_url\n"
        "from pos_client.ledger.upgrade import STEPS, Step, open_schema\n"
        "def slow(conn, context):\n"
        "    print('ran', flush=True)\n"
        "    time.sleep(1.0)\n"
        "    conn.exec_driver_sql('CREATE TABLE slow_step (id INTEGER PRIMARY KEY)')\n"
        "steps = (*STEPS, Step(STEPS[-1].version + 1 if STEPS else 2, 'slow', slow))\n"
        "engine = make_engine(sqlite_url(sys.argv[1]))\n"
        "print(open_schema(engine, None, steps), flush=True)\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(ledger_file)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    printed = "".join(out for out, _err in outputs)
    assert printed.count("ran") == 1, printed
    assert printed.count(f"after={FIRST}") == 2
    assert recorded_version(ledger_file) == FIRST


def test_upgrade_steps_must_be_numbered_in_order() -> None:
    with pytest.raises(ValueError, match="in order"):
        open_ledger(Path("/nonexistent/never-opened.sqlite"), (*upgrade.STEPS, INDEX, SALES))


# ------------------------------------------------------------ files to refuse


def stamp(path: Path, version: object, rows: int = 1) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TABLE ledger_version (version INTEGER NOT NULL)")
        conn.executemany("INSERT INTO ledger_version VALUES (?)", [(version,)] * rows)
        conn.commit()
    finally:
        conn.close()


def test_a_ledger_from_a_newer_release_is_refused_and_not_modified(release: Path) -> None:
    ledger_file = release / "ledger.sqlite"
    stamp(ledger_file, CURRENT + 1)
    digest = sha256(ledger_file)
    with pytest.raises(LedgerSchemaError, match="newer release") as error:
        build_terminal(make_settings(release))
    assert error.value.code == "ledger_newer"
    assert f"schema version {CURRENT + 1}" in str(error.value)
    assert sha256(ledger_file) == digest
    assert not list(release.glob("ledger.sqlite-*"))  # no journal left beside it either


def test_the_cli_says_why_it_refuses_a_newer_ledger(release: Path) -> None:
    ledger_file = release / "ledger.sqlite"
    stamp(ledger_file, CURRENT + 7)
    digest = sha256(ledger_file)
    command = ["identify", ANNA.card_number]
    result = subprocess.run(
        [sys.executable, "-m", "pos_client.cli", "--data-dir", str(release), *command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "pos-client: ledger:" in result.stderr and "newer release" in result.stderr
    assert "Traceback" not in result.stderr
    assert sha256(ledger_file) == digest


def test_doctor_reports_a_newer_ledger_as_bad_and_leaves_it(release: Path) -> None:
    ledger_file = release / "ledger.sqlite"
    stamp(ledger_file, CURRENT + 1)
    digest = sha256(ledger_file)
    result = subprocess.run(
        [sys.executable, "-m", "pos_client.cli", "--data-dir", str(release), "doctor"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "POS_CLIENT__ADMIN__PIN": "97531"},
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    bad = [line for line in result.stdout.splitlines() if line.startswith("BAD ledger:")]
    assert len(bad) == 1 and "newer release" in bad[0], result.stdout
    assert sha256(ledger_file) == digest


def foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE members (id TEXT PRIMARY KEY, name TEXT)")  # not ours
    conn.execute("INSERT INTO members VALUES ('x', 'y')")
    conn.commit()
    conn.close()


def garbled(path: Path) -> None:
    path.write_bytes(b"not a database at all\n" * 200)


def two_versions(path: Path) -> None:
    shutil.copy(RELEASE / "ledger.sqlite", path)
    stamp(path, CURRENT, rows=2)


def text_version(path: Path) -> None:
    shutil.copy(RELEASE / "ledger.sqlite", path)
    stamp(path, "one")


def missing_column(path: Path) -> None:
    shutil.copy(RELEASE / "ledger.sqlite", path)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE birthday_grants DROP COLUMN op_key")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (foreign, "not a loyalty ledger"),
        (garbled, "not a database"),
        (two_versions, "damaged schema version"),
        (text_version, "damaged schema version"),
        (missing_column, "birthday_grants.op_key"),
    ],
)
def test_a_foreign_or_damaged_file_is_refused_and_not_modified(
    tmp_path: Path, make: Any, says: str
) -> None:
    path = tmp_path / "ledger.sqlite"
    make(path)
    digest = sha256(path)
    ledger = Ledger(make_engine(sqlite_url(path)), preset("category_tiers"))
    with pytest.raises(LedgerSchemaError, match=says) as error:
        ledger.create_schema()
    ledger.engine.dispose()
    assert "not modified" in str(error.value)
    assert sha256(path) == digest


def test_the_previous_releases_members_gain_totals_equal_to_their_history(
    release: Path,
) -> None:
    """Step 2 (member_totals) backfills every member's day, month and lifetime rows from the
    transactions, in the store's time zone."""
    with build_terminal(make_settings(release)) as terminal:
        ledger = terminal.ledger
        assert ledger is not None
        with ledger.engine.connect() as conn:
            members = [row[0] for row in conn.exec_driver_sql("SELECT id FROM members")]
            lifetime: dict[str, int] = dict(
                conn.exec_driver_sql(
                    "SELECT member_id, points FROM member_totals WHERE grain = 'a'"
                ).all()
            )
            earned: dict[str, int] = dict(
                conn.exec_driver_sql(
                    "SELECT member_id, sum(points) FROM transactions"
                    " WHERE kind IN ('earn', 'birthday', 'action') GROUP BY member_id"
                ).all()
            )
            assert lifetime == earned and len(lifetime) == 3
            for member in members:
                for day in (ledger.today(), date(2026, 1, 1), date(2025, 6, 30)):
                    assert ledger.stats(conn, member, day) == ledger.stats_from_transactions(
                        conn, member, day
                    ), (member, day)
