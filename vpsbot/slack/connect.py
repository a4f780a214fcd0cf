"""``/vps connect``: the dialog that stores a workspace's VPS.org token.

The dialog needs no data, so it opens straight away (on the dialog pool, after
one database look-up of who administers the workspace). On submission the
token is tried with one quick list call before Slack is answered, so that a
refused token or an unreachable VPS.org is shown inline under the input and
nothing is stored; an accepted token is stored (encrypted, with its audit
entry) after the answer, and the dialog then says it is connected. The token
is never put back into a view, a message or a log line.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.models.blocks import (
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from vpsbot.config import Secret
from vpsbot.errors import StoreUnavailableError, UserError
from vpsbot.ops import Actor
from vpsbot.ops.connecting import AccountConnection, token_problem
from vpsbot.slack.context import request_id
from vpsbot.slack.replies import Replies
from vpsbot.slack.worker import Background

logger = logging.getLogger(__name__)

CONNECT_VIEW = "vps_connect"
TOKEN_BLOCK = "token"
TOKEN_ACTION = "value"
TITLE = "Connect VPS.org"


def connect_view(metadata: dict[str, Any]) -> dict[str, Any]:
    """The dialog with its one input, ``VPS.org API token``."""
    return View(
        type="modal",
        callback_id=CONNECT_VIEW,
        title=PlainTextObject(text=TITLE),
        submit=PlainTextObject(text="Connect"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=json.dumps(metadata, separators=(",", ":")),
        blocks=[
            InputBlock(
                block_id=TOKEN_BLOCK,
                label=PlainTextObject(text="VPS.org API token"),
                element=PlainTextInputElement(action_id=TOKEN_ACTION, max_length=500),
                hint=PlainTextObject(
                    text="From the VPS.org control panel. vpsbot tries it, keeps "
                    "it encrypted and never shows it again."
                ),
            ),
        ],
    ).to_dict()


def _notice(text: str) -> dict[str, Any]:
    return View(
        type="modal",
        title=PlainTextObject(text=TITLE),
        close=PlainTextObject(text="Close"),
        blocks=[SectionBlock(text=MarkdownTextObject(text=text))],
    ).to_dict()


def connecting_view() -> dict[str, Any]:
    return View(
        type="modal",
        title=PlainTextObject(text=TITLE),
        close=PlainTextObject(text="Close"),
        blocks=[
            ContextBlock(
                elements=[
                    MarkdownTextObject(text="VPS.org accepted the token; storing it…")
                ]
            )
        ],
    ).to_dict()


def connected_text(servers: int) -> str:
    return (
        f"Connected. vpsbot now uses this workspace's VPS.org account "
        f"({servers} server{'' if servers == 1 else 's'} on it)."
    )


class ConnectDialogs:
    """Opens the connect dialog and carries out its submission.

    Built in multi-workspace mode only; with one workspace, ``/vps connect``
    says where this vpsbot's token comes from instead.
    """

    def __init__(
        self, *, connection: AccountConnection, background: Background
    ) -> None:
        self._connection = connection
        self._background = background

    def open(
        self, *, client: WebClient, trigger_id: str, actor: Actor, replies: Replies
    ) -> None:
        """Check the asker administers the workspace, then open the dialog."""
        connection = self._connection

        def check_then_open() -> None:
            connection.check_may_connect(actor)
            client.views_open(
                trigger_id=trigger_id,
                view=connect_view({"channel_id": actor.channel_id}),
            )

        self._background.run_dialog(
            actor.request_id, replies.ephemeral, check_then_open
        )

    def submit(
        self, ack: Ack, body: dict[str, Any], client: WebClient, actor: Actor
    ) -> None:
        """Try the token before answering Slack; store it after."""
        connection = self._connection
        view = body.get("view") or {}
        typed = (
            ((view.get("state") or {}).get("values") or {})
            .get(TOKEN_BLOCK, {})
            .get(TOKEN_ACTION, {})
            .get("value")
        ) or ""
        token = Secret(typed.strip())
        if not token:
            ack(
                response_action="errors",
                errors={
                    TOKEN_BLOCK: "Paste the API token from the VPS.org control panel."
                },
            )
            return
        malformed = token_problem(token.value)
        if malformed is not None:
            ack(response_action="errors", errors={TOKEN_BLOCK: malformed})
            return
        try:
            allowed = connection.may_connect(actor)
        except StoreUnavailableError as exc:
            ack(response_action="errors", errors={TOKEN_BLOCK: str(exc)})
            return
        if not allowed:
            ack(response_action="errors", errors={TOKEN_BLOCK: connection.refusal()})
            self._background.run(
                actor.request_id, _log_only, lambda: connection.record_denied(actor)
            )
            return
        try:
            servers = connection.check_token(actor, token)
        except UserError as exc:
            ack(response_action="errors", errors={TOKEN_BLOCK: str(exc)})
            refused = exc
            self._background.run(
                actor.request_id,
                _log_only,
                lambda: connection.record_refused(actor, refused),
            )
            return
        ack(response_action="update", view=connecting_view())
        view_id = view.get("id")

        def store() -> None:
            try:
                connection.store(actor, token, servers)
            except StoreUnavailableError as exc:
                client.views_update(view_id=view_id, view=_notice(str(exc)))
                raise
            client.views_update(view_id=view_id, view=_notice(connected_text(servers)))

        self._background.run(actor.request_id, _log_only, store)


def _log_only(text: str) -> None:
    logger.warning("connect dialog: %s", text)


def register(app: App, dialogs: ConnectDialogs) -> None:
    """Wire the connect dialog's submission."""

    def submit_connect_view(
        ack: Ack, body: dict[str, Any], client: WebClient, context: dict[str, Any]
    ) -> None:
        """Submission of the connect dialog."""
        view = body.get("view") or {}
        try:
            metadata = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            metadata = {}
        channel = metadata.get("channel_id") if isinstance(metadata, dict) else None
        user = (body.get("user") or {}).get("id", "")
        team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get(
            "team_id", ""
        )
        actor = Actor(team, str(channel or ""), user, request_id(context))
        dialogs.submit(ack, body, client, actor)

    app.view(CONNECT_VIEW)(submit_connect_view)
