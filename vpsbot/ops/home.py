"""A person's App Home: what they did, what waits for them, what happened around
them. Free of Slack.

Three parts, each read at the moment the Home is drawn:

- their own latest audit entries (read newest first off their own entries,
  ``MINE_BATCH`` at a time, keeping those whose channel lets them read the
  audit log, until ``ENTRIES_SHOWN`` are found or ``MINE_SCANNED`` were
  looked at: a person whose newest entries all lie in channels that hide
  the audit log may see fewer, or none);
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
#: A person's own entries read at once for "Your recent actions".
MINE_BATCH = 50
#: A person's own entries looked at, at most, for "Your recent actions".
MINE_SCANNED = 500


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
        channels_cut: the person is in more channels than were listed, so the
            activity of some is missing.
    """

    mine: list[AuditEntry]
    pending: list[Approval]
    more_pending: bool
    activity: list[AuditEntry] | None
    groups_unread: bool
    at: datetime
    channels_cut: bool = False


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
        channels_cut: bool = False,
    ) -> Home:
        """The Home of ``user_id`` in ``team_id``.

        Args:
            member_of: ids of the channels the person is a member of, or
                ``None`` when they could not be read (the activity part is
                then left out).
            members_of: the user ids in a user group (may raise
                ``GroupUnreadableError`` for a passing failure).
            channels_cut: ``member_of`` leaves out some of the person's
                channels (said on the Home).

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        now = self._clock()
        with session_scope(self._sessions) as session:
            begin_read_only(session)
            repository = HomeRepository(session)
            mine = self._mine(repository, team_id, user_id)
            activity: list[AuditEntry] | None = None
            if member_of is not None:
                watched = self._audit_readable(repository, team_id, member_of)
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
            channels_cut=channels_cut,
        )

    def _mine(
        self, repository: HomeRepository, team_id: str, user_id: str
    ) -> list[AuditEntry]:
        """The person's newest entries in channels whose audit log they may
        read now, newest first (see the module's note on the bound)."""
        found: list[AuditEntry] = []
        verdicts: dict[str, bool] = {}
        before: tuple[datetime, int] | None = None
        scanned = 0
        while scanned < MINE_SCANNED:
            batch = repository.entries_of_user(
                team=team_id,
                user=user_id,
                before=before,
                limit=min(MINE_BATCH, MINE_SCANNED - scanned),
            )
            scanned += len(batch)
            unknown = {entry.channel for entry in batch} - verdicts.keys()
            if unknown:
                readable = self._audit_readable(repository, team_id, unknown)
                verdicts.update((channel, channel in readable) for channel in unknown)
            for entry in batch:
                if verdicts[entry.channel]:
                    found.append(entry)
                    if len(found) == ENTRIES_SHOWN:
                        return found
            if len(batch) < MINE_BATCH:
                break
            before = (batch[-1].at, batch[-1].seq)
        return found

    def _audit_readable(
        self, repository: HomeRepository, team_id: str, channel_ids: Collection[str]
    ) -> set[str]:
        """Those of ``channel_ids`` whose policy lets everyone there read the
        audit log now, decided by the policy code ``/vps audit`` uses."""
        readable = set()
        for row in repository.policies_allowing_audit(
            team_id=team_id, channel_ids=channel_ids
        ):
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
