"""Alembic environment: the URL comes from loyalty-server's settings, never a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from loyalty_server.schema import server_metadata
from pos_client.ledger.schema import metadata as ledger_metadata

config = context.config
MIGRATION_LOCK = 0x10_4A17  # this server's migrations' advisory lock key
target_metadata = [ledger_metadata, server_metadata]


def run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is set by loyalty-server migrate"
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=url.startswith("sqlite"),
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Servers started at once on one database migrate one after another (the
                # second finds the schema at head); the lock ends with the transaction.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            context.run_migrations()
    engine.dispose()


run()
