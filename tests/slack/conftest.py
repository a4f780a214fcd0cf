"""End-to-end fixtures: the real app over HTTP, a fake Slack, the sandbox.

``bot`` serves the same WSGI app as ``vpsbot serve`` on 127.0.0.1, with its
Web API client pointed at ``LocalSlack`` and its provider client at the
sandbox. ``slack`` posts signed requests shaped like Slack's to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from slack_sdk import WebClient

from vpsbot import payloads
from vpsbot.app import VpsBot, create_app
from vpsbot.config import Secret, Settings
from vpsbot.localslack import LocalSlack
from vpsbot.store import PolicyRepository, session_scope
from vpsbot.vps import VpsClient
from vpsbot.vps.sandbox import Sandbox, SandboxServer
from vpsbot.web import BackgroundServer, SlackWsgiApp

SECRET = "test-signing-secret"
TEAM = "T0TEST"
CHANNEL = "C0OPS"
ALICE = "U0ALICE"  # an admin
BOB = "U0BOB"
ALL_ALLOWED = {
    "read": "allow",
    "power": "allow",
    "create": "allow",
    "modify": "allow",
    "delete": "allow",
    "audit": "allow",
}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    yield Sandbox(token="sandbox-token", transition_delay=60.0)


@pytest.fixture
def sandbox_server(sandbox: Sandbox) -> Iterator[SandboxServer]:
    server = SandboxServer(sandbox)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def local_slack() -> Iterator[LocalSlack]:
    with LocalSlack(team_id=TEAM) as fake:
        yield fake


@pytest.fixture
def bot(session_factory, sandbox_server: SandboxServer, local_slack: LocalSlack):
    settings = Settings(
        slack_signing_secret=Secret(SECRET),
        slack_api_url=local_slack.api_url,
        admins=(ALICE,),
        worker_threads=8,
    )
    app = create_app(
        settings,
        vps=VpsClient(sandbox_server.url, "sandbox-token", backoff_factor=0),
        sessions=session_factory,
        slack_client=WebClient(token="xoxb-test", base_url=local_slack.api_url),
    )
    yield app
    app.close()


@pytest.fixture
def served(bot: VpsBot, engine) -> Iterator[BackgroundServer]:
    with BackgroundServer(
        SlackWsgiApp(bot.bolt, engine, signing_secret=SECRET), threads=8
    ) as server:
        yield server


def set_policy(session_factory, rules: dict[str, str], channel: str = CHANNEL) -> None:
    with session_scope(session_factory) as session:
        PolicyRepository(session).set_rules(
            team_id=TEAM, channel_id=channel, rules=rules, updated_by=ALICE
        )


class SlackSimulator:
    """Posts signed Slack-shaped requests to the served app and waits for work."""

    def __init__(
        self, served: BackgroundServer, bot: VpsBot, local_slack: LocalSlack
    ) -> None:
        self.url = served.url + "/slack/events"
        self.bot = bot
        self.local = local_slack
        self.http = requests.Session()
        self._responses = 0

    def response_url(self) -> tuple[str, str]:
        self._responses += 1
        name = f"resp{self._responses}"
        return name, self.local.response_url(name)

    def post(
        self, body: str, *, headers: dict[str, str] | None = None, wait: bool = True
    ) -> requests.Response:
        response = self.http.post(
            self.url,
            data=body.encode(),
            headers=headers or payloads.signed_headers(SECRET, body),
            timeout=10,
        )
        if wait:
            assert self.bot.background.wait_idle(timeout=30)
        return response

    def command(
        self, text: str, *, user: str = ALICE, channel: str = CHANNEL, wait: bool = True
    ) -> tuple[requests.Response, str]:
        name, url = self.response_url()
        body = payloads.slash_command(
            text, team_id=TEAM, channel_id=channel, user_id=user, response_url=url
        )
        return self.post(body, wait=wait), name

    def press(
        self,
        action_id: str,
        value: str,
        *,
        user: str = ALICE,
        channel: str = CHANNEL,
        wait: bool = True,
    ) -> tuple[requests.Response, str]:
        name, url = self.response_url()
        body = payloads.block_action(
            {"action_id": action_id, "value": value},
            team_id=TEAM,
            channel_id=channel,
            user_id=user,
            response_url=url,
        )
        return self.post(body, wait=wait), name

    def submit(
        self,
        view: dict[str, Any],
        values: dict[str, dict[str, Any]],
        *,
        user: str = ALICE,
        wait: bool = True,
    ) -> requests.Response:
        body = payloads.view_submission(view, values, team_id=TEAM, user_id=user)
        return self.post(body, wait=wait)

    def answers(self, name: str) -> list[dict[str, Any]]:
        """What the app posted to one response_url, in order."""
        return [call.body for call in self.local.responses(name)]

    def answer_text(self, name: str) -> str:
        return "\n".join(_all_text(body) for body in self.answers(name))


def _all_text(body: dict[str, Any]) -> str:
    parts = [str(body.get("text", ""))]
    for block in body.get("blocks") or []:
        parts.append(block_text(block))
    return "\n".join(part for part in parts if part)


def block_text(block: dict[str, Any]) -> str:
    parts = []
    if isinstance(block.get("text"), dict):
        parts.append(block["text"].get("text", ""))
    for field in block.get("fields") or []:
        parts.append(field.get("text", ""))
    for element in block.get("elements") or []:
        if isinstance(element, dict):
            text = element.get("text")
            parts.append(
                text.get("text", "") if isinstance(text, dict) else str(text or "")
            )
    return "\n".join(parts)


def buttons(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, action_id, value) of every button in a message."""
    found = []
    for block in body.get("blocks") or []:
        elements = list(block.get("elements") or [])
        if block.get("accessory"):
            elements.append(block["accessory"])
        for element in elements:
            if element.get("type") == "button":
                found.append(
                    (element["text"]["text"], element["action_id"], element["value"])
                )
    return found


@pytest.fixture
def slack(
    served: BackgroundServer, bot: VpsBot, local_slack: LocalSlack
) -> SlackSimulator:
    return SlackSimulator(served, bot, local_slack)
