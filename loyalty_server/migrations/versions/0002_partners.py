"""Partners (hashed tokens) and their inbound transfers, each reference applied once.

Revision 0001 creates every table the models hold at the time it runs, so on a fresh
database these tables exist already: create only what is missing.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import inspect

from loyalty_server.schema import partners
from pos_client.ledger.schema import partner_transfers

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(inspect(bind).get_table_names())
    for table in (partners, partner_transfers):
        if table.name not in existing:
            table.create(bind=bind)


def downgrade() -> None:
    bind = op.get_bind()
    partner_transfers.drop(bind=bind, checkfirst=True)
    partners.drop(bind=bind, checkfirst=True)
