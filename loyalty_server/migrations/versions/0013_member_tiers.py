"""Tiers kept: the tiers each member reached and the last store day a sale found them
reaching it, for programmes whose tiers are never lost or kept for a grace. Nothing to
backfill: before this revision no programme kept tiers.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_tiers",
        sa.Column("member_id", sa.String(64), sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("tier_id", sa.String(64), primary_key=True),
        sa.Column("reached_on", sa.Date, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("member_tiers")
