"""Slash commands end to end: signed HTTP requests to the served app."""

from __future__ import annotations

import io
import json
import time

import pytest

from tests.slack.conftest import (
    ALICE,
    ALL_ALLOWED,
    BOB,
    CHANNEL,
    SECRET,
    TEAM,
    buttons,
    set_policy,
)
from vpsbot import audit, payloads
from vpsbot.store import session_scope


def audit_rows(session_factory) -> list[dict]:
    out = io.StringIO()
    with session_scope(session_factory) as session:
        audit.export(session, out, fmt="jsonl")
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_list_shows_every_server_to_the_asker_only(slack, session_factory, sandbox):
    set_policy(session_factory, ALL_ALLOWED)

    response, name = slack.command("list")

    assert response.status_code == 200
    assert response.text == ""
    [answer] = slack.answers(name)
    assert answer["response_type"] == "ephemeral"
    text = slack.answer_text(name)
    for server in ("web-01", "web-02", "db-01", "staging-01"):
        assert server in text
    assert "*4 servers*" in text
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"], row["user"], row["channel"]) == (
        "list",
        "succeeded",
        ALICE,
        CHANNEL,
    )
    assert row["detail"] == "4 servers"


def test_list_filters_by_status_and_location_words(slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)

    _, name = slack.command("LIST   stopped  us-east")

    text = slack.answer_text(name)
    assert "staging-01" in text
    assert "web-01" not in text and "web-02" not in text
    assert audit_rows(session_factory)[0]["detail"] == (
        "1 server (status=stopped location=us-east)"
    )


def test_channel_without_policy_denies_and_names_the_admins(
    slack, session_factory, sandbox
):
    sandbox.reset_calls()

    _, name = slack.command("list", user=BOB)

    text = slack.answer_text(name)
    assert "no vpsbot policy" in text
    assert f"<@{ALICE}>" in text
    assert sandbox.calls == []
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"], row["user"]) == ("list", "denied", BOB)


def test_show_draws_the_buttons_the_state_allows(slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)

    _, active = slack.command("show web-01")
    _, stopped = slack.command("show staging-01")

    [card] = slack.answers(active)
    assert [label for label, _, _ in buttons(card)] == ["Stop", "Reboot", "Delete"]
    assert "*IPv4*\n203.0.113.22" in slack.answer_text(active)
    [card] = slack.answers(stopped)
    assert [label for label, _, _ in buttons(card)] == ["Start", "Delete"]
    stop_button = next(
        element
        for block in slack.answers(active)[0]["blocks"]
        for element in block.get("elements", [])
        if isinstance(element, dict) and element.get("action_id") == "vps_stop"
    )
    assert stop_button["confirm"]["confirm"]["text"] == "Stop"


def test_unknown_command_is_answered_in_the_ack_and_not_audited(
    slack, session_factory, local_slack
):
    set_policy(session_factory, ALL_ALLOWED)

    response, name = slack.command("frobnicate web-01")

    body = response.json()
    assert "`frobnicate` is not a vpsbot command" in body["text"]
    assert body["response_type"] == "ephemeral"
    assert slack.answers(name) == []
    assert audit_rows(session_factory) == []


def test_five_thousand_characters_get_one_sentence(slack, session_factory):
    response, _ = slack.command("show " + "x" * 5000)

    assert "5,005 characters long" in response.json()["text"]
    assert audit_rows(session_factory) == []


def test_unicode_server_name_is_refused_plainly(slack, session_factory):
    response, _ = slack.command("show wéb-01 ✨")

    assert "That `show` is not quite right" in response.json()["text"]


def test_delete_without_a_server_shows_the_right_form(slack):
    response, _ = slack.command("delete")

    text = response.json()["text"]
    assert "it needs a server id or name" in text
    assert '/vps delete <server> [reason="…"]' in text


def test_unknown_server_gets_a_suggestion_and_a_failed_entry(slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)

    _, name = slack.command("show web-1")

    assert "There is no server called web-1. Did you mean web-01?" in (
        slack.answer_text(name)
    )
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"], row["server_name"]) == (
        "show",
        "failed",
        "web-1",
    )


def test_a_name_shared_by_two_servers_asks_for_the_id(slack, session_factory, sandbox):
    set_policy(session_factory, ALL_ALLOWED)
    twin = sandbox.add_server(name="web-01", location="us-east")

    _, name = slack.command("reboot web-01")

    text = slack.answer_text(name)
    assert "2 servers are named web-01" in text
    assert str(twin["id"]) in text
    assert not any(path.endswith("/reboot/") for _, path in sandbox.calls)


