"""The status line under a followed announcement, and chat.update's errors."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient

from tests.slack.conftest import TEAM
from vpsbot.localslack import LocalSlack
from vpsbot.ops.tracking import (
    FollowedOp,
    NotifyFailedError,
    NotifyLaterError,
    Progress,
)
from vpsbot.slack.progress import SlackProgress, elapsed, render, status_line


def _op(verb="reboot", name="db-01", expected="active"):
    return FollowedOp(
        id=1,
        team_id=TEAM,
        channel_id="C0OPS",
        message_ts="1700000001.000100",
        user_id="U0ALICE",
        request_id="r-1",
        verb=verb,
        server_id=12347,
        server_name=name,
        headline=f"<@U0ALICE> {verb}ed *{name}*",
        expected_status=expected,
    )


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0:00"), (42.9, "0:42"), (65, "1:05"), (3725, "1:02:05")]
)
def test_elapsed_time_reads_like_a_clock(seconds, shown):
    assert elapsed(seconds) == shown


@pytest.mark.parametrize(
    ("op", "progress", "line"),
    [
        (
            _op(),
            Progress("following", "rebooting", 42),
            ":hourglass_flowing_sand: db-01 is `rebooting` · 0:42 elapsed",
        ),
        (
            _op(),
            Progress("settled", "active", 65),
            ":white_check_mark: db-01 is `active` after 1:05",
        ),
        (
            _op("create", "web-03"),
            Progress("settled", "active", 190, ip_address="203.0.113.7"),
            ":white_check_mark: web-03 is `active` at 203.0.113.7 after 3:10",
        ),
        (
            _op(),
            Progress("settled", "stopped", 30),
            ":warning: db-01 ended up `stopped` after 0:30, not `active`; "
            "check `/vps show db-01`",
        ),
        (
            _op(),
            Progress("gave_up", "rebooting", 900),
            ":warning: db-01 is still `rebooting` after 15 min; vpsbot stopped "
            "following it — check `/vps show db-01`",
        ),
        (
            _op(),
            Progress("gone", "rebooting", 12),
            ":warning: db-01 no longer exists at VPS.org (after 0:12); vpsbot "
            "stopped following it",
        ),
    ],
)
def test_status_lines(op, progress, line):
    assert status_line(op, progress) == line


def test_provider_words_are_escaped():
    line = status_line(_op(name="a<b>"), Progress("following", "<!channel>", 1))

    assert "<!channel>" not in line
    assert "&lt;!channel&gt;" in line
    assert "a&lt;b&gt;" in line


def test_the_update_keeps_the_headline_and_adds_a_context_line():
    text, blocks = render(_op(), Progress("settled", "active", 5))

    assert text.splitlines() == [
        "<@U0ALICE> rebooted *db-01*",
        ":white_check_mark: db-01 is `active` after 0:05",
    ]
    assert blocks[0]["text"]["text"] == "<@U0ALICE> rebooted *db-01*"
    assert blocks[-1] == {
        "type": "context",
        "elements": [
            {
                "type": "mrkdwn",
                "text": ":white_check_mark: db-01 is `active` after 0:05",
            }
        ],
    }


@pytest.fixture
def local_slack():
    with LocalSlack(team_id=TEAM) as fake:
        yield fake


def _notifier(local_slack):
    return SlackProgress(WebClient(token="xoxb-test", base_url=local_slack.api_url))


def test_an_update_edits_the_announcement(local_slack):
    _notifier(local_slack).notify(_op(), Progress("settled", "active", 5))

    [call] = local_slack.api_calls("chat.update")
    assert (call.body["channel"], call.body["ts"]) == ("C0OPS", "1700000001.000100")


def test_slacks_429_asks_the_follower_to_wait(local_slack):
    local_slack.fail("chat.update", "ratelimited", status=429, retry_after=7)

    with pytest.raises(NotifyLaterError) as waited:
        _notifier(local_slack).notify(_op(), Progress("settled", "active", 5))

    assert waited.value.retry_after == 7.0


@pytest.mark.parametrize(
    "error",
    ["message_not_found", "cant_update_message", "channel_not_found", "is_archived"],
)
def test_a_message_that_cannot_be_edited_is_a_permanent_failure(local_slack, error):
    local_slack.fail("chat.update", error)

    with pytest.raises(NotifyFailedError, match=error):
        _notifier(local_slack).notify(_op(), Progress("settled", "active", 5))
