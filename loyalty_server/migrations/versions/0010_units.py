"""Units and segments: a sale's units in thousandths (kilometres flown, nights stayed, for
programmes that earn by them) and the lines carrying them, in transactions and in the
per-member totals that tiers by units or segments read. Nothing to backfill: no sale before
this revision carried units.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = (("transactions", sa.Integer), ("member_totals", sa.BigInteger))


def upgrade() -> None:
    for table, segments in COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("units_milli", sa.BigInteger, nullable=False, server_default="0")
            )
            batch.add_column(sa.Column("segments", segments, nullable=False, server_default="0"))


def downgrade() -> None:
    for table, _segments in COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("segments")
            batch.drop_column("units_milli")
