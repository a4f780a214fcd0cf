"""The reads behind a person's App Home: their channels' policies, latest audit
entries across several channels, and the approval requests waiting there.

Each read is shaped to use the tables' indexes, so that a Home is drawn from
a few short index scans however long the audit log grows: the newest entries
of each channel are read off the index that ends in ``(at, seq)`` (at most
``limit`` rows per channel) and merged in one query, and a person's own
entries off ``(team, user, at, seq)``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select, tuple_, union_all
from sqlalchemy.orm import Session

from vpsbot.store.models import ApprovalRequest, AuditEntry, ChannelPolicy

logger = logging.getLogger(__name__)

#: Channels whose newest entries one statement gathers (one UNION ALL branch
#: each); SQLite allows 500 branches, and shorter statements plan faster.
CHANNELS_PER_STATEMENT = 50
#: Channels whose policies one statement asks for (bound parameters each).
POLICIES_PER_STATEMENT = 500


class HomeRepository:
    """The queries of the App Home; takes the caller's session, never commits."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def policies(
        self, *, team_id: str, channel_ids: Collection[str] | None = None
    ) -> list[ChannelPolicy]:
        """The workspace's channel policies (only of ``channel_ids`` when given)."""
        query = select(ChannelPolicy).where(ChannelPolicy.team_id == team_id)
        if channel_ids is not None:
            if not channel_ids:
                return []
            query = query.where(ChannelPolicy.channel_id.in_(sorted(channel_ids)))
        return list(self._session.scalars(query))

    def policies_allowing_audit(
        self, *, team_id: str, channel_ids: Collection[str]
    ) -> list[ChannelPolicy]:
        """Policies of ``channel_ids`` whose ``audit`` rule is ``allow``: the
        only channels whose entries a Home can show (the caller still applies
        the policy code). Asked ``POLICIES_PER_STATEMENT`` channels at a time."""
        ordered = sorted(set(channel_ids))
        found: list[ChannelPolicy] = []
        for start in range(0, len(ordered), POLICIES_PER_STATEMENT):
            query = select(ChannelPolicy).where(
                ChannelPolicy.team_id == team_id,
                ChannelPolicy.audit == "allow",
                ChannelPolicy.channel_id.in_(
                    ordered[start : start + POLICIES_PER_STATEMENT]
                ),
            )
            found.extend(self._session.scalars(query))
        return found

    def entries_of_user(
        self,
        *,
        team: str,
        user: str,
        before: tuple[datetime, int] | None = None,
        limit: int,
    ) -> list[AuditEntry]:
        """The person's own entries in any channel, newest first, older than
        ``before`` (an entry's ``(at, seq)``) when given; read off the
        ``(team, user, at, seq)`` index."""
        query = select(AuditEntry).where(
            AuditEntry.team == team, AuditEntry.user == user
        )
        if before is not None:
            query = query.where(tuple_(AuditEntry.at, AuditEntry.seq) < tuple_(*before))
        query = query.order_by(AuditEntry.at.desc(), AuditEntry.seq.desc()).limit(limit)
        return list(self._session.scalars(query))

    def latest_entries(
        self,
        *,
        team: str,
        channels: Collection[str],
        user: str | None = None,
        limit: int = 10,
    ) -> list[AuditEntry]:
        """The newest ``limit`` entries across ``channels``, newest first.

        With ``user``, only that person's entries. Each channel contributes at
        most ``limit`` rows, read newest first off its ``(team, channel[, user],
        at, seq)`` index; the union of those is sorted once.

        Raises:
            ValueError: a ``limit`` below 1.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        ordered = sorted(set(channels))
        found: list[AuditEntry] = []
        for start in range(0, len(ordered), CHANNELS_PER_STATEMENT):
            chunk = ordered[start : start + CHANNELS_PER_STATEMENT]
            branches = []
            for channel in chunk:
                newest = select(AuditEntry.id).where(
                    AuditEntry.team == team, AuditEntry.channel == channel
                )
                if user is not None:
                    newest = newest.where(AuditEntry.user == user)
                newest = (
                    newest.order_by(AuditEntry.at.desc(), AuditEntry.seq.desc())
                    .limit(limit)
                    .subquery()
                )
                branches.append(select(newest.c.id))
            ids = union_all(*branches) if len(branches) > 1 else branches[0]
            query = (
                select(AuditEntry)
                .where(AuditEntry.id.in_(ids))
                .order_by(AuditEntry.at.desc(), AuditEntry.seq.desc())
                .limit(limit)
            )
            found.extend(self._session.scalars(query))
        found.sort(key=lambda entry: (entry.at, entry.seq), reverse=True)
        return found[:limit]

    def channels_with_pending(
        self, *, team_id: str, now: datetime, not_by: str
    ) -> list[str]:
        """Channels holding requests still open at ``now`` that ``not_by`` did
        not make."""
        query = (
            select(ApprovalRequest.channel_id)
            .where(
                ApprovalRequest.team_id == team_id,
                ApprovalRequest.status == "pending",
                ApprovalRequest.expires_at > now,
                ApprovalRequest.requester != not_by,
            )
            .distinct()
        )
        return sorted(self._session.scalars(query))

    def pending_in_channels(
        self,
        *,
        team_id: str,
        channel_ids: Collection[str],
        now: datetime,
        not_by: str,
        limit: int,
    ) -> list[ApprovalRequest]:
        """Open requests of these channels that ``not_by`` did not make,
        oldest first."""
        if not channel_ids:
            return []
        query = (
            select(ApprovalRequest)
            .where(
                ApprovalRequest.team_id == team_id,
                ApprovalRequest.channel_id.in_(sorted(channel_ids)),
                ApprovalRequest.status == "pending",
                ApprovalRequest.expires_at > now,
                ApprovalRequest.requester != not_by,
            )
            .order_by(ApprovalRequest.created_at, ApprovalRequest.id)
            .limit(limit)
        )
        return list(self._session.scalars(query))