def test_typed_reboot_runs_at_once_and_is_announced(
    slack, session_factory, sandbox, local_slack
):
    set_policy(session_factory, ALL_ALLOWED)
    web01 = next(s for s in sandbox.list_servers() if s["name"] == "web-01")

    _, name = slack.command('reboot web-01 reason="kernel update"')

    assert sandbox.get(web01["id"])["status"] == "rebooting"
    [post] = local_slack.api_calls("chat.postMessage")
    assert post.body["channel"] == CHANNEL
    assert f"<@{ALICE}> rebooted *web-01*" in post.body["text"]
    assert "Reason: kernel update" in post.body["text"]
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"], row["server_id"]) == (
        "reboot",
        "succeeded",
        web01["id"],
    )
    assert "(reason: kernel update)" in row["detail"]


def test_start_of_a_running_server_is_a_friendly_no_op(slack, session_factory, sandbox):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.reset_calls()

    _, name = slack.command("start web-01")

    assert "web-01 is already running; nothing was done." in slack.answer_text(name)
    assert [m for m, p in sandbox.calls if m == "POST"] == []
    assert audit_rows(session_factory)[0]["outcome"] == "failed"


def test_announcement_falls_back_when_the_bot_is_not_in_the_channel(
    slack, session_factory, local_slack
):
    set_policy(session_factory, ALL_ALLOWED, channel="D0DM")
    local_slack.fail("chat.postMessage", "channel_not_found")

    _, name = slack.command("stop web-02", channel="D0DM")

    [answer] = slack.answers(name)
    assert answer["response_type"] == "in_channel"
    assert "stopped *web-02*" in answer["text"]


def test_provider_failure_on_a_read_is_one_sentence(slack, session_factory, sandbox):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.fail_next(500, times=10)

    _, name = slack.command("list")

    text = slack.answer_text(name)
    assert "VPS.org" in text
    assert "Traceback" not in text and "<html" not in text.lower()
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"]) == ("list", "failed")


