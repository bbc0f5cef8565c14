"""One birthday reward per member per birthday year, enforced by a primary key.

Birthday rewards already given (transactions of kind 'birthday') are carried over, one per
member and calendar year of the sale (the first), so the rule holds for them too.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    grants = op.create_table(
        "birthday_grants",
        sa.Column("member_id", sa.String(64), sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("op_key", sa.String(64), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
    )
    assert grants is not None
    transactions = sa.table(
        "transactions",
        sa.column("member_id", sa.String),
        sa.column("op_key", sa.String),
        sa.column("kind", sa.String),
        sa.column("occurred_at", sa.DateTime),
    )
    rows = op.get_bind().execute(
        sa.select(transactions.c.member_id, transactions.c.op_key, transactions.c.occurred_at)
        .where(transactions.c.kind == "birthday")
        .order_by(transactions.c.occurred_at)
    )
    seen: dict[tuple[str, int], dict[str, object]] = {}
    now = datetime.now(UTC)
    if op.get_bind().dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    for member_id, op_key, occurred_at in rows:
        year = occurred_at.year if isinstance(occurred_at, datetime) else int(str(occurred_at)[:4])
        seen.setdefault(
            (member_id, year),
            {"member_id": member_id, "year": year, "op_key": op_key or "", "granted_at": now},
        )
    if seen:
        op.bulk_insert(grants, list(seen.values()))


def downgrade() -> None:
    op.drop_table("birthday_grants")
