"""Staff awards: the staff who award points (their PINs' salted hashes, failures, lock) and
every award with who gave and who approved it, an audit trail never purged.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_members",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("pin_hash", sa.String(200), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "staff_awards",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.String(64), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("staff_id", sa.String(32), nullable=False),
        sa.Column("approver_id", sa.String(32), nullable=True),
        sa.Column("terminal_id", sa.String(64), nullable=False),
        sa.Column("awarded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_staff_awards_awarded_at", "staff_awards", ["awarded_at"])


def downgrade() -> None:
    op.drop_index("ix_staff_awards_awarded_at", "staff_awards")
    op.drop_table("staff_awards")
    op.drop_table("staff_members")
