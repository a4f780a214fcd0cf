"""Buttons on server cards: Show, Start, Stop, Reboot and Delete.

The policy is checked again on every click, as it stands at that moment; the
card a button sits on may be hours old. A power button under an ``approve``
rule posts an approval request instead.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from vpsbot.ops import Actor, ApprovalRequiredError, PendingAction
from vpsbot.ops.context import as_server_id
from vpsbot.slack import blocks, messages
from vpsbot.slack.context import SlackContext, actor_from_action
from vpsbot.slack.ids import DELETE_BUTTON, POWER_BUTTONS, SHOW_BUTTON
from vpsbot.slack.replies import Replies

logger = logging.getLogger(__name__)

_VERBS = {action_id: verb for verb, action_id in POWER_BUTTONS.items()}


def register(app: App, slack: SlackContext) -> None:
    """Wire the server buttons."""

    def press_server_button(
        ack: Ack, body: dict[str, Any], client: WebClient, context: dict[str, Any]
    ) -> None:
        """A Show, Start, Stop, Reboot or Delete button on a server message."""
        action = (body.get("actions") or [{}])[0]
        action_id = action.get("action_id", "")
        value = str(action.get("value") or "")
        actor = actor_from_action(body, context)
        if actor is None:
            ack()
            _answer_later(slack, client, body, actor, messages.channel_unknown())
            return
        if as_server_id(value) is None:
            logger.warning("button %s with a value that is no server id", action_id)
            ack()
            _answer_later(slack, client, body, actor, messages.button_without_server())
            return
        replies = Replies(
            client=client,
            channel_id=actor.channel_id,
            user_id=actor.user_id,
            response_url=body.get("response_url"),
            request_id=actor.request_id,
        )

        if action_id == DELETE_BUTTON:
            slack.dialogs.open_delete(
                client=client,
                trigger_id=body.get("trigger_id", ""),
                actor=actor,
                ref=value,
                replies=replies,
                reason=None,
            )
        elif action_id == SHOW_BUTTON:
            slack.background.run(
                actor.request_id,
                replies.ephemeral,
                lambda: _show(slack, actor, value, replies),
            )
        else:
            verb = _VERBS[action_id]
            # One click has one trigger_id; the same one again is a redelivery.
            delivery = body.get("trigger_id") or None
            slack.background.run(
                actor.request_id,
                replies.ephemeral,
                lambda: _power(slack, actor, verb, value, replies, delivery),
            )
        ack()

    matcher = re.compile(
        "^(" + "|".join([SHOW_BUTTON, DELETE_BUTTON, *POWER_BUTTONS.values()]) + ")$"
    )
    app.action(matcher)(press_server_button)


def _show(slack: SlackContext, actor: Actor, server_id: str, replies: Replies) -> None:
    server = slack.ops.servers.show_server(actor, server_id)
    replies.ephemeral(
        messages.escape(f"{server.name}: {server.status}"), blocks.server_card(server)
    )


def _power(
    slack: SlackContext,
    actor: Actor,
    verb: str,
    server_id: str,
    replies: Replies,
    delivery: str | None,
) -> None:
    try:
        result = slack.ops.servers.power(actor, verb, server_id, delivery=delivery)
    except ApprovalRequiredError:
        slack.approvals.ask(actor, PendingAction(verb, server_id), replies)
        return
    text = messages.announcement(actor, result, None)
    if not result.audit_recorded:
        text += "\n" + messages.audit_not_recorded()
    ts = replies.announce(text, blocks.announcement(text))
    slack.follow(actor, result, text, ts)
    replies.replace_original(
        messages.escape(f"{result.server.name}: {result.server.status}"),
        blocks.server_card(
            result.server, note=f"Updated after <@{actor.user_id}>'s {verb}."
        ),
    )


def _answer_later(
    slack: SlackContext,
    client: WebClient,
    body: dict[str, Any],
    actor: Actor | None,
    text: str,
) -> None:
    """Tell the presser ``text`` through the response_url, after the ack."""
    url = body.get("response_url")
    if not url:
        return
    request_id = actor.request_id if actor else "-"
    replies = Replies(
        client=client,
        channel_id=None,
        user_id=actor.user_id if actor else "",
        response_url=url,
        request_id=request_id,
    )
    slack.background.run(request_id, replies.ephemeral, lambda: replies.ephemeral(text))
