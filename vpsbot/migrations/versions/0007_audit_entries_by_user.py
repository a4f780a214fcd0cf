"""index audit_entries by (team, user, at, seq) for the App Home

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 21:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_audit_entries_team_user_at_seq"


def upgrade() -> None:
    op.create_index(INDEX, "audit_entries", ["team", "user", "at", "seq"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="audit_entries")
