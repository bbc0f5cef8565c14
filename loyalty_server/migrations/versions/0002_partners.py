"""Partners (hashed tokens) and their inbound transfers, each reference applied once.

Frozen DDL, as the models held these tables at this revision. Databases made while 0001
still built every table from the models have them already: only what is missing is made.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "partners" not in existing:
        op.create_table(
            "partners",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
            sa.Column("created_at", UTC_TIME, nullable=False),
            sa.Column("revoked_at", UTC_TIME, nullable=True),
        )
    if "partner_transfers" not in existing:
        op.create_table(
            "partner_transfers",
            sa.Column("partner_id", sa.String(64), primary_key=True),
            sa.Column("reference", sa.String(64), primary_key=True),
            sa.Column("body_hash", sa.String(64), nullable=False),
            sa.Column("member_id", sa.String(64), sa.ForeignKey("members.id"), nullable=False),
            sa.Column("points", sa.BigInteger, nullable=False),
            sa.Column("result", sa.Text, nullable=False),
            sa.Column("received_at", UTC_TIME, nullable=False),
        )
        op.create_index("ix_partner_transfers_received_at", "partner_transfers", ["received_at"])


def downgrade() -> None:
    op.drop_table("partner_transfers")
    op.drop_table("partners")
