"""Security events for the store to review: secure cards' messages refused as forged,
unreadable or replayed.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "security_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("terminal_id", sa.String(64), nullable=False),
        sa.Column("card", sa.String(32), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("security_events")
