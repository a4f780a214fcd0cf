"""Approval requests in Slack: the request message, its buttons, the answers.

An action under an ``approve`` rule reaches ``ApprovalDesk.ask`` (from a
command, a button or a dialog): the request is recorded, posted in the channel
with buttons ``Approve`` and ``Deny`` (their value is the request's public
id), and the requester gets an ephemeral note with a ``Cancel request``
button. Clicks are acknowledged at once and decided on the work pool; the
decision itself happens once in the database, however many clicks arrive.
After each step the request message is redrawn with ``chat.update`` and the
requester is told directly (``chat.postEphemeral``, else their response_url).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.webhook import WebhookClient

from vpsbot.errors import UserError
from vpsbot.ops import Actor, Approval, ChangeResult, Operations, PendingAction
from vpsbot.ops.approvals import MAX_PENDING_LISTED, GroupUnreadableError, Verdict
from vpsbot.policy import OPERATION_ACTIONS
from vpsbot.slack import messages, timezones
from vpsbot.slack.context import actor_from_action
from vpsbot.slack.ids import APPROVE_BUTTON, CANCEL_REQUEST_BUTTON, DENY_BUTTON
from vpsbot.slack.replies import Replies
from vpsbot.slack.worker import Background
from vpsbot.slack.workspaces import (
    NotInstalledError,
    SlackClients,
    as_slack_clients,
)

logger = logging.getLogger(__name__)

esc = messages.escape

Announce = Callable[[Actor, Replies, ChangeResult, str | None], None]
Blocks = list[dict[str, Any]]

MAX_SECTION = 3000
# Slack errors that pass: a group lookup failing so is tried again on the next click.
_PASSING_ERRORS = {"ratelimited", "internal_error", "fatal_error", "request_timeout"}
# Slack's limit for one field of a section.
MAX_FIELD = 2000


# Text


def when(moment: datetime | None) -> str:
    """A moment in a request, as mrkdwn each reader sees in their own zone."""
    return timezones.shown(moment, seconds=False) if moment else "an unknown time"


def mention(slack_id: str) -> str:
    """A user or user-group id as a mention Slack shows by name."""
    return f"<!subteam^{slack_id}>" if slack_id.startswith("S") else f"<@{slack_id}>"


def mentions(ids: Sequence[str]) -> str:
    return ", ".join(mention(slack_id) for slack_id in ids) or "nobody"


def what(approval: Approval) -> str:
    """The action asked for, escaped for mrkdwn."""
    return esc(approval.describe())


def headline(approval: Approval) -> str:
    return (
        f":raising_hand: <@{approval.requester}> asks for approval to "
        f"*{what(approval)}*"
    )


def server_line(approval: Approval) -> str:
    if approval.server_id is None:
        return f"{esc(approval.server_name)} (new server)"
    status = f" · `{esc(approval.server_status)}`" if approval.server_status else ""
    return f"{esc(approval.server_name)} (id {approval.server_id}){status}"


def ending(approval: Approval) -> str:
    """How a request ended (or stands), for its message."""
    status = approval.status
    decided = when(approval.decided_at)
    outcome = esc(approval.outcome or "")
    by = f"<@{approval.decided_by}>" if approval.decided_by else "someone"
    if status == "pending":
        return f":hourglass: Waiting for approval until {when(approval.expires_at)}."
    if status == "approved":
        return f":hourglass_flowing_sand: Approved by {by} at {decided}; running…"
    if status == "executed":
        return f":white_check_mark: Approved by {by} at {decided} — {outcome}."
    if status == "failed":
        return f":x: Approved by {by} at {decided} — {outcome}"
    if status == "stale":
        return f":warning: Approved by {by} at {decided} — {outcome}"
    if status == "rejected" and (approval.outcome or "").startswith("Closed"):
        return f":no_entry_sign: {outcome} (noticed at {decided}); nothing was done."
    if status == "rejected":
        return f":no_entry_sign: Denied by {by} at {decided}; nothing was done."
    if status == "cancelled":
        return (
            f":leftwards_arrow_with_hook: Cancelled by the requester at {decided}; "
            f"nothing was done."
        )
    if status == "expired":
        return (
            f":hourglass: Expired at {when(approval.expires_at)} without a "
            f"decision; nothing was done."
        )
    return f"{esc(status)}: {outcome}"


def verdict_text(verdict: Verdict) -> str:
    """The answer to the person who clicked."""
    approval = verdict.approval
    asked = f"<@{approval.requester}>'s request to *{what(approval)}*"
    outcome = esc(approval.outcome or "")
    kind = verdict.kind
    if kind == "executed":
        return f"You approved {asked}: {outcome}."
    if kind == "failed":
        return f"You approved {asked}, but it did not go through. {outcome}"
    if kind == "stale":
        return f"You approved {asked}, but nothing was done. {outcome}"
    if kind == "rejected":
        return f"You denied {asked}; nothing was done."
    if kind == "cancelled":
        return f"Your request to *{what(approval)}* is cancelled; nothing was done."
    if kind == "expired":
        return f"This request expired at {when(approval.expires_at)}; nothing was done."
    if kind == "closed":
        action = OPERATION_ACTIONS.get(approval.verb, approval.verb)
        return (
            f"This channel's policy now denies `{action}`, so the request is "
            f"closed and nothing was done."
        )
    if kind == "self":
        return (
            "You cannot approve your own request; another approver must. "
            "(Your Deny withdraws it.)"
        )
    if kind == "not_approver":
        return (
            f"You are not an approver in this channel, so nothing was done. "
            f"Approvers here: {mentions(verdict.approvers)}."
        )
    if kind == "not_requester":
        return "Only the person who asked can cancel this request."
    if kind == "unchecked":
        return (
            "vpsbot could not check the user groups that approve here just now "
            "(Slack asked it to wait), so nothing was decided. Please press again "
            "in a moment."
        )
    return already(approval)


def already(approval: Approval) -> str:
    """How a request that was decided before stands."""
    by = f"<@{approval.decided_by}>" if approval.decided_by else "someone"
    decided = when(approval.decided_at)
    if approval.status in ("approved", "executed", "failed", "stale"):
        return f"This request was already approved by {by} at {decided}."
    if approval.status == "rejected":
        return f"This request was already closed ({ending(approval)})"
    if approval.status == "cancelled":
        return "The requester already cancelled this request; nothing was done."
    if approval.status == "expired":
        return f"This request expired at {when(approval.expires_at)}; nothing was done."
    return "This request is still waiting for a decision."


def requester_text(verdict: Verdict) -> str:
    """What the requester is told when someone else decided."""
    approval = verdict.approval
    mine = f"your request to *{what(approval)}*"
    by = f"<@{approval.decided_by}>" if approval.decided_by else "Someone"
    outcome = esc(approval.outcome or "")
    kind = verdict.kind
    if kind == "executed":
        return f"{by} approved {mine}: {outcome}."
    if kind in ("failed", "stale"):
        return f"{by} approved {mine}, but: {outcome}"
    if kind == "rejected":
        return f"{by} denied {mine}; nothing was done."
    if kind == "closed":
        return f"{outcome[:1].upper()}{outcome[1:]}, so {mine} was closed."
    if kind == "expired":
        return f"Nobody decided on {mine} in time; it expired and nothing was done."
    return f"{mine[:1].upper()}{mine[1:]}: {ending(approval)}"


# Blocks


def request_blocks(approval: Approval, *, buttons: bool = True) -> Blocks:
    """The request message: who asks what, why, and (while open) the buttons."""
    fields = [f"*Server*\n{server_line(approval)}"]
    label = "*Reason*\n"
    reason = (
        _clip(esc(approval.reason), MAX_FIELD - len(label)) if approval.reason else "—"
    )
    fields.append(label + reason)
    fields.append(f"*Asked*\n{when(approval.created_at)}")
    fields.append(f"*Expires*\n{when(approval.expires_at)}")
    blocks: list[Block] = [
        _section(headline(approval)),
        SectionBlock(fields=[MarkdownTextObject(text=field) for field in fields]),
    ]
    if approval.pending and buttons:
        blocks.append(decision_buttons(approval))
    else:
        blocks.append(_section(ending(approval)))
    blocks.append(
        ContextBlock(
            elements=[MarkdownTextObject(text=f"Request {esc(approval.request_id)}")]
        )
    )
    return [block.to_dict() for block in blocks]


def decision_buttons(approval: Approval) -> ActionsBlock:
    return ActionsBlock(
        block_id=f"approval-{approval.id}",
        elements=[
            ButtonElement(
                text="Approve",
                action_id=APPROVE_BUTTON,
                value=approval.request_id,
                style="primary",
            ),
            ButtonElement(
                text="Deny",
                action_id=DENY_BUTTON,
                value=approval.request_id,
                style="danger",
            ),
        ],
    )


def waiting_note(approval: Approval, approvers: Sequence[str]) -> Blocks:
    """The requester's ephemeral note, with its Cancel request button."""
    text = (
        f":hourglass: Your request to *{what(approval)}* is waiting for approval "
        f"in this channel until {when(approval.expires_at)}. "
        f"Approvers: {mentions(approvers)}."
    )
    section = _section(text)
    section.accessory = ButtonElement(
        text="Cancel request",
        action_id=CANCEL_REQUEST_BUTTON,
        value=approval.request_id,
    )
    return [section.to_dict()]


