"""create followed_operations table

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 10:00:00.000000

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("finished_at IS NULL")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "followed_operations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("message_ts", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("verb", sa.String(length=16), nullable=False),
        sa.Column("server_id", sa.BigInteger(), nullable=False),
        sa.Column("server_name", sa.String(length=255), nullable=False),
        sa.Column("headline", sa.Text(), nullable=False),
        sa.Column("expected_status", sa.String(length=32), nullable=False),
        sa.Column("last_status", sa.String(length=32), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.String(length=32), nullable=True),
        sa.Column("polls", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_status", sa.String(length=32), nullable=True),
        sa.Column("notify_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followed_operations")),
    )
    op.create_index(
        op.f("ix_followed_operations_open_next_poll_at"),
        "followed_operations",
        ["next_poll_at"],
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    )
    op.create_index(
        op.f("ix_followed_operations_open_owner"),
        "followed_operations",
        ["owner", "next_poll_at"],
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    )
    op.create_index(
        op.f("ix_followed_operations_finished_at"),
        "followed_operations",
        ["finished_at"],
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_followed_operations_finished_at"), "followed_operations")
    op.drop_index(op.f("ix_followed_operations_open_owner"), "followed_operations")
    op.drop_index(
        op.f("ix_followed_operations_open_next_poll_at"), "followed_operations"
    )
    op.drop_table("followed_operations")
