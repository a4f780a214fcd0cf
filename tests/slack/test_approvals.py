"""Approval requests end to end: signed commands, clicks and dialogs from
several users, through the served app, LocalSlack and the sandbox.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from tests.slack.conftest import (
    ALICE,
    ALL_ALLOWED,
    BOB,
    CHANNEL,
    TEAM,
    block_text,
    buttons,
    set_policy,
)
from tests.slack.test_commands import audit_rows
from vpsbot.slack.ids import (
    APPROVE_BUTTON,
    CANCEL_REQUEST_BUTTON,
    DELETE_NAME_ACTION,
    DELETE_NAME_BLOCK,
    DENY_BUTTON,
    FORM_ACTION,
)
from vpsbot.store import PolicyRepository, session_scope
from vpsbot.store.models import ApprovalRequest

CAROL = "U0CAROL"
WEB01 = 12345
UNDER_APPROVAL = {
    **ALL_ALLOWED,
    "power": "approve",
    "create": "approve",
    "modify": "approve",
    "delete": "approve",
}


def _approvers(session_factory, approvers: list[str]) -> None:
    with session_scope(session_factory) as session:
        PolicyRepository(session).set_approvers(
            team_id=TEAM, channel_id=CHANNEL, approvers=approvers, updated_by=ALICE
        )


def _setup(session_factory, approvers=(BOB,)) -> None:
    set_policy(session_factory, UNDER_APPROVAL)
    _approvers(session_factory, list(approvers))


def _request_message(local_slack, index: int = -1):
    """A request posted in the channel (the last one), and its public id."""
    posted = [
        call
        for call in local_slack.api_calls("chat.postMessage")
        if [label for label, _, _ in buttons(call.body)] == ["Approve", "Deny"]
    ]
    request = posted[index]
    [(_, action_id, value), _] = buttons(request.body)
    assert action_id == APPROVE_BUTTON
    return request, value


def _updates_text(local_slack) -> list[str]:
    return [
        "\n".join(block_text(block) for block in call.body["blocks"])
        for call in local_slack.api_calls("chat.update")
    ]


def _ephemerals_to(local_slack, user: str) -> list[str]:
    return [
        call.body["text"]
        for call in local_slack.api_calls("chat.postEphemeral")
        if call.body.get("user") == user
    ]


def _stored_ts(session_factory) -> str | None:
    with session_scope(session_factory) as session:
        [row] = session.query(ApprovalRequest).all()
        return row.message_ts


def _reboots(sandbox) -> list[str]:
    return [path for method, path in sandbox.calls if path.endswith("/reboot/")]


def _outcomes(session_factory) -> list[tuple[str, str, str]]:
    return [(r["user"], r["action"], r["outcome"]) for r in audit_rows(session_factory)]


def test_bob_approves_alices_reboot_and_it_runs_once(
    slack, session_factory, sandbox, local_slack
):
    _setup(session_factory)
    slack.command('reboot web-01 reason="kernel update"')
    request, public_id = _request_message(local_slack)
    sandbox.reset_calls()

    _, bob_answer = slack.press(APPROVE_BUTTON, public_id, user=BOB)
    _, second = slack.press(APPROVE_BUTTON, public_id, user=BOB)

    assert _reboots(sandbox) == [f"/api/v1/servers/{WEB01}/reboot/"]
    assert request.body["text"] == (
        f":raising_hand: <@{ALICE}> asks for approval to *reboot web-01*"
    )
    fields = block_text(request.body["blocks"][1])
    assert "web-01 (id 12345) · `active`" in fields
    assert "kernel update" in fields
    [redrawn] = local_slack.api_calls("chat.update")
    assert redrawn.body["ts"] == _stored_ts(session_factory)
    assert buttons(redrawn.body) == []
    [drawn] = _updates_text(local_slack)
    assert f"Approved by <@{BOB}> at " in drawn
    assert "web-01 is rebooting." in drawn
    assert slack.answer_text(bob_answer) == (
        f"You approved <@{ALICE}>'s request to *reboot web-01*: web-01 is rebooting."
    )
    assert slack.answer_text(second).startswith(
        f"This request was already approved by <@{BOB}> at "
    )
    assert _ephemerals_to(local_slack, ALICE) == [
        f"<@{BOB}> approved your request to *reboot web-01*: web-01 is rebooting."
    ]
    announcements = [
        call.body["text"] for call in local_slack.api_calls("chat.postMessage")
    ]
    assert announcements[-1].startswith(
        f":arrows_counterclockwise: <@{ALICE}> rebooted *web-01* (id 12345)"
    )
    assert "Reason: kernel update" in announcements[-1]
    assert _outcomes(session_factory) == [
        (ALICE, "reboot", "requested"),
        (BOB, "reboot", "approved"),
        (ALICE, "reboot", "succeeded"),
    ]
    assert {r["request_id"] for r in audit_rows(session_factory)} == {public_id}


def test_the_request_message_is_updated_in_place(slack, session_factory, local_slack):
    _setup(session_factory)
    slack.command("reboot web-01")
    posted = local_slack.api_calls("chat.postMessage")[0]
    _, public_id = _request_message(local_slack)

    slack.press(DENY_BUTTON, public_id, user=BOB)

    [redrawn] = local_slack.api_calls("chat.update")
    assert redrawn.body["channel"] == CHANNEL
    assert posted.body["channel"] == CHANNEL
    assert redrawn.body["ts"] == _stored_ts(session_factory)
    assert redrawn.body["ts"] == "1700000001.000100"


def test_alices_own_approve_is_refused(slack, session_factory, sandbox, local_slack):
    _setup(session_factory)
    slack.command("reboot web-01")
    _, public_id = _request_message(local_slack)
    sandbox.reset_calls()

    _, answer = slack.press(APPROVE_BUTTON, public_id, user=ALICE)

    assert slack.answer_text(answer) == (
        "You cannot approve your own request; another approver must. "
        "(Your Deny withdraws it.)"
    )
    [body] = slack.answers(answer)
    assert body["response_type"] == "ephemeral"
    assert sandbox.calls == []
    assert local_slack.api_calls("chat.update") == []
    assert _outcomes(session_factory) == [
        (ALICE, "reboot", "requested"),
        (ALICE, "reboot", "denied"),
    ]


def test_someone_who_is_not_an_approver_is_refused(
    slack, session_factory, sandbox, local_slack
):
    _setup(session_factory)
    slack.command("reboot web-01")
    _, public_id = _request_message(local_slack)
    sandbox.reset_calls()

    _, answer = slack.press(APPROVE_BUTTON, public_id, user=CAROL)

    assert slack.answer_text(answer) == (
        f"You are not an approver in this channel, so nothing was done. "
        f"Approvers here: <@{BOB}>."
    )
    assert sandbox.calls == []
    assert _outcomes(session_factory)[-1] == (CAROL, "reboot", "denied")


def test_a_user_group_approver_is_resolved_through_slack(
    slack, session_factory, sandbox, local_slack
):
    _setup(session_factory, approvers=["S0OPS"])
    local_slack.groups["S0OPS"] = [CAROL]
    slack.command("reboot web-01")
    _, public_id = _request_message(local_slack)
    sandbox.reset_calls()

    _, refused = slack.press(APPROVE_BUTTON, public_id, user=BOB)
    slack.press(APPROVE_BUTTON, public_id, user=CAROL)

    assert "Approvers here: <!subteam^S0OPS>." in slack.answer_text(refused)
    assert _reboots(sandbox) == [f"/api/v1/servers/{WEB01}/reboot/"]
    groups = local_slack.api_calls("usergroups.users.list")
    assert [call.body["usergroup"] for call in groups] == ["S0OPS", "S0OPS"]


def test_a_group_slack_cannot_read_just_now_decides_nothing(
    slack, session_factory, sandbox, local_slack
):
    _setup(session_factory, approvers=["S0OPS"])
    local_slack.groups["S0OPS"] = [CAROL]
    slack.command("reboot web-01")
    _, public_id = _request_message(local_slack)
    sandbox.reset_calls()
    local_slack.fail("usergroups.users.list", "ratelimited", status=429, retry_after=1)

    _, first = slack.press(APPROVE_BUTTON, public_id, user=CAROL)
    _, second = slack.press(APPROVE_BUTTON, public_id, user=CAROL)

    assert slack.answer_text(first).startswith(
        "vpsbot could not check the user groups that approve here just now"
    )
    assert slack.answer_text(second).startswith("You approved ")
    assert _reboots(sandbox) == [f"/api/v1/servers/{WEB01}/reboot/"]
    assert [outcome for _, _, outcome in _outcomes(session_factory)] == [
        "requested",
        "approved",
        "succeeded",
    ]


def test_deny_runs_nothing_and_says_who_denied(
    slack, session_factory, sandbox, local_slack
):
    _setup(session_factory)
    slack.command("reboot web-01")
    _, public_id = _request_message(local_slack)
    sandbox.reset_calls()

    _, answer = slack.press(DENY_BUTTON, public_id, user=BOB)
    _, late = slack.press(APPROVE_BUTTON, public_id, user=BOB)

    assert sandbox.calls == []
    assert slack.answer_text(answer) == (
        f"You denied <@{ALICE}>'s request to *reboot web-01*; nothing was done."
    )
    assert "This request was already closed" in slack.answer_text(late)
    [drawn] = _updates_text(local_slack)
    assert f"Denied by <@{BOB}> at " in drawn
    assert _ephemerals_to(local_slack, ALICE) == [
        f"<@{BOB}> denied your request to *reboot web-01*; nothing was done."
    ]
    assert _outcomes(session_factory) == [
        (ALICE, "reboot", "requested"),
        (BOB, "reboot", "rejected"),
    ]


def test_an_expired_requests_buttons_say_so_and_nothing_runs(
    slack, session_factory, sandbox, local_slack
):
    _setup(session_factory)
    slack.command("reboot web-01")
    _, public_id = _request_message(local_slack)
    past = datetime.now(UTC) - timedelta(seconds=5)
    with session_scope(session_factory) as session:
        session.execute(update(ApprovalRequest).values(expires_at=past))
    sandbox.reset_calls()

    _, answer = slack.press(APPROVE_BUTTON, public_id, user=BOB)
    _, again = slack.press(DENY_BUTTON, public_id, user=BOB)

    assert sandbox.calls == []
    assert slack.answer_text(answer) == (
        f"This request expired at <!date^{int(past.timestamp())}^{{date_num}} "
        f"{{time}}|{past:%Y-%m-%d %H:%M} UTC>; nothing was done."
    )
    assert slack.answer_text(again) == slack.answer_text(answer)
    [drawn] = _updates_text(local_slack)
    assert "Expired at " in drawn
    assert "without a decision; nothing was done." in drawn
    assert _outcomes(session_factory) == [
        (ALICE, "reboot", "requested"),
        (ALICE, "reboot", "expired"),
    ]


def test_the_expiry_loop_redraws_the_request_and_tells_the_requester(
    slack, bot, session_factory, sandbox, local_slack
):
    _setup(session_factory)
    slack.command("reboot web-01")
    with session_scope(session_factory) as session:
        session.execute(
            update(ApprovalRequest).values(
                expires_at=datetime.now(UTC) - timedelta(seconds=1)
            )
        )

    assert bot.expiry.run_once() == 1
    assert bot.expiry.run_once() == 0

    [drawn] = _updates_text(local_slack)
    assert "Expired at " in drawn
    assert _ephemerals_to(local_slack, ALICE) == [
        "Nobody decided on your request to *reboot web-01* in time; it expired "
        "and nothing was done."
    ]
    assert _outcomes(session_factory)[-1] == (ALICE, "reboot", "expired")


def test_the_requester_can_cancel_from_the_waiting_note(
    slack, session_factory, sandbox, local_slack
):
    _setup(session_factory)
    _, name = slack.command("reboot web-01")
    [(label, action_id, public_id)] = buttons(slack.answers(name)[0])
    sandbox.reset_calls()

    _, answer = slack.press(action_id, public_id, user=ALICE)
    _, late = slack.press(APPROVE_BUTTON, public_id, user=BOB)

    assert (label, action_id) == ("Cancel request", CANCEL_REQUEST_BUTTON)
    assert slack.answers(answer)[0]["replace_original"] is True
    assert slack.answer_text(answer).startswith(
        "Your request to *reboot web-01* is cancelled; nothing was done."
    )
    assert slack.answer_text(late) == (
        "The requester already cancelled this request; nothing was done."
    )
    assert sandbox.calls == []
    [drawn] = _updates_text(local_slack)
    assert "Cancelled by the requester at " in drawn
    assert _outcomes(session_factory) == [
        (ALICE, "reboot", "requested"),
        (ALICE, "reboot", "cancelled"),
    ]


def test_approvals_lists_pending_requests_with_their_buttons(
    slack, session_factory, local_slack
):
    _setup(session_factory)
    slack.command("reboot web-01")
    slack.command("rename web-02 web-22", user=BOB)
    _, first = _request_message(local_slack, 0)
    slack.press(DENY_BUTTON, first, user=BOB)

    _, name = slack.command("approvals", user=CAROL)

    text = slack.answer_text(name)
    assert "*1 pending approval request*" in text
    assert f"<@{BOB}>: *rename web-02 to web-22*" in text
    [body] = slack.answers(name)
    labels = [(label, action_id) for label, action_id, _ in buttons(body)]
    assert labels == [("Approve", APPROVE_BUTTON), ("Deny", DENY_BUTTON)]
    assert _outcomes(session_factory)[-1] == (CAROL, "list", "succeeded")


def _open_create(slack, local_slack) -> dict:
    slack.command('create reason="new web node"')
    [filled] = local_slack.api_calls("views.update")
    return {**filled.body["view"], "id": filled.body["view_id"], "hash": "h-1"}


def test_a_create_dialog_under_approve_becomes_a_request_and_creates_once(
    slack, session_factory, sandbox, local_slack
):
    _setup(session_factory)
    view = _open_create(slack, local_slack)
    sandbox.reset_calls()
    fields = {
        "name": "web-03",
        "plan": "1",
        "os": "5",
        "location": "us-west",
        "hostname": "web-03.example.com",
        "backups": "on",
    }

    slack.submit(view, {key: {FORM_ACTION: value} for key, value in fields.items()})

    assert sandbox.calls == []
    shown = local_slack.api_calls("views.update")[-1].body["view"]
    assert shown["blocks"][0]["text"]["text"].startswith(
        "Sent for approval; the request is in the channel."
    )
    request, public_id = _request_message(local_slack)
    assert request.body["text"] == (
        f":raising_hand: <@{ALICE}> asks for approval to *create web-03 (Standard "
        f"VPS, Ubuntu 22.04 LTS, us-west, backups on, hostname web-03.example.com)*"
    )

    slack.press(APPROVE_BUTTON, public_id, user=BOB)
    slack.press(APPROVE_BUTTON, public_id, user=BOB)

    assert [path for method, path in sandbox.calls if method == "POST"] == [
        "/api/v1/servers/"
    ]
    [created] = [s for s in sandbox.list_servers() if s["name"] == "web-03"]
    assert (created["plan"]["id"], created["os"]["id"], created["location"]) == (
        1,
        5,
        "us-west",
    )
    assert (created["hostname"], created["backups_enabled"]) == (
        "web-03.example.com",
        True,
    )
    announcement = local_slack.api_calls("chat.postMessage")[-1].body["text"]
    assert announcement.startswith(f":new: <@{ALICE}> ordered *web-03*")
    assert _outcomes(session_factory) == [
        (ALICE, "create", "requested"),
        (BOB, "create", "approved"),
        (ALICE, "create", "succeeded"),
    ]


def test_a_delete_dialog_under_approve_becomes_a_request(
    slack, session_factory, sandbox, local_slack
):
    _setup(session_factory)
    slack.command("delete web-02")
    [filled] = local_slack.api_calls("views.update")
    view = {**filled.body["view"], "id": filled.body["view_id"]}
    sandbox.reset_calls()
    typed = {DELETE_NAME_BLOCK: {DELETE_NAME_ACTION: "web-02"}}

    slack.submit(view, typed)
    slack.submit(view, typed)

    assert [m for m, _ in sandbox.calls if m == "DELETE"] == []
    posted = [
        call for call in local_slack.api_calls("chat.postMessage") if buttons(call.body)
    ]
    assert len(posted) == 1
    _, public_id = _request_message(local_slack)

    slack.press(APPROVE_BUTTON, public_id, user=BOB)

    assert [path for method, path in sandbox.calls if method == "DELETE"] == [
        "/api/v1/servers/12346/"
    ]
    assert all(s["name"] != "web-02" for s in sandbox.list_servers())
    assert _outcomes(session_factory) == [
        (ALICE, "delete", "requested"),
        (BOB, "delete", "approved"),
        (ALICE, "delete", "succeeded"),
    ]


def test_a_power_button_under_approve_posts_a_request(
    slack, session_factory, sandbox, local_slack
):
    _setup(session_factory)
    sandbox.reset_calls()

    slack.press("vps_stop", str(WEB01), user=ALICE)

    assert sandbox.calls[-1][0] == "GET"
    request, _ = _request_message(local_slack)
    assert "asks for approval to *stop web-01*" in request.body["text"]
    assert _outcomes(session_factory) == [(ALICE, "stop", "requested")]


def test_a_request_for_a_server_renamed_meanwhile_goes_stale(
    slack, session_factory, sandbox, local_slack
):
    _setup(session_factory)
    slack.command("reboot web-01")
    _, public_id = _request_message(local_slack)
    set_policy(session_factory, {**UNDER_APPROVAL, "modify": "allow"})
    slack.command("rename web-01 web-11", user=BOB)
    sandbox.reset_calls()

    slack.press(APPROVE_BUTTON, public_id, user=BOB)

    assert _reboots(sandbox) == []
    [drawn] = _updates_text(local_slack)
    assert "Stale: web-01 was renamed to web-11; nothing was done" in drawn
    assert _ephemerals_to(local_slack, ALICE) == [
        f"<@{BOB}> approved your request to *reboot web-01*, but: Stale: web-01 "
        f"was renamed to web-11; nothing was done"
    ]


def test_a_request_that_cannot_be_posted_is_withdrawn_not_left_open(
    slack, session_factory, sandbox, local_slack
):
    _setup(session_factory)
    local_slack.fail("chat.postMessage", "ratelimited", status=429, retry_after=30)

    _, answer = slack.command("reboot web-01")

    assert slack.answer_text(answer) == (
        "vpsbot could not post your approval request in this channel (Slack "
        "answered ratelimited), so it was withdrawn and nothing was done. Please "
        "try again in a minute."
    )
    with session_scope(session_factory) as session:
        [row] = session.query(ApprovalRequest).all()
        assert (row.status, row.message_ts) == ("cancelled", None)
        public_id = row.request_id
    sandbox.reset_calls()
    _, bob_answer = slack.press(APPROVE_BUTTON, public_id, user=BOB)
    assert _reboots(sandbox) == []
    assert "cancelled" in slack.answer_text(bob_answer).lower()
    assert _outcomes(session_factory) == [
        (ALICE, "reboot", "requested"),
        (ALICE, "reboot", "cancelled"),
    ]


def test_a_long_escaped_reason_is_clipped_to_slacks_field_limit(
    slack, session_factory, local_slack
):
    _setup(session_factory)

    slack.command('reboot web-01 reason="' + "&" * 500 + '"')

    request, _ = _request_message(local_slack)
    reason_field = request.body["blocks"][1]["fields"][1]["text"]
    assert len(reason_field) <= 2000
    assert reason_field.endswith("&amp;…")
