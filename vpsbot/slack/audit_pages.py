"""``/vps audit`` pages: the first page, and the Previous and Next buttons.

Pages run newest first: Next shows older entries, Previous newer ones.

A page button carries everything needed to draw its page again: the filters,
where the page starts (``seq`` of the entry it starts below) and the starts of
the pages before it, so Previous can walk back. Each press is checked against
the channel's policy as it stands then, audited like the command, and redraws
the message in place. Every page also carries Export (``audit_export``),
whose value holds the filters alone.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
)

from vpsbot import moments
from vpsbot.ops import Actor, AuditFilters, Operations
from vpsbot.ops.auditing import AuditPage
from vpsbot.slack import blocks, messages, timezones
from vpsbot.slack.context import SlackContext, actor_from_action
from vpsbot.slack.ids import (
    AUDIT_EXPORT_BUTTON,
    AUDIT_NEWER_BUTTON,
    AUDIT_OLDER_BUTTON,
)
from vpsbot.slack.replies import Replies

logger = logging.getLogger(__name__)

# Slack allows 2,000 characters in a button's value; the oldest page starts
# are dropped first if a long filter leaves too little room.
MAX_VALUE = 2000
# A filter value no typed command can make longer (the text is capped at
# 2,000 characters, and a page button must fit its filters twice).
MAX_FILTER = 300
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
# Positions fit a signed 64-bit column.
MAX_POSITION = 2**63 - 1


def show(
    ops: Operations,
    actor: Actor,
    filters: AuditFilters,
    replies: Replies,
    *,
    before: int | None = None,
    starts: tuple[int, ...] = (),
    in_place: bool = False,
    note: str | None = None,
) -> None:
    """Draw one page: as a new answer, or (``in_place``) over the pressed one.

    ``starts`` are the ``before`` values of the pages above this one, newest
    first last; 0 stands for the first page. ``note`` (mrkdwn) is shown under
    the entries.
    """
    page = ops.audit.page(actor, filters, before_seq=before)
    shown = blocks.audit_message(page.entries, heading(filters))
    if note:
        shown.append(ContextBlock(elements=[MarkdownTextObject(text=note)]).to_dict())
    shown.append(_buttons(filters, page, before, starts))
    count = len(page.entries)
    text = f"{count} audit {'entry' if count == 1 else 'entries'}"
    if in_place:
        replies.replace_original(text, shown)
    else:
        replies.ephemeral(text, shown)


def heading(filters: AuditFilters) -> str:
    """The filters as mrkdwn: typed words escaped, times in the reader's zone."""
    parts = []
    for name, value in vars(filters).items():
        if value is None:
            continue
        if isinstance(value, datetime):
            text = timezones.shown(value, seconds=False)
        elif name == "user" and _USER_ID.fullmatch(value):
            text = f"<@{value}>"
        else:
            text = messages.escape(str(value))
        parts.append(f"{name}={text}")
    return " ".join(parts)


def register(app: App, slack: SlackContext) -> None:
    """Wire the Previous and Next buttons."""

    def press_audit_page(
        ack: Ack, body: dict[str, Any], client: WebClient, context: dict[str, Any]
    ) -> None:
        """Previous or Next under an audit page.

        Acknowledged once the work is handed over, so that whoever waits for
        the pools to go idle after the answer also waits for this work.
        """
        action = (body.get("actions") or [{}])[0]
        actor = actor_from_action(body, context)
        replies = Replies.to_click(client, body, actor)
        try:
            filters, before, starts = decode(str(action.get("value") or ""))
        except (ValueError, RecursionError):
            logger.warning("audit page button with a value that does not parse")
            filters = None
        if actor is None or filters is None:
            slack.background.run(
                "-",
                replies.ephemeral,
                lambda: replies.ephemeral(messages.damaged_button()),
            )
            ack()
            return
        slack.background.run(
            actor.request_id,
            replies.ephemeral,
            lambda: show(
                slack.ops,
                actor,
                filters,
                replies,
                before=before,
                starts=starts,
                in_place=True,
            ),
        )
        ack()

    app.action(AUDIT_NEWER_BUTTON)(press_audit_page)
    app.action(AUDIT_OLDER_BUTTON)(press_audit_page)


def encode(filters: AuditFilters, before: int | None, starts: tuple[int, ...]) -> str:
    """A button value for the page that starts below ``before``."""
    data: dict[str, Any] = {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in vars(filters).items()
        if value is not None
    }
    kept = list(starts)
    while True:
        value = json.dumps(
            {"f": data, "b": before or 0, "h": kept}, separators=(",", ":")
        )
        if len(value) <= MAX_VALUE or not kept:
            return value
        kept.pop(0)


def decode(value: str) -> tuple[AuditFilters, int | None, tuple[int, ...]]:
    """Filters, start and the starts above it, from a button value.

    Raises:
        ValueError: the value is not one this module wrote.
    """
    data = json.loads(value)
    if not isinstance(data, dict) or not isinstance(data.get("f"), dict):
        raise ValueError("not an audit page value")
    fields = data["f"]
    known = set(vars(AuditFilters()))
    if not set(fields) <= known or not all(
        isinstance(item, str) and item.isprintable() and len(item) <= MAX_FILTER
        for item in fields.values()
    ):
        raise ValueError("unknown or malformed audit filter")
    for key in ("since", "until"):
        if key in fields:
            moment = datetime.fromisoformat(fields[key])
            if moment.tzinfo is None:
                raise ValueError(f"{key} has no time zone")
            if not moments.EARLIEST <= moment < moments.LATEST:
                raise ValueError(f"{key} is out of range")
            fields[key] = moment
    before = data.get("b")
    starts = data.get("h")
    if not _whole(before) or not isinstance(starts, list):
        raise ValueError("malformed page start")
    if not all(_whole(start) for start in starts):
        raise ValueError("malformed page history")
    return AuditFilters(**fields), before or None, tuple(starts)


def _buttons(
    filters: AuditFilters,
    page: AuditPage,
    before: int | None,
    starts: tuple[int, ...],
) -> dict[str, Any]:
    elements = []
    if before is not None:
        newer_start = starts[-1] if starts else 0
        elements.append(
            ButtonElement(
                text="Previous",
                action_id=AUDIT_NEWER_BUTTON,
                value=encode(filters, newer_start or None, starts[:-1]),
            )
        )
    if page.older_than is not None:
        elements.append(
            ButtonElement(
                text="Next",
                action_id=AUDIT_OLDER_BUTTON,
                value=encode(filters, page.older_than, (*starts, before or 0)),
            )
        )
    # Export takes every matching entry, not only this page's.
    elements.append(
        ButtonElement(
            text="Export",
            action_id=AUDIT_EXPORT_BUTTON,
            value=encode(filters, None, ()),
        )
    )
    return ActionsBlock(block_id="audit_pages", elements=elements).to_dict()


def _whole(value: object) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value <= MAX_POSITION
    )
