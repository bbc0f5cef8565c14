"""The initial schema: ledger tables (members, identifiers, operations, transactions) and
server tables (terminals, pairing codes, flags).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from loyalty_server.schema import server_metadata
from pos_client.ledger.schema import metadata as ledger_metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    ledger_metadata.create_all(bind=bind)
    server_metadata.create_all(bind=bind)


def downgrade() -> None:
    bind = op.get_bind()
    server_metadata.drop_all(bind=bind)
    ledger_metadata.drop_all(bind=bind)
