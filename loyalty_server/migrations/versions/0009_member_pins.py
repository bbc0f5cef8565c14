"""Members' PINs: a salted scrypt hash each (never the PIN) and the failures in a row that
lock it for a while; a member found by phone spends after giving it.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_pins",
        sa.Column("member_id", sa.String(64), sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("pin_hash", sa.String(200), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("member_pins")