def pending_blocks(approvals: Sequence[Approval]) -> Blocks:
    """``/vps approvals``: this channel's open requests, each with its buttons.

    Two blocks a request: the core lists at most 20, well inside Slack's 50.
    """
    count = len(approvals)
    title = f"*{count} pending approval request{'' if count == 1 else 's'}*"
    if count > MAX_PENDING_LISTED:
        title = (
            f"*More than {MAX_PENDING_LISTED} pending approval requests*; the "
            f"oldest {MAX_PENDING_LISTED} are shown"
        )
    if not approvals:
        return [_section(title).to_dict(), _context("Nothing is waiting here.")]
    blocks: Blocks = [_section(title).to_dict()]
    for approval in approvals[:MAX_PENDING_LISTED]:
        reason = f"\nReason: {esc(approval.reason)}" if approval.reason else ""
        blocks.append(
            _section(
                f"<@{approval.requester}>: *{what(approval)}* · "
                f"{server_line(approval)} · until {when(approval.expires_at)}"
                f"{reason}"
            ).to_dict()
        )
        blocks.append(decision_buttons(approval).to_dict())
    return blocks


def _section(text: str) -> SectionBlock:
    if len(text) > MAX_SECTION:
        text = text[: MAX_SECTION - 1] + "…"
    return SectionBlock(text=MarkdownTextObject(text=text))