def test_provider_failure_on_a_power_action_is_not_resent(
    slack, session_factory, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.reset_calls()
    sandbox.fail_next(500, times=5, path_contains="/reboot/")

    _, name = slack.command("reboot web-01")

    reboots = [path for method, path in sandbox.calls if path.endswith("/reboot/")]
    assert len(reboots) == 1
    assert slack.answer_text(name) == (
        "VPS.org had an internal error (HTTP 500); nothing was changed that we "
        "know of, but check `/vps list` before trying again."
    )
    assert audit_rows(session_factory)[-1]["outcome"] == "failed"


def test_a_lost_answer_to_a_reboot_is_looked_up_not_resent(
    slack, session_factory, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.reset_calls()
    sandbox.fail_next(504, path_contains="/reboot/")

    _, name = slack.command("reboot web-01")

    reboots = [path for method, path in sandbox.calls if path.endswith("/reboot/")]
    assert reboots == ["/api/v1/servers/12345/reboot/"]
    assert sandbox.calls[-1] == ("GET", "/api/v1/servers/12345/")
    assert slack.answer_text(name) == (
        "VPS.org's answer to the reboot of web-01 was lost, so vpsbot did not "
        "send it again. A fresh look shows that web-01 is `active`."
    )
    row = audit_rows(session_factory)[-1]
    assert (row["action"], row["outcome"], row["server_id"]) == (
        "reboot",
        "failed",
        12345,
    )
    assert row["detail"] == (
        "outcome unknown: the answer was lost; a fresh look showed that web-01 is "
        "`active`"
    )


def test_approve_rule_posts_an_approval_request_instead(
    slack, session_factory, sandbox, local_slack
):
    set_policy(session_factory, {**ALL_ALLOWED, "modify": "approve"})
    sandbox.reset_calls()

    _, name = slack.command('rename web-01 web-99 reason="naming scheme"')

    assert not [m for m, _ in sandbox.calls if m == "PATCH"]
    [request] = local_slack.api_calls("chat.postMessage")
    assert request.body["channel"] == CHANNEL
    assert [label for label, _, _ in buttons(request.body)] == ["Approve", "Deny"]
    assert "asks for approval to *rename web-01 to web-99*" in request.body["text"]
    [note] = slack.answers(name)
    assert note["response_type"] == "ephemeral"
    assert [label for label, _, _ in buttons(note)] == ["Cancel request"]
    assert "is waiting for approval" in slack.answer_text(name)
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"], row["user"]) == (
        "rename",
        "requested",
        ALICE,
    )
    assert row["detail"] == (
        "approval requested: rename web-01 to web-99 (reason: naming scheme)"
    )


def test_rename_and_backups_send_one_patch_each(slack, session_factory, sandbox):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.reset_calls()

    slack.command("rename web-02 web-20")
    slack.command("backups web-20 off")
    _, again = slack.command("backups web-20 off")

    patches = [path for method, path in sandbox.calls if method == "PATCH"]
    assert patches == ["/api/v1/servers/12346/", "/api/v1/servers/12346/"]
    renamed = next(s for s in sandbox.list_servers() if s["name"] == "web-20")
    assert renamed["backups_enabled"] is False
    assert "backups were already off for web-20" in slack.answer_text(again)
    rows = [
        (r["action"], r["outcome"], r["detail"]) for r in audit_rows(session_factory)
    ]
    assert rows == [
        ("rename", "succeeded", "renamed web-02 to web-20"),
        ("backups", "succeeded", "backups off"),
        ("backups", "succeeded", "already off; nothing sent"),
    ]


def test_policy_changes_are_for_admins_and_audited(slack, session_factory):
    _, refused = slack.command("policy read=allow", user=BOB)
    _, granted = slack.command("policy read=allow power=approve", user=ALICE)
    _, shown = slack.command("policy", user=BOB)

    assert "Only admins can change the policy" in slack.answer_text(refused)
    assert "`read` = *allow*" in slack.answer_text(shown)
    assert "`power` = *approve*" in slack.answer_text(shown)
    assert "`delete` = *deny*" in slack.answer_text(shown)
    [announcement] = slack.local.api_calls("chat.postMessage")
    assert announcement.body["channel"] == CHANNEL
    assert announcement.body["blocks"][0]["text"]["text"] == (
        f"<@{ALICE}> changed this channel's vpsbot policy: `read=allow` `power=approve`"
    )
    rows = [(r["user"], r["action"], r["outcome"]) for r in audit_rows(session_factory)]
    assert rows == [(BOB, "policy", "denied"), (ALICE, "policy", "succeeded")]


def test_help_marks_what_the_asker_may_do_here(slack, session_factory):
    set_policy(session_factory, {"read": "allow", "delete": "approve"})

    _, name = slack.command("", user=BOB)

    text = slack.answer_text(name)
    assert ":white_check_mark: `/vps list [status] [location]`" in text
    assert ":hourglass: `/vps delete <server>` — needs approval" in text
    assert "— not allowed here" in text


def test_audit_shows_this_channels_entries_newest_first(slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)
    set_policy(session_factory, ALL_ALLOWED, channel="C0OTHER")
    slack.command("reboot web-01")
    slack.command("list", channel="C0OTHER")

    _, name = slack.command("audit web-01 action=reboot")

    text = slack.answer_text(name)
    assert f"<@{ALICE}> reboot *web-01* → *succeeded*" in text
    assert "list" not in text.split("newest first", 1)[1]


def test_signature_problems_get_401_and_record_nothing(
    slack, session_factory, local_slack
):
    set_policy(session_factory, ALL_ALLOWED)
    body = payloads.slash_command(
        "list",
        team_id=TEAM,
        channel_id=CHANNEL,
        user_id=ALICE,
        response_url=local_slack.response_url("x"),
    )
    forged = payloads.signed_headers("not-the-secret", body)
    stale = payloads.signed_headers(SECRET, body, timestamp=int(time.time()) - 600)
    garbage = {
        **payloads.signed_headers(SECRET, body),
        "x-slack-request-timestamp": "yesterday",
    }

    statuses = [
        slack.post(body, headers=h).status_code for h in (forged, stale, garbage)
    ]

    assert statuses == [401, 401, 401]
    assert audit_rows(session_factory) == []
    assert local_slack.calls == []


def test_unsigned_junk_is_refused_before_it_is_parsed(slack, caplog):
    now = str(int(time.time()))
    fake_signature = {
        "x-slack-request-timestamp": now,
        "x-slack-signature": "v0=" + "0" * 64,
    }
    junk = [
        ("{bad", "application/json"),
        ("payload=%7Bbad", "application/x-www-form-urlencoded"),
        ("[" * 100_000, "application/json"),
    ]

    statuses = [
        slack.post(body, headers={**fake_signature, "content-type": kind}).status_code
        for body, kind in junk
    ]

    assert statuses == [401, 401, 401]
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


@pytest.mark.parametrize(
    "body",
    [
        "payload=%7Bbad",
        "payload=%7B%22type%22%3A",
    ],
)
def test_signed_but_unreadable_payload_gets_400(slack, sandbox, body):
    sandbox.reset_calls()

    response = slack.post(body, headers=payloads.signed_headers(SECRET, body))

    assert response.status_code == 400
    assert response.json() == {"error": "unreadable payload"}
    assert sandbox.calls == []


def test_a_reason_cannot_ping_the_channel_or_hide_a_link(
    slack, session_factory, local_slack
):
    set_policy(session_factory, ALL_ALLOWED)

    # Slack escapes what the user typed; vpsbot must not undo that in mrkdwn.
    slack.command(
        "reboot web-01 "
        'reason="&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp;"'
    )

    [announcement] = local_slack.api_calls("chat.postMessage")
    text = announcement.body["blocks"][0]["text"]["text"]
    assert text.endswith(
        "Reason: &lt;!channel&gt; &lt;https://evil.example|click&gt; &amp;"
    )
    assert "<!channel>" not in json.dumps(announcement.body)
    _, shown = slack.command("audit")
    assert "&lt;!channel&gt;" in slack.answer_text(shown)
    assert "<!channel>" not in slack.answer_text(shown)


def test_ack_comes_before_a_slow_provider_answers(slack, session_factory, sandbox):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.latency = 3.0

    response, name = slack.command("list", wait=False)

    assert response.status_code == 200
    assert slack.answers(name) == []
    assert slack.bot.background.wait_idle(timeout=30)
    assert "web-01" in slack.answer_text(name)


def test_an_id_too_large_for_any_server_is_a_plain_no_such_server(
    slack, session_factory
):
    set_policy(session_factory, ALL_ALLOWED)
    huge = "9" * 26

    _, name = slack.command(f"start {huge}")

    assert slack.answer_text(name) == (
        f"There is no server called {huge}. `/vps list` shows the servers."
    )
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"], row["server_id"]) == (
        "start",
        "failed",
        None,
    )
    assert row["server_name"] == huge


