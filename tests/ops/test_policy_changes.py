"""A policy change and its audit entry are committed together or not at all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from vpsbot.ops.context import Actor
from vpsbot.ops.guard import Guard
from vpsbot.ops.policies import PolicyOperations

ADMIN = "U0ADMIN"
ACTOR = Actor("T1", "C1", ADMIN, "r-policytest")

_REFUSE_AUDIT = {
    "sqlite": [
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries "
        "BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries "
        "FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
    ],
}
_ALLOW_AUDIT = {
    "sqlite": ["DROP TRIGGER refuse_audit"],
    "postgresql": [
        "DROP TRIGGER refuse_audit ON audit_entries",
        "DROP FUNCTION refuse_audit()",
    ],
}


@pytest.fixture
def audit_refused(engine: Engine) -> Iterator[None]:
    dialect = engine.dialect.name
    with engine.begin() as connection:
        for statement in _REFUSE_AUDIT[dialect]:
            connection.execute(text(statement))
    yield
    with engine.begin() as connection:
        for statement in _ALLOW_AUDIT[dialect]:
            connection.execute(text(statement))


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
