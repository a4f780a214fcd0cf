"""The create and edit dialogs: open at once, check, submit once, report.

Both open with a loading view inside the trigger_id's three seconds and are
filled in with ``views.update`` once the provider has answered. A submission
is checked twice: what needs no lookup (a name's letters, a hostname's shape, a
choice left empty) before it is acknowledged, so Slack marks the field inline;
what needs the provider (a known plan, a free name, the provider's own 400)
after, on the work pool, while the dialog says it is working. A problem found
then redraws the form with the values as typed and a warning under each field
concerned. The submission (view id and hash) is claimed for good, so a double
click or a second delivery never sends a create or an edit twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from vpsbot.errors import RepeatedSubmissionError
from vpsbot.ops import (
    Actor,
    ApprovalRequiredError,
    ChangeResult,
    Edit,
    FieldErrors,
    Operations,
    PendingAction,
    StaleEditError,
)
from vpsbot.slack import blocks, forms, messages
from vpsbot.slack.context import request_id
from vpsbot.slack.ids import CREATE_VIEW, UPDATE_VIEW
from vpsbot.slack.replies import Replies
from vpsbot.slack.worker import Background
from vpsbot.vps import Server
from vpsbot.vps.servers import parse_timestamp

logger = logging.getLogger(__name__)

CREATE_TITLE = "Create server"
EDIT_TITLE = "Edit server"

Announce = Callable[[Actor, Replies, ChangeResult, str | None], None]
# ApprovalDesk.ask: turns a submission under an ``approve`` rule into a request.
Ask = Callable[[Actor, PendingAction, Replies], None]

SENT_FOR_APPROVAL = (
    "Sent for approval; the request is in the channel. You will be told there "
    "when someone decides."
)


class ServerDialogs:
    """Opens, fills in and carries out the create and edit dialogs.

    Args:
        ops: the use cases.
        background: the pools that run work after acknowledgement.
        announce: tells the channel about a change (and starts following it).
        ask: turns a submission under an ``approve`` rule into an approval
            request (none: the refusal is shown in the dialog).
    """

    def __init__(
        self,
        *,
        ops: Operations,
        background: Background,
        announce: Announce,
        ask: Ask | None = None,
    ) -> None:
        self._ops = ops
        self._background = background
        self._announce = announce
        self._ask = ask

    # Opening

    def open_create(
        self,
        *,
        client: WebClient,
        trigger_id: str,
        actor: Actor,
        replies: Replies,
        reason: str | None,
    ) -> None:
        """Open the create dialog: loading view now, choices when they are known."""

        def fill() -> dict[str, Any]:
            catalog = self._ops.create.choices(actor)
            return forms.create_view(catalog, _metadata(actor, replies, reason))

        self._open(client, trigger_id, actor, replies, CREATE_TITLE, "the plans", fill)

    def open_edit(
        self,
        *,
        client: WebClient,
        trigger_id: str,
        actor: Actor,
        ref: str,
        replies: Replies,
        reason: str | None,
    ) -> None:
        """Open the edit dialog for ``ref``, prefilled with its current values."""

        def fill() -> dict[str, Any]:
            server = self._ops.servers.resolve_for(actor, "update", ref)
            return _edit_form(server, _metadata(actor, replies, reason))

        self._open(client, trigger_id, actor, replies, EDIT_TITLE, ref, fill)

    def _open(
        self,
        client: WebClient,
        trigger_id: str,
        actor: Actor,
        replies: Replies,
        title: str,
        looking_for: str,
        fill: Callable[[], dict[str, Any]],
    ) -> None:
        def open_then_fill() -> None:
            opened = client.views_open(
                trigger_id=trigger_id, view=blocks.loading_view(title, looking_for)
            )
            view_id = (opened.get("view") or {}).get("id", "")
            self._background.run(
                actor.request_id,
                self._telling(client, view_id, title, replies),
                lambda: self._show(client, view_id, fill()),
            )

        self._background.run_dialog(actor.request_id, replies.ephemeral, open_then_fill)

    # Submitting

    def submit_create(
        self,
        client: WebClient,
        body: dict[str, Any],
        actor: Actor,
        typed: forms.CreateForm,
    ) -> None:
        """Carry out a create whose fields passed the first check."""
        view = body.get("view") or {}
        metadata = forms.metadata_of(view)
        view_id = view.get("id", "")
        replies = _replies(client, actor, metadata)
        reason = _reason(metadata)

        def create() -> None:
            try:
                result = self._ops.create.create(
                    actor,
                    typed.request(),
                    reason=reason,
                    submission=f"{view_id}:{view.get('hash', '')}",
                )
            except RepeatedSubmissionError:
                # Its acknowledgement said "Creating…"; say what is known instead.
                logger.info("repeated create submission [%s]", actor.request_id)
                self._show(client, view_id, _received_before(CREATE_TITLE))
                return
            except ApprovalRequiredError:
                if self._ask is None:
                    raise
                self._ask(
                    actor, PendingAction.of_create(typed.request(), reason), replies
                )
                self._show(
                    client, view_id, blocks.notice_view(CREATE_TITLE, SENT_FOR_APPROVAL)
                )
                return
            except FieldErrors as exc:
                catalog = self._ops.create.choices(actor)
                self._show(
                    client,
                    view_id,
                    forms.create_view(
                        catalog, metadata, typed=typed, problems=exc.problems
                    ),
                )
                return
            self._show(
                client,
                view_id,
                blocks.notice_view(
                    CREATE_TITLE,
                    f"*{messages.escape(result.server.name)}* is being created. The "
                    f"announcement in the channel follows it until it is ready.",
                ),
            )
            self._announce(actor, replies, result, reason)

        self._background.run(
            actor.request_id,
            self._telling(client, view_id, CREATE_TITLE, replies),
            create,
        )

    def submit_edit(
        self, client: WebClient, body: dict[str, Any], actor: Actor, edit: Edit
    ) -> None:
        """Carry out an edit whose fields passed the first check."""
        view = body.get("view") or {}
        metadata = forms.metadata_of(view)
        view_id = view.get("id", "")
        replies = _replies(client, actor, metadata)
        reason = _reason(metadata)
        opened = Edit(
            name=str(metadata.get("name", "")),
            hostname=str(metadata.get("hostname", "")),
            backups=bool(metadata.get("backups")),
        )

        def update() -> None:
            try:
                result = self._ops.servers.update(
                    actor,
                    int(metadata["server_id"]),
                    edit,
                    opened=opened,
                    opened_at=parse_timestamp(metadata.get("updated_at")),
                    reason=reason,
                    submission=f"{view_id}:{view.get('hash', '')}",
                )
            except RepeatedSubmissionError:
                logger.info("repeated edit submission [%s]", actor.request_id)
                self._show(client, view_id, _received_before(EDIT_TITLE))
                return
            except ApprovalRequiredError:
                if self._ask is None:
                    raise
                action = PendingAction.of_update(
                    int(metadata["server_id"]),
                    edit,
                    opened=opened,
                    opened_at=parse_timestamp(metadata.get("updated_at")),
                    reason=reason,
                )
                self._ask(actor, action, replies)
                self._show(
                    client, view_id, blocks.notice_view(EDIT_TITLE, SENT_FOR_APPROVAL)
                )
                return
            except FieldErrors as exc:
                form = forms.edit_view(
                    opened.name, metadata, values=edit, problems=exc.problems
                )
                self._show(client, view_id, form)
                return
            except StaleEditError as exc:
                now = exc.server
                when = (
                    f", last changed {now.updated_at:%Y-%m-%d %H:%M:%S} UTC"
                    if now.updated_at
                    else ""
                )
                notice = (
                    f":warning: {messages.escape(str(exc))} It is now "
                    f"`{messages.escape(now.status)}`{when}: name "
                    f"{messages.escape(now.name)}, hostname "
                    f"{messages.escape(now.hostname or '(none)')}, backups "
                    f"{'on' if now.backups_enabled else 'off'}. A change of status "
                    f"(a reboot, say) counts too. Below are your values."
                )
                form = _edit_form(now, metadata, values=edit, notice=notice)
                self._show(client, view_id, form)
                return
            if not result.changed:
                text = f"{messages.escape(result.summary)}; nothing was sent."
                self._show(client, view_id, blocks.notice_view(EDIT_TITLE, text))
                return
            text = f"Saved: {messages.escape(result.summary)}."
            self._show(client, view_id, blocks.notice_view(EDIT_TITLE, text))
            self._announce(actor, replies, result, reason)

        self._background.run(
            actor.request_id,
            self._telling(client, view_id, EDIT_TITLE, replies),
            update,
        )

    # Showing

    def _show(self, client: WebClient, view_id: str, view: dict[str, Any]) -> None:
        client.views_update(view_id=view_id, view=view)

    def _telling(
        self, client: WebClient, view_id: str, title: str, replies: Replies
    ) -> Callable[[str], None]:
        """A reply that shows a sentence in the dialog, else to the asker."""

        def tell(text: str) -> None:
            try:
                self._show(client, view_id, blocks.notice_view(title, text))
            except SlackApiError as exc:
                logger.info(
                    "dialog %s is gone (%s); answering the asker instead",
                    view_id,
                    exc.response.get("error") if exc.response else "no answer",
                )
                replies.ephemeral(text)

        return tell


def _metadata(actor: Actor, replies: Replies, reason: str | None) -> dict[str, Any]:
    return {
        "team_id": actor.team_id,
        "channel_id": actor.channel_id,
        "response_url": replies.response_url,
        "reason": reason,
    }


def _edit_form(
    server: Server,
    metadata: dict[str, Any],
    *,
    values: Edit | None = None,
    notice: str | None = None,
) -> dict[str, Any]:
    """The edit form for ``server`` as it stands; remembers what it showed."""
    shown = Edit.of(server)
    metadata = {
        **metadata,
        "server_id": server.id,
        "name": shown.name,
        "hostname": shown.hostname,
        "backups": shown.backups,
        "updated_at": server.updated_at.isoformat() if server.updated_at else None,
    }
    return forms.edit_view(server.name, metadata, values=values or shown, notice=notice)


def _received_before(title: str) -> dict[str, Any]:
    return blocks.notice_view(
        title,
        "This submission had already arrived and is carried out once; the "
        "channel's announcement (or a message to you) says how it went.",
    )


def _reason(metadata: dict[str, Any]) -> str | None:
    reason = metadata.get("reason")
    return reason if isinstance(reason, str) and reason else None


def _replies(client: WebClient, actor: Actor, metadata: dict[str, Any]) -> Replies:
    return Replies(
        client=client,
        channel_id=actor.channel_id,
        user_id=actor.user_id,
        response_url=metadata.get("response_url"),
        request_id=actor.request_id,
    )


def _actor(
    body: dict[str, Any], context: dict[str, Any], metadata: dict[str, Any]
) -> Actor:
    user = (body.get("user") or {}).get("id", "")
    team = (body.get("team") or {}).get("id") or metadata.get("team_id", "")
    return Actor(team, metadata.get("channel_id") or "", user, request_id(context))


def _acknowledged(ack: Ack, problems: dict[str, str], title: str, doing: str) -> bool:
    """Answer a submission: its problems inline, or ``doing`` (mrkdwn) in the dialog.

    Returns whether the submission goes on to the work pool.
    """
    if problems:
        inline = {
            field: f"{text[:1].upper()}{text[1:]}." for field, text in problems.items()
        }
        ack(response_action="errors", errors=inline)
        return False
    ack(
        response_action="update",
        view=blocks.notice_view(title, f"{doing}…"),
    )
    return True


def register(app: App, dialogs: ServerDialogs) -> None:
    """Wire the create and edit dialogs' submissions."""

    def submit_create_view(
        ack: Ack, body: dict[str, Any], client: WebClient, context: dict[str, Any]
    ) -> None:
        """Submission of the create dialog."""
        view = body.get("view") or {}
        try:
            metadata = forms.metadata_of(view)
        except ValueError:
            ack(response_action="errors", errors={"name": _DAMAGED})
            return
        typed = forms.read_create(view)
        problems = typed.request().problems() | forms.choice_problems(view)
        if _acknowledged(
            ack, problems, CREATE_TITLE, f"Creating *{messages.escape(typed.name)}*"
        ):
            dialogs.submit_create(client, body, _actor(body, context, metadata), typed)

    def submit_update_view(
        ack: Ack, body: dict[str, Any], client: WebClient, context: dict[str, Any]
    ) -> None:
        """Submission of the edit dialog."""
        view = body.get("view") or {}
        try:
            metadata = forms.metadata_of(view)
            int(metadata["server_id"])
        except (ValueError, KeyError, TypeError):
            ack(response_action="errors", errors={"name": _DAMAGED})
            return
        edit = forms.read_edit(view)
        problems = edit.problems() | forms.choice_problems(view)
        if _acknowledged(
            ack, problems, EDIT_TITLE, f"Saving *{messages.escape(edit.name)}*"
        ):
            dialogs.submit_edit(client, body, _actor(body, context, metadata), edit)

    app.view(CREATE_VIEW)(submit_create_view)
    app.view(UPDATE_VIEW)(submit_update_view)


_DAMAGED = "This dialog is damaged; open it again."
