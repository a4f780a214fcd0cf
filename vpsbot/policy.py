"""May this person do this action in this channel? Pure rules, no I/O.

A channel's policy gives each action one rule: ``allow``, ``approve`` (someone
else must approve first) or ``deny``. A channel without a policy denies
everything. The policy applies to everyone, admins included; being an admin
only means being allowed to change it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

logger = logging.getLogger(__name__)

Action = Literal["read", "power", "create", "modify", "delete", "audit"]
Rule = Literal["allow", "approve", "deny"]

ACTIONS: tuple[Action, ...] = ("read", "power", "create", "modify", "delete", "audit")
RULES: tuple[Rule, ...] = ("allow", "approve", "deny")

# The policy action that guards each operation of the command grammar.
OPERATION_ACTIONS: Mapping[str, Action] = {
    "list": "read",
    "show": "read",
    "approvals": "read",
    "start": "power",
    "stop": "power",
    "reboot": "power",
    "create": "create",
    "update": "modify",
    "rename": "modify",
    "backups": "modify",
    "delete": "delete",
    "audit": "audit",
}


@dataclass(frozen=True)
class ChannelRules:
    """A channel's rules as plain values, detached from the database row."""

    rules: Mapping[str, Rule]
    approvers: tuple[str, ...] = ()
    configured: bool = True

    @classmethod
    def unconfigured(cls) -> ChannelRules:
        """The rules of a channel that has no policy: everything denied."""
        return cls(rules={action: "deny" for action in ACTIONS}, configured=False)

    def rule_for(self, action: Action) -> Rule:
        return self.rules.get(action, "deny")


@dataclass(frozen=True)
class Decision:
    """The outcome of a policy check and the sentence that explains a refusal."""

    action: Action
    rule: Rule
    reason: str = field(default="")

    @property
    def allowed(self) -> bool:
        return self.rule == "allow"


def decide(rules: ChannelRules, action: Action, *, admins: tuple[str, ...]) -> Decision:
    """Apply a channel's rules to one action.

    Args:
        rules: the channel's rules (``ChannelRules.unconfigured()`` when none).
        action: the policy action the operation needs.
        admins: Slack user ids of the admins, named in refusals.

    Returns:
        The decision; ``reason`` is set when the rule is not ``allow``.
    """
    rule = rules.rule_for(action)
    if rule == "allow":
        decision = Decision(action, rule)
    elif not rules.configured:
        decision = Decision(action, rule, _no_policy_reason(action, admins))
    elif rule == "deny":
        decision = Decision(action, rule, _denied_reason(action, admins))
    else:
        decision = Decision(
            action, rule, f"`{action}` needs a second person's approval"
        )
    logger.debug("policy %s -> %s (configured=%s)", action, rule, rules.configured)
    return decision


def approvers(rules: ChannelRules, *, admins: tuple[str, ...]) -> tuple[str, ...]:
    """Who approves requests here: the channel's list, or the admins when empty.

    The list holds user ids (``U…``, ``W…``) and user-group ids (``S…``).
    """
    return rules.approvers or admins


def may_approve(
    user_id: str,
    *,
    requester: str,
    rules: ChannelRules,
    admins: tuple[str, ...],
    members_of: Callable[[str], set[str]],
) -> bool:
    """Whether ``user_id`` may decide a request ``requester`` made here.

    Nobody approves their own request. ``members_of`` resolves a user-group id
    to its members' user ids; it is called only for groups, and only until one
    of them holds the user.
    """
    if user_id == requester:
        return False
    for approver in approvers(rules, admins=admins):
        if approver.startswith("S"):
            if user_id in members_of(approver):
                return True
        elif approver == user_id:
            return True
    return False


def allowed_actions(rules: ChannelRules) -> dict[Action, Rule]:
    """Every action with its rule, for ``/vps help`` and ``/vps policy``."""
    return {action: rules.rule_for(action) for action in ACTIONS}


def admin_mentions(admins: tuple[str, ...]) -> str:
    """The admins as Slack mentions, or a hint that none are configured."""
    if not admins:
        return "no admins are configured yet (an operator sets `VPSBOT_ADMINS`)"
    return ", ".join(f"<@{admin}>" for admin in admins)


def parse_rule_changes(pairs: Mapping[str, str]) -> dict[Action, Rule]:
    """Check ``action=rule`` pairs typed by an admin.

    Raises:
        ValueError: an unknown action or rule; the message says which.
    """
    changes: dict[Action, Rule] = {}
    for action, rule in pairs.items():
        if action not in ACTIONS:
            raise ValueError(
                f"`{action}` is not a policy action; use one of {', '.join(ACTIONS)}"
            )
        if rule not in RULES:
            raise ValueError(f"`{rule}` is not a rule; use one of {', '.join(RULES)}")
        changes[action] = rule  # type: ignore[index,assignment]
    return changes


def _no_policy_reason(action: Action, admins: tuple[str, ...]) -> str:
    return (
        f"This channel has no vpsbot policy yet, so nothing is allowed here. "
        f"Admins: {admin_mentions(admins)}; one of them can grant it with "
        f"`/vps policy {action}=allow`."
    )


def _denied_reason(action: Action, admins: tuple[str, ...]) -> str:
    return (
        f"This channel's policy does not allow `{action}`. "
        f"Admins: {admin_mentions(admins)}; one of them can change it with "
        f"`/vps policy {action}=allow`."
    )