def _context(text: str) -> dict[str, Any]:
    return ContextBlock(elements=[MarkdownTextObject(text=text)]).to_dict()


# Slack calls


class ApprovalNotices:
    """Redraws request messages and tells requesters; the expiry notifier too."""

    def __init__(self, client: WebClient | SlackClients) -> None:
        self._clients = as_slack_clients(client)

    def _client(self, team_id: str) -> WebClient | None:
        """The workspace's client; ``None`` (logged) when it is not installed."""
        try:
            return self._clients.for_team(team_id)
        except NotInstalledError:
            logger.warning("workspace %s is not installed; nothing sent", team_id)
            return None

    def redraw(self, approval: Approval) -> None:
        """Show how the request stands on its message (if it is a message)."""
        if not approval.message_ts:
            logger.info(
                "approval request %s has no message to redraw [%s]",
                approval.id,
                approval.request_id,
            )
            return
        client = self._client(approval.team_id)
        if client is None:
            return
        try:
            client.chat_update(
                channel=approval.channel_id,
                ts=approval.message_ts,
                text=f"{headline(approval)}\n{ending(approval)}",
                blocks=request_blocks(approval),
            )
        except SlackApiError as exc:
            logger.warning(
                "could not redraw approval request %s: %s [%s]",
                approval.id,
                _error(exc),
                approval.request_id,
            )

    def tell_requester(self, approval: Approval, text: str) -> None:
        """An ephemeral line to the requester in the channel, else by response_url."""
        client = self._client(approval.team_id)
        try:
            if client is None:
                raise NotInstalledError(approval.team_id)
            client.chat_postEphemeral(
                channel=approval.channel_id, user=approval.requester, text=text
            )
            return
        except (SlackApiError, NotInstalledError) as exc:
            logger.info(
                "could not tell the requester of %s in the channel (%s) [%s]",
                approval.id,
                _error(exc) if isinstance(exc, SlackApiError) else "not installed",
                approval.request_id,
            )
        if not approval.response_url:
            return
        response = WebhookClient(approval.response_url, timeout=10).send_dict(
            {"text": text, "response_type": "ephemeral", "replace_original": False}
        )
        if response.status_code != 200:
            logger.warning(
                "the requester of %s could not be told (%s) [%s]",
                approval.id,
                response.status_code,
                approval.request_id,
            )

    def expired(self, approval: Approval) -> None:
        """The expiry loop expired ``approval``: redraw it and tell the requester."""
        self.redraw(approval)
        self.tell_requester(
            approval,
            f"Nobody decided on your request to *{what(approval)}* in time; it "
            f"expired and nothing was done.",
        )

    def members_of(self, group_id: str, team_id: str = "") -> set[str]:
        """The user ids in a user group; empty (and logged) when Slack refuses.

        ``team_id`` names the workspace (needed in multi-workspace mode).
        """
        client = self._client(team_id)
        if client is None:
            return set()
        try:
            response = client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if status == 429 or status >= 500 or _error(exc) in _PASSING_ERRORS:
                logger.info(
                    "user group %s unreadable for now: %s", group_id, _error(exc)
                )
                raise GroupUnreadableError(group_id) from exc
            logger.warning(
                "could not read user group %s: %s; no one in it may approve",
                group_id,
                _error(exc),
            )
            return set()
        except OSError as exc:
            raise GroupUnreadableError(group_id) from exc
        users = response.get("users")
        return {str(user) for user in users} if isinstance(users, list) else set()


