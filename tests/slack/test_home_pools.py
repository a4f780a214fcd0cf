"""Slow reads against a Slack that answers late: Homes and audit exports wait
on a pool of their own, so commands still answer, and one person's Homes are
sent in the order they were read."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.slack.conftest import (
    ALICE,
    ALL_ALLOWED,
    BOB,
    CHANNEL,
    SECRET,
    TEAM,
    block_text,
    buttons,
    set_policy,
)
from vpsbot import payloads
from vpsbot.localslack import LocalSlack
from vpsbot.slack.ids import APPROVE_BUTTON, AUDIT_EXPORT_BUTTON, HOME_APPROVE_BUTTON
from vpsbot.store import PolicyRepository, session_scope
from vpsbot.store.models import ApprovalRequest


class HeldSlack(LocalSlack):
    """LocalSlack that answers chosen methods only once their gate opens, and
    notes the order in which it handled (answered) calls."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._held_lock = threading.Lock()
        self._held: dict[str, tuple[threading.Event, int | None]] = {}
        self.waiting: list[str] = []
        self.handled: list[tuple[str, dict[str, Any]]] = []

    def hold(self, method: str, *, calls: int | None = None) -> threading.Event:
        """Hold ``method`` (only its next ``calls`` calls, when given)."""
        gate = threading.Event()
        with self._held_lock:
            self._held[method] = (gate, calls)
        return gate

    def release_all(self) -> None:
        with self._held_lock:
            gates = [gate for gate, _ in self._held.values()]
            self._held.clear()
        for gate in gates:
            gate.set()

    def answer(
        self, method: str, body: dict[str, Any], token: str | None = None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        gate = None
        with self._held_lock:
            held = self._held.get(method)
            if held is not None:
                gate, calls = held
                if calls is not None:
                    if calls <= 1:
                        del self._held[method]
                    else:
                        self._held[method] = (gate, calls - 1)
                self.waiting.append(method)
        if gate is not None:
            gate.wait(timeout=60)
        with self._held_lock:
            self.handled.append((method, body))
        return super().answer(method, body, token)


@pytest.fixture
def local_slack() -> Iterator[HeldSlack]:
    fake = HeldSlack(team_id=TEAM)
    with fake:
        yield fake
        fake.release_all()


def _until(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _open_home(slack, user: str) -> None:
    body = payloads.app_home_opened(team_id=TEAM, user_id=user)
    headers = payloads.signed_headers(SECRET, body, content_type="application/json")
    slack.post(body, headers=headers, wait=False)


def _all_handed_over(held: HeldSlack) -> None:
    """Wait until slow reads are held, then a moment for the rest of the
    listeners to hand theirs over (they only parse and submit)."""
    assert _until(lambda: len(held.waiting) >= 2)
    time.sleep(0.5)


def _answered(local_slack, name: str) -> bool:
    return _until(lambda: bool(local_slack.responses(name)))


def test_homes_waiting_on_slack_do_not_hold_up_commands(
    slack, local_slack, session_factory
):
    held = local_slack
    set_policy(session_factory, ALL_ALLOWED)
    viewers = [f"U0VIEW{n:02d}" for n in range(10)]
    gate = held.hold("users.conversations")
    for viewer in viewers:
        _open_home(slack, viewer)
    _all_handed_over(held)

    _, name = slack.command("list", wait=False)

    answered = _answered(local_slack, name)
    published_before = local_slack.api_calls("views.publish")
    gate.set()
    assert answered
    assert "web-01" in slack.answer_text(name)
    assert published_before == []
    assert slack.bot.background.wait_idle(timeout=60)
    published = local_slack.api_calls("views.publish")
    assert sorted(call.body["user_id"] for call in published) == viewers


def test_exports_waiting_on_slack_do_not_hold_up_commands(
    slack, local_slack, session_factory
):
    held = local_slack
    set_policy(session_factory, ALL_ALLOWED)
    slack.command("reboot web-01")
    _, audited = slack.command("audit")
    [value] = [
        value
        for _, action_id, value in buttons(slack.answers(audited)[0])
        if action_id == AUDIT_EXPORT_BUTTON
    ]
    gate = held.hold("files.getUploadURLExternal")
    for _ in range(5):
        slack.command("audit export", wait=False)
        slack.press(AUDIT_EXPORT_BUTTON, value, user=BOB, wait=False)
    _all_handed_over(held)

    _, name = slack.command("list", wait=False)

    answered = _answered(local_slack, name)
    uploaded_before = local_slack.completed_uploads()
    gate.set()
    assert answered
    assert "web-01" in slack.answer_text(name)
    assert uploaded_before == []
    assert slack.bot.background.wait_idle(timeout=60)
    assert len(local_slack.completed_uploads()) == 10


def test_an_export_does_not_wait_behind_homes(slack, local_slack, session_factory):
    held = local_slack
    set_policy(session_factory, ALL_ALLOWED)
    slack.command("reboot web-01")
    gate = held.hold("users.conversations")
    for number in range(10):
        _open_home(slack, f"U0VIEW{number:02d}")
    _all_handed_over(held)

    slack.command("audit export", wait=False)

    uploaded = _until(lambda: len(local_slack.completed_uploads()) == 1)
    published_before = len(local_slack.api_calls("views.publish"))
    gate.set()
    assert uploaded
    assert published_before == 0
    assert slack.bot.background.wait_idle(timeout=60)
    assert len(local_slack.api_calls("views.publish")) == 10


def test_a_slow_home_is_not_sent_over_the_newer_one_a_click_drew(
    slack, local_slack, session_factory
):
    held = local_slack
    set_policy(session_factory, {**ALL_ALLOWED, "modify": "approve"})
    with session_scope(session_factory) as session:
        PolicyRepository(session).set_approvers(
            team_id=TEAM, channel_id=CHANNEL, approvers=[BOB], updated_by=ALICE
        )
    local_slack.memberships[BOB] = [CHANNEL]
    slack.command("rename web-01 web-09", user=ALICE)
    [public_id] = [
        value
        for call in local_slack.api_calls("chat.postMessage")
        for _, action_id, value in buttons(call.body)
        if action_id == APPROVE_BUTTON
    ]
    first_publish = held.hold("views.publish", calls=1)
    _open_home(slack, BOB)
    # The open has read the Home (the request still pending) and is sending it.
    assert _until(lambda: "views.publish" in held.waiting)

    body = payloads.home_block_action(
        {"action_id": HOME_APPROVE_BUTTON, "value": public_id},
        team_id=TEAM,
        user_id=BOB,
    )
    slack.post(body, wait=False)
    assert _until(
        lambda: (
            _status(session_factory) == "executed"
            and slack.bot.background.work.wait_idle(timeout=0.1)
        )
    )
    first_publish.set()
    assert slack.bot.background.wait_idle(timeout=60)

    # In the order Slack handled them: the open's first, though held.
    opened, clicked = [
        body["view"]
        for method, body in local_slack.handled
        if method == "views.publish" and body["user_id"] == BOB
    ]
    assert [label for label, _, _ in buttons(opened)] == ["Approve", "Deny"]
    # The Home drawn after the click is the one left showing.
    assert buttons(clicked) == []
    assert block_text(clicked["blocks"][1]).startswith(
        f"You approved <@{ALICE}>'s request to *rename web-01 to web-09*"
    )


def _status(session_factory) -> str:
    with session_scope(session_factory) as session:
        [row] = session.query(ApprovalRequest).all()
        return row.status
