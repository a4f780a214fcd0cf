"""What the Slack handlers share, and how a payload names its actor."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vpsbot.errors import StoreUnavailableError
from vpsbot.ops import Actor, ChangeResult, Operations, new_request_id
from vpsbot.ops.tracking import EXPECTED_STATUS, Follower
from vpsbot.slack.timezones import ViewerZones
from vpsbot.slack.worker import Background

if TYPE_CHECKING:
    from vpsbot.slack.approvals import ApprovalDesk
    from vpsbot.slack.connect import ConnectDialogs
    from vpsbot.slack.editing import ServerDialogs
    from vpsbot.slack.views import DeleteDialogs

logger = logging.getLogger(__name__)


@dataclass
class SlackContext:
    """The use cases and pools every listener works with."""

    ops: Operations
    background: Background
    dialogs: DeleteDialogs
    server_dialogs: ServerDialogs
    approvals: ApprovalDesk
    follower: Follower | None = None
    zones: ViewerZones = field(default_factory=ViewerZones)
    # The /vps connect dialog (multi-workspace mode only).
    connect: ConnectDialogs | None = None

    def follow(
        self, actor: Actor, result: ChangeResult, headline: str, ts: str | None
    ) -> int | None:
        """Follow an announced change until its server settles.

        Call it after announcing a create, start, stop or reboot: ``headline``
        is the announcement's text and ``ts`` what ``Replies.announce``
        returned. Other changes, no-ops and announcements that could not be
        posted as a message (``ts`` is ``None``) are not followed.

        Returns:
            The followed operation's id, or ``None`` when it is not followed.
        """
        if self.follower is None or not result.changed:
            return None
        if result.verb not in EXPECTED_STATUS:
            return None
        if ts is None:
            logger.info(
                "not following the %s of %s: it was announced through the "
                "response_url, which leaves no message to update [%s]",
                result.verb,
                result.server.id,
                actor.request_id,
            )
            return None
        try:
            return self.follower.follow(
                actor, result.verb, result.server, headline, message_ts=ts
            )
        except StoreUnavailableError:
            logger.warning(
                "not following the %s of %s: the database did not answer [%s]",
                result.verb,
                result.server.id,
                actor.request_id,
            )
            return None


def request_id(context: dict[str, Any]) -> str:
    """The id stamped on this request by the middleware (a new one otherwise)."""
    value = context.get("request_id")
    return value if isinstance(value, str) else new_request_id()


def actor_from_command(body: dict[str, Any], context: dict[str, Any]) -> Actor | None:
    """The actor of a slash command payload (form fields)."""
    team = body.get("team_id") or context.get("team_id")
    channel = body.get("channel_id")
    user = body.get("user_id")
    if not (team and channel and user):
        return None
    return Actor(team, channel, user, request_id(context))


def actor_from_action(body: dict[str, Any], context: dict[str, Any]) -> Actor | None:
    """The actor of a block_actions payload: who clicked, and where."""
    user = (body.get("user") or {}).get("id")
    team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    channel = (body.get("channel") or {}).get("id") or (
        body.get("container") or {}
    ).get("channel_id")
    if not (team and channel and user):
        return None
    return Actor(team, channel, user, request_id(context))
