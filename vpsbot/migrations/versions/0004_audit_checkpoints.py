"""create audit_checkpoints; audit indexes that end in the display order

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 19:40:00.000000

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (old index, old columns, new index, new columns) on audit_entries.
_INDEXES = (
    (
        "ix_audit_entries_team_channel_at",
        ["team", "channel", "at"],
        "ix_audit_entries_team_channel_at_seq",
        ["team", "channel", "at", "seq"],
    ),
    (
        "ix_audit_entries_team_channel_server_id",
        ["team", "channel", "server_id"],
        "ix_audit_entries_team_channel_server_id_at_seq",
        ["team", "channel", "server_id", "at", "seq"],
    ),
    (
        "ix_audit_entries_team_channel_user",
        ["team", "channel", "user"],
        "ix_audit_entries_team_channel_user_at_seq",
        ["team", "channel", "user", "at", "seq"],
    ),
)

_BY_NAME = "ix_audit_entries_team_channel_server_name_at_seq"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "audit_checkpoints",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("removed", sa.BigInteger(), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_checkpoints_seq")),
    )
    for old, _, new, columns in _INDEXES:
        op.create_index(op.f(new), "audit_entries", columns)
        op.drop_index(op.f(old), "audit_entries")
    # ``/vps audit server:web-1`` filters by name when no id is given.
    op.create_index(
        op.f(_BY_NAME), "audit_entries", ["team", "channel", "server_name", "at", "seq"]
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f(_BY_NAME), "audit_entries")
    for old, columns, new, _ in _INDEXES:
        op.create_index(op.f(old), "audit_entries", columns)
        op.drop_index(op.f(new), "audit_entries")
    op.drop_table("audit_checkpoints")