def test_rename_to_a_name_another_server_has_is_refused(
    slack, session_factory, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.reset_calls()

    _, name = slack.command("rename db-01 web-02")

    assert slack.answer_text(name) == (
        "web-02 is already the name of server 12346, and `/vps` finds servers by "
        "name; nothing was done."
    )
    assert [method for method, _ in sandbox.calls if method == "PATCH"] == []
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"], row["server_name"]) == (
        "rename",
        "failed",
        "db-01",
    )


def test_the_providers_own_words_are_shown_as_text(slack, session_factory, sandbox):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.fail_next(
        400,
        body={"detail": "Pay at <https://evil.example|billing> <!channel> & more"},
        path_contains="/stop/",
    )

    _, name = slack.command("stop web-01")

    assert slack.answer_text(name) == (
        "VPS.org refused to do this: Pay at &lt;https://evil.example|billing&gt; "
        "&lt;!channel&gt; &amp; more."
    )


def test_a_change_whose_entry_cannot_be_written_is_announced_and_logged(
    slack, session_factory, sandbox, local_slack, audit_refused, caplog
):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.reset_calls()

    slack.command("reboot web-01")

    reboots = [path for method, path in sandbox.calls if path.endswith("/reboot/")]
    assert reboots == ["/api/v1/servers/12345/reboot/"]
    [announcement] = local_slack.api_calls("chat.postMessage")
    assert announcement.body["text"].endswith(
        "Note: vpsbot could not write this to its audit log (the database stopped "
        "answering); the details are in the server log."
    )
    [logged] = [
        record
        for record in caplog.records
        if record.getMessage().startswith("audit entry could not be written")
    ]
    assert logged.levelname == "ERROR"
    assert '"action": "reboot", "outcome": "succeeded"' in logged.getMessage()


def test_rename_to_another_servers_name_in_other_case_is_refused(
    slack, session_factory, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.reset_calls()

    _, name = slack.command("rename db-01 WEB-02")

    assert slack.answer_text(name).startswith(
        "WEB-02 is already the name of server 12346"
    )
    assert [method for method, _ in sandbox.calls if method == "PATCH"] == []


def test_a_no_op_keeps_its_reason_in_the_audit_log(slack, session_factory, sandbox):
    set_policy(session_factory, ALL_ALLOWED)

    _, name = slack.command('backups web-02 on reason="weekly check"')

    assert slack.answer_text(name) == (
        "backups were already on for web-02; nothing was sent."
    )
    [row] = audit_rows(session_factory)
    assert row["detail"] == "already on; nothing sent (reason: weekly check)"


def test_a_refused_word_is_echoed_as_text(slack):
    response, _ = slack.command("show &lt;!channel&gt;")

    assert response.json()["text"].startswith(
        "That `show` is not quite right: `&lt;!channel&gt;` is not"
    )
