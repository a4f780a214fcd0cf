"""A person's App Home: what they did, what waits for them, what happened around
them. Free of Slack.

Three parts, each read at the moment the Home is drawn:

- their own latest audit entries;
- the pending approval requests they may decide (others' requests, in
  channels where the policy names them, or a user group they are in, as
  approvers; ``policy.may_approve`` decides, as it does for a click);
- the latest audit entries of the channels they are a member of.

An audit entry is shown only if its channel's current policy lets this
person read that channel's audit log (``audit`` = ``allow``, applied with the
same policy code as ``/vps audit``); a channel whose policy does not
contributes nothing, not even its name. Entries of other workspaces never
show.

Drawing a Home is not audited: it belongs to no channel (every audit entry
names one), Slack asks for it each time the person opens the tab, and it
shows only entries that ``/vps audit`` in those channels shows them anyway.
Deciding a request from the Home is audited as any decision is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from vpsbot.ops.approvals import Approval, GroupUnreadableError, MembersOf
from vpsbot.ops.guard import Guard, rules_of
from vpsbot.policy import OPERATION_ACTIONS, decide, may_approve
from vpsbot.store import begin_read_only, session_scope
from vpsbot.store.home import HomeRepository
from vpsbot.store.models import AuditEntry

logger = logging.getLogger(__name__)

#: Entries in each audit part of a Home.
ENTRIES_SHOWN = 10
#: Pending requests shown with their buttons (two blocks each in Slack).
PENDING_SHOWN = 10


@dataclass(frozen=True)
class Home:
    """What one person's Home shows, as read at ``at``.

    Attributes:
        mine: their own latest entries, newest first.
        pending: requests they may decide, oldest first.
        more_pending: more requests wait for them than ``pending`` holds.
        activity: the latest entries of their channels, newest first; ``None``
            when their channels could not be known.
        groups_unread: some approver user group could not be read just now,
            so requests it approves may be missing.
        at: when it was read.
    """

    mine: list[AuditEntry]
    pending: list[Approval]
    more_pending: bool
    activity: list[AuditEntry] | None
    groups_unread: bool
    at: datetime


class HomeOperations:
    """Reads a person's Home.

    Args:
        guard: the admins (the approvers where a channel names none).
        sessions: the database.
        clock: the current time, timezone-aware.
    """

    def __init__(
        self,
        *,
        guard: Guard,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._guard = guard
        self._sessions = sessions
        self._clock = clock

    def read(
        self,
        team_id: str,
        user_id: str,
        *,
        member_of: Collection[str] | None,
        members_of: MembersOf,
    ) -> Home:
        """The Home of ``user_id`` in ``team_id``.

        Args:
            member_of: ids of the channels the person is a member of, or
                ``None`` when they could not be read (the activity part is
                then left out).
            members_of: the user ids in a user group (may raise
                ``GroupUnreadableError`` for a passing failure).

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        now = self._clock()
        with session_scope(self._sessions) as session:
            begin_read_only(session)
            repository = HomeRepository(session)
            readable = self._audit_readable(repository, team_id)
            mine = (
                repository.latest_entries(
                    team=team_id, channels=readable, user=user_id, limit=ENTRIES_SHOWN
                )
                if readable
                else []
            )
            activity: list[AuditEntry] | None = None
            if member_of is not None:
                watched = readable & set(member_of)
                activity = (
                    repository.latest_entries(
                        team=team_id, channels=watched, limit=ENTRIES_SHOWN
                    )
                    if watched
                    else []
                )
            pending, more, unread = self._decidable(
                repository, team_id, user_id, now, members_of
            )
        logger.debug(
            "home of %s: %d own, %d pending, %s activity",
            user_id,
            len(mine),
            len(pending),
            "no" if activity is None else len(activity),
        )
        return Home(
            mine=mine,
            pending=pending,
            more_pending=more,
            activity=activity,
            groups_unread=unread,
            at=now,
        )

    def _audit_readable(self, repository: HomeRepository, team_id: str) -> set[str]:
        """Channels of the workspace whose policy lets everyone there read the
        audit log now, decided by the policy code ``/vps audit`` uses."""
        readable = set()
        for row in repository.policies_allowing_audit(team_id=team_id):
            rules = rules_of(row)
            if decide(
                rules, OPERATION_ACTIONS["audit"], admins=self._guard.admins
            ).allowed:
                readable.add(row.channel_id)
        return readable

    def _decidable(
        self,
        repository: HomeRepository,
        team_id: str,
        user_id: str,
        now: datetime,
        members_of: MembersOf,
    ) -> tuple[list[Approval], bool, bool]:
        """Requests ``user_id`` may decide, whether there are more, and whether a
        user group could not be read."""
        channels = repository.channels_with_pending(
            team_id=team_id, now=now, not_by=user_id
        )
        if not channels:
            return [], False, False
        groups = _GroupMembers(members_of)
        policies = {
            row.channel_id: row
            for row in repository.policies(team_id=team_id, channel_ids=channels)
        }
        approving = {
            channel
            for channel in channels
            # Every request listed below is someone else's; only whether the
            # person approves in the channel is asked here.
            if may_approve(
                user_id,
                requester="",
                rules=rules_of(policies.get(channel)),
                admins=self._guard.admins,
                members_of=groups,
            )
        }
        rows = repository.pending_in_channels(
            team_id=team_id,
            channel_ids=approving,
            now=now,
            not_by=user_id,
            limit=PENDING_SHOWN + 1,
        )
        found = [Approval.from_row(row) for row in rows]
        return found[:PENDING_SHOWN], len(found) > PENDING_SHOWN, groups.unread


class _GroupMembers:
    """``members_of`` asked once per group for one Home; a group that cannot be
    read counts as empty, and ``unread`` says whether that happened."""

    def __init__(self, members_of: MembersOf) -> None:
        self._members_of = members_of
        self._known: dict[str, set[str]] = {}
        self.unread = False

    def __call__(self, group_id: str) -> set[str]:
        if group_id not in self._known:
            try:
                self._known[group_id] = set(self._members_of(group_id))
            except GroupUnreadableError:
                self.unread = True
                self._known[group_id] = set()
            except Exception:
                logger.warning("could not read the members of user group %s", group_id)
                self._known[group_id] = set()
        return self._known[group_id]
