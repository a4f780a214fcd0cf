"""The pure policy rules."""

from __future__ import annotations

import pytest

from vpsbot.policy import (
    OPERATION_ACTIONS,
    ChannelRules,
    decide,
    parse_rule_changes,
)

ADMINS = ("U0ADMIN1", "U0ADMIN2")
DEMO = ChannelRules(
    rules={
        "read": "allow",
        "power": "allow",
        "audit": "allow",
        "create": "approve",
        "modify": "approve",
        "delete": "deny",
    }
)


@pytest.mark.parametrize(
    ("operation", "rule"),
    [
        ("list", "allow"),
        ("show", "allow"),
        ("reboot", "allow"),
        ("start", "allow"),
        ("audit", "allow"),
        ("create", "approve"),
        ("rename", "approve"),
        ("backups", "approve"),
        ("update", "approve"),
        ("delete", "deny"),
    ],
)
def test_each_operation_gets_its_actions_rule(operation, rule):
    decision = decide(DEMO, OPERATION_ACTIONS[operation], admins=ADMINS)

    assert decision.rule == rule
    assert decision.allowed is (rule == "allow")


@pytest.mark.parametrize(
    "action", ["read", "power", "create", "modify", "delete", "audit"]
)
def test_a_channel_without_policy_denies_everything_and_names_admins(action):
    decision = decide(ChannelRules.unconfigured(), action, admins=ADMINS)

    assert decision.rule == "deny"
    assert "no vpsbot policy yet" in decision.reason
    assert "<@U0ADMIN1>, <@U0ADMIN2>" in decision.reason
    assert f"`/vps policy {action}=allow`" in decision.reason


def test_denial_without_admins_says_how_to_configure_them():
    decision = decide(ChannelRules.unconfigured(), "read", admins=())

    assert "VPSBOT_ADMINS" in decision.reason


def test_deny_names_the_action_and_admins():
    decision = decide(DEMO, "delete", admins=ADMINS)

    assert decision.reason.startswith("This channel's policy does not allow `delete`.")


def test_missing_action_in_rules_is_denied():
    assert decide(ChannelRules(rules={"read": "allow"}), "power", admins=()).rule == (
        "deny"
    )


def test_rule_changes_are_checked():
    assert parse_rule_changes({"read": "allow", "delete": "approve"}) == {
        "read": "allow",
        "delete": "approve",
    }
    with pytest.raises(ValueError, match="`reboot` is not a policy action"):
        parse_rule_changes({"reboot": "allow"})
    with pytest.raises(ValueError, match="`maybe` is not a rule"):
        parse_rule_changes({"read": "maybe"})
