"""Reading the audit log of a channel, for those the channel's policy allows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from vpsbot import audit
from vpsbot.ops.context import Actor, as_server_id
from vpsbot.ops.guard import Guard, Target
from vpsbot.store import session_scope
from vpsbot.store.models import AuditEntry

logger = logging.getLogger(__name__)

#: Entries on one page of ``/vps audit``: a few sections, well inside Slack's
#: 50 blocks and 3,000 characters a section.
PAGE_SIZE = 20


@dataclass(frozen=True)
class AuditFilters:
    """What ``/vps audit`` narrows the entries to; ``None`` means any."""

    server: str | None = None
    user: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def describe(self) -> str:
        parts = [
            f"{name}={value:%Y-%m-%d %H:%M}"
            if isinstance(value, datetime)
            else f"{name}={value}"
            for name, value in vars(self).items()
            if value is not None
        ]
        return " ".join(parts)


@dataclass(frozen=True)
class AuditPage:
    """Entries shown together, and where the next (older) page starts.

    ``older_than`` is the ``seq`` of the oldest entry shown when older ones
    match too, else ``None``.
    """

    entries: list[AuditEntry]
    older_than: int | None = None


class AuditOperations:
    """``/vps audit``: this channel's entries, newest first."""

    def __init__(self, *, guard: Guard, sessions: sessionmaker[Session]) -> None:
        self._guard = guard
        self._sessions = sessions

    def recent(
        self, actor: Actor, filters: AuditFilters, *, limit: int = 20
    ) -> list[AuditEntry]:
        """Entries of the asker's channel that match the filters.

        Raises:
            UserError: refused by policy.
            StoreUnavailableError: the database did not answer.
        """
        return self.page(actor, filters, limit=limit).entries

    def page(
        self,
        actor: Actor,
        filters: AuditFilters,
        *,
        before_seq: int | None = None,
        limit: int = PAGE_SIZE,
    ) -> AuditPage:
        """One page of the matching entries, newest first.

        Args:
            before_seq: start below this entry (the oldest of the page before);
                ``None`` for the newest entries.

        Raises:
            UserError: refused by policy.
            StoreUnavailableError: the database did not answer.
        """
        target = Target.from_ref(filters.server)
        self._guard.authorize(actor, "audit", target)
        server_id = server_name = None
        if filters.server is not None:
            server_id = as_server_id(filters.server)
            if server_id is None:
                server_name = filters.server
        with session_scope(self._sessions) as session:
            entries = audit.query(
                session,
                team=actor.team_id,
                channel=actor.channel_id,
                server_id=server_id,
                server_name=server_name,
                user=filters.user,
                action=filters.action,
                outcome=filters.outcome,
                since=filters.since,
                until=filters.until,
                # One more than shown, to know whether older entries exist.
                limit=limit + 1,
                before_seq=before_seq,
            )
        older = len(entries) > limit
        entries = entries[:limit]
        shown = f"{len(entries)} {'entry' if len(entries) == 1 else 'entries'}"
        if before_seq is not None:
            shown += f" before #{before_seq}"
        self._guard.record(
            actor,
            "audit",
            "succeeded",
            target,
            shown + (f" ({filters.describe()})" if filters.describe() else ""),
        )
        return AuditPage(
            entries, older_than=entries[-1].seq if older and entries else None
        )
