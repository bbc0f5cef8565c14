"""Per-member rows per recorded store day in member_totals (grain "r"): the points credited
and the earnings recorded that day, read by the daily cap and the review flag instead of
summing the day's transactions. No DDL: the rows are backfilled from the transactions, in
the store's time zone (LOYALTY_SERVER_TIMEZONE, UTC if unset).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import os
from zoneinfo import ZoneInfo

from alembic import op

from pos_client.ledger.upgrade import backfill_v3_recorded_days

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    zone = ZoneInfo(os.environ.get("LOYALTY_SERVER_TIMEZONE", "").strip() or "UTC")
    backfill_v3_recorded_days(op.get_bind(), zone)


def downgrade() -> None:
    op.execute("DELETE FROM member_totals WHERE grain = 'r'")
