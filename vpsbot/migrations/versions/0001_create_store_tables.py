"""create channel_policies, audit_entries, audit_head and claims tables

Revision ID: 0001
Revises:
Create Date: 2026-12-04 15:30:00.000000

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICY_ACTIONS = ("read", "power", "create", "modify", "delete", "audit")


def _rule_column(action: str) -> sa.Column[str]:
    return sa.Column(
        action, sa.String(length=8), server_default=sa.text("'deny'"), nullable=False
    )


def _rule_check(action: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(
        f"\"{action}\" IN ('allow', 'approve', 'deny')",
        name=op.f(f"ck_channel_policies_{action}"),
    )


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "channel_policies",
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        *(_rule_column(action) for action in POLICY_ACTIONS),
        sa.Column(
            "approvers", sa.JSON(), server_default=sa.text("'[]'"), nullable=False
        ),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        *(_rule_check(action) for action in POLICY_ACTIONS),
        sa.PrimaryKeyConstraint(
            "team_id", "channel_id", name=op.f("pk_channel_policies")
        ),
    )

    op.create_table(
        "audit_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("server_id", sa.BigInteger(), nullable=True),
        sa.Column("server_name", sa.String(length=255), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_entries_seq")),
    )
    op.create_index(op.f("ix_audit_entries_at"), "audit_entries", ["at"])
    op.create_index(
        op.f("ix_audit_entries_request_id"), "audit_entries", ["request_id"]
    )
    op.create_index(
        op.f("ix_audit_entries_team_channel_at"),
        "audit_entries",
        ["team", "channel", "at"],
    )
    op.create_index(
        op.f("ix_audit_entries_team_channel_server_id"),
        "audit_entries",
        ["team", "channel", "server_id"],
    )
    op.create_index(
        op.f("ix_audit_entries_team_channel_user"),
        "audit_entries",
        ["team", "channel", "user"],
    )

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )

    op.create_table(
        "claims",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_claims")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("claims")
    op.drop_table("audit_head")
    op.drop_index(op.f("ix_audit_entries_team_channel_user"), "audit_entries")
    op.drop_index(op.f("ix_audit_entries_team_channel_server_id"), "audit_entries")
    op.drop_index(op.f("ix_audit_entries_team_channel_at"), "audit_entries")
    op.drop_index(op.f("ix_audit_entries_request_id"), "audit_entries")
    op.drop_index(op.f("ix_audit_entries_at"), "audit_entries")
    op.drop_table("audit_entries")
    op.drop_table("channel_policies")
