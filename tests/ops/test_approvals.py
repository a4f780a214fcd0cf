"""Approval requests in the core, on SQLite and PostgreSQL: asked, decided
once, run as the requester asked, or closed; every step audited under the
request's id.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest

from tests.ops.test_follow_leases import REPO_ROOT, _start_together
from vpsbot import audit
from vpsbot.catalog import Catalog
from vpsbot.errors import ActionStateError, PermissionDeniedError, ServerLookupError
from vpsbot.ops import (
    Actor,
    ApprovalExpiry,
    ApprovalOperations,
    ApprovalRequiredError,
    CreateRequest,
    Edit,
    Guard,
    PendingAction,
)
from vpsbot.ops.provisioning import CreateOperations
from vpsbot.ops.servers import ServerOperations
from vpsbot.store import PolicyRepository, session_scope

TEAM = "T0TEST"
CHANNEL = "C0OPS"
ALICE = "U0ALICE"  # an admin
BOB = "U0BOB"
CAROL = "U0CAROL"
WEB01 = 12345
STAGING = 12348
RULES = {
    "read": "allow",
    "power": "approve",
    "create": "approve",
    "modify": "approve",
    "delete": "approve",
    "audit": "allow",
}


class Parts:
    """The use cases an approval test works with, on one fake clock."""

    def __init__(self, session_factory, vps, clock) -> None:
        self.sessions = session_factory
        self.guard = Guard(session_factory, admins=(ALICE,))
        self.servers = ServerOperations(guard=self.guard, vps=vps)
        self.create = CreateOperations(
            guard=self.guard, vps=vps, catalog=Catalog.load()
        )
        self.approvals = ApprovalOperations(
            guard=self.guard,
            sessions=session_factory,
            servers=self.servers,
            create=self.create,
            ttl_seconds=3600,
            clock=clock.utc,
        )

    def policy(self, rules=None, approvers=None) -> None:
        with session_scope(self.sessions) as session:
            repository = PolicyRepository(session)
            repository.set_rules(
                team_id=TEAM,
                channel_id=CHANNEL,
                rules=rules or RULES,
                updated_by=ALICE,
            )
            if approvers is not None:
                repository.set_approvers(
                    team_id=TEAM,
                    channel_id=CHANNEL,
                    approvers=approvers,
                    updated_by=ALICE,
                )

    def ask(self, user=ALICE, action=None, request_id="r-ask-1"):
        actor = Actor(TEAM, CHANNEL, user, request_id)
        return self.approvals.request(
            actor,
            action or PendingAction("reboot", "web-01", {}, "kernel update"),
            response_url="http://127.0.0.1:9/response/r1",
        )

    def decide(self, user, request_id="r-ask-1", approve=True, groups=None):
        return self.approvals.decide(
            Actor(TEAM, CHANNEL, user, "r-click"),
            request_id,
            approve=approve,
            members_of=lambda group: (groups or {}).get(group, set()),
        )


def nobody(group: str) -> set[str]:
    return set()


@pytest.fixture
def parts(session_factory, vps, clock) -> Parts:
    made = Parts(session_factory, vps, clock)
    made.policy(approvers=[BOB])
    return made


def steps(session_factory, request_id="r-ask-1") -> list[tuple[str, str, str]]:
    out = io.StringIO()
    with session_scope(session_factory) as session:
        audit.export(session, out, fmt="jsonl")
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    return [
        (row["user"], row["action"], row["outcome"])
        for row in rows
        if row["request_id"] == request_id
    ]


def details(session_factory, request_id="r-ask-1") -> list[str]:
    out = io.StringIO()
    with session_scope(session_factory) as session:
        audit.export(session, out, fmt="jsonl")
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    return [row["detail"] for row in rows if row["request_id"] == request_id]


def reboots(sandbox) -> list[str]:
    return [path for method, path in sandbox.calls if path.endswith("/reboot/")]


def test_the_guard_asks_for_approval_without_an_audit_entry(parts, sandbox):
    sandbox.reset_calls()

    with pytest.raises(ApprovalRequiredError) as caught:
        parts.servers.power(Actor(TEAM, CHANNEL, ALICE, "r-direct"), "reboot", "web-01")

    assert caught.value.decision.rule == "approve"
    assert caught.value.decision.action == "power"
    assert sandbox.calls == []
    assert steps(parts.sessions, "r-direct") == []


def test_a_dialog_may_open_under_approve(parts):
    server = parts.servers.resolve_for(
        Actor(TEAM, CHANNEL, ALICE, "r-open"), "delete", "web-02"
    )

    assert server.name == "web-02"
    assert steps(parts.sessions, "r-open") == []


def test_request_is_bound_to_the_server_and_audited(parts):
    approval = parts.ask()

    assert (approval.verb, approval.server_id, approval.server_name) == (
        "reboot",
        WEB01,
        "web-01",
    )
    assert (approval.server_status, approval.status) == ("active", "pending")
    assert (approval.expires_at - approval.created_at).total_seconds() == 3600
    assert approval.request_id == "r-ask-1"
    assert approval.reason == "kernel update"
    assert steps(parts.sessions) == [(ALICE, "reboot", "requested")]
    assert details(parts.sessions) == [
        "approval requested: reboot web-01 (reason: kernel update)"
    ]


def test_approval_by_another_approver_runs_the_action_once(parts, sandbox):
    parts.ask()
    sandbox.reset_calls()

    verdict = parts.decide(BOB)
    again = parts.decide(BOB)

    assert verdict.kind == "executed"
    assert verdict.approval.status == "executed"
    assert verdict.approval.decided_by == BOB
    assert verdict.approval.outcome == "web-01 is rebooting"
    assert verdict.result is not None and verdict.result.verb == "reboot"
    assert (again.kind, again.approval.status) == ("decided", "executed")
    assert reboots(sandbox) == [f"/api/v1/servers/{WEB01}/reboot/"]
    assert steps(parts.sessions) == [
        (ALICE, "reboot", "requested"),
        (BOB, "reboot", "approved"),
        (ALICE, "reboot", "succeeded"),
    ]
    assert details(parts.sessions)[1:] == [
        f"approved {ALICE}'s request",
        "Server is rebooting (reason: kernel update)",
    ]


def test_the_requester_cannot_approve_their_own_request(parts, sandbox):
    parts.ask()
    sandbox.reset_calls()

    verdict = parts.decide(ALICE)

    assert (verdict.kind, verdict.approval.status) == ("self", "pending")
    assert sandbox.calls == []
    assert steps(parts.sessions) == [
        (ALICE, "reboot", "requested"),
        (ALICE, "reboot", "denied"),
    ]
    assert details(parts.sessions)[1] == (
        "self-approval refused: the requester cannot approve their own request"
    )


def test_someone_who_is_not_an_approver_is_refused(parts, sandbox):
    parts.ask()
    sandbox.reset_calls()

    verdict = parts.decide(CAROL)

    assert (verdict.kind, verdict.approval.status) == ("not_approver", "pending")
    assert verdict.approvers == (BOB,)
    assert sandbox.calls == []
    assert steps(parts.sessions)[1] == (CAROL, "reboot", "denied")
    assert details(parts.sessions)[1] == "not an approver here; tried to approve"


def test_a_user_group_approver_is_resolved_when_deciding(parts, sandbox):
    parts.policy(approvers=["S0OPS"])
    parts.ask()
    sandbox.reset_calls()

    refused = parts.decide(BOB, groups={"S0OPS": {CAROL}})
    verdict = parts.decide(CAROL, groups={"S0OPS": {CAROL}})

    assert refused.kind == "not_approver"
    assert verdict.kind == "executed"
    assert reboots(sandbox) == [f"/api/v1/servers/{WEB01}/reboot/"]


def test_a_user_group_that_cannot_be_read_approves_nobody(parts, sandbox):
    parts.policy(approvers=["S0OPS"])
    parts.ask()

    def broken(group: str) -> set[str]:
        raise RuntimeError("usergroups.users.list failed")

    verdict = parts.approvals.decide(
        Actor(TEAM, CHANNEL, CAROL, "r-click"),
        "r-ask-1",
        approve=True,
        members_of=broken,
    )

    assert verdict.kind == "not_approver"
    assert verdict.approval.status == "pending"


def test_without_approvers_the_admins_approve(parts, sandbox):
    parts.policy(approvers=[])
    parts.ask(user=BOB)

    refused = parts.decide(CAROL)
    verdict = parts.decide(ALICE)

    assert refused.kind == "not_approver"
    assert refused.approvers == (ALICE,)
    assert verdict.kind == "executed"
    assert steps(parts.sessions)[-2:] == [
        (ALICE, "reboot", "approved"),
        (BOB, "reboot", "succeeded"),
    ]


def test_deny_runs_nothing(parts, sandbox):
    parts.ask()
    sandbox.reset_calls()

    verdict = parts.decide(BOB, approve=False)
    late = parts.decide(BOB)

    assert (verdict.kind, verdict.approval.status) == ("rejected", "rejected")
    assert verdict.approval.decided_by == BOB
    assert (late.kind, late.approval.status) == ("decided", "rejected")
    assert sandbox.calls == []
    assert steps(parts.sessions) == [
        (ALICE, "reboot", "requested"),
        (BOB, "reboot", "rejected"),
    ]


def test_the_requesters_own_deny_and_cancel_withdraw_the_request(parts, sandbox):
    parts.ask()
    parts.ask(request_id="r-ask-2")
    sandbox.reset_calls()

    denied = parts.decide(ALICE, approve=False)
    stranger = parts.approvals.cancel(Actor(TEAM, CHANNEL, BOB, "r-c"), "r-ask-2")
    cancelled = parts.approvals.cancel(Actor(TEAM, CHANNEL, ALICE, "r-c"), "r-ask-2")

    assert (denied.kind, denied.approval.status) == ("cancelled", "cancelled")
    assert (stranger.kind, stranger.approval.status) == ("not_requester", "pending")
    assert (cancelled.kind, cancelled.approval.status) == ("cancelled", "cancelled")
    assert cancelled.approval.outcome == "Cancelled by the requester"
    assert sandbox.calls == []
    assert steps(parts.sessions) == [
        (ALICE, "reboot", "requested"),
        (ALICE, "reboot", "cancelled"),
    ]
    assert steps(parts.sessions, "r-ask-2") == [
        (ALICE, "reboot", "requested"),
        (BOB, "reboot", "denied"),
        (ALICE, "reboot", "cancelled"),
    ]


def test_an_expired_request_runs_nothing(parts, sandbox, clock):
    parts.ask()
    sandbox.reset_calls()
    clock.advance(3600)

    verdict = parts.decide(BOB)
    again = parts.decide(BOB)

    assert (verdict.kind, verdict.approval.status) == ("expired", "expired")
    assert verdict.approval.outcome == "Expired: nobody decided within 1 hour"
    assert (again.kind, again.approval.status) == ("decided", "expired")
    assert sandbox.calls == []
    assert steps(parts.sessions) == [
        (ALICE, "reboot", "requested"),
        (ALICE, "reboot", "expired"),
    ]


def test_the_expiry_loop_expires_each_overdue_request_once(parts, clock):
    parts.ask()
    parts.ask(request_id="r-ask-2")
    clock.advance(1800)
    parts.ask(request_id="r-ask-3")
    clock.advance(1801)
    shown = []

    class Notifier:
        def expired(self, approval) -> None:
            shown.append(approval.request_id)

    expiry = ApprovalExpiry(parts.approvals, Notifier())
    first = expiry.run_once()
    second = expiry.run_once()

    assert (first, second) == (2, 0)
    assert shown == ["r-ask-1", "r-ask-2"]
    assert parts.approvals.find(TEAM, "r-ask-3").status == "pending"
    assert steps(parts.sessions, "r-ask-2")[-1] == (ALICE, "reboot", "expired")


def test_a_request_for_a_renamed_server_goes_stale(parts, sandbox, vps):
    parts.ask()
    vps.patch(WEB01, name="web-99")
    sandbox.reset_calls()

    verdict = parts.decide(BOB)

    assert (verdict.kind, verdict.approval.status) == ("stale", "stale")
    assert verdict.approval.outcome == (
        "Stale: web-01 was renamed to web-99; nothing was done"
    )
    assert reboots(sandbox) == []
    assert steps(parts.sessions)[-1] == (ALICE, "reboot", "failed")
    assert details(parts.sessions)[-1] == (
        "stale: web-01 was renamed to web-99; nothing done"
    )


def test_a_request_for_a_deleted_server_goes_stale(parts, sandbox, vps):
    parts.ask()
    vps.delete(WEB01)
    sandbox.reset_calls()

    verdict = parts.decide(BOB)

    assert verdict.kind == "stale"
    assert verdict.approval.outcome == (
        "Stale: web-01 no longer exists; nothing was done"
    )
    assert reboots(sandbox) == []


def test_a_request_whose_server_changed_state_goes_stale(parts, sandbox):
    parts.ask()
    sandbox.set_status(WEB01, "stopped")
    sandbox.reset_calls()

    verdict = parts.decide(BOB)

    assert verdict.kind == "stale"
    assert verdict.approval.outcome == (
        "Stale: web-01 is now stopped, not active as when it was asked; nothing "
        "was done"
    )
    assert reboots(sandbox) == []


def test_a_request_that_makes_no_sense_now_is_refused_and_audited(parts):
    with pytest.raises(ActionStateError, match="web-01 is already running"):
        parts.ask(action=PendingAction("start", "web-01"))

    assert steps(parts.sessions) == [(ALICE, "start", "failed")]
    assert parts.approvals.find(TEAM, "r-ask-1") is None


def test_a_request_for_an_unknown_server_is_refused(parts):
    with pytest.raises(ServerLookupError, match="There is no server called web-7"):
        parts.ask(action=PendingAction("reboot", "web-7"))

    assert steps(parts.sessions) == [(ALICE, "reboot", "failed")]


def test_a_policy_switched_to_deny_closes_the_request(parts, sandbox):
    parts.ask()
    parts.policy(rules={**RULES, "power": "deny"})
    sandbox.reset_calls()

    verdict = parts.decide(BOB)

    assert (verdict.kind, verdict.approval.status) == ("closed", "rejected")
    assert verdict.approval.outcome == (
        "Closed: this channel's policy now denies `power`"
    )
    assert sandbox.calls == []
    assert steps(parts.sessions)[-1] == (BOB, "reboot", "denied")
    with pytest.raises(PermissionDeniedError):
        parts.ask(request_id="r-ask-2")


def test_an_approved_create_creates_once_with_the_fields_asked(parts, sandbox):
    asked = CreateRequest(
        name="web-03",
        plan="1",
        os="5",
        location="us-west",
        hostname="web-03.example.com",
        backups=True,
    )
    approval = parts.ask(action=PendingAction.of_create(asked, "new node"))
    sandbox.reset_calls()

    verdict = parts.decide(BOB)
    parts.decide(BOB)

    assert approval.server_id is None
    assert approval.server_name == "web-03"
    assert verdict.kind == "executed"
    posts = [path for method, path in sandbox.calls if method == "POST"]
    assert posts == ["/api/v1/servers/"]
    [created] = [s for s in sandbox.list_servers() if s["name"] == "web-03"]
    assert (created["plan"]["id"], created["os"]["id"], created["location"]) == (
        1,
        5,
        "us-west",
    )
    assert (created["hostname"], created["backups_enabled"]) == (
        "web-03.example.com",
        True,
    )
    assert steps(parts.sessions) == [
        (ALICE, "create", "requested"),
        (BOB, "create", "approved"),
        (ALICE, "create", "succeeded"),
    ]


def test_an_approved_edit_sends_the_values_asked(parts, sandbox, vps):
    server = vps.get_by_id(12346)
    shown = Edit.of(server)
    wanted = Edit("web-2b", shown.hostname, False)
    parts.ask(
        action=PendingAction.of_update(
            12346, wanted, opened=shown, opened_at=server.updated_at, reason=None
        )
    )
    sandbox.reset_calls()

    verdict = parts.decide(BOB)

    assert verdict.kind == "executed"
    assert verdict.approval.outcome == "name web-02 → web-2b; backups on → off"
    assert [m for m, _ in sandbox.calls if m == "PUT"] == ["PUT"]
    assert sandbox.get(12346)["name"] == "web-2b"


def test_an_approved_delete_deletes_the_named_server(parts, sandbox):
    parts.ask(action=PendingAction("delete", "12348", {"expected_name": "staging-01"}))
    sandbox.reset_calls()

    verdict = parts.decide(BOB)

    assert verdict.kind == "executed"
    assert [path for method, path in sandbox.calls if method == "DELETE"] == [
        f"/api/v1/servers/{STAGING}/"
    ]
    assert sandbox.get(STAGING) is None
    assert steps(parts.sessions) == [
        (ALICE, "delete", "requested"),
        (BOB, "delete", "approved"),
        (ALICE, "delete", "succeeded"),
    ]


def test_an_action_that_fails_at_the_provider_is_recorded_as_failed(parts, sandbox):
    parts.ask()
    sandbox.fail_next(500, method="POST")

    verdict = parts.decide(BOB)

    assert (verdict.kind, verdict.approval.status) == ("failed", "failed")
    assert verdict.approval.outcome.startswith("Failed: ")
    assert steps(parts.sessions)[-1] == (ALICE, "reboot", "failed")


def test_pending_lists_this_channels_open_requests(parts, clock):
    parts.ask()
    parts.ask(request_id="r-ask-2")
    parts.decide(BOB, "r-ask-2", approve=False)

    listed = parts.approvals.pending(Actor(TEAM, CHANNEL, CAROL, "r-list"))

    assert [approval.request_id for approval in listed] == ["r-ask-1"]
    assert steps(parts.sessions, "r-list") == [(CAROL, "list", "succeeded")]
    assert details(parts.sessions, "r-list") == ["1 pending approval request"]


def test_a_request_of_another_workspace_is_not_found(parts):
    parts.ask()

    with pytest.raises(ServerLookupError, match="no such approval request"):
        parts.approvals.decide(
            Actor("T0OTHER", CHANNEL, BOB, "r-x"),
            "r-ask-1",
            approve=True,
            members_of=nobody,
        )


# Many clicks at once, on real PostgreSQL


@pytest.mark.postgres
def test_fifty_threads_approving_at_once_run_the_action_once(parts, sandbox):
    parts.policy(approvers=[BOB, CAROL])
    parts.ask()
    sandbox.reset_calls()
    barrier = threading.Barrier(50)
    kinds: list[str] = []
    lock = threading.Lock()

    def click(number: int) -> None:
        barrier.wait()
        verdict = parts.decide(BOB if number % 2 else CAROL)
        with lock:
            kinds.append(verdict.kind)

    threads = [threading.Thread(target=click, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(set(kinds)) == ["decided", "executed"]
    assert kinds.count("executed") == 1
    assert reboots(sandbox) == [f"/api/v1/servers/{WEB01}/reboot/"]
    outcomes = [outcome for _, _, outcome in steps(parts.sessions)]
    assert outcomes == ["requested", "approved", "succeeded"]


@pytest.mark.postgres
def test_four_processes_approving_at_once_run_the_action_once(
    database_url, session_factory, sandbox, sandbox_server, vps, tmp_path
):
    parts = Parts(session_factory, vps, _WallClock())
    parts.policy(approvers=[BOB, CAROL])
    parts.ask()
    sandbox.reset_calls()
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.ops.approval_worker",
                database_url,
                sandbox_server.url,
                "r-ask-1",
                str(tmp_path / f"worker-{n}.jsonl"),
                f"worker-{n}",
                "3",
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for n in range(4)
    ]
    _start_together(tmp_path, workers)
    outputs = [worker.communicate(timeout=90)[0] for worker in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output.decode()

    kinds = [
        json.loads(line)["kind"]
        for path in tmp_path.glob("worker-*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert len(kinds) == 12
    assert kinds.count("executed") == 1
    assert kinds.count("decided") == 11
    assert reboots(sandbox) == [f"/api/v1/servers/{WEB01}/reboot/"]
    outcomes = [outcome for _, _, outcome in steps(parts.sessions)]
    assert outcomes == ["requested", "approved", "succeeded"]
    assert parts.approvals.find(TEAM, "r-ask-1").status == "executed"


class _WallClock:
    def utc(self):
        return datetime.now(UTC)


def test_withdrawing_a_request_someone_decided_meanwhile_changes_nothing(parts):
    approval = parts.ask()
    parts.decide(BOB)

    withdrawn = parts.approvals.withdraw(approval, "the request message failed")

    assert withdrawn is False
    assert parts.approvals.find(TEAM, "r-ask-1").status == "executed"
    assert [outcome for _, _, outcome in steps(parts.sessions)] == [
        "requested",
        "approved",
        "succeeded",
    ]


def test_withdrawing_an_unseen_request_closes_it_once(parts, sandbox):
    approval = parts.ask()
    sandbox.reset_calls()

    first = parts.approvals.withdraw(approval, "the request message failed")
    second = parts.approvals.withdraw(approval, "the request message failed")
    verdict = parts.decide(BOB)

    assert (first, second) == (True, False)
    assert verdict.kind == "decided"
    assert sandbox.calls == []
    assert steps(parts.sessions) == [
        (ALICE, "reboot", "requested"),
        (ALICE, "reboot", "cancelled"),
    ]
