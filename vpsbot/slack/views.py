"""The typed-name Delete dialog: open at once, fill in, and submit once.

A trigger_id lives three seconds, so the dialog is opened with a loading view
before anything else happens, then filled in with ``views.update``. A view
submission carries no channel and no response_url, so both travel in the
view's ``private_metadata``. The submission is checked against the policy as it
stands then, and the view id is claimed so that a second submission deletes
nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from vpsbot.errors import StoreUnavailableError, UserError
from vpsbot.ops import Actor, ApprovalRequiredError, Operations, PendingAction
from vpsbot.slack import blocks, messages
from vpsbot.slack.context import request_id
from vpsbot.slack.ids import DELETE_NAME_ACTION, DELETE_NAME_BLOCK, DELETE_VIEW
from vpsbot.slack.replies import Replies
from vpsbot.slack.worker import Background
from vpsbot.vps import VpsApiError

logger = logging.getLogger(__name__)


# ApprovalDesk.ask: turns a delete under an ``approve`` rule into a request.
Ask = Callable[[Actor, PendingAction, Replies], None]


class DeleteDialogs:
    """Opens, fills in and carries out the Delete confirmation dialog.

    Under an ``approve`` rule the dialog still opens, and its submission is
    handed to ``ask`` as an approval request.
    """

    def __init__(
        self, *, ops: Operations, background: Background, ask: Ask | None = None
    ) -> None:
        self._ops = ops
        self._background = background
        self._ask = ask

    def open_delete(
        self,
        *,
        client: WebClient,
        trigger_id: str,
        actor: Actor,
        ref: str,
        replies: Replies,
        reason: str | None,
    ) -> None:
        """Open the loading view now, then fill it in on the work pool."""

        def open_then_fill() -> None:
            opened = client.views_open(
                trigger_id=trigger_id,
                view=blocks.loading_view("Delete server", ref),
            )
            view = opened.get("view") or {}
            self._background.run(
                actor.request_id,
                replies.ephemeral,
                lambda: self._fill(client, view, actor, ref, replies, reason),
            )

        self._background.run_dialog(actor.request_id, replies.ephemeral, open_then_fill)

    def _fill(
        self,
        client: WebClient,
        view: dict[str, Any],
        actor: Actor,
        ref: str,
        replies: Replies,
        reason: str | None,
    ) -> None:
        try:
            server = self._ops.servers.resolve_for(actor, "delete", ref)
        except UserError as exc:
            content = blocks.notice_view("Delete server", str(exc))
        except VpsApiError as exc:
            content = blocks.notice_view("Delete server", exc.user_message)
        except StoreUnavailableError as exc:
            content = blocks.notice_view("Delete server", str(exc))
        else:
            metadata = {
                "server_id": server.id,
                "server_name": server.name,
                "team_id": actor.team_id,
                "channel_id": actor.channel_id,
                "response_url": replies.response_url,
                "reason": reason,
            }
            content = blocks.delete_view(server, metadata)
        client.views_update(view_id=view.get("id"), hash=view.get("hash"), view=content)

    def submit(
        self,
        client: WebClient,
        body: dict[str, Any],
        actor: Actor,
        metadata: dict[str, Any],
    ) -> None:
        """Carry out a submitted delete on the work pool, answering through Slack."""
        replies = Replies(
            client=client,
            channel_id=actor.channel_id,
            user_id=actor.user_id,
            response_url=metadata.get("response_url"),
            request_id=actor.request_id,
        )
        view_id = (body.get("view") or {}).get("id", "")
        reason = metadata.get("reason")

        def delete() -> None:
            server_id = int(metadata["server_id"])
            expected = str(metadata["server_name"])
            try:
                result = self._ops.servers.delete(
                    actor,
                    server_id=server_id,
                    expected_name=expected,
                    submission_id=view_id,
                    reason=reason,
                )
            except ApprovalRequiredError:
                if self._ask is None:
                    raise
                action = PendingAction(
                    "delete", str(server_id), {"expected_name": expected}, reason
                )
                self._ask(actor, action, replies)
                return
            text = messages.announcement(actor, result, reason)
            if not result.audit_recorded:
                text += "\n" + messages.audit_not_recorded()
            replies.announce(text, blocks.announcement(text))

        self._background.run(actor.request_id, replies.ephemeral, delete)

    def refuse(self, actor: Actor, metadata: dict[str, Any], typed: str) -> None:
        """Audit a submission with the wrong name, on the work pool."""

        def record() -> None:
            self._ops.servers.refuse_delete(
                actor,
                server_id=int(metadata["server_id"]),
                expected_name=str(metadata["server_name"]),
                typed=typed,
            )

        # The dialog already shows the refusal; a failure here is only logged.
        self._background.run(actor.request_id, _log_only, record)


def _log_only(text: str) -> None:
    logger.warning("could not audit a refused delete submission: %s", text)


def register(app: App, dialogs: DeleteDialogs) -> None:
    """Wire the Delete dialog's submission."""

    def submit_delete_view(
        ack: Ack, body: dict[str, Any], client: WebClient, context: dict[str, Any]
    ) -> None:
        """Submission of the typed-name Delete dialog."""
        view = body.get("view") or {}
        try:
            metadata = json.loads(view.get("private_metadata") or "{}")
            expected = str(metadata["server_name"])
            int(metadata["server_id"])
        except (ValueError, KeyError, TypeError):
            ack(
                response_action="errors",
                errors={DELETE_NAME_BLOCK: "This dialog is damaged; open it again."},
            )
            return
        typed = (
            ((view.get("state") or {}).get("values") or {})
            .get(DELETE_NAME_BLOCK, {})
            .get(DELETE_NAME_ACTION, {})
            .get("value")
        ) or ""
        user = (body.get("user") or {}).get("id", "")
        team = (body.get("team") or {}).get("id") or metadata.get("team_id", "")
        actor = Actor(team, metadata.get("channel_id") or "", user, request_id(context))
        if typed.strip() != expected:
            ack(
                response_action="errors",
                errors={DELETE_NAME_BLOCK: messages.delete_wrong_name(expected)},
            )
            dialogs.refuse(actor, metadata, typed)
            return
        dialogs.submit(client, body, actor, metadata)
        ack()

    app.view(DELETE_VIEW)(submit_delete_view)
