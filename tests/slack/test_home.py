"""The App Home end to end: signed ``app_home_opened`` events and Home clicks
through the served app, LocalSlack and the sandbox.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk import WebClient

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
from vpsbot import audit, payloads
from vpsbot.ops.approvals import GroupUnreadableError
from vpsbot.slack import home as home_module
from vpsbot.slack.approvals import ApprovalNotices
from vpsbot.slack.home import ChannelMemberships, MemberChannels
from vpsbot.slack.home_view import ACTIVITY_UNREAD
from vpsbot.slack.ids import APPROVE_BUTTON, HOME_APPROVE_BUTTON, HOME_DENY_BUTTON
from vpsbot.slack.usergroups import GroupMembersCache
from vpsbot.store import ApprovalRepository, PolicyRepository, session_scope
from vpsbot.store.models import ApprovalRequest

DENIED = "C0DENIED"  # audit=deny: nothing of it may show
ELSEWHERE = "C0ELSE"  # audit=allow, but bob is not a member
GROUPED = "C0GROUP"  # modify=approve, approved by the user group S0OPS
OPS_GROUP = "S0OPS"
CAROL = "U0CAROL"
DAVE = "U0DAVE"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
FAR = datetime(2099, 1, 1, tzinfo=UTC)


def _when(utc: str) -> str:
    """A Slack date token for a UTC time written ``YYYY-MM-DD HH:MM``."""
    moment = datetime.strptime(utc, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    return f"<!date^{int(moment.timestamp())}^{{date_num}} {{time}}|{utc} UTC>"


FOOTER = re.compile(
    r"Updated <!date\^\d+\^\{date_num\} \{time\}\|\d{4}-\d\d-\d\d \d\d:\d\d UTC>\. "
    r"Entries come only from channels "
    r"whose policy lets you read the audit log \(`audit=allow`\)\."
)


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _divider() -> dict:
    return {"type": "divider"}


def _header() -> dict:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": "vpsbot", "emoji": True},
    }


def _home_buttons(approval_id: int, public_id: str) -> dict:
    return {
        "type": "actions",
        "block_id": f"home-approval-{approval_id}",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Approve", "emoji": True},
                "action_id": HOME_APPROVE_BUTTON,
                "value": public_id,
                "style": "primary",
            },
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Deny", "emoji": True},
                "action_id": HOME_DENY_BUTTON,
                "value": public_id,
                "style": "danger",
            },
        ],
    }


def _entry(session_factory, minute: int, channel: str, user: str, **fields) -> None:
    with session_scope(session_factory) as session:
        audit.record(
            session,
            team=fields.pop("team", TEAM),
            channel=channel,
            user=user,
            action=fields.pop("action", "reboot"),
            outcome=fields.pop("outcome", "succeeded"),
            request_id=f"r-{channel}-{minute}",
            server_id=fields.pop("server_id", 12345),
            server_name=fields.pop("server_name", "web-01"),
            detail=fields.pop("detail", ""),
            at=T0 + timedelta(minutes=minute),
        )


def _request(session_factory, public_id: str, channel: str, requester: str) -> int:
    row = ApprovalRequest(
        request_id=public_id,
        team_id=TEAM,
        channel_id=channel,
        requester=requester,
        verb="rename",
        server_id=12345,
        server_name="web-01",
        server_status="active",
        params=json.dumps({"new_name": "web-09"}),
        reason="<!channel> tidy names",
        status="pending",
        created_at=T0,
        expires_at=FAR,
    )
    with session_scope(session_factory) as session:
        return ApprovalRepository(session).add(row)


def _policy(session_factory, channel: str, rules: dict, approvers=None) -> None:
    set_policy(session_factory, rules, channel=channel)
    if approvers is not None:
        with session_scope(session_factory) as session:
            PolicyRepository(session).set_approvers(
                team_id=TEAM, channel_id=channel, approvers=approvers, updated_by=ALICE
            )


def _open_home(slack, user: str, *, tab: str = "home"):
    """Send the event and wait for the Home it draws.

    Bolt acknowledges an event before its listener runs, so the answer may
    come back before the work is handed to the pool: wait for the publish.
    """
    before = len(_published(slack.local, user))
    body = payloads.app_home_opened(team_id=TEAM, user_id=user, tab=tab)
    headers = payloads.signed_headers(SECRET, body, content_type="application/json")
    response = slack.post(body, headers=headers)
    if tab == "home":
        assert slack.local.wait_for(
            lambda calls: len(_published(slack.local, user)) > before
        )
        assert slack.bot.background.wait_idle(timeout=30)
    return response


def _press_home(slack, action_id: str, value: str, *, user: str):
    body = payloads.home_block_action(
        {"action_id": action_id, "value": value}, team_id=TEAM, user_id=user
    )
    return slack.post(body)


def _published(local_slack, user: str) -> list[dict]:
    return [
        call.body["view"]
        for call in local_slack.api_calls("views.publish")
        if call.body["user_id"] == user
    ]


def _world(session_factory, local_slack) -> None:
    """Four channels, entries in each, requests bob may and may not decide."""
    _policy(session_factory, CHANNEL, ALL_ALLOWED)
    _policy(session_factory, DENIED, {**ALL_ALLOWED, "audit": "deny"})
    _policy(session_factory, ELSEWHERE, ALL_ALLOWED, approvers=[CAROL])
    _policy(
        session_factory,
        GROUPED,
        {**ALL_ALLOWED, "modify": "approve"},
        approvers=[OPS_GROUP],
    )
    local_slack.groups[OPS_GROUP] = [BOB, CAROL]
    local_slack.memberships[BOB] = [CHANNEL, DENIED, GROUPED]
    _entry(session_factory, 1, CHANNEL, BOB, action="stop", detail="by hand")
    _entry(session_factory, 2, DENIED, BOB, action="start")
    _entry(session_factory, 3, ELSEWHERE, BOB, action="show", outcome="denied")
    _entry(session_factory, 4, CHANNEL, ALICE, server_name="db-01", server_id=7)
    _entry(session_factory, 5, DENIED, ALICE, action="delete")
    _entry(session_factory, 6, ELSEWHERE, CAROL, action="rename")
    _entry(session_factory, 7, GROUPED, ALICE, action="rename", outcome="requested")
    _entry(session_factory, 8, CHANNEL, BOB, team="T0OTHER")


def test_home_shows_only_what_the_policies_let_the_viewer_read(
    slack, session_factory, local_slack
):
    _world(session_factory, local_slack)
    alice_request = _request(session_factory, "r-alice-ask", GROUPED, ALICE)
    _request(session_factory, "r-bob-ask", GROUPED, BOB)  # his own: not decidable
    _request(session_factory, "r-carol-ask", ELSEWHERE, CAROL)  # bob no approver
    _request(session_factory, "r-denied-ask", DENIED, ALICE)  # admins approve there

    response = _open_home(slack, BOB)

    assert response.status_code == 200
    [view] = _published(local_slack, BOB)
    assert view["type"] == "home"
    blocks = view["blocks"]
    assert blocks[:-1] == [
        _header(),
        _section("*Your recent actions*"),
        _section(
            f"{_when('2026-12-01 08:03')} <@{BOB}> show *web-01* → *denied* in "
            f"<#{ELSEWHERE}>\n"
            f"{_when('2026-12-01 08:01')} <@{BOB}> stop *web-01* → *succeeded* in "
            f"<#{CHANNEL}> — by hand"
        ),
        _divider(),
        _section("*Pending approvals you can decide*"),
        _section(
            f"<@{ALICE}> asks to *rename web-01 to web-09* in <#{GROUPED}>\n"
            f"Server: web-01 (id 12345) · `active` · open until "
            f"{_when('2099-01-01 00:00')}\n"
            f"Reason: &lt;!channel&gt; tidy names"
        ),
        _home_buttons(alice_request, "r-alice-ask"),
        _divider(),
        _section("*Latest activity in your channels*"),
        _section(
            f"{_when('2026-12-01 08:07')} <@{ALICE}> rename *web-01* → *requested* in "
            f"<#{GROUPED}>\n"
            f"{_when('2026-12-01 08:04')} <@{ALICE}> reboot *db-01* → *succeeded* in "
            f"<#{CHANNEL}>\n"
            f"{_when('2026-12-01 08:01')} <@{BOB}> stop *web-01* → *succeeded* in "
            f"<#{CHANNEL}> — by hand"
        ),
    ]
    assert FOOTER.fullmatch(blocks[-1]["elements"][0]["text"])
    everything = json.dumps(view)
    assert DENIED not in everything
    # Slack was asked for bob's channels as the brief of the method says.
    [asked] = local_slack.api_calls("users.conversations")
    assert asked.body["user"] == BOB
    assert asked.body["types"] == "public_channel,private_channel"
    assert local_slack.api_calls("usergroups.users.list")[0].body == {
        "usergroup": OPS_GROUP
    }


def test_the_requester_sees_no_buttons_on_her_own_request(
    slack, session_factory, local_slack
):
    _world(session_factory, local_slack)
    _request(session_factory, "r-alice-ask", GROUPED, ALICE)
    local_slack.memberships[ALICE] = [GROUPED]

    _open_home(slack, ALICE)

    [view] = _published(local_slack, ALICE)
    assert buttons(view) == []
    assert _context("No pending approvals you can decide.") in view["blocks"]
    # Her own entries in the audit=deny channel stay out of her Home too.
    text = "\n".join(block_text(block) for block in view["blocks"])
    assert "delete" not in text
    assert f"<@{ALICE}> rename *web-01* → *requested* in <#{GROUPED}>" in text


def test_only_the_home_tab_is_drawn(slack, session_factory, local_slack):
    _world(session_factory, local_slack)

    response = _open_home(slack, BOB, tab="messages")
    _open_home(slack, BOB)

    assert response.status_code == 200
    assert len(local_slack.api_calls("views.publish")) == 1
    assert len(local_slack.api_calls("users.conversations")) == 1


def test_channels_are_read_page_by_page_and_kept_briefly(
    slack, session_factory, local_slack
):
    _world(session_factory, local_slack)
    many = [f"C0FILL{n:04d}" for n in range(450)]
    local_slack.memberships[BOB] = [*many, CHANNEL]

    _open_home(slack, BOB)
    _open_home(slack, BOB)

    pages = local_slack.api_calls("users.conversations")
    assert [call.body.get("cursor") for call in pages] == [None, "200", "400"]
    views = _published(local_slack, BOB)
    assert len(views) == 2
    text = "\n".join(block_text(block) for block in views[0]["blocks"])
    # The last channel came on the third page; the DENIED one is gone now.
    assert f"<@{ALICE}> reboot *db-01* → *succeeded* in <#{CHANNEL}>" in text
    assert f"in <#{GROUPED}>" not in text.split("Latest activity")[1]


def test_unreadable_channels_leave_the_activity_out_with_one_line(
    slack, session_factory, local_slack
):
    _world(session_factory, local_slack)
    alice_request = _request(session_factory, "r-alice-ask", GROUPED, ALICE)
    local_slack.fail("users.conversations", "missing_scope")

    _open_home(slack, BOB)

    [view] = _published(local_slack, BOB)
    blocks = view["blocks"]
    assert blocks[-3:-1] == [
        _section("*Latest activity in your channels*"),
        _context(
            "vpsbot could not read which channels you are in just now, so channel "
            "activity is not shown."
        ),
    ]
    assert _home_buttons(alice_request, "r-alice-ask") in blocks
    assert f"<@{BOB}> stop *web-01*" in block_text(blocks[2])


def test_a_refused_publish_is_logged_without_secrets(
    slack, session_factory, local_slack, caplog
):
    _world(session_factory, local_slack)
    local_slack.fail("views.publish", "not_enabled")

    with caplog.at_level(logging.DEBUG):
        response = _open_home(slack, BOB)

    assert response.status_code == 200
    assert len(local_slack.api_calls("views.publish")) == 1
    [line] = [
        record.getMessage()
        for record in caplog.records
        if "could not publish" in record.getMessage()
    ]
    assert re.fullmatch(
        rf"could not publish the home of {BOB}: not_enabled \[r-[0-9a-f]{{12}}\]", line
    )
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "xoxb-test" not in logged
    assert SECRET not in logged


def test_bob_approves_alices_request_from_home(
    slack, session_factory, local_slack, sandbox
):
    _policy(
        session_factory,
        CHANNEL,
        {**ALL_ALLOWED, "modify": "approve"},
        approvers=[OPS_GROUP],
    )
    local_slack.groups[OPS_GROUP] = [BOB]
    local_slack.memberships[BOB] = [CHANNEL]
    slack.command('rename web-01 web-09 reason="tidy"', user=ALICE)
    _open_home(slack, BOB)
    [home] = _published(local_slack, BOB)
    [(label, action_id, public_id), _] = buttons(home)
    assert (label, action_id) == ("Approve", HOME_APPROVE_BUTTON)
    local_slack.clear()

    response = _press_home(slack, HOME_APPROVE_BUTTON, public_id, user=BOB)
    _press_home(slack, HOME_APPROVE_BUTTON, public_id, user=BOB)

    assert response.status_code == 200
    assert sandbox.get(12345)["name"] == "web-09"
    patches = [call for call in sandbox.calls if call[0] in ("PATCH", "PUT")]
    assert patches == [("PATCH", "/api/v1/servers/12345/")]
    with session_scope(session_factory) as session:
        [row] = session.query(ApprovalRequest).all()
        assert (row.status, row.decided_by) == ("executed", BOB)
        message_ts = row.message_ts
    assert message_ts is not None
    outcomes = [
        (entry.user, entry.action, entry.outcome, entry.channel)
        for entry in _entries(session_factory)
        if entry.request_id == public_id
    ]
    assert outcomes == [
        (ALICE, "rename", "requested", CHANNEL),
        (BOB, "rename", "approved", CHANNEL),
        (ALICE, "rename", "succeeded", CHANNEL),
    ]
    # The request message in the channel is redrawn once, without buttons.
    [redrawn] = local_slack.api_calls("chat.update")
    assert redrawn.body["channel"] == CHANNEL
    assert redrawn.body["ts"] == message_ts
    assert buttons(redrawn.body) == []
    assert f"Approved by <@{BOB}>" in "\n".join(
        block_text(block) for block in redrawn.body["blocks"]
    )
    # Alice is told in the channel, as for a click on the message.
    told = [
        call.body["text"]
        for call in local_slack.api_calls("chat.postEphemeral")
        if call.body.get("user") == ALICE
    ]
    assert told == [
        f"<@{BOB}> approved your request to *rename web-01 to web-09*: web-01 is "
        f"now called web-09."
    ]
    # Bob's Home is drawn again after each click, saying what it did.
    first, second = _published(local_slack, BOB)
    assert block_text(first["blocks"][1]).startswith(
        f"You approved <@{ALICE}>'s request to *rename web-01 to web-09*"
    )
    assert buttons(first) == []
    assert block_text(second["blocks"][1]).startswith(
        f"This request was already approved by <@{BOB}>"
    )


def test_a_home_click_from_someone_who_may_not_decide_is_refused(
    slack, session_factory, local_slack
):
    _policy(session_factory, CHANNEL, {**ALL_ALLOWED, "modify": "approve"})
    slack.command("rename web-01 web-09", user=BOB)
    [public_id] = [
        value
        for call in local_slack.api_calls("chat.postMessage")
        for _, action_id, value in buttons(call.body)
        if action_id == APPROVE_BUTTON
    ]

    _press_home(slack, HOME_APPROVE_BUTTON, public_id, user=CAROL)

    with session_scope(session_factory) as session:
        [row] = session.query(ApprovalRequest).all()
        assert row.status == "pending"
    [view] = _published(local_slack, CAROL)
    assert block_text(view["blocks"][1]) == (
        f"You are not an approver in this channel, so nothing was done. "
        f"Approvers here: <@{ALICE}>."
    )
    refused = [e for e in _entries(session_factory) if e.user == CAROL]
    assert [(e.outcome, e.channel) for e in refused] == [("denied", CHANNEL)]


def test_a_home_click_on_an_unknown_request_changes_nothing(
    slack, session_factory, local_slack
):
    _world(session_factory, local_slack)

    _press_home(slack, HOME_DENY_BUTTON, "r-nosuch", user=BOB)

    [view] = _published(local_slack, BOB)
    assert block_text(view["blocks"][1]) == (
        "vpsbot has no such approval request (it may belong to another "
        "workspace); nothing was done."
    )
    assert local_slack.api_calls("chat.update") == []


def _entries(session_factory):
    with session_scope(session_factory) as session:
        return audit.query(session, team=TEAM, channel=CHANNEL, limit=100)[::-1]


def test_a_channel_list_is_kept_a_minute_and_a_refusal_its_retry_after(local_slack):
    now = [0.0]
    memberships = ChannelMemberships(
        WebClient(token="xoxb-test", base_url=local_slack.api_url),
        ttl=60.0,
        clock=lambda: now[0],
    )
    local_slack.memberships[BOB] = [CHANNEL]
    local_slack.fail("users.conversations", "ratelimited", status=429, retry_after=30)

    assert memberships.of(TEAM, BOB) is None
    now[0] = 29.0
    assert memberships.of(TEAM, BOB) is None
    assert len(local_slack.api_calls("users.conversations")) == 1
    now[0] = 30.0
    assert memberships.of(TEAM, BOB) == MemberChannels(frozenset({CHANNEL}))
    local_slack.memberships[BOB] = [CHANNEL, GROUPED]
    now[0] = 89.0
    assert memberships.of(TEAM, BOB) == MemberChannels(frozenset({CHANNEL}))
    now[0] = 90.0
    assert memberships.of(TEAM, BOB) == MemberChannels(frozenset({CHANNEL, GROUPED}))
    assert len(local_slack.api_calls("users.conversations")) == 3
    # A refusal without Retry-After is remembered 10 s; a longer wait than
    # five minutes is cut to five minutes.
    now[0] = 200.0
    local_slack.fail("users.conversations", "missing_scope")
    assert memberships.of(TEAM, BOB) is None
    now[0] = 209.0
    assert memberships.of(TEAM, BOB) is None
    now[0] = 210.0
    assert memberships.of(TEAM, BOB) is not None
    now[0] = 300.0
    local_slack.fail("users.conversations", "ratelimited", status=429, retry_after=900)
    assert memberships.of(TEAM, BOB) is None
    now[0] = 599.0
    assert memberships.of(TEAM, BOB) is None
    now[0] = 600.0
    assert memberships.of(TEAM, BOB) is not None
    assert len(local_slack.api_calls("users.conversations")) == 7


def test_a_refused_channel_list_is_not_asked_again_on_the_next_open(
    slack, session_factory, local_slack
):
    _world(session_factory, local_slack)
    local_slack.fail("users.conversations", "ratelimited", status=429, retry_after=60)

    _open_home(slack, BOB)
    _open_home(slack, BOB)

    assert len(local_slack.api_calls("users.conversations")) == 1
    for view in _published(local_slack, BOB):
        assert _context(ACTIVITY_UNREAD) in view["blocks"]


def test_more_channels_than_are_read_are_said_on_the_home(
    slack, session_factory, local_slack, monkeypatch
):
    _world(session_factory, local_slack)
    monkeypatch.setattr(home_module, "MAX_PAGES", 2)
    local_slack.memberships[BOB] = [CHANNEL, *(f"C0FILL{n:04d}" for n in range(450))]

    _open_home(slack, BOB)

    assert len(local_slack.api_calls("users.conversations")) == 2
    [view] = _published(local_slack, BOB)
    blocks = view["blocks"]
    assert blocks[-2] == _context(
        "You are in more channels than vpsbot reads (4,000), so the activity of "
        "some of them is not shown."
    )
    # What was read is still shown.
    assert f"<@{ALICE}> reboot *db-01* → *succeeded* in <#{CHANNEL}>" in block_text(
        blocks[-3]
    )


def test_homes_share_one_group_read_and_a_click_asks_slack_afresh(
    slack, session_factory, local_slack
):
    _world(session_factory, local_slack)
    _request(session_factory, "r-alice-ask", GROUPED, ALICE)
    local_slack.memberships[CAROL] = [GROUPED]
    local_slack.memberships[DAVE] = []

    for viewer in (BOB, CAROL, DAVE, BOB, CAROL):
        _open_home(slack, viewer)

    assert len(local_slack.api_calls("usergroups.users.list")) == 1
    assert len(buttons(_published(local_slack, BOB)[-1])) == 2
    assert buttons(_published(local_slack, DAVE)[-1]) == []
    # Bob leaves the group: his click asks Slack again and is refused.
    local_slack.groups[OPS_GROUP] = [CAROL]

    _press_home(slack, HOME_APPROVE_BUTTON, "r-alice-ask", user=BOB)

    assert len(local_slack.api_calls("usergroups.users.list")) == 2
    with session_scope(session_factory) as session:
        statuses = {
            row.request_id: row.status for row in session.query(ApprovalRequest)
        }
    assert statuses == {"r-alice-ask": "pending"}
    assert block_text(_published(local_slack, BOB)[-1]["blocks"][1]) == (
        f"You are not an approver in this channel, so nothing was done. "
        f"Approvers here: <!subteam^{OPS_GROUP}>."
    )


def test_group_members_are_kept_two_minutes_a_refusal_its_retry_after(local_slack):
    now = [0.0]
    notices = ApprovalNotices(
        WebClient(token="xoxb-test", base_url=local_slack.api_url)
    )
    groups = GroupMembersCache(notices.members_of, clock=lambda: now[0])
    local_slack.groups[OPS_GROUP] = [BOB]
    local_slack.fail("usergroups.users.list", "ratelimited", status=429, retry_after=45)

    with pytest.raises(GroupUnreadableError):
        groups.members_of(TEAM, OPS_GROUP)
    now[0] = 44.0
    with pytest.raises(GroupUnreadableError):
        groups.members_of(TEAM, OPS_GROUP)
    assert len(local_slack.api_calls("usergroups.users.list")) == 1
    now[0] = 45.0
    assert groups.for_team(TEAM)(OPS_GROUP) == {BOB}
    local_slack.groups[OPS_GROUP] = [BOB, CAROL]
    now[0] = 164.0
    assert groups.members_of(TEAM, OPS_GROUP) == {BOB}
    # Another workspace's group of the same id is its own answer.
    assert groups.members_of("T0OTHER", OPS_GROUP) == {BOB, CAROL}
    now[0] = 165.0
    assert groups.members_of(TEAM, OPS_GROUP) == {BOB, CAROL}
    assert len(local_slack.api_calls("usergroups.users.list")) == 4
