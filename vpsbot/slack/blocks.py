"""Block Kit builders, on slack_sdk's models. No I/O.

Slack's limits shape these: at most 50 blocks a message, 3,000 characters a
section, 10 fields, 75 characters a button label, 3,000 characters of
``private_metadata``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from vpsbot.policy import ACTIONS, ChannelRules, admin_mentions, allowed_actions
from vpsbot.slack import messages, timezones
from vpsbot.slack.ids import (
    DELETE_BUTTON,
    DELETE_NAME_ACTION,
    DELETE_NAME_BLOCK,
    DELETE_VIEW,
    POWER_BUTTONS,
    SHOW_BUTTON,
)
from vpsbot.store.models import AuditEntry
from vpsbot.vps import Server

logger = logging.getLogger(__name__)

esc = messages.escape
one_line = messages.one_line

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_LISTED = 40

Blocks = list[dict[str, Any]]


def _dicts(blocks: Sequence[Block]) -> Blocks:
    return [block.to_dict() for block in blocks]


def _section(text: str) -> SectionBlock:
    if len(text) > MAX_SECTION:
        text = text[: MAX_SECTION - 1] + "…"
    return SectionBlock(text=MarkdownTextObject(text=text))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text[:MAX_SECTION])])


# Servers


def plan_summary(server: Server) -> str:
    plan = server.plan
    if plan is None:
        return "unknown plan"
    return (
        f"{esc(plan.name)} · {plan.vcpus} vCPU · "
        f"{_gigabytes(plan.memory)} GB · {plan.storage} GB"
    )


def _gigabytes(megabytes: int | None) -> str:
    if megabytes is None:
        return "?"
    value = megabytes / 1024
    return f"{value:.0f}" if value.is_integer() else f"{value:.1f}"


def server_list(servers: Sequence[Server], filters: str) -> Blocks:
    """``/vps list``: one line per server, each with a Show button."""
    title = f"*{len(servers)} server{'s' if len(servers) != 1 else ''}*"
    if filters:
        title += f" ({esc(filters)})"
    blocks: list[Block] = [_section(title)]
    if not servers:
        blocks.append(_context("Nothing matches. `/vps list` shows every server."))
        return _dicts(blocks)
    for server in servers[:MAX_LISTED]:
        text = (
            f"*{esc(server.name)}* `{esc(server.status)}` · "
            f"{esc(server.location)} · "
            f"{esc(server.ip_address or 'no IP yet')}\n{plan_summary(server)} · "
            f"{esc(server.os.name) if server.os else 'unknown OS'}"
        )
        section = _section(text)
        section.accessory = ButtonElement(
            text="Show", action_id=SHOW_BUTTON, value=str(server.id)
        )
        blocks.append(section)
    if len(servers) > MAX_LISTED:
        blocks.append(
            _context(
                f"…and {len(servers) - MAX_LISTED} more. Narrow the list, e.g. "
                f"`/vps list stopped us-east`."
            )
        )
    return _dicts(blocks)


def server_card(server: Server, *, note: str | None = None) -> Blocks:
    """One server in detail, with the buttons its state allows."""
    fields = [
        f"*Status*\n`{esc(server.status)}`",
        f"*Location*\n{esc(server.location)}",
        f"*IPv4*\n{esc(server.ip_address or '—')}",
        f"*IPv6*\n{esc(server.ipv6_address or '—')}",
        f"*Plan*\n{plan_summary(server)}",
        f"*OS*\n{esc(server.os.name) if server.os else '—'}",
        f"*Hostname*\n{esc(server.hostname or '—')}",
        f"*Backups*\n{_on_off(server.backups_enabled)}",
    ]
    usage = server.resource_usage
    if usage is not None:
        fields.append(
            f"*Usage (as reported)*\nCPU {usage.cpu_percent}% · RAM "
            f"{usage.memory_used} MB · disk {usage.disk_used} GB"
        )
    if server.created_at is not None:
        fields.append(f"*Created*\n{timezones.shown(server.created_at, seconds=False)}")
    blocks: list[Block] = [
        _section(f"*{esc(server.name)}* (id {server.id})"),
        SectionBlock(fields=[MarkdownTextObject(text=field) for field in fields[:10]]),
    ]
    buttons = server_buttons(server)
    if buttons:
        blocks.append(ActionsBlock(block_id=f"server-{server.id}", elements=buttons))
    if note:
        blocks.append(_context(note))
    return _dicts(blocks)


def server_buttons(server: Server) -> list[ButtonElement]:
    """Start when stopped, Stop and Reboot when active, Delete unless provisioning."""
    value = str(server.id)
    buttons = []
    if server.can_start:
        buttons.append(
            ButtonElement(text="Start", action_id=POWER_BUTTONS["start"], value=value)
        )
    for verb in ("stop", "reboot"):
        if getattr(server, f"can_{verb}"):
            buttons.append(
                ButtonElement(
                    text=verb.capitalize(),
                    action_id=POWER_BUTTONS[verb],
                    value=value,
                    confirm=ConfirmObject(
                        title=f"{verb.capitalize()} {server.name}?"[:100],
                        text=messages.confirm_power(verb, server.name)[:300],
                        confirm=verb.capitalize(),
                        deny="Cancel",
                    ),
                )
            )
    if server.can_delete:
        buttons.append(
            ButtonElement(
                text="Delete", action_id=DELETE_BUTTON, value=value, style="danger"
            )
        )
    return buttons


def _on_off(value: bool | None) -> str:
    return {True: "on", False: "off"}.get(value, "—")  # type: ignore[arg-type]


# Dialogs


def loading_view(title: str, looking_for: str) -> dict[str, Any]:
    """The view opened at once, so a trigger_id is never left to expire."""
    return View(
        type="modal",
        title=PlainTextObject(text=title[:24]),
        close=PlainTextObject(text="Close"),
        blocks=[_section(messages.loading(looking_for))],
    ).to_dict()


def notice_view(title: str, text: str) -> dict[str, Any]:
    """A view that only says something (a refusal, a missing server)."""
    return View(
        type="modal",
        title=PlainTextObject(text=title[:24]),
        close=PlainTextObject(text="Close"),
        blocks=[_section(text)],
    ).to_dict()


def delete_view(server: Server, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The typed-name confirmation for a delete."""
    private_metadata = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False)
    if len(private_metadata) > 3000:
        raise ValueError("delete dialog metadata exceeds Slack's 3000 characters")
    return View(
        type="modal",
        callback_id=DELETE_VIEW,
        title=PlainTextObject(text="Delete server"),
        submit=PlainTextObject(text="Delete"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=private_metadata,
        blocks=[
            _section(messages.delete_prompt(server.name)),
            SectionBlock(
                fields=[
                    MarkdownTextObject(
                        text=f"*Server*\n{esc(server.name)} (id {server.id})"
                    ),
                    MarkdownTextObject(text=f"*Status*\n`{server.status}`"),
                    MarkdownTextObject(text=f"*IPv4*\n{server.ip_address or '—'}"),
                    MarkdownTextObject(text=f"*Plan*\n{plan_summary(server)}"),
                ]
            ),
            InputBlock(
                block_id=DELETE_NAME_BLOCK,
                label="Server name",
                element=PlainTextInputElement(
                    action_id=DELETE_NAME_ACTION,
                    placeholder=server.name[:150],
                    max_length=63,
                ),
            ),
        ],
    ).to_dict()


# Help, policy, audit


_HELP_LINES = {
    "read": [
        "`/vps list [status] [location]`",
        "`/vps show <server>`",
        "`/vps approvals`",
    ],
    "power": ["`/vps start|stop|reboot <server>`"],
    "create": [
        "`/vps create` (a dialog)",
        "`/vps create <name> plan=… os=… location=… [hostname=…] [backups=on|off]`",
    ],
    "modify": [
        "`/vps update <server>` (a dialog)",
        "`/vps rename <server> <new-name>`",
        "`/vps backups <server> on|off`",
    ],
    "delete": ["`/vps delete <server>`"],
    "audit": ["`/vps audit [<server>] [<@user>] [action=…] [outcome=…] [since=…]`"],
}
_RULE_WORDS = {
    "allow": "you may",
    "approve": "needs approval (posts a request another approver decides)",
    "deny": "not allowed here",
}


def help_message(
    rules: ChannelRules, *, is_admin: bool, admins: tuple[str, ...]
) -> Blocks:
    """``/vps help``: the commands, marked with what the asker may do here."""
    lines = ["*vpsbot* runs this team's VPS.org servers. In this channel:"]
    for action, rule in allowed_actions(rules).items():
        mark = {"allow": ":white_check_mark:", "approve": ":hourglass:"}.get(
            rule, ":no_entry_sign:"
        )
        commands = ", ".join(_HELP_LINES[action])
        lines.append(f"{mark} {commands} — {_RULE_WORDS[rule]}")
    lines.append("`/vps policy` shows this channel's rules.")
    blocks: list[Block] = [_section("\n".join(lines))]
    if not rules.configured:
        blocks.append(
            _context(
                f"This channel has no policy yet, so everything is denied. "
                f"Admins: {admin_mentions(admins)}."
            )
        )
    if is_admin:
        blocks.append(
            _context(
                "You are an admin: `/vps policy read=allow power=approve …` changes "
                "rules, `/vps policy approvers <@user> …` sets who approves."
            )
        )
    return _dicts(blocks)


def policy_message(
    rules: ChannelRules, *, admins: tuple[str, ...], headline: str | None = None
) -> Blocks:
    """``/vps policy``: each action's rule and who approves.

    ``headline``, when given, comes first (who changed what, in announcements).
    """
    top = [_section(headline)] if headline else []
    if not rules.configured:
        return _dicts(
            [
                *top,
                _section(
                    "This channel has no vpsbot policy, so every action is denied."
                ),
                _context(
                    f"Admins: {admin_mentions(admins)}. An admin grants with e.g. "
                    f"`/vps policy read=allow power=approve`."
                ),
            ]
        )
    lines = [f"`{action}` = *{rules.rule_for(action)}*" for action in ACTIONS]
    approvers = (
        ", ".join(_mention(approver) for approver in rules.approvers)
        if rules.approvers
        else f"the admins ({admin_mentions(admins)})"
    )
    return _dicts(
        [
            *top,
            _section("*This channel's policy*\n" + "\n".join(lines)),
            _context(f"Approvers: {approvers}."),
        ]
    )


def _mention(slack_id: str) -> str:
    return f"<!subteam^{slack_id}>" if slack_id.startswith("S") else f"<@{slack_id}>"


def audit_message(entries: Sequence[AuditEntry], heading: str) -> Blocks:
    """``/vps audit``: newest first, one line per entry.

    ``heading`` is mrkdwn put after the title as it is: the caller escapes it.
    Times are shown in each reader's own time zone.
    """
    title = f"*Audit log*, newest first ({len(entries)} shown)"
    if heading:
        title += f" — {heading}"
    if not entries:
        return _dicts([_section(title), _context("No entries match.")])
    lines = []
    for entry in entries:
        server = one_line(
            entry.server_name or (str(entry.server_id) if entry.server_id else "")
        )
        line = (
            f"{timezones.shown(entry.at)} <@{entry.user}> {entry.action}"
            f"{' *' + esc(server) + '*' if server else ''} → *{entry.outcome}*"
        )
        detail = one_line(entry.detail or "")
        if detail:
            line += f" — {esc(detail[:200])}"
        lines.append(line)
    blocks: list[Block] = [_section(title)]
    chunk: list[str] = []
    for line in lines:
        if sum(len(item) + 1 for item in chunk) + len(line) > MAX_SECTION - 10:
            blocks.append(_section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(_section("\n".join(chunk)))
    return _dicts(blocks[:MAX_BLOCKS])


def announcement(text: str) -> Blocks:
    return _dicts([_section(text)])


def divider() -> dict[str, Any]:
    return DividerBlock().to_dict()
