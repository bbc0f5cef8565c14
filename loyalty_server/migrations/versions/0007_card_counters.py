"""The last secure-NFC (SUN) read counter accepted per NTAG 424 DNA card: a tap is accepted
only with a strictly higher counter (replayed or copied messages refused).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "card_counters",
        sa.Column("card", sa.String(32), primary_key=True),
        sa.Column("counter", sa.Integer, nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("card_counters")
