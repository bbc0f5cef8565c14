"""The store managers' web console: staff accounts, their sessions and audit log, terminals'
heartbeats, programme versions uploaded with an activation time, decisions on flags; and an
index on transactions' time for the dashboard's days.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("locked_until", TIME, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("disabled_at", TIME, nullable=True),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(32), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
    )
    op.create_index("ix_console_sessions_user_name", "console_sessions", ["user_name"])
    op.create_table(
        "console_audit",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("at", TIME, nullable=False),
        sa.Column("user_name", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("detail", sa.String(400), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
    )
    op.create_index("ix_console_audit_at", "console_audit", ["at"])
    op.create_table(
        "terminal_heartbeats",
        sa.Column("terminal_id", sa.String(64), primary_key=True),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("app_version", sa.String(40), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("pending", sa.Integer, nullable=False),
        sa.Column("dead_count", sa.Integer, nullable=False),
        sa.Column("oldest_pending_s", sa.Integer, nullable=True),
        sa.Column("readers", sa.String(400), nullable=False),
        sa.Column("dead", sa.Text, nullable=False),
    )
    op.create_table(
        "program_versions",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("uploaded_at", TIME, nullable=False),
        sa.Column("uploaded_by", sa.String(32), nullable=False),
        sa.Column("activate_at", TIME, nullable=False),
    )
    op.create_index("ix_program_versions_activate_at", "program_versions", ["activate_at"])
    op.create_table(
        "flag_reviews",
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("user_name", sa.String(32), nullable=False),
        sa.Column("at", TIME, nullable=False),
    )
    op.create_index("ix_transactions_occurred_at", "transactions", ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_transactions_occurred_at", "transactions")
    op.drop_table("flag_reviews")
    op.drop_index("ix_program_versions_activate_at", "program_versions")
    op.drop_table("program_versions")
    op.drop_table("terminal_heartbeats")
    op.drop_index("ix_console_audit_at", "console_audit")
    op.drop_table("console_audit")
    op.drop_index("ix_console_sessions_user_name", "console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("console_users")
