"""Use cases shared by Slack, the local shell and the command line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from vpsbot.catalog import Catalog
from vpsbot.ops.accounts import (
    NoProviderAccountError,
    ProviderAccounts,
    SingleAccount,
    WorkspaceAccounts,
)
from vpsbot.ops.approvals import (
    Approval,
    ApprovalExpiry,
    ApprovalOperations,
    PendingAction,
    Verdict,
)
from vpsbot.ops.auditing import AuditFilters, AuditOperations
from vpsbot.ops.context import Actor, new_request_id
from vpsbot.ops.fields import FieldErrors
from vpsbot.ops.guard import ApprovalRequiredError, Guard, Target
from vpsbot.ops.home import Home, HomeOperations
from vpsbot.ops.policies import PolicyOperations
from vpsbot.ops.provisioning import CreateOperations, CreateRequest
from vpsbot.ops.servers import ChangeResult, Edit, ServerOperations, StaleEditError
from vpsbot.vps import VpsClient

__all__ = [
    "Actor",
    "Approval",
    "ApprovalExpiry",
    "ApprovalOperations",
    "ApprovalRequiredError",
    "AuditFilters",
    "ChangeResult",
    "CreateRequest",
    "Edit",
    "FieldErrors",
    "Guard",
    "Home",
    "HomeOperations",
    "NoProviderAccountError",
    "Operations",
    "PendingAction",
    "ProviderAccounts",
    "SingleAccount",
    "StaleEditError",
    "Target",
    "Verdict",
    "WorkspaceAccounts",
    "new_request_id",
]


@dataclass(frozen=True)
class Operations:
    """Every use case, built on one database and the provider account(s)."""

    servers: ServerOperations
    create: CreateOperations
    policies: PolicyOperations
    audit: AuditOperations
    approvals: ApprovalOperations
    home: HomeOperations

    @classmethod
    def build(
        cls,
        *,
        sessions: sessionmaker[Session],
        vps: VpsClient | ProviderAccounts,
        admins: tuple[str, ...],
        catalog: Catalog | None = None,
        approval_ttl: float = 3600.0,
        workspace_admins: Callable[[str], frozenset[str]] | None = None,
    ) -> Operations:
        """Wire the use cases; ``catalog`` defaults to the shipped one.

        ``vps`` is the one provider client, or the accounts that choose each
        workspace's client (multi-workspace mode).

        ``approval_ttl`` is how many seconds an approval request stays open.
        ``workspace_admins`` names a workspace's own admins beside ``admins``
        (multi-workspace mode: who installed vpsbot there).
        """
        guard = Guard(sessions, admins=admins, workspace_admins=workspace_admins)
        servers = ServerOperations(guard=guard, vps=vps)
        create = CreateOperations(
            guard=guard, vps=vps, catalog=catalog or Catalog.load()
        )
        return cls(
            servers=servers,
            create=create,
            policies=PolicyOperations(guard=guard, sessions=sessions),
            audit=AuditOperations(guard=guard, sessions=sessions),
            approvals=ApprovalOperations(
                guard=guard,
                sessions=sessions,
                servers=servers,
                create=create,
                ttl_seconds=approval_ttl,
            ),
            home=HomeOperations(guard=guard, sessions=sessions),
        )
