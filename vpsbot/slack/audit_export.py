"""``/vps audit export`` and the Export button: the entries as a CSV upload.

Both acknowledge at once and do the work on the slow-read pool, so that
commands and clicks never wait behind an export: the channel's policy is
checked as it stands then, the matching entries are written to a temporary
file and uploaded to the conversation. When Slack
refuses the upload, the asker gets one sentence through the response_url
(which needs no scope) and the audit log a second entry saying so.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from vpsbot.ops import Actor, AuditFilters, Operations
from vpsbot.slack import audit_pages, messages
from vpsbot.slack.context import SlackContext, actor_from_action
from vpsbot.slack.ids import AUDIT_EXPORT_BUTTON
from vpsbot.slack.replies import Replies
from vpsbot.slack.uploads import UploadError, upload_file

logger = logging.getLogger(__name__)


def export(
    ops: Operations, actor: Actor, filters: AuditFilters, replies: Replies
) -> None:
    """Upload the matching entries of the asker's channel, or say why not."""
    with ops.audit.export(actor, filters) as made:
        described = filters.describe()
        if made.count == 0:
            replies.ephemeral(messages.export_empty(described))
            return
        try:
            upload_file(
                replies.client,
                channel_id=actor.channel_id,
                file=made.file,
                size=made.size,
                filename=made.filename,
                title=messages.export_title(actor.channel_id),
                initial_comment=messages.export_comment(
                    made.count, described, actor.user_id
                ),
            )
        except UploadError as exc:
            logger.warning(
                "audit export upload failed at %s: %s [%s]",
                exc.step,
                exc.error,
                actor.request_id,
            )
            replies.ephemeral(messages.export_failed(exc.error))
            ops.audit.record_undelivered(actor, made, f"{exc.step} {exc.error}")
            return
    logger.info(
        "audit export %s uploaded to %s [%s]",
        made.filename,
        actor.channel_id,
        actor.request_id,
    )


def register(app: App, slack: SlackContext) -> None:
    """Wire the Export button."""

    def press_audit_export(
        ack: Ack, body: dict[str, Any], client: WebClient, context: dict[str, Any]
    ) -> None:
        """Export under a /vps audit answer; acknowledged once handed over."""
        action = (body.get("actions") or [{}])[0]
        actor = actor_from_action(body, context)
        replies = Replies.to_click(client, body, actor)
        try:
            filters, _, _ = audit_pages.decode(str(action.get("value") or ""))
        except (ValueError, RecursionError):
            logger.warning("audit export button with a value that does not parse")
            filters = None
        if actor is None or filters is None:
            slack.background.run(
                "-",
                replies.ephemeral,
                lambda: replies.ephemeral(messages.damaged_button()),
            )
            ack()
            return
        slack.background.run_export(
            actor.request_id,
            replies.ephemeral,
            lambda: export(slack.ops, actor, filters, replies),
        )
        ack()

    app.action(AUDIT_EXPORT_BUTTON)(press_audit_export)
