"""A policy change and its audit entry are committed together or not at all."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from vpsbot.ops.context import Actor
from vpsbot.ops.guard import Guard
from vpsbot.ops.policies import PolicyOperations

ADMIN = "U0ADMIN"
ACTOR = Actor("T1", "C1", ADMIN, "r-policytest")


def test_a_policy_change_whose_entry_cannot_be_written_does_not_happen(
    session_factory, audit_refused
):
    policies = PolicyOperations(
        guard=Guard(session_factory, admins=(ADMIN,)), sessions=session_factory
    )

    with pytest.raises(SQLAlchemyError, match="audit refused"):
        policies.change_rules(ACTOR, {"power": "allow"})

    rules = policies.current(ACTOR)
    assert rules.configured is False
    assert rules.rule_for("power") == "deny"


def test_a_policy_change_and_its_entry_land_together(session_factory, engine):
    policies = PolicyOperations(
        guard=Guard(session_factory, admins=(ADMIN,)), sessions=session_factory
    )

    rules = policies.change_rules(ACTOR, {"power": "allow"})

    assert rules.rule_for("power") == "allow"
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT action, outcome, detail FROM audit_entries")
        ).all()
    assert [tuple(row) for row in rows] == [("policy", "succeeded", "power=allow")]
