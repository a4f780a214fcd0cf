"""A person's Home in the core, on SQLite and PostgreSQL: which entries and
requests it may show, read with a few indexed queries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from vpsbot import audit
from vpsbot.ops import Guard, HomeOperations, home as home_module
from vpsbot.ops.approvals import GroupUnreadableError
from vpsbot.store import ApprovalRepository, PolicyRepository, session_scope
from vpsbot.store.home import CHANNELS_PER_STATEMENT
from vpsbot.store.models import ApprovalRequest

TEAM = "T0TEST"
ALICE = "U0ALICE"  # an admin
BOB = "U0BOB"
CAROL = "U0CAROL"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
OPEN = {
    "read": "allow",
    "power": "allow",
    "create": "allow",
    "modify": "approve",
    "delete": "allow",
    "audit": "allow",
}


def _home(session_factory) -> HomeOperations:
    return HomeOperations(
        guard=Guard(session_factory, admins=(ALICE,)),
        sessions=session_factory,
        clock=lambda: NOW,
    )


def _policy(session_factory, channel: str, rules=OPEN, approvers=None) -> None:
    with session_scope(session_factory) as session:
        policies = PolicyRepository(session)
        policies.set_rules(
            team_id=TEAM, channel_id=channel, rules=rules, updated_by=ALICE
        )
        if approvers is not None:
            policies.set_approvers(
                team_id=TEAM, channel_id=channel, approvers=approvers, updated_by=ALICE
            )


def _entry(session_factory, minute: int, channel: str, user: str, team=TEAM) -> None:
    with session_scope(session_factory) as session:
        audit.record(
            session,
            team=team,
            channel=channel,
            user=user,
            action="show",
            outcome="succeeded",
            request_id=f"r-{channel}-{minute}",
            at=T0 + timedelta(minutes=minute),
        )


def _request(session_factory, public_id, channel, requester, *, expires=None) -> None:
    with session_scope(session_factory) as session:
        ApprovalRepository(session).add(
            ApprovalRequest(
                request_id=public_id,
                team_id=TEAM,
                channel_id=channel,
                requester=requester,
                verb="rename",
                server_id=1,
                server_name="web-01",
                server_status="active",
                params=json.dumps({"new_name": "web-09"}),
                status="pending",
                created_at=T0,
                expires_at=expires or NOW + timedelta(hours=1),
            )
        )


def _nobody(group_id: str) -> set[str]:
    return set()


def test_the_newest_entries_are_merged_across_many_channels(session_factory, engine):
    channels = [f"C{n:04d}" for n in range(2 * CHANNELS_PER_STATEMENT + 20)]
    for minute, channel in enumerate(channels):
        _policy(session_factory, channel)
        _entry(session_factory, minute, channel, BOB)
    _entry(session_factory, 999, channels[0], BOB, team="T0OTHER")
    statements = []
    event.listen(
        engine,
        "before_cursor_execute",
        lambda *args: statements.append(args[2]),
    )

    home = _home(session_factory).read(
        TEAM, BOB, member_of=channels, members_of=_nobody
    )

    newest = [f"r-{channel}-{minute}" for minute, channel in enumerate(channels)]
    newest = newest[::-1][:10]
    assert [entry.request_id for entry in home.mine] == newest
    assert home.activity is not None
    assert [entry.request_id for entry in home.activity] == newest
    # The activity takes three statements (one per 50 channels), not one per
    # channel; the viewer's own entries are read off their own index.
    entry_reads = [sql for sql in statements if "UNION ALL" in sql]
    assert len(entry_reads) == 3


def test_a_channel_whose_audit_rule_is_not_allow_contributes_nothing(
    session_factory,
):
    _policy(session_factory, "C0ALLOW")
    _policy(session_factory, "C0APPROVE", {**OPEN, "audit": "approve"})
    _policy(session_factory, "C0DENY", {**OPEN, "audit": "deny"})
    for minute, channel in enumerate(["C0ALLOW", "C0APPROVE", "C0DENY", "C0NONE"]):
        _entry(session_factory, minute, channel, BOB)

    home = _home(session_factory).read(
        TEAM,
        BOB,
        member_of=["C0ALLOW", "C0APPROVE", "C0DENY", "C0NONE"],
        members_of=_nobody,
    )

    assert [entry.channel for entry in home.mine] == ["C0ALLOW"]
    assert home.activity is not None
    assert [entry.channel for entry in home.activity] == ["C0ALLOW"]


def test_activity_is_left_out_when_the_channels_are_unknown(session_factory):
    _policy(session_factory, "C0ALLOW")
    _entry(session_factory, 1, "C0ALLOW", BOB)

    home = _home(session_factory).read(TEAM, BOB, member_of=None, members_of=_nobody)

    assert home.activity is None
    assert [entry.channel for entry in home.mine] == ["C0ALLOW"]


def test_requests_listed_are_those_the_viewer_may_decide(session_factory):
    _policy(session_factory, "C0ADMINS")  # no approvers: the admins decide
    _policy(session_factory, "C0BOB", approvers=[BOB])
    _policy(session_factory, "C0GROUP", approvers=["S0OPS"])
    _policy(session_factory, "C0CAROL", approvers=[CAROL])
    _request(session_factory, "r-admins", "C0ADMINS", BOB)
    _request(session_factory, "r-bob", "C0BOB", CAROL)
    _request(session_factory, "r-alice", "C0BOB", ALICE)
    _request(session_factory, "r-own", "C0ADMINS", ALICE)  # hers: never listed
    _request(session_factory, "r-group", "C0GROUP", CAROL)
    _request(session_factory, "r-carol", "C0CAROL", BOB)
    _request(session_factory, "r-late", "C0ADMINS", BOB, expires=NOW)
    asked = []

    def members_of(group_id: str) -> set[str]:
        asked.append(group_id)
        return {BOB}

    home = _home(session_factory).read(TEAM, ALICE, member_of=[], members_of=members_of)

    assert [approval.request_id for approval in home.pending] == ["r-admins"]
    assert (home.more_pending, home.groups_unread) == (False, False)
    assert asked == ["S0OPS"]

    home = _home(session_factory).read(TEAM, BOB, member_of=[], members_of=members_of)

    assert [approval.request_id for approval in home.pending] == [
        "r-bob",
        "r-alice",
        "r-group",
    ]
    assert asked == ["S0OPS", "S0OPS"]  # asked once per Home


def test_a_group_that_cannot_be_read_is_said_and_decides_nothing(session_factory):
    _policy(session_factory, "C0GROUP", approvers=["S0OPS"])
    _request(session_factory, "r-group", "C0GROUP", CAROL)

    def members_of(group_id: str) -> set[str]:
        raise GroupUnreadableError(group_id)

    home = _home(session_factory).read(TEAM, BOB, member_of=[], members_of=members_of)

    assert home.pending == []
    assert home.groups_unread is True


def test_more_requests_than_shown_are_said(session_factory):
    _policy(session_factory, "C0BOB", approvers=[BOB])
    for n in range(12):
        _request(session_factory, f"r-{n:02d}", "C0BOB", CAROL)

    home = _home(session_factory).read(TEAM, BOB, member_of=[], members_of=_nobody)

    assert [a.request_id for a in home.pending] == [f"r-{n:02d}" for n in range(10)]
    assert home.more_pending is True


@pytest.fixture
def audit_reads(engine) -> Iterator[list[str]]:
    """Statements reading audit entries (clear it before the part measured)."""
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        if "FROM audit_entries" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield statements
    event.remove(engine, "before_cursor_execute", record)


def test_own_entries_cost_one_read_however_many_channels_allow_the_audit(
    session_factory, audit_reads
):
    for n in range(3 * CHANNELS_PER_STATEMENT):
        _policy(session_factory, f"C{n:04d}")
        _entry(session_factory, n, f"C{n:04d}", CAROL)
    audit_reads.clear()

    home = _home(session_factory).read(TEAM, BOB, member_of=[], members_of=_nobody)

    assert home.mine == []
    assert home.activity == []
    assert len(audit_reads) == 1


def test_own_entries_skip_channels_that_hide_the_audit_log_batch_by_batch(
    session_factory, audit_reads, monkeypatch
):
    monkeypatch.setattr(home_module, "MINE_BATCH", 4)
    _policy(session_factory, "C0ALLOW")
    _policy(session_factory, "C0DENY", {**OPEN, "audit": "deny"})
    for minute in range(12):
        _entry(session_factory, minute, "C0ALLOW", BOB)
    for minute in range(12, 18):
        _entry(session_factory, minute, "C0DENY", BOB)
    _entry(session_factory, 30, "C0ALLOW", CAROL)
    _entry(session_factory, 31, "C0ALLOW", BOB, team="T0OTHER")
    audit_reads.clear()

    home = _home(session_factory).read(TEAM, BOB, member_of=None, members_of=_nobody)

    # Newest first: the six hidden ones are passed over, then ten are kept.
    assert [entry.request_id for entry in home.mine] == [
        f"r-C0ALLOW-{minute}" for minute in range(11, 1, -1)
    ]
    # Four entries a read: 6 hidden + 10 shown span four reads.
    assert len(audit_reads) == 4


def test_own_entries_stop_after_a_bounded_scan(
    session_factory, audit_reads, monkeypatch
):
    monkeypatch.setattr(home_module, "MINE_BATCH", 5)
    monkeypatch.setattr(home_module, "MINE_SCANNED", 15)
    _policy(session_factory, "C0ALLOW")
    _policy(session_factory, "C0DENY", {**OPEN, "audit": "deny"})
    _entry(session_factory, 0, "C0ALLOW", BOB)
    for minute in range(1, 21):
        _entry(session_factory, minute, "C0DENY", BOB)
    audit_reads.clear()

    home = _home(session_factory).read(TEAM, BOB, member_of=None, members_of=_nobody)

    assert home.mine == []
    assert len(audit_reads) == 3
