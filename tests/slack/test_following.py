"""Announcements followed to the end, through the real app and a fake Slack.

The sandbox settles in a second or two and the follower polls every few
tenths of a second, so each test takes a few seconds of real time; the
assertions wait for the recorded Web API calls, never on the clock.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from tests.slack.conftest import ALL_ALLOWED, CHANNEL, set_policy
from vpsbot.ops.tracking import Backoff
from vpsbot.store import session_scope
from vpsbot.store.models import FollowedOperation


@pytest.fixture
def follower(bot, sandbox):
    sandbox.transition_delay = 2.0
    follower = bot.follower
    follower.backoff = Backoff(first=0.2, factor=1.5, cap=0.4, jitter=0.0)
    follower.refresh_interval = 0.6
    follower.min_notify_interval = 0.6
    follower._tick_interval = 0.05
    follower.start()
    return follower


def _updates(local_slack):
    return local_slack.api_calls("chat.update")


def _has_update_with(text, times=1):
    def check(calls):
        found = [
            call
            for call in calls
            if call.name == "chat.update" and text in call.body.get("text", "")
        ]
        return len(found) >= times

    return check


def _rows(session_factory):
    with session_scope(session_factory) as session:
        return list(session.scalars(select(FollowedOperation)))


def test_a_typed_reboot_is_updated_until_active(
    slack, session_factory, local_slack, follower
):
    set_policy(session_factory, ALL_ALLOWED)

    slack.command("reboot web-01")

    assert local_slack.wait_for(_has_update_with("web-01 is `active` after"), 30)
    [post] = local_slack.api_calls("chat.postMessage")
    [row] = _rows(session_factory)
    updates = _updates(local_slack)
    assert len(updates) >= 2
    for update in updates:
        assert (update.body["channel"], update.body["ts"]) == (CHANNEL, row.message_ts)
        assert update.body["text"].startswith(post.body["text"] + "\n")
    assert "web-01 is `rebooting` · 0:0" in updates[0].body["text"]
    assert " elapsed" in updates[0].body["text"]
    final = updates[-1].body
    assert "web-01 is `active` after 0:0" in final["text"]
    assert final["blocks"][-1]["type"] == "context"
    assert (row.result, row.last_status) == ("settled", "active")


def test_a_stop_button_is_followed_until_stopped(
    slack, session_factory, local_slack, sandbox, follower
):
    set_policy(session_factory, ALL_ALLOWED)
    web02 = next(s for s in sandbox.list_servers() if s["name"] == "web-02")

    slack.press("vps_stop", str(web02["id"]))

    assert local_slack.wait_for(_has_update_with("web-02 is `stopped` after"), 30)


def test_slacks_rate_limit_on_chat_update_is_waited_out(
    slack, session_factory, local_slack, follower
):
    set_policy(session_factory, ALL_ALLOWED)
    follower.refresh_interval = 3600.0  # only the last message is sent
    local_slack.fail("chat.update", "ratelimited", status=429, retry_after=1)

    slack.command("reboot db-01")

    # The fake Slack records the refused call too: the text arrives twice.
    assert local_slack.wait_for(_has_update_with("db-01 is `active` after", 2), 30)
    follower.wait_idle()
    refused, delivered = _updates(local_slack)
    assert refused.body["text"] == delivered.body["text"]
    [row] = _rows(session_factory)
    assert row.finished_at is not None
    assert row.notify_after is None
    # The retry came no sooner than Slack's Retry-After allowed.
    assert (row.notified_at - row.ended_at).total_seconds() >= 1.0


def test_an_announcement_through_the_response_url_is_not_followed(
    slack, session_factory, local_slack, follower, caplog
):
    set_policy(session_factory, ALL_ALLOWED, channel="D0DM")
    local_slack.fail("chat.postMessage", "channel_not_found")
    caplog.set_level(logging.INFO, logger="vpsbot.slack.context")

    slack.command("stop web-02", channel="D0DM")

    assert _rows(session_factory) == []
    assert "not following the stop" in caplog.text


def test_a_deleted_announcement_ends_the_follow(
    slack, session_factory, local_slack, follower
):
    set_policy(session_factory, ALL_ALLOWED)
    local_slack.fail("chat.update", "message_not_found")

    slack.command("reboot web-01")

    assert local_slack.wait_for(lambda calls: bool(_updates(local_slack)), 30)
    follower.wait_idle()
    [row] = _rows(session_factory)
    assert row.finished_at is not None
    assert row.result == "undeliverable"
    assert len(_updates(local_slack)) == 1


def test_a_created_server_is_followed_until_active_with_its_address(
    slack, session_factory, local_slack, sandbox, follower
):
    set_policy(session_factory, ALL_ALLOWED)

    slack.command("create web-07 plan=1 os=5 location=us-east")

    assert local_slack.wait_for(_has_update_with("web-07 is `active` at "), 30)
    [post] = local_slack.api_calls("chat.postMessage")
    assert "ordered *web-07*" in post.body["text"]
    [created] = [s for s in sandbox.list_servers() if s["name"] == "web-07"]
    final = _updates(local_slack)[-1].body["text"]
    assert f"web-07 is `active` at {created['ip_address']} after 0:0" in final
    [row] = _rows(session_factory)
    assert (row.verb, row.server_id, row.result) == ("create", created["id"], "settled")
