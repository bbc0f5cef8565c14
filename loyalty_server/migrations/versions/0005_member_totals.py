"""Per-member earning totals by store day, month and in all (flat cost per sale).

Backfilled from the transactions, in the store's time zone (LOYALTY_SERVER_TIMEZONE, UTC
if unset).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import os
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

from pos_client.ledger.upgrade import backfill_v2_period_totals

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_totals",
        sa.Column("member_id", sa.String(64), sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("grain", sa.String(1), primary_key=True),
        sa.Column("start", sa.Date, primary_key=True),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("spend_minor", sa.BigInteger, nullable=False),
        sa.Column("visits", sa.BigInteger, nullable=False),
    )
    zone = ZoneInfo(os.environ.get("LOYALTY_SERVER_TIMEZONE", "").strip() or "UTC")
    backfill_v2_period_totals(op.get_bind(), zone)  # frozen: version 2's rows, not today's


def downgrade() -> None:
    op.drop_table("member_totals")
