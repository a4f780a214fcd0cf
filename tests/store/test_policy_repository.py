from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from vpsbot.store import PolicyRepository, session_scope
from vpsbot.store.models import POLICY_ACTIONS, ChannelPolicy

DENY_ALL = {action: "deny" for action in POLICY_ACTIONS}


def test_get_returns_none_for_a_channel_without_policy(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        assert PolicyRepository(session).get(team_id="T1", channel_id="C1") is None


def test_set_rules_creates_a_deny_all_policy_and_changes_the_named_rules(
    session_factory: sessionmaker[Session],
) -> None:
    before = datetime.now(UTC)

    with session_scope(session_factory) as session:
        PolicyRepository(session).set_rules(
            team_id="T1",
            channel_id="C1",
            rules={"read": "allow", "delete": "approve"},
            updated_by="U0ADMIN",
        )

    with session_scope(session_factory) as session:
        policy = PolicyRepository(session).get(team_id="T1", channel_id="C1")
        assert policy is not None
        assert policy.rules() == DENY_ALL | {"read": "allow", "delete": "approve"}
        assert policy.approvers == []
        assert policy.updated_by == "U0ADMIN"
        assert policy.updated_at >= before
        assert policy.updated_at.tzinfo is UTC


def test_set_rules_keeps_the_rules_it_does_not_name(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        repository = PolicyRepository(session)
        repository.set_rules(
            team_id="T1",
            channel_id="C1",
            rules={"read": "allow", "power": "allow"},
            updated_by="U1",
        )
    with session_scope(session_factory) as session:
        PolicyRepository(session).set_rules(
            team_id="T1",
            channel_id="C1",
            rules={"power": "approve", "audit": "allow"},
            updated_by="U2",
        )

    with session_scope(session_factory) as session:
        policy = PolicyRepository(session).get(team_id="T1", channel_id="C1")
        assert policy is not None
        assert policy.rules() == DENY_ALL | {
            "read": "allow",
            "power": "approve",
            "audit": "allow",
        }
        assert policy.updated_by == "U2"


def test_policies_are_per_channel_and_per_team(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        PolicyRepository(session).set_rules(
            team_id="T1", channel_id="C1", rules={"read": "allow"}, updated_by="U1"
        )

    with session_scope(session_factory) as session:
        repository = PolicyRepository(session)
        assert repository.get(team_id="T1", channel_id="C2") is None
        assert repository.get(team_id="T2", channel_id="C1") is None


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"reboot": "allow"}, "unknown action 'reboot'"),
        ({"read": "yes"}, "unknown rule 'yes' for read"),
        ({"read": "allow", "power": "ALLOW"}, "unknown rule 'ALLOW' for power"),
    ],
)
def test_set_rules_refuses_unknown_names_and_writes_nothing(
    session_factory: sessionmaker[Session], rules: dict[str, str], message: str
) -> None:
    with (
        pytest.raises(ValueError, match=message),
        session_scope(session_factory) as session,
    ):
        PolicyRepository(session).set_rules(
            team_id="T1", channel_id="C1", rules=rules, updated_by="U1"
        )

    with session_scope(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(ChannelPolicy)) == 0


def test_set_approvers_creates_a_deny_all_policy_and_keeps_order(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        PolicyRepository(session).set_approvers(
            team_id="T1",
            channel_id="C1",
            approvers=["U0BOB", "S0OPS", "W0CAROL", "U0BOB"],
            updated_by="U0ADMIN",
        )

    with session_scope(session_factory) as session:
        policy = PolicyRepository(session).get(team_id="T1", channel_id="C1")
        assert policy is not None
        assert policy.approvers == ["U0BOB", "S0OPS", "W0CAROL"]
        assert policy.rules() == DENY_ALL
        assert policy.updated_by == "U0ADMIN"


def test_set_approvers_replaces_the_list_and_keeps_the_rules(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        repository = PolicyRepository(session)
        repository.set_rules(
            team_id="T1", channel_id="C1", rules={"create": "approve"}, updated_by="U1"
        )
        repository.set_approvers(
            team_id="T1", channel_id="C1", approvers=["U0BOB"], updated_by="U1"
        )
    with session_scope(session_factory) as session:
        PolicyRepository(session).set_approvers(
            team_id="T1", channel_id="C1", approvers=[], updated_by="U2"
        )

    with session_scope(session_factory) as session:
        policy = PolicyRepository(session).get(team_id="T1", channel_id="C1")
        assert policy is not None
        assert policy.approvers == []
        assert policy.rules() == DENY_ALL | {"create": "approve"}


@pytest.mark.parametrize("approver", ["alice", "<@U0BOB>", "C0CHANNEL", "u0bob", ""])
def test_set_approvers_refuses_what_is_not_a_slack_id(
    session_factory: sessionmaker[Session], approver: str
) -> None:
    with (
        pytest.raises(ValueError, match="is not a Slack user id"),
        session_scope(session_factory) as session,
    ):
        PolicyRepository(session).set_approvers(
            team_id="T1", channel_id="C1", approvers=[approver], updated_by="U1"
        )


def test_concurrent_changes_to_a_new_channel_are_all_kept(
    session_factory: sessionmaker[Session],
) -> None:
    start = threading.Barrier(len(POLICY_ACTIONS))
    errors: list[BaseException] = []

    def allow(action: str) -> None:
        try:
            start.wait()
            with session_scope(session_factory) as session:
                PolicyRepository(session).set_rules(
                    team_id="T1",
                    channel_id="C1",
                    rules={action: "allow"},
                    updated_by="U1",
                )
        except BaseException as exc:  # collected and checked below
            errors.append(exc)

    threads = [threading.Thread(target=allow, args=(a,)) for a in POLICY_ACTIONS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with session_scope(session_factory) as session:
        policy = PolicyRepository(session).get(team_id="T1", channel_id="C1")
        assert policy is not None
        assert policy.rules() == {action: "allow" for action in POLICY_ACTIONS}
