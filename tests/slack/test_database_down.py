"""The database is unreachable: one sentence, and no provider change."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from slack_sdk import WebClient

from tests.slack.conftest import ALICE, BOB, SECRET, TEAM, SlackSimulator, block_text
from vpsbot import payloads
from vpsbot.app import create_app
from vpsbot.config import Secret, Settings
from vpsbot.store import make_engine, make_session_factory
from vpsbot.vps import VpsClient
from vpsbot.web import BackgroundServer, SlackWsgiApp

DOWN_SENTENCE = (
    "vpsbot cannot reach its database right now, so nothing was done. "
    "Please try again in a minute."
)


@pytest.fixture
def slack_without_database(
    tmp_path, sandbox_server, local_slack
) -> Iterator[SlackSimulator]:
    # A SQLite file in a directory that does not exist cannot be opened.
    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'vpsbot.db'}")
    bot = create_app(
        Settings(
            slack_signing_secret=Secret(SECRET),
            slack_api_url=local_slack.api_url,
            admins=(ALICE,),
            worker_threads=4,
        ),
        vps=VpsClient(sandbox_server.url, "sandbox-token", backoff_factor=0),
        sessions=make_session_factory(engine),
        slack_client=WebClient(token="xoxb-test", base_url=local_slack.api_url),
    )
    with BackgroundServer(
        SlackWsgiApp(bot.bolt, engine, signing_secret=SECRET)
    ) as served:
        yield SlackSimulator(served, bot, local_slack)
    bot.close()


@pytest.mark.parametrize("text", ["list", "reboot web-01", "policy read=allow"])
def test_every_command_says_the_database_is_down_and_changes_nothing(
    slack_without_database, sandbox, text
):
    sandbox.reset_calls()

    response, name = slack_without_database.command(text)

    assert response.status_code == 200
    assert slack_without_database.answer_text(name) == DOWN_SENTENCE
    assert sandbox.calls == []


def test_a_button_says_the_database_is_down_and_changes_nothing(
    slack_without_database, sandbox
):
    sandbox.reset_calls()

    _, name = slack_without_database.press("vps_reboot", "12345")

    assert slack_without_database.answer_text(name) == DOWN_SENTENCE
    assert sandbox.calls == []


def test_readiness_reports_the_database_down(slack_without_database):
    url = slack_without_database.url.replace("/slack/events", "/readyz")
    response = requests.get(url, timeout=5)

    assert response.status_code == 503
    assert response.json() == {"status": "database unreachable"}


def test_an_opened_home_says_the_audit_log_cannot_be_read(
    slack_without_database, local_slack
):
    body = payloads.app_home_opened(team_id=TEAM, user_id=BOB)
    headers = payloads.signed_headers(SECRET, body, content_type="application/json")

    slack_without_database.post(body, headers=headers, wait=False)

    assert local_slack.wait_for(lambda calls: local_slack.api_calls("views.publish"))
    assert slack_without_database.bot.background.wait_idle(timeout=30)
    [call] = local_slack.api_calls("views.publish")
    assert call.body["user_id"] == BOB
    assert [block_text(block) for block in call.body["view"]["blocks"]] == [
        "vpsbot",
        "vpsbot cannot read the audit log right now, so your Home cannot be "
        "shown. Open this tab again in a moment.",
    ]
