"""The ``/vps`` slash command: parse, acknowledge, hand over, answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, tzinfo
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from vpsbot.ops import (
    Actor,
    ApprovalRequiredError,
    AuditFilters,
    ChangeResult,
    FieldErrors,
    Operations,
    PendingAction,
)
from vpsbot.slack import audit_export, audit_pages, blocks, messages
from vpsbot.slack.approvals import pending_blocks
from vpsbot.slack.context import SlackContext, actor_from_command
from vpsbot.slack.ids import COMMAND
from vpsbot.slack.parsing import USAGE, Command, ParseError, in_zone, parse
from vpsbot.slack.replies import Replies

logger = logging.getLogger(__name__)

# SlackContext.follow: (actor, result, headline, ts) -> operation id or None.
Follow = Callable[[Actor, ChangeResult, str, str | None], object]
# ApprovalDesk.ask: turns an action under an ``approve`` rule into a request.
Ask = Callable[[Actor, PendingAction, Replies], None]
# ViewerZones.zone_of bound to a client: user id -> zone, None when unknown.
ZoneOf = Callable[[str], tzinfo | None]
# The verbs that change a server without a dialog.
_CHANGES = ("start", "stop", "reboot", "create", "rename", "backups")


def register(app: App, slack: SlackContext) -> None:
    """Wire ``/vps`` to its handler."""

    def handle_vps_command(
        ack: Ack, body: dict[str, Any], client: WebClient, context: dict[str, Any]
    ) -> None:
        """Slash command ``/vps …``."""
        try:
            command = parse(body.get("text") or "")
        except ParseError as exc:
            ack(response_type="ephemeral", text=str(exc))
            return

        actor = actor_from_command(body, context)
        if actor is None:
            ack(response_type="ephemeral", text=messages.channel_unknown())
            return
        replies = Replies(
            client=client,
            channel_id=actor.channel_id,
            user_id=actor.user_id,
            response_url=body.get("response_url"),
            request_id=actor.request_id,
        )
        trigger_id = body.get("trigger_id", "")
        if command.verb == "create" and command.create is None:
            slack.server_dialogs.open_create(
                client=client,
                trigger_id=trigger_id,
                actor=actor,
                replies=replies,
                reason=command.reason,
            )
        elif command.verb == "update":
            slack.server_dialogs.open_edit(
                client=client,
                trigger_id=trigger_id,
                actor=actor,
                ref=command.server or "",
                replies=replies,
                reason=command.reason,
            )
        elif command.verb == "connect" and slack.connect is not None:
            slack.connect.open(
                client=client, trigger_id=trigger_id, actor=actor, replies=replies
            )
        elif command.verb == "delete":
            slack.dialogs.open_delete(
                client=client,
                trigger_id=trigger_id,
                actor=actor,
                ref=command.server or "",
                replies=replies,
                reason=command.reason,
            )
        else:
            # An export reads the whole filtered log and uploads it: it waits
            # on a pool of its own, so commands never queue behind it.
            run = (
                slack.background.run_export
                if command.verb == "audit" and command.export
                else slack.background.run
            )
            run(
                actor.request_id,
                replies.ephemeral,
                lambda: run_command(
                    slack.ops,
                    command,
                    actor,
                    replies,
                    follow=slack.follow,
                    ask=slack.approvals.ask,
                    zone_of=lambda user_id: slack.zones.zone_of(user_id, client),
                ),
            )
        ack()

    app.command(COMMAND)(handle_vps_command)


def run_command(
    ops: Operations,
    command: Command,
    actor: Actor,
    replies: Replies,
    *,
    follow: Follow | None = None,
    ask: Ask | None = None,
    zone_of: ZoneOf | None = None,
) -> None:
    """Carry out a parsed command that opens no dialog, and answer it.

    ``follow`` is called after a create or power action was announced, so that
    the announcement is updated until the server settles. ``ask`` turns a
    change under an ``approve`` rule into an approval request; without it the
    refusal is answered as is. ``zone_of`` tells a user's time zone, in which
    the dates and times they type are read (default: UTC).
    """
    if command.verb in _CHANGES and (command.verb != "create" or command.create):
        try:
            _change(ops, command, actor, replies, follow)
        except ApprovalRequiredError:
            if ask is None:
                raise
            ask(actor, pending_action(command), replies)
        return
    verb = command.verb
    if verb == "help":
        rules = ops.policies.current(actor)
        replies.ephemeral(
            "vpsbot help",
            blocks.help_message(
                rules,
                is_admin=ops.policies.is_admin(actor.user_id, actor.team_id),
                admins=ops.policies.admins_for(actor.team_id),
            ),
        )
    elif verb == "list":
        servers = ops.servers.list_servers(
            actor, status=command.status, location=command.location
        )
        filters = " ".join(
            value for value in (command.status, command.location) if value
        )
        replies.ephemeral(
            f"{len(servers)} server{'' if len(servers) == 1 else 's'}",
            blocks.server_list(servers, filters),
        )
    elif verb == "show":
        server = ops.servers.show_server(actor, command.server or "")
        replies.ephemeral(
            messages.escape(f"{server.name}: {server.status}"),
            blocks.server_card(server),
        )
    elif verb == "approvals":
        pending = ops.approvals.pending(actor)
        listing = pending_blocks(pending)
        # The notification text is the list's own headline, without its markup.
        replies.ephemeral(listing[0]["text"]["text"].replace("*", ""), listing)
    elif verb == "audit":
        _audit(ops, command, actor, replies, zone_of)
    elif verb == "policy":
        _policy(ops, command, actor, replies)
    elif verb == "connect":
        replies.ephemeral(messages.connect_single_workspace())
    else:
        replies.ephemeral(messages.not_available_yet(verb))


def _change(
    ops: Operations,
    command: Command,
    actor: Actor,
    replies: Replies,
    follow: Follow | None,
) -> None:
    """A power action, one-line create, rename or backups change, announced."""
    verb = command.verb
    if verb in ("start", "stop", "reboot"):
        result = ops.servers.power(
            actor, verb, command.server or "", reason=command.reason
        )
    elif verb == "create" and command.create is not None:
        try:
            result = ops.create.create(actor, command.create, reason=command.reason)
        except FieldErrors as exc:
            replies.ephemeral(
                f"That `create` is not quite right: {messages.escape(str(exc))}. "
                f"Usage: `{USAGE['create']}`"
            )
            return
    elif verb == "rename":
        result = ops.servers.rename(
            actor, command.server or "", command.new_name or "", reason=command.reason
        )
    else:
        result = ops.servers.set_backups(
            actor, command.server or "", bool(command.enabled), reason=command.reason
        )
    announce_change(actor, replies, result, command.reason, follow=follow)


def pending_action(command: Command) -> PendingAction:
    """A typed change as an approval request will run it."""
    if command.verb == "create" and command.create is not None:
        return PendingAction.of_create(command.create, command.reason)
    params: dict[str, object] = {}
    if command.verb == "rename":
        params["new_name"] = command.new_name
    elif command.verb == "backups":
        params["enabled"] = bool(command.enabled)
    return PendingAction(command.verb, command.server, params, command.reason)


def announce_change(
    actor: Actor,
    replies: Replies,
    result: ChangeResult,
    reason: str | None,
    *,
    follow: Follow | None = None,
) -> None:
    """Tell the channel about a change, or the asker alone when nothing changed.

    With ``follow``, the announcement of a create or power action is then
    followed until the server settles.
    """
    if not result.changed:
        replies.ephemeral(f"{messages.escape(result.summary)}; nothing was sent.")
        return
    text = messages.announcement(actor, result, reason)
    if not result.audit_recorded:
        text += "\n" + messages.audit_not_recorded()
    ts = replies.announce(text, blocks.announcement(text))
    if follow is not None:
        follow(actor, result, text, ts)


def _audit(
    ops: Operations,
    command: Command,
    actor: Actor,
    replies: Replies,
    zone_of: ZoneOf | None,
) -> None:
    note = None
    if command.since_typed is not None or command.until_typed is not None:
        zone = zone_of(actor.user_id) if zone_of is not None else None
        if zone is None:
            note = messages.typed_times_in_utc()
        try:
            command = in_zone(command, zone or UTC)
        except ParseError as exc:
            replies.ephemeral(str(exc))
            return
    filters = AuditFilters(
        server=command.server,
        user=command.user,
        action=command.action,
        outcome=command.outcome,
        since=command.since,
        until=command.until,
    )
    if command.export:
        if note:
            replies.ephemeral(note)
        audit_export.export(ops, actor, filters, replies)
    else:
        audit_pages.show(ops, actor, filters, replies, note=note)


def _policy(ops: Operations, command: Command, actor: Actor, replies: Replies) -> None:
    if command.rules:
        try:
            rules = ops.policies.change_rules(actor, command.rules)
        except ValueError as exc:
            replies.ephemeral(
                f"{exc}. Usage: `/vps policy <action>=allow|approve|deny`"
            )
            return
        headline = (
            f"<@{actor.user_id}> changed this channel's vpsbot policy: "
            + " ".join(f"`{key}={value}`" for key, value in command.rules.items())
        )
        replies.announce(
            headline,
            blocks.policy_message(
                rules, admins=ops.policies.admins_for(actor.team_id), headline=headline
            ),
        )
    elif command.approvers is not None:
        rules = ops.policies.set_approvers(actor, command.approvers)
        headline = f"<@{actor.user_id}> changed who approves vpsbot requests here."
        replies.announce(
            headline,
            blocks.policy_message(
                rules, admins=ops.policies.admins_for(actor.team_id), headline=headline
            ),
        )
    else:
        rules = ops.policies.current(actor)
        replies.ephemeral(
            "This channel's policy",
            blocks.policy_message(rules, admins=ops.policies.admins_for(actor.team_id)),
        )
