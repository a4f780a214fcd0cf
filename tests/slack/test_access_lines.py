"""Access lines of Slack requests, end to end: the real app behind AccessLog."""

from __future__ import annotations

import logging

import pytest

from tests.slack.conftest import (
    ALICE,
    ALL_ALLOWED,
    BOB,
    CHANNEL,
    TEAM,
    SlackSimulator,
    set_policy,
)
from tests.slack.test_commands import audit_rows
from vpsbot.access_log import AccessLog
from vpsbot.slack.ids import DELETE_NAME_ACTION, DELETE_NAME_BLOCK
from vpsbot.web import BackgroundServer, SlackWsgiApp

SECRET = "test-signing-secret"


@pytest.fixture
def logged_slack(bot, engine, local_slack):
    app = AccessLog(SlackWsgiApp(bot.bolt, engine, signing_secret=SECRET))
    with BackgroundServer(app, threads=8) as server:
        yield SlackSimulator(server, bot, local_slack)


def _access(caplog) -> list[dict]:
    return [r.access for r in caplog.records if r.name == "vpsbot.access"]


def test_a_command_button_and_dialog_each_get_one_line_naming_their_action(
    logged_slack, session_factory, sandbox, local_slack, caplog
):
    set_policy(session_factory, ALL_ALLOWED)
    caplog.set_level(logging.INFO, logger="vpsbot.access")
    web01 = next(s for s in sandbox.list_servers() if s["name"] == "web-01")

    logged_slack.command("list")
    logged_slack.press("vps_reboot", str(web01["id"]), user=BOB)
    logged_slack.command("delete web-02")
    [filled] = local_slack.api_calls("views.update")
    view = {**filled.body["view"], "id": filled.body["view_id"]}
    logged_slack.submit(view, {DELETE_NAME_BLOCK: {DELETE_NAME_ACTION: "web-02"}})

    lines = _access(caplog)
    assert [(line["action"], line["user"], line["status"]) for line in lines] == [
        ("list", ALICE, 200),
        ("vps_reboot", BOB, 200),
        ("delete", ALICE, 200),
        (view["callback_id"], ALICE, 200),
    ]
    assert all(line["team"] == TEAM for line in lines)
    assert [line["channel"] for line in lines[:3]] == [CHANNEL] * 3
    assert all(line["method"] == "POST" for line in lines)
    assert all(line["path"] == "/slack/events" for line in lines)
    # The request id in the log is the one the audit log keeps.
    audited = {
        (row["action"], row["request_id"]) for row in audit_rows(session_factory)
    }
    assert ("list", lines[0]["request_id"]) in audited
    assert ("reboot", lines[1]["request_id"]) in audited
    assert len({line["request_id"] for line in lines}) == 4


def test_an_unsigned_request_gets_a_line_without_slack_fields(logged_slack, caplog):
    caplog.set_level(logging.INFO, logger="vpsbot.access")

    response = logged_slack.post(
        "command=/vps&text=list", headers={"x-slack-signature": "v0=0"}, wait=False
    )

    assert response.status_code == 401
    [line] = _access(caplog)
    assert line["status"] == 401
    assert "request_id" not in line and "action" not in line
