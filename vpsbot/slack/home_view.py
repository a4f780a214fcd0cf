"""The App Home view: a person's recent actions, the requests they can decide,
and the latest activity in their channels. Block Kit only, no I/O.

Slack allows a Home at most 100 blocks and 3,000 characters a section; the
core hands at most 10 entries a part and 10 requests (two blocks each), so a
Home stays near 35 blocks. Text that came from people or VPS.org (server
names, details, reasons) is escaped as in every other message, and its runs
of whitespace (newlines, tabs) made single spaces, so that it cannot draw
lines that look like entries of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from vpsbot.ops import Approval, Home
from vpsbot.slack import messages, timezones
from vpsbot.slack.ids import HOME_APPROVE_BUTTON, HOME_DENY_BUTTON
from vpsbot.store.models import AuditEntry

logger = logging.getLogger(__name__)

esc = messages.escape
one_line = messages.one_line

MAX_BLOCKS = 100
MAX_SECTION = 3000
# Characters of an entry's detail shown in a Home line.
DETAIL_SHOWN = 150
# Characters of a request's reason shown in the Home.
REASON_SHOWN = 300

TITLE = "vpsbot"
MINE_TITLE = "*Your recent actions*"
MINE_EMPTY = (
    "No recent actions of yours in channels whose policy lets you read the audit log."
)
PENDING_TITLE = "*Pending approvals you can decide*"
PENDING_EMPTY = "No pending approvals you can decide."
PENDING_MORE = (
    "More requests wait for you than are shown here; `/vps approvals` in "
    "their channels lists them all."
)
GROUPS_UNREAD = (
    "Some user groups that approve could not be read just now, so requests "
    "they approve may be missing. Open this tab again in a moment."
)
ACTIVITY_TITLE = "*Latest activity in your channels*"
ACTIVITY_EMPTY = (
    "Nothing yet in channels you are in whose policy lets you read the audit log."
)
ACTIVITY_UNREAD = (
    "vpsbot could not read which channels you are in just now, so channel "
    "activity is not shown."
)
CHANNELS_CUT = (
    "You are in more channels than vpsbot reads (4,000), so the activity of "
    "some of them is not shown."
)
AUDIT_UNREADABLE = (
    "vpsbot cannot read the audit log right now, so your Home cannot be shown. "
    "Open this tab again in a moment."
)


def entry_line(entry: AuditEntry) -> str:
    """Who did what, to which server, how it ended, when and where."""
    server = one_line(
        entry.server_name or (str(entry.server_id) if entry.server_id else "")
    )
    line = (
        f"{timezones.shown(entry.at, seconds=False)} <@{entry.user}> "
        f"{esc(one_line(entry.action))}"
        f"{' *' + esc(server) + '*' if server else ''} → "
        f"*{esc(one_line(entry.outcome))}* in <#{entry.channel}>"
    )
    detail = one_line(entry.detail or "")
    if detail:
        if len(detail) > DETAIL_SHOWN:
            detail = detail[: DETAIL_SHOWN - 1] + "…"
        line += f" — {esc(detail)}"
    return line


def request_text(approval: Approval) -> str:
    """A pending request: who asks what, where, about which server, until when."""
    name = esc(one_line(approval.server_name))
    if approval.server_id is None:
        server = f"{name} (new server)"
    else:
        status = (
            f" · `{esc(one_line(approval.server_status))}`"
            if approval.server_status
            else ""
        )
        server = f"{name} (id {approval.server_id}){status}"
    text = (
        f"<@{approval.requester}> asks to *{esc(one_line(approval.describe()))}* in "
        f"<#{approval.channel_id}>\nServer: {server} · open until "
        f"{timezones.shown(approval.expires_at, seconds=False)}"
    )
    reason = one_line(approval.reason or "")
    if reason:
        if len(reason) > REASON_SHOWN:
            reason = reason[: REASON_SHOWN - 1] + "…"
        text += f"\nReason: {esc(reason)}"
    return text


def home_view(home: Home, *, notice: str | None = None) -> dict[str, Any]:
    """The Home tab as ``views.publish`` takes it; times in the viewer's zone.

    Args:
        home: what the core read.
        notice: a line about the viewer's last click (mrkdwn, already escaped),
            shown at the top.
    """
    blocks: list[Block] = [HeaderBlock(text=TITLE)]
    if notice:
        blocks.append(_section(notice))
    blocks.append(_section(MINE_TITLE))
    blocks.extend(_entry_sections(home.mine) or [_context(MINE_EMPTY)])
    blocks.append(DividerBlock())
    blocks.append(_section(PENDING_TITLE))
    if not home.pending:
        blocks.append(_context(PENDING_EMPTY))
    for approval in home.pending:
        blocks.append(_section(request_text(approval)))
        blocks.append(_decision_buttons(approval))
    if home.more_pending:
        blocks.append(_context(PENDING_MORE))
    if home.groups_unread:
        blocks.append(_context(GROUPS_UNREAD))
    blocks.append(DividerBlock())
    blocks.append(_section(ACTIVITY_TITLE))
    if home.activity is None:
        blocks.append(_context(ACTIVITY_UNREAD))
    else:
        blocks.extend(_entry_sections(home.activity) or [_context(ACTIVITY_EMPTY)])
    if home.channels_cut:
        blocks.append(_context(CHANNELS_CUT))
    blocks.append(
        _context(
            f"Updated {timezones.shown(home.at, seconds=False)}. Entries come "
            f"only from channels whose policy lets you read the audit log "
            f"(`audit=allow`)."
        )
    )
    if len(blocks) > MAX_BLOCKS:
        logger.warning("home view of %d blocks cut to %d", len(blocks), MAX_BLOCKS)
        blocks = blocks[:MAX_BLOCKS]
    return View(type="home", blocks=blocks).to_dict()


def _entry_sections(entries: Sequence[AuditEntry]) -> list[Block]:
    """Entry lines, as few sections as Slack's 3,000 characters allow."""
    sections: list[Block] = []
    chunk: list[str] = []
    size = 0
    for entry in entries:
        line = entry_line(entry)
        if chunk and size + len(line) + 1 > MAX_SECTION:
            sections.append(_section("\n".join(chunk)))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        sections.append(_section("\n".join(chunk)))
    return sections


def _decision_buttons(approval: Approval) -> ActionsBlock:
    return ActionsBlock(
        block_id=f"home-approval-{approval.id}",
        elements=[
            ButtonElement(
                text="Approve",
                action_id=HOME_APPROVE_BUTTON,
                value=approval.request_id,
                style="primary",
            ),
            ButtonElement(
                text="Deny",
                action_id=HOME_DENY_BUTTON,
                value=approval.request_id,
                style="danger",
            ),
        ],
    )


def _section(text: str) -> SectionBlock:
    if len(text) > MAX_SECTION:
        cut = text[: MAX_SECTION - 1]
        # Never leave half an escape (``&am``) at the end.
        amp = cut.rfind("&")
        if amp != -1 and ";" not in cut[amp:]:
            cut = cut[:amp]
        text = cut + "…"
    return SectionBlock(text=MarkdownTextObject(text=text))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def notice_view(text: str) -> dict[str, Any]:
    """A Home that only says something (the database did not answer)."""
    return View(type="home", blocks=[HeaderBlock(text=TITLE), _section(text)]).to_dict()
