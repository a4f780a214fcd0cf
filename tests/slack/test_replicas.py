"""Several ``vpsbot serve`` processes on one PostgreSQL, driven at once.

Three real servers (the first with two workers of its own) share one
database, one provider sandbox (a thread of this test process) and one
stand-in for Slack. The same click or submission is sent to all three at the
same moment, as a retried or duplicated delivery would be; each guarantee
must hold across processes, not only threads.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests
from sqlalchemy import select

from tests.serve_process import ServeProcess
from tests.slack.conftest import (
    ALICE,
    ALL_ALLOWED,
    BOB,
    CHANNEL,
    TEAM,
    buttons,
    set_policy,
)
from vpsbot import payloads
from vpsbot.localslack import LocalSlack
from vpsbot.slack.ids import APPROVE_BUTTON, DELETE_NAME_ACTION, DELETE_NAME_BLOCK
from vpsbot.store import (
    PolicyRepository,
    make_engine,
    make_session_factory,
    session_scope,
)
from vpsbot.store.models import AuditEntry
from vpsbot.vps.sandbox import Sandbox, SandboxServer

pytestmark = pytest.mark.postgres

SECRET = "replica-signing-secret"
REPLICAS = 3


@pytest.fixture(scope="module")
def shared(postgres_database, tmp_path_factory):
    """Three serve processes, their database, sandbox and fake Slack."""
    postgres_database.reset()
    sandbox = Sandbox(token="sandbox-token", transition_delay=2.0)
    sandbox_server = SandboxServer(sandbox)
    sandbox_server.start()
    local_slack = LocalSlack(team_id=TEAM).start()
    logs = tmp_path_factory.mktemp("replicas")
    env = {
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": "xoxb-replicas",
        "SLACK_API_URL": local_slack.api_url,
        "VPS_API_URL": sandbox_server.url,
        "VPS_API_TOKEN": "sandbox-token",
        "DATABASE_URL": postgres_database.url,
        "VPSBOT_ADMINS": ALICE,
    }
    # The first replica forks two workers of its own.
    replicas = [
        ServeProcess(
            env,
            logs / f"serve-{number}.log",
            *(("--workers", "2") if not number else ()),
        ).start()
        for number in range(REPLICAS)
    ]
    engine = make_engine(postgres_database.url)
    try:
        for replica in replicas:
            replica.wait_ready()
        yield Shared(replicas, sandbox, local_slack, make_session_factory(engine))
    finally:
        codes = [replica.stop() for replica in replicas]
        engine.dispose()
        local_slack.stop()
        sandbox_server.stop()
    assert codes == [0] * REPLICAS


class Shared:
    def __init__(self, replicas, sandbox, local_slack, sessions) -> None:
        self.replicas = replicas
        self.sandbox = sandbox
        self.slack = local_slack
        self.sessions = sessions

    def send(self, replica: ServeProcess, body: str) -> requests.Response:
        return requests.post(
            replica.url + "/slack/events",
            data=body.encode(),
            headers=payloads.signed_headers(SECRET, body),
            timeout=30,
        )

    def send_to_all_at_once(self, body: str) -> list[int]:
        """The same signed request to every replica, released together."""
        barrier = threading.Barrier(len(self.replicas))
        statuses: list[int] = [0] * len(self.replicas)

        def send(index: int, replica: ServeProcess) -> None:
            barrier.wait()
            statuses[index] = self.send(replica, body).status_code

        threads = [
            threading.Thread(target=send, args=(index, replica))
            for index, replica in enumerate(self.replicas)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return statuses

    def command(self, replica: ServeProcess, text: str, user: str = ALICE) -> None:
        body = payloads.slash_command(
            text,
            team_id=TEAM,
            channel_id=CHANNEL,
            user_id=user,
            response_url=self.slack.response_url("command"),
        )
        assert self.send(replica, body).status_code == 200

    def audit(self, action: str) -> list[tuple[str, str]]:
        with session_scope(self.sessions) as session:
            rows = session.execute(
                select(AuditEntry.user, AuditEntry.outcome)
                .where(AuditEntry.action == action)
                .order_by(AuditEntry.seq)
            )
            return [tuple(row) for row in rows]

    def calls(self, method: str, suffix: str) -> list[str]:
        return [
            path
            for called, path in self.sandbox.calls
            if called == method and path.endswith(suffix)
        ]


def _until(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _settle() -> None:
    """Time for a late duplicate to show itself, if there were one."""
    time.sleep(3.0)


def test_one_approve_click_sent_to_every_replica_runs_the_action_once(shared):
    set_policy(shared.sessions, {**ALL_ALLOWED, "power": "approve"})
    with session_scope(shared.sessions) as session:
        PolicyRepository(session).set_approvers(
            team_id=TEAM, channel_id=CHANNEL, approvers=[BOB], updated_by=ALICE
        )
    shared.command(shared.replicas[0], "reboot web-01")
    _until(lambda: shared.audit("reboot") == [(ALICE, "requested")])
    [request] = [
        call
        for call in shared.slack.api_calls("chat.postMessage")
        if [label for label, _, _ in buttons(call.body)] == ["Approve", "Deny"]
    ]
    [(_, action_id, public_id), _] = buttons(request.body)
    assert action_id == APPROVE_BUTTON
    shared.sandbox.reset_calls()
    click = payloads.block_action(
        {"action_id": APPROVE_BUTTON, "value": public_id},
        team_id=TEAM,
        channel_id=CHANNEL,
        user_id=BOB,
        response_url=shared.slack.response_url("approve"),
    )

    statuses = shared.send_to_all_at_once(click)

    assert statuses == [200] * REPLICAS
    _until(lambda: (ALICE, "succeeded") in shared.audit("reboot"))
    _settle()
    assert shared.calls("POST", "/reboot/") == ["/api/v1/servers/12345/reboot/"]
    assert shared.audit("reboot") == [
        (ALICE, "requested"),
        (BOB, "approved"),
        (ALICE, "succeeded"),
    ]
    answers = [call.body.get("text", "") for call in shared.slack.responses("approve")]
    assert len(answers) == REPLICAS
    assert len([text for text in answers if text.startswith("You approved")]) == 1
    for replica in shared.replicas:
        assert f"user={BOB} action={APPROVE_BUTTON}" in replica.output()


def test_one_delete_submission_sent_to_every_replica_deletes_once(shared):
    set_policy(shared.sessions, ALL_ALLOWED)
    shared.slack.clear()
    shared.command(shared.replicas[1], "delete web-02")
    _until(lambda: shared.slack.api_calls("views.update"))
    [filled] = shared.slack.api_calls("views.update")
    view = {**filled.body["view"], "id": filled.body["view_id"]}
    submission = payloads.view_submission(
        view,
        {DELETE_NAME_BLOCK: {DELETE_NAME_ACTION: "web-02"}},
        team_id=TEAM,
        user_id=ALICE,
    )
    shared.sandbox.reset_calls()

    statuses = shared.send_to_all_at_once(submission)

    assert statuses == [200] * REPLICAS
    _until(lambda: shared.audit("delete") == [(ALICE, "succeeded")])
    _settle()
    assert shared.calls("DELETE", "/") == ["/api/v1/servers/12346/"]
    assert shared.audit("delete") == [(ALICE, "succeeded")]
    assert all(server["name"] != "web-02" for server in shared.sandbox.list_servers())


def test_a_reboot_followed_by_every_replica_ends_in_one_final_update(shared):
    set_policy(shared.sessions, ALL_ALLOWED)
    shared.slack.clear()

    shared.command(shared.replicas[2], "reboot db-01")

    def finals() -> list[str]:
        return [
            call.body["text"]
            for call in shared.slack.api_calls("chat.update")
            if "db-01 is `active` after" in call.body.get("text", "")
        ]

    _until(finals)
    _settle()
    assert len(finals()) == 1
    assert len(shared.calls("POST", "/reboot/")) == 1
