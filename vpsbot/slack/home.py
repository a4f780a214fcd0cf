"""The App Home tab: drawn when a person opens it, and its Approve and Deny.

Slack sends ``app_home_opened`` each time someone opens the app's Home tab;
the Home is read on the slow-read pool (so commands and clicks never queue
behind it) and sent with ``views.publish``. One person's Homes are read and
sent one at a time in a process, so an older Home never lands after a newer
one. Which channels the person is in comes from ``users.conversations``
(paged, kept a minute per person: the method allows about 50 calls a
minute; a refusal is remembered for its ``Retry-After``, 10 s to 5 minutes).
When Slack will not say, the Home shows the person's own actions and the
requests they can decide, and one line saying channel activity could not be
read. Approver groups are read through a cache shared by every Home
(``GroupMembersCache``).

A click on Approve or Deny in the Home carries no channel and no
response_url: the request is looked up by its id and decided in its own
channel under that channel's policy, exactly as a click on the request
message is (``ApprovalDesk``, which asks Slack afresh for group members);
the request message is redrawn, the requester told, and the Home drawn again
with a line saying what the click did.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from vpsbot.errors import StoreUnavailableError
from vpsbot.ops import Actor, Operations
from vpsbot.slack.approvals import ApprovalDesk, verdict_text
from vpsbot.slack.context import request_id
from vpsbot.slack.home_view import AUDIT_UNREADABLE, home_view, notice_view
from vpsbot.slack.ids import (
    APPROVE_BUTTON,
    DENY_BUTTON,
    HOME_APPROVE_BUTTON,
    HOME_DENY_BUTTON,
)
from vpsbot.slack.retry_after import remembered_for
from vpsbot.slack.usergroups import GroupMembersCache
from vpsbot.slack.worker import Background

logger = logging.getLogger(__name__)

#: Seconds a person's channel list is reused before Slack is asked again.
MEMBERSHIP_TTL = 60.0
#: Channels asked for per ``users.conversations`` page (Slack suggests 200).
PAGE_LIMIT = 200
#: Pages read at most for one person (4,000 channels); beyond, the rest is
#: left out, logged and said on the Home.
MAX_PAGES = 20
#: People whose channel lists are kept at once.
MAX_CACHED = 1000

NO_SUCH_REQUEST = (
    "vpsbot has no such approval request (it may belong to another workspace); "
    "nothing was done."
)


@dataclass(frozen=True)
class MemberChannels:
    """The channels Slack listed for a person.

    Attributes:
        ids: the channel ids.
        complete: ``False`` when the person is in more channels than
            ``MAX_PAGES`` pages list, so some are left out.
    """

    ids: frozenset[str]
    complete: bool = True


class ChannelMemberships:
    """Which public and private channels a person is in, briefly cached.

    Private channels are listed by Slack only where the bot is a member too.
    A refusal is remembered per person for its ``Retry-After`` (10 s to 5
    minutes), so opening the Home again does not ask Slack again sooner.

    Args:
        client: the Web API client (needs ``channels:read`` and ``groups:read``)
            when ``of`` is given none: each workspace's own in multi-workspace
            mode, where this one holds no token.
        ttl: seconds an answer is reused.
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        client: WebClient,
        *,
        ttl: float = MEMBERSHIP_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        # (team, user) -> (valid until, channels, or None for a failure)
        self._cache: dict[tuple[str, str], tuple[float, MemberChannels | None]] = {}

    def of(
        self, team_id: str, user_id: str, client: WebClient | None = None
    ) -> MemberChannels | None:
        """The person's channels, or ``None`` when Slack did not say, now or
        a moment ago (the failure is logged). ``client`` is the workspace's
        (default: the one given at construction)."""
        key = (team_id, user_id)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now < cached[0]:
            return cached[1]
        try:
            channels = self._read(user_id, client or self._client)
        except SlackApiError as exc:
            wait = remembered_for(exc)
            logger.warning(
                "could not read the channels of %s: %s; not asked again for %.0f s",
                user_id,
                _error(exc),
                wait,
            )
            self._keep(key, now + wait, None)
            return None
        except OSError as exc:
            wait = remembered_for(None)
            logger.warning(
                "could not read the channels of %s: %s; not asked again for %.0f s",
                user_id,
                type(exc).__name__,
                wait,
            )
            self._keep(key, now + wait, None)
            return None
        self._keep(key, now + self._ttl, channels)
        return channels

    def _keep(
        self, key: tuple[str, str], until: float, channels: MemberChannels | None
    ) -> None:
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                now = self._clock()
                self._cache = {k: v for k, v in self._cache.items() if now < v[0]}
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
            self._cache[key] = (until, channels)

    def _read(self, user_id: str, client: WebClient) -> MemberChannels:
        found: set[str] = set()
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            response = client.users_conversations(
                user=user_id,
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=PAGE_LIMIT,
                cursor=cursor,
            )
            for channel in response.get("channels") or []:
                if isinstance(channel, dict) and isinstance(channel.get("id"), str):
                    found.add(channel["id"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return MemberChannels(frozenset(found))
        logger.warning(
            "%s is in more channels than %d pages list; the rest are left out",
            user_id,
            MAX_PAGES,
        )
        return MemberChannels(frozenset(found), complete=False)


class ViewerLocks:
    """One lock per (team, user), held while that person's Home is read and
    sent, so that a Home read later is also sent later. A lock lives only
    while someone holds or waits for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, team_id: str, user_id: str) -> Iterator[None]:
        key = (team_id, user_id)
        with self._lock:
            lock, users = self._held.get(key) or (threading.Lock(), 0)
            self._held[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, users = self._held[key]
                if users == 1:
                    del self._held[key]
                else:
                    self._held[key] = (lock, users - 1)


class HomeTab:
    """Publishes people's Homes and carries out the decisions made there.

    Args:
        ops: the use cases.
        background: the pools that run work after acknowledgement.
        desk: decides approval requests as the channel buttons do.
        groups: the user ids in a user group, cached for Homes (approvers).
        memberships: which channels a person is in.
    """

    def __init__(
        self,
        *,
        ops: Operations,
        background: Background,
        desk: ApprovalDesk,
        groups: GroupMembersCache,
        memberships: ChannelMemberships,
    ) -> None:
        self._ops = ops
        self._background = background
        self._desk = desk
        self._groups = groups
        self._memberships = memberships
        self._viewers = ViewerLocks()

    def publish(
        self,
        client: WebClient,
        team_id: str,
        user_id: str,
        *,
        request: str,
        notice: str | None = None,
    ) -> None:
        """Read the person's Home now and send it; a refused send is logged.

        Another Home of the same person being read or sent in this process is
        waited for first.

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        with self._viewers.hold(team_id, user_id):
            channels = self._memberships.of(team_id, user_id, client)
            home = self._ops.home.read(
                team_id,
                user_id,
                member_of=None if channels is None else channels.ids,
                members_of=self._groups.for_team(team_id),
                channels_cut=channels is not None and not channels.complete,
            )
            view = home_view(home, notice=notice)
            self._send(client, user_id, view, request)

    def register(self, app: App) -> None:
        """Wire ``app_home_opened`` and the Home's Approve and Deny."""

        def open_home(
            body: dict[str, Any],
            event: dict[str, Any],
            client: WebClient,
            context: dict[str, Any],
        ) -> None:
            """Someone opened a tab of the app; only the Home tab is drawn."""
            if event.get("tab") != "home":
                return
            user = event.get("user")
            team = body.get("team_id") or context.get("team_id")
            request = request_id(context)
            if not (isinstance(user, str) and isinstance(team, str)):
                logger.warning("app_home_opened without a user or team [%s]", request)
                return
            self._background.run_read(
                request,
                lambda text: self._send(client, user, notice_view(text), request),
                lambda: self._open(client, team, user, request),
            )

        def press_home_decision(
            ack: Ack, body: dict[str, Any], client: WebClient, context: dict[str, Any]
        ) -> None:
            """Approve or Deny on a request listed in the Home."""
            ack()
            action = (body.get("actions") or [{}])[0]
            user = (body.get("user") or {}).get("id")
            team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get(
                "team_id"
            )
            public_id = str(action.get("value") or "")
            request = request_id(context)
            if not (isinstance(user, str) and isinstance(team, str) and public_id):
                logger.warning("home decision without a user, team or request")
                return
            approve = action.get("action_id") == HOME_APPROVE_BUTTON
            self._background.run(
                request,
                lambda text: self._answer(client, team, user, text, request),
                lambda: self._decide(client, team, user, public_id, approve, request),
            )

        app.event("app_home_opened")(open_home)
        matcher = re.compile(f"^({HOME_APPROVE_BUTTON}|{HOME_DENY_BUTTON})$")
        app.action(matcher)(press_home_decision)

    def _open(
        self, client: WebClient, team_id: str, user_id: str, request: str
    ) -> None:
        """Someone opened the Home: draw it, or say the audit log cannot be read."""
        try:
            self.publish(client, team_id, user_id, request=request)
        except StoreUnavailableError as exc:
            logger.error(
                "database unavailable for the home of %s [%s]: %s",
                user_id,
                request,
                exc.__cause__,
            )
            self._send(client, user_id, notice_view(AUDIT_UNREADABLE), request)

    def _decide(
        self,
        client: WebClient,
        team_id: str,
        user_id: str,
        public_id: str,
        approve: bool,
        request: str,
    ) -> None:
        approval = self._ops.approvals.find(team_id, public_id)
        if approval is None:
            logger.info("home decision on unknown request %s [%s]", public_id, request)
            self._answer(client, team_id, user_id, NO_SUCH_REQUEST, request)
            return
        # The click decides in the request's own channel, under its policy.
        actor = Actor(team_id, approval.channel_id, user_id, request)
        verdict = self._desk.verdict(
            actor, APPROVE_BUTTON if approve else DENY_BUTTON, public_id
        )
        try:
            self._desk.carry_out(actor, verdict, client)
        finally:
            self._answer(client, team_id, user_id, verdict_text(verdict), request)

    def _answer(
        self, client: WebClient, team_id: str, user_id: str, text: str, request: str
    ) -> None:
        """Hand the Home with ``text`` at the top to the slow-read pool."""
        self._background.run_read(
            request,
            lambda failure: self._send(client, user_id, notice_view(failure), request),
            lambda: self._republish(client, team_id, user_id, text, request),
        )

    def _republish(
        self, client: WebClient, team_id: str, user_id: str, text: str, request: str
    ) -> None:
        """The Home with ``text`` at the top; only ``text`` if the Home cannot
        be read."""
        try:
            self.publish(client, team_id, user_id, request=request, notice=text)
        except StoreUnavailableError:
            self._send(client, user_id, notice_view(text), request)

    def _send(
        self, client: WebClient, user_id: str, view: dict[str, Any], request: str
    ) -> None:
        try:
            client.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            logger.warning(
                "could not publish the home of %s: %s [%s]",
                user_id,
                _error(exc),
                request,
            )


def _error(exc: SlackApiError) -> str:
    response = exc.response
    return str(response.get("error")) if response is not None else "no answer"
