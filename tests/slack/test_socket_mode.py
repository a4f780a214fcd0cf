"""Socket Mode: the same app, fed the envelopes Slack sends over the socket.

Bolt's Socket Mode adapter hands each envelope's payload to ``App.dispatch``
with ``mode="socket_mode"`` (no signature; the payload is already a dict).
These tests do exactly that, so the listeners, the acknowledgement and the
work after it are checked in that mode too.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from slack_bolt.adapter.socket_mode.internals import run_bolt_app
from slack_sdk.socket_mode.request import SocketModeRequest

from tests.slack.conftest import ALICE, ALL_ALLOWED, CHANNEL, TEAM, set_policy
from vpsbot import payloads


def _envelope(kind: str, form_body: str, number: int) -> SocketModeRequest:
    fields = dict(parse_qsl(form_body))
    payload = json.loads(fields["payload"]) if "payload" in fields else fields
    return SocketModeRequest(type=kind, envelope_id=f"env-{number}", payload=payload)


def test_a_typed_reboot_over_the_socket_reboots_and_announces(
    bot, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.reset_calls()
    body = payloads.slash_command(
        "reboot web-01",
        team_id=TEAM,
        channel_id=CHANNEL,
        user_id=ALICE,
        response_url=local_slack.response_url("socket"),
    )

    response = run_bolt_app(bot.bolt, _envelope("slash_commands", body, 1))
    assert bot.background.wait_idle(timeout=30)

    assert response.status == 200
    assert [path for method, path in sandbox.calls if method == "POST"] == [
        "/api/v1/servers/12345/reboot/"
    ]
    [announcement] = local_slack.api_calls("chat.postMessage")
    assert announcement.body["channel"] == CHANNEL
    assert announcement.body["text"].startswith(
        f":arrows_counterclockwise: <@{ALICE}> rebooted *web-01* (id 12345)"
    )


def test_a_malformed_command_over_the_socket_is_answered_in_the_ack(
    bot, local_slack, sandbox
):
    sandbox.reset_calls()
    body = payloads.slash_command(
        "frobnicate",
        team_id=TEAM,
        channel_id=CHANNEL,
        user_id=ALICE,
        response_url=local_slack.response_url("unused"),
    )

    response = run_bolt_app(bot.bolt, _envelope("slash_commands", body, 2))

    assert response.status == 200
    assert json.loads(response.body)["text"] == (
        "`frobnicate` is not a vpsbot command. Try `/vps help` to see what you "
        "can do here."
    )
    assert sandbox.calls == []
    # Bolt asks auth.test who the bot is, once; nothing else goes to Slack.
    assert [call.name for call in local_slack.calls] == ["auth.test"]


def test_a_show_button_over_the_socket_answers_the_presser(
    bot, session_factory, local_slack
):
    set_policy(session_factory, ALL_ALLOWED)
    body = payloads.block_action(
        {"action_id": "vps_show", "value": "12346"},
        team_id=TEAM,
        channel_id=CHANNEL,
        user_id=ALICE,
        response_url=local_slack.response_url("pressed"),
    )

    response = run_bolt_app(bot.bolt, _envelope("interactive", body, 3))
    assert bot.background.wait_idle(timeout=30)

    assert response.status == 200
    [answer] = local_slack.responses("pressed")
    assert answer.body["blocks"][0]["text"]["text"] == "*web-02* (id 12346)"
