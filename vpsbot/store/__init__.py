"""The database: engine and session scope, migrations, and repositories.

Callers own transactions through ``session_scope``; repositories take the
session they are given and never commit.
"""

from __future__ import annotations

import logging

from vpsbot.store.migrate import migrations_current, upgrade_database
from vpsbot.store.repositories import (
    ApprovalRepository,
    AuditRepository,
    ClaimRepository,
    CredentialRepository,
    FollowedOperationRepository,
    PolicyRepository,
)
from vpsbot.store.session import (
    begin_read_only,
    make_engine,
    make_session_factory,
    session_scope,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ApprovalRepository",
    "AuditRepository",
    "ClaimRepository",
    "CredentialRepository",
    "FollowedOperationRepository",
    "PolicyRepository",
    "begin_read_only",
    "make_engine",
    "make_session_factory",
    "migrations_current",
    "session_scope",
    "upgrade_database",
]
