"""A create reaches the provider once, however many requests race for one name."""

from __future__ import annotations

import threading

import pytest

from vpsbot.catalog import Catalog
from vpsbot.errors import ActionStateError, UserError
from vpsbot.ops import CreateRequest, FieldErrors
from vpsbot.ops.context import Actor
from vpsbot.ops.guard import Guard
from vpsbot.ops.provisioning import CreateOperations
from vpsbot.store import PolicyRepository, session_scope
from vpsbot.vps import VpsClient
from vpsbot.vps.sandbox import Sandbox, SandboxServer

TEAM, CHANNEL = "T1", "C1"
REQUEST = CreateRequest(name="web-09", plan="1", os="5", location="us-west")


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(token="tok", transition_delay=60.0)


@pytest.fixture
def creates(session_factory, sandbox):
    with session_scope(session_factory) as session:
        PolicyRepository(session).set_rules(
            team_id=TEAM,
            channel_id=CHANNEL,
            rules={"read": "allow", "create": "allow"},
            updated_by="U0ADMIN",
        )
    with (
        SandboxServer(sandbox) as server,
        VpsClient(server.url, "tok", backoff_factor=0) as vps,
    ):
        yield CreateOperations(
            guard=Guard(session_factory, admins=("U0ADMIN",)),
            vps=vps,
            catalog=Catalog.load(),
        )


def _actor(number: int) -> Actor:
    return Actor(TEAM, CHANNEL, f"U{number:04d}", f"r-{number:04d}")


def test_twenty_racing_creates_of_one_name_post_once(creates, sandbox):
    sandbox.latency = 0.05
    sandbox.reset_calls()
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def create(number: int) -> None:
        barrier.wait()
        try:
            creates.create(_actor(number), REQUEST)
            outcomes.append("created")
        except (ActionStateError, FieldErrors) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("created") == 1
    assert len(outcomes) == 20
    assert [m for m, _ in sandbox.calls if m == "POST"] == ["POST"]
    assert [s["name"] for s in sandbox.list_servers()].count("web-09") == 1


def test_one_submission_delivered_twice_creates_once(creates, sandbox):
    creates.create(_actor(1), REQUEST, submission="V1:h1")

    with pytest.raises(ActionStateError, match="already submitted"):
        creates.create(_actor(1), REQUEST, submission="V1:h1")

    assert [m for m, _ in sandbox.calls if m == "POST"] == ["POST"]


def test_a_name_in_use_is_refused_without_case(creates, sandbox):
    with pytest.raises(FieldErrors) as caught:
        creates.create(_actor(1), CreateRequest("DB-01", "1", "5", "us-west"))

    assert caught.value.problems == {
        "name": "DB-01 is already the name of server 12347"
    }
    assert [m for m, _ in sandbox.calls if m == "POST"] == []


def test_a_dropped_connection_after_sending_is_unknown_not_resent(creates, sandbox):
    sandbox.fail_next(0, method="POST")

    with pytest.raises(UserError, match="whether it exists is unknown"):
        creates.create(_actor(1), REQUEST)

    assert [m for m, _ in sandbox.calls if m == "POST"] == ["POST"]


def test_a_5xx_after_sending_is_unknown_too(creates, sandbox):
    sandbox.fail_next(500, method="POST")

    with pytest.raises(UserError, match="whether it exists is unknown"):
        creates.create(_actor(1), REQUEST)

    assert [m for m, _ in sandbox.calls if m == "POST"] == ["POST"]


def test_a_name_being_created_elsewhere_is_a_problem_on_the_name(
    creates, session_factory
):
    from datetime import UTC, datetime

    from vpsbot.store import ClaimRepository

    with session_scope(session_factory) as session:
        ClaimRepository(session).try_claim(
            key=f"server-name:{TEAM}:web-09",
            request_id="r-other",
            ttl_seconds=60,
            now=datetime.now(UTC),
        )

    with pytest.raises(FieldErrors) as caught:
        creates.create(_actor(1), REQUEST)

    assert caught.value.problems == {
        "name": "another create or rename to web-09 is under way"
    }
