"""`alembic upgrade head` on an empty database gives the schema the models describe
(tables, columns, keys, indexes, unique constraints), on SQLite and PostgreSQL; and the
birthday rule's constraint is really in the migrated database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, inspect

from loyalty_server.cli import migrate
from loyalty_server.schema import server_metadata
from pos_client.ledger.schema import metadata as ledger_metadata
from tests.integration.server_helpers import PostgresCluster


def describe(engine: Engine) -> dict[str, Any]:
    """Everything SQLAlchemy's inspection tells of the schema (alembic's own table aside)."""
    found = inspect(engine)
    schema: dict[str, Any] = {}
    for table in sorted(set(found.get_table_names()) - {"alembic_version"}):
        schema[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)
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
            "unique": sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
        }
    return schema


def model_schema(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    ledger_metadata.create_all(engine)
    server_metadata.create_all(engine)
    try:
        return describe(engine)
    finally:
        engine.dispose()


def migrated_schema(url: str) -> dict[str, Any]:
    migrate(url)
    engine = create_engine(url)
    try:
        return describe(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_head_on_an_empty_database_gives_the_models_schema(
    backend: str, tmp_path: Path, postgres: PostgresCluster | None
) -> None:
    if backend == "sqlite":
        models_url = f"sqlite+pysqlite:///{tmp_path}/models.sqlite"
        migrated_url = f"sqlite+pysqlite:///{tmp_path}/migrated.sqlite"
    else:
        if postgres is None:
            pytest.skip("PostgreSQL is not available here")
        models_url, migrated_url = postgres.new_database(), postgres.new_database()
    models = model_schema(models_url)
    migrated = migrated_schema(migrated_url)
    assert "birthday_grants" in migrated
    assert migrated["birthday_grants"]["primary_key"] == ["member_id", "year"]
    assert migrated == models


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_0003_carries_over_birthday_rewards_already_given(
    backend: str, tmp_path: Path, postgres: PostgresCluster | None
) -> None:
    """A database at 0002 where the issue's back-dating attack already paid twice in a year:
    the upgrade keeps one grant per member and year, and the rule holds from then on."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import insert, select

    from loyalty_server.cli import MIGRATIONS
    from pos_client.ledger.schema import birthday_grants, members, transactions

    if backend == "sqlite":
        url = f"sqlite+pysqlite:///{tmp_path}/old.sqlite"
    else:
        if postgres is None:
            pytest.skip("PostgreSQL is not available here")
        url = postgres.new_database()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0002")
    engine = create_engine(url)
    when = datetime(2025, 11, 21, 12, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(members).values(
                id="m1",
                first_name="Olena",
                last_name="S",
                phone_last="67",
                enrolled_at=when,
                consent_text_id="t",
                consent_at=when,
                consent_channel="seed",
                marketing=False,
                balance=300,
            )
        )
        paid = (("k1", when), ("k2", when.replace(hour=13)), ("k3", when.replace(year=2024)))
        for key, moment in paid:
            conn.execute(
                insert(transactions).values(
                    member_id="m1",
                    op_key=key,
                    kind="birthday",
                    points=100,
                    amount_minor=0,
                    occurred_at=moment,
                    recorded_at=when,
                )
            )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        grants = conn.execute(
            select(birthday_grants.c.year, birthday_grants.c.op_key).order_by(
                birthday_grants.c.year
            )
        ).all()
    engine.dispose()
    assert [tuple(g) for g in grants] == [(2024, "k3"), (2025, "k1")]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_0006_gives_each_members_recorded_days_from_the_transactions(
    backend: str, tmp_path: Path, postgres: PostgresCluster | None
) -> None:
    """A database at 0005 with earnings recorded over two store days: the upgrade writes one
    recorded-day row per member and day (points credited, earnings), in the store's zone, so
    the daily cap and the review flag count what was credited before the upgrade."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import insert, select

    from loyalty_server.cli import MIGRATIONS
    from pos_client.ledger.schema import member_totals, members, transactions

    if backend == "sqlite":
        url = f"sqlite+pysqlite:///{tmp_path}/old.sqlite"
    else:
        if postgres is None:
            pytest.skip("PostgreSQL is not available here")
        url = postgres.new_database()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0005")
    engine = create_engine(url)
    # 21:30 UTC on 20 November is 23:30 in Riga; 22:30 UTC is already the 21st there.
    evening = datetime(2025, 11, 20, 21, 30, tzinfo=UTC)
    late = datetime(2025, 11, 20, 22, 30, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(members).values(
                id="m1",
                first_name="Olena",
                last_name="S",
                phone_last="67",
                enrolled_at=evening,
                consent_text_id="t",
                consent_at=evening,
                consent_channel="seed",
                marketing=False,
                balance=0,
            )
        )
        postings = (
            ("k1", "earn", 40, evening),
            ("k2", "transfer_in", 500, evening),
            ("k3", "birthday", 100, evening),  # credited, not an earning the flag counts
            ("k4", "redeem", -30, evening),  # neither
            ("k5", "earn", 7, late),
        )
        for key, kind, points, recorded in postings:
            conn.execute(
                insert(transactions).values(
                    member_id="m1",
                    op_key=key,
                    kind=kind,
                    points=points,
                    amount_minor=1000 if kind == "earn" else 0,
                    occurred_at=evening,
                    recorded_at=recorded,
                )
            )
    import os

    os.environ["LOYALTY_SERVER_TIMEZONE"] = "Europe/Riga"
    try:
        command.upgrade(config, "head")
    finally:
        del os.environ["LOYALTY_SERVER_TIMEZONE"]
    with engine.connect() as conn:
        rows = conn.execute(
            select(member_totals.c.start, member_totals.c.points, member_totals.c.visits)
            .where(member_totals.c.grain == "r")
            .order_by(member_totals.c.start)
        ).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [
        (datetime(2025, 11, 20).date(), 640, 2),
        (datetime(2025, 11, 21).date(), 7, 1),
    ]