class ApprovalDesk:
    """Turns actions under ``approve`` into requests, and carries out decisions.

    Args:
        ops: the use cases.
        background: the pools that run work after acknowledgement.
        notices: redraws request messages and tells requesters.
        announce: tells the channel about a change an approval ran (and
            follows it, like a direct action).
    """

    def __init__(
        self,
        *,
        ops: Operations,
        background: Background,
        notices: ApprovalNotices,
        announce: Announce,
    ) -> None:
        self._ops = ops
        self._background = background
        self._notices = notices
        self._announce = announce

    def ask(self, actor: Actor, action: PendingAction, replies: Replies) -> None:
        """Record a request, post it in the channel and tell the requester.

        Runs on the work pool, where the refused action was.

        Raises:
            UserError: the request cannot be made (no such server, a state in
                which the action makes no sense, a policy that changed).
        """
        approval = self._ops.approvals.request(
            actor, action, response_url=replies.response_url
        )
        try:
            ts = replies.announce(headline(approval), request_blocks(approval))
        except Exception as exc:
            # A request nobody can see must not stay open to be approved.
            error = _slack_error(exc)
            logger.warning(
                "approval request %s could not be posted (%s); withdrawing it [%s]",
                approval.id,
                error,
                actor.request_id,
            )
            if not self._ops.approvals.withdraw(
                approval, f"the request message could not be posted ({error})"
            ):
                # Someone decided it meanwhile (it was listed in /vps approvals);
                # that decision tells the requester how it ended.
                logger.info(
                    "approval request %s was decided before it could be withdrawn [%s]",
                    approval.id,
                    actor.request_id,
                )
                return
            raise UserError(
                f"vpsbot could not post your approval request in this channel "
                f"(Slack answered {error}), so it was withdrawn and nothing was "
                f"done. Please try again in a minute."
            ) from exc
        if ts is not None:
            self._ops.approvals.set_message(approval, ts)
        else:
            logger.info(
                "approval request %s went out through the response_url; its "
                "message cannot be redrawn [%s]",
                approval.id,
                actor.request_id,
            )
        approvers = self._ops.approvals.approvers_here(actor)
        replies.ephemeral(
            f"Your request is waiting for approval until {when(approval.expires_at)}.",
            waiting_note(approval, approvers),
        )

    def register(self, app: App) -> None:
        """Wire the Approve, Deny and Cancel request buttons."""

        def press_approval_button(
            ack: Ack, body: dict[str, Any], client: WebClient, context: dict[str, Any]
        ) -> None:
            """Approve or Deny on a request, or Cancel request on the note."""
            ack()
            action = (body.get("actions") or [{}])[0]
            action_id = action.get("action_id", "")
            public_id = str(action.get("value") or "")
            actor = actor_from_action(body, context)
            replies = Replies.to_click(client, body, actor)
            if actor is None or not public_id:
                self._background.run(
                    "-", replies.ephemeral, lambda: replies.ephemeral(_DAMAGED)
                )
                return
            self._background.run(
                actor.request_id,
                replies.ephemeral,
                lambda: self._click(actor, action_id, public_id, replies),
            )

        matcher = re.compile(
            f"^({APPROVE_BUTTON}|{DENY_BUTTON}|{CANCEL_REQUEST_BUTTON})$"
        )
        app.action(matcher)(press_approval_button)

    def _click(
        self, actor: Actor, action_id: str, public_id: str, replies: Replies
    ) -> None:
        verdict = self.verdict(actor, action_id, public_id)
        answer = verdict_text(verdict)
        if action_id == CANCEL_REQUEST_BUTTON and verdict.kind == "cancelled":
            replies.replace_original(answer, [_section(answer).to_dict()])
        else:
            replies.ephemeral(answer)
        self.carry_out(actor, verdict, replies.client)

    def verdict(self, actor: Actor, action_id: str, public_id: str) -> Verdict:
        """Decide (or cancel) the request a click names, once, and log it.

        ``actor`` is who clicked; the request's own channel and policy apply,
        wherever the click came from (a channel message or the App Home).

        Raises:
            ServerLookupError: no such request in this workspace.
            StoreUnavailableError: the database did not answer.
        """
        approvals = self._ops.approvals
        if action_id == CANCEL_REQUEST_BUTTON:
            verdict = approvals.cancel(actor, public_id)
        else:
            verdict = approvals.decide(
                actor,
                public_id,
                approve=action_id == APPROVE_BUTTON,
                members_of=lambda group: self._notices.members_of(group, actor.team_id),
            )
        logger.info(
            "approval click %s on %s by %s: %s [%s]",
            action_id,
            public_id,
            actor.user_id,
            verdict.kind,
            actor.request_id,
        )
        return verdict

    def carry_out(self, actor: Actor, verdict: Verdict, client: WebClient) -> None:
        """Show what a click changed: redraw the request message in its
        channel, tell the requester, and announce (and follow) a change that
        ran."""
        if not verdict.changed:
            return
        approval = verdict.approval
        self._notices.redraw(approval)
        if actor.user_id != approval.requester:
            self._notices.tell_requester(approval, requester_text(verdict))
        if verdict.kind == "executed" and verdict.result is not None:
            requester = Actor(
                approval.team_id,
                approval.channel_id,
                approval.requester,
                approval.request_id,
            )
            announcer = Replies(
                client=client,
                channel_id=approval.channel_id,
                user_id=approval.requester,
                response_url=approval.response_url,
                request_id=approval.request_id,
            )
            self._announce(requester, announcer, verdict.result, approval.reason)


def _error(exc: SlackApiError) -> str:
    response = exc.response
    return str(response.get("error")) if response is not None else "no answer"


_DAMAGED = "This button does not name an approval request; nothing was done."


def _slack_error(exc: Exception) -> str:
    """The error word of a failed Web API call, for people and logs."""
    return _error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__


def _clip(text: str, limit: int) -> str:
    """Shorten mrkdwn to ``limit`` characters without cutting an escape in two."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"
