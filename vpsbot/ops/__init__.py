"""Use cases shared by Slack, the local shell and the command line."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from vpsbot.ops.auditing import AuditFilters, AuditOperations
from vpsbot.ops.context import Actor, new_request_id
from vpsbot.ops.guard import ApprovalUnavailableError, Guard, Target
from vpsbot.ops.policies import PolicyOperations
from vpsbot.ops.servers import ChangeResult, ServerOperations
from vpsbot.vps import VpsClient

__all__ = [
    "Actor",
    "ApprovalUnavailableError",
    "AuditFilters",
    "ChangeResult",
    "Guard",
    "Operations",
    "Target",
    "new_request_id",
]


@dataclass(frozen=True)
class Operations:
    """Every use case, built on one database and one provider client."""

    servers: ServerOperations
    policies: PolicyOperations
    audit: AuditOperations

    @classmethod
    def build(
        cls,
        *,
        sessions: sessionmaker[Session],
        vps: VpsClient,
        admins: tuple[str, ...],
    ) -> Operations:
        guard = Guard(sessions, admins=admins)
        return cls(
            servers=ServerOperations(guard=guard, vps=vps),
            policies=PolicyOperations(guard=guard, sessions=sessions),
            audit=AuditOperations(guard=guard, sessions=sessions),
        )
