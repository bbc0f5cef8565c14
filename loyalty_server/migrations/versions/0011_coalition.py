"""Coalitions: the merchant whose till recorded each transaction, the merchant each terminal
belongs to (both "" for the operator, or a programme without merchants) and the merchants'
settlement tokens. Nothing to backfill: before this revision no till belonged to a merchant.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("transactions", "terminals"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("merchant", sa.String(32), nullable=False, server_default="")
            )
    op.create_table(
        "merchant_tokens",
        sa.Column("merchant_id", sa.String(32), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("merchant_tokens")
    for table in ("terminals", "transactions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("merchant")
