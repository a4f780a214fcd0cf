"""Redraws a change's announcement as the server it changed settles.

``SlackProgress`` is the notifier of ``vpsbot.ops.tracking``: it edits the
announcement with ``chat.update``, keeping the original text and adding one
status line under it. Slack's 429 becomes the follower's "try later", and an
error that no retry can fix (the message or channel is gone, the bot may not
edit it) ends the follow.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from vpsbot.ops.tracking import (
    DEFAULT_NOTIFY_WAIT,
    FollowedOp,
    NotifyFailedError,
    NotifyLaterError,
    Progress,
)
from vpsbot.slack import blocks as block_kit
from vpsbot.slack.messages import escape
from vpsbot.slack.workspaces import (
    NotInstalledError,
    SlackClients,
    as_slack_clients,
)

logger = logging.getLogger(__name__)

# chat.update errors after which the message can never be updated.
PERMANENT_ERRORS = frozenset(
    {
        "message_not_found",
        "cant_update_message",
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "edit_window_closed",
        "account_inactive",
        "invalid_auth",
        "token_revoked",
    }
)

_VERB_ING = {
    "create": "provisioning",
    "start": "starting",
    "stop": "stopping",
    "reboot": "rebooting",
}


class SlackProgress:
    """Shows progress by editing the announcement in place."""

    def __init__(self, client: WebClient | SlackClients) -> None:
        self._clients = as_slack_clients(client)

    def notify(self, operation: FollowedOp, progress: Progress) -> None:
        """Update the announcement of ``operation``.

        Raises:
            NotifyLaterError: Slack's rate limit; wait ``Retry-After`` seconds.
            NotifyFailedError: the message can never be updated.
            SlackApiError: any other refusal (retried by the follower).
        """
        text, blocks = render(operation, progress)
        try:
            client = self._clients.for_team(operation.team_id)
        except NotInstalledError as exc:
            raise NotifyFailedError("not_installed") from exc
        try:
            client.chat_update(
                channel=operation.channel_id,
                ts=operation.message_ts,
                text=text,
                blocks=blocks,
            )
        except SlackApiError as exc:
            response = exc.response
            error = response.get("error") if response is not None else None
            status = getattr(response, "status_code", None)
            if error == "ratelimited" or status == 429:
                raise NotifyLaterError(_retry_after(response)) from exc
            if error in PERMANENT_ERRORS:
                raise NotifyFailedError(str(error)) from exc
            raise


def render(operation: FollowedOp, progress: Progress) -> tuple[str, list[Any]]:
    """The announcement's text and blocks with the status line added."""
    line = status_line(operation, progress)
    text = f"{operation.headline}\n{line}"
    drawn = block_kit.announcement(operation.headline)
    drawn.append({"type": "context", "elements": [{"type": "mrkdwn", "text": line}]})
    return text, drawn


def status_line(operation: FollowedOp, progress: Progress) -> str:
    """One line saying how the server stands (mrkdwn, provider text escaped)."""
    name = escape(operation.server_name)
    status = escape(progress.status)
    took = elapsed(progress.elapsed)
    if progress.state == "following":
        line = f":hourglass_flowing_sand: {name} is `{status}` · {took} elapsed"
        if progress.error in ("unreachable", "rate_limited"):
            line += " (VPS.org is not answering right now; still trying)"
        return line
    if progress.state == "settled":
        if progress.status.lower() != operation.expected_status:
            return (
                f":warning: {name} ended up `{status}` after {took}, not "
                f"`{escape(operation.expected_status)}`; check `/vps show {name}`"
            )
        where = ""
        if operation.verb == "create" and progress.ip_address:
            where = f" at {escape(progress.ip_address)}"
        return f":white_check_mark: {name} is `{status}`{where} after {took}"
    if progress.state == "gone":
        return (
            f":warning: {name} no longer exists at VPS.org (after {took}); "
            f"vpsbot stopped following it"
        )
    minutes = max(1, round(progress.elapsed / 60))
    if progress.error in ("unreachable", "rate_limited"):
        return (
            f":warning: VPS.org did not answer about {name} for a while; after "
            f"{minutes} min vpsbot stopped following it (last seen `{status}`) "
            f"— check `/vps show {name}`"
        )
    word = status if status else _VERB_ING.get(operation.verb, "busy")
    return (
        f":warning: {name} is still `{word}` after {minutes} min; vpsbot stopped "
        f"following it — check `/vps show {name}`"
    )


def elapsed(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def _retry_after(response: Any) -> float:
    headers = getattr(response, "headers", None) or {}
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return max(1.0, float(raw))
            except (TypeError, ValueError):
                break
    return DEFAULT_NOTIFY_WAIT
