"""User-group members for the App Home, kept a while per workspace and group.

``usergroups.users.list`` is a Tier 2 method (about 20 calls a minute), and
the approval clicks need it too. A Home lists the requests its viewer may
decide, which means asking for every approver group with a pending request;
without a cache, a few people opening their Home would spend the budget the
clicks need. So the Home asks through ``GroupMembersCache``: one answer per
(workspace, group) serves every viewer for ``GROUP_TTL`` seconds, concurrent
misses of one group make one call, and a passing failure (a rate limit, an
outage) is remembered for its ``Retry-After`` (10 s to 5 minutes).

A click on Approve or Deny does not use this cache: it asks Slack afresh, so
that someone just removed from a group can no longer decide. A Home may list
a request for up to ``GROUP_TTL`` seconds to someone no longer allowed to
decide it; their click is then refused as any other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from vpsbot.ops.approvals import GroupUnreadableError, MembersOf
from vpsbot.slack.retry_after import remembered_for

logger = logging.getLogger(__name__)

# ApprovalNotices.members_of: (group id, team id) -> the group's user ids.
ReadMembers = Callable[[str, str], set[str]]

#: Seconds one group's members are reused by every Home of the workspace.
GROUP_TTL = 120.0
#: Groups whose answers are kept at once.
MAX_GROUPS = 2000


class GroupMembersCache:
    """``members_of`` for Homes: cached per workspace and group.

    Args:
        read: asks Slack for a group's members, given the group and its
            workspace (raises ``GroupUnreadableError`` for a passing failure).
        ttl: seconds an answer is reused.
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        read: ReadMembers,
        *,
        ttl: float = GROUP_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        # (team, group) -> (valid until, members, or None for a failure)
        self._answers: dict[tuple[str, str], tuple[float, frozenset[str] | None]] = {}
        self._reading: dict[tuple[str, str], threading.Lock] = {}

    def for_team(self, team_id: str) -> MembersOf:
        """``members_of`` for the Homes of one workspace."""
        return lambda group_id: self.members_of(team_id, group_id)

    def members_of(self, team_id: str, group_id: str) -> set[str]:
        """The group's members, from the cache when fresh.

        Raises:
            GroupUnreadableError: Slack could not say, now or a moment ago.
        """
        key = (team_id, group_id)
        with self._lock:
            reading = self._reading.setdefault(key, threading.Lock())
        # One call per group at a time: others wanting it wait for its answer.
        with reading:
            known = self._fresh(key)
            if known is not None:
                members = known[1]
                if members is None:
                    raise GroupUnreadableError(group_id)
                return set(members)
            try:
                members = frozenset(self._read(group_id, team_id))
            except GroupUnreadableError as exc:
                wait = remembered_for(exc.__cause__)
                logger.info(
                    "user group %s unreadable; not asked again for %.0f s",
                    group_id,
                    wait,
                )
                self._keep(key, self._clock() + wait, None)
                raise
            self._keep(key, self._clock() + self._ttl, members)
            return set(members)

    def _fresh(
        self, key: tuple[str, str]
    ) -> tuple[float, frozenset[str] | None] | None:
        with self._lock:
            known = self._answers.get(key)
        if known is None or self._clock() >= known[0]:
            return None
        return known

    def _keep(
        self, key: tuple[str, str], until: float, members: frozenset[str] | None
    ) -> None:
        with self._lock:
            if len(self._answers) >= MAX_GROUPS:
                now = self._clock()
                self._answers = {k: v for k, v in self._answers.items() if v[0] > now}
                if len(self._answers) >= MAX_GROUPS:
                    self._answers.clear()
            if len(self._reading) >= MAX_GROUPS:
                # Locks nobody holds; at worst a group is asked twice at once.
                self._reading = {
                    k: v for k, v in self._reading.items() if v.locked() or k == key
                }
            self._answers[key] = (until, members)
