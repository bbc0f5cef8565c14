"""The initial schema: ledger tables (members, identifiers, operations, transactions) and
server tables (terminals, pairing codes, flags).

Frozen DDL: the tables exactly as the models held them at this revision. A migration never
builds from today's models (they move on; later revisions apply on top of this one).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrement: INTEGER


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("first_name", sa.String(80), nullable=False),
        sa.Column("last_name", sa.String(80), nullable=False),
        sa.Column("phone_last", sa.String(4), nullable=False),
        sa.Column("card_number", sa.String(64), nullable=True),
        sa.Column("birthday", sa.Date, nullable=True),
        sa.Column("enrolled_at", UTC_TIME, nullable=False),
        sa.Column("consent_text_id", sa.String(64), nullable=False),
        sa.Column("consent_at", UTC_TIME, nullable=False),
        sa.Column("consent_channel", sa.String(20), nullable=False),
        sa.Column("marketing", sa.Boolean, nullable=False),
        sa.Column("balance", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "identifiers",
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("value", sa.String(128), primary_key=True),
        sa.Column("member_id", sa.String(64), sa.ForeignKey("members.id"), nullable=False),
    )
    op.create_index("ix_identifiers_member_id", "identifiers", ["member_id"])
    op.create_table(
        "operations",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("terminal_id", sa.String(64), nullable=False),
        sa.Column("applied_at", UTC_TIME, nullable=False),
    )
    op.create_index("ix_operations_applied_at", "operations", ["applied_at"])
    op.create_table(
        "transactions",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("member_id", sa.String(64), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("op_key", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("reward_id", sa.String(64), nullable=True),
        sa.Column("occurred_at", UTC_TIME, nullable=False),
        sa.Column("recorded_at", UTC_TIME, nullable=False),
    )
    op.create_index("ix_transactions_op_key", "transactions", ["op_key"])
    op.create_index("ix_transactions_member_time", "transactions", ["member_id", "occurred_at"])
    op.create_table(
        "terminals",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("revoked_at", UTC_TIME, nullable=True),
    )
    op.create_table(
        "pairing_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("terminal_id", sa.String(64), nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False),
        sa.Column("used_at", UTC_TIME, nullable=True),
    )
    op.create_table(
        "flags",
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("earnings", sa.Integer, nullable=False),
        sa.Column("flagged_at", UTC_TIME, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "flags",
        "pairing_codes",
        "terminals",
        "transactions",
        "operations",
        "identifiers",
        "members",
    ):
        op.drop_table(table)
