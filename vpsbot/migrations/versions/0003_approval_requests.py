"""create approval_requests table

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-12 10:00:00.000000

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES = (
    "pending",
    "approved",
    "rejected",
    "expired",
    "cancelled",
    "stale",
    "executed",
    "failed",
)


def upgrade() -> None:
    """Upgrade schema."""
    allowed = ", ".join(f"'{state}'" for state in _STATES)
    op.create_table(
        "approval_requests",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("requester", sa.String(length=64), nullable=False),
        sa.Column("verb", sa.String(length=16), nullable=False),
        sa.Column("server_id", sa.BigInteger(), nullable=True),
        sa.Column("server_name", sa.String(length=255), nullable=False),
        sa.Column("server_status", sa.String(length=32), nullable=True),
        sa.Column("params", sa.Text(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("message_ts", sa.String(length=32), nullable=True),
        sa.Column("response_url", sa.Text(), nullable=True),
        sa.CheckConstraint(
            f"status IN ({allowed})", name=op.f("ck_approval_requests_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_requests")),
        sa.UniqueConstraint("request_id", name=op.f("uq_approval_requests_request_id")),
    )
    op.create_index(
        op.f("ix_approval_requests_team_id_channel_id_status"),
        "approval_requests",
        ["team_id", "channel_id", "status"],
    )
    op.create_index(
        op.f("ix_approval_requests_status_expires_at"),
        "approval_requests",
        ["status", "expires_at"],
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_approval_requests_status_expires_at"), "approval_requests")
    op.drop_index(
        op.f("ix_approval_requests_team_id_channel_id_status"), "approval_requests"
    )
    op.drop_table("approval_requests")
