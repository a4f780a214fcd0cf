"""Buttons and the typed-name Delete dialog, end to end over HTTP."""

from __future__ import annotations

import threading

import pytest

from tests.slack.conftest import ALICE, ALL_ALLOWED, BOB, CHANNEL, TEAM, set_policy
from tests.slack.test_commands import audit_rows
from vpsbot import payloads
from vpsbot.slack.ids import DELETE_NAME_ACTION, DELETE_NAME_BLOCK


def _server(sandbox, name):
    return next(s for s in sandbox.list_servers() if s["name"] == name)


def test_reboot_button_reboots_announces_and_redraws_the_card(
    slack, session_factory, sandbox, local_slack
):
    set_policy(session_factory, ALL_ALLOWED)
    web01 = _server(sandbox, "web-01")

    response, name = slack.press("vps_reboot", str(web01["id"]), user=BOB)

    assert response.status_code == 200
    assert sandbox.get(web01["id"])["status"] == "rebooting"
    [post] = local_slack.api_calls("chat.postMessage")
    assert f"<@{BOB}> rebooted *web-01*" in post.body["text"]
    [redraw] = slack.answers(name)
    assert redraw["replace_original"] is True
    assert "`rebooting`" in slack.answer_text(name)
    [row] = audit_rows(session_factory)
    assert (row["user"], row["action"], row["outcome"]) == (BOB, "reboot", "succeeded")


def test_policy_is_checked_again_when_a_button_is_pressed(
    slack, session_factory, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    web01 = _server(sandbox, "web-01")
    set_policy(session_factory, {"power": "deny"})
    sandbox.reset_calls()

    _, name = slack.press("vps_stop", str(web01["id"]))

    assert "does not allow `power`" in slack.answer_text(name)
    assert sandbox.calls == []
    assert audit_rows(session_factory)[-1]["outcome"] == "denied"


def test_a_button_pressed_twice_at_once_reboots_once(slack, session_factory, sandbox):
    set_policy(session_factory, ALL_ALLOWED)
    web01 = _server(sandbox, "web-01")
    sandbox.latency = 0.3
    sandbox.reset_calls()
    names = []

    def click() -> None:
        names.append(slack.press("vps_reboot", str(web01["id"]), wait=False)[1])

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join()
    assert slack.bot.background.wait_idle(timeout=30)

    reboots = [path for method, path in sandbox.calls if path.endswith("/reboot/")]
    assert len(reboots) == 1
    outcomes = sorted(r["outcome"] for r in audit_rows(session_factory))
    assert outcomes == ["failed", "succeeded"]
    texts = " ".join(slack.answer_text(name) for name in names)
    assert ("under way" in texts) or ("is rebooting, so it cannot reboot" in texts)


def test_the_same_click_delivered_twice_runs_once(slack, session_factory, sandbox):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.reset_calls()
    name, url = slack.response_url()
    body = payloads.block_action(
        {"action_id": "vps_reboot", "value": "12345"},
        team_id=TEAM,
        channel_id=CHANNEL,
        user_id=ALICE,
        response_url=url,
        trigger_id="1234.5678.redelivered",
    )

    first = slack.post(body)
    second = slack.post(body)

    assert (first.status_code, second.status_code) == (200, 200)
    reboots = [path for method, path in sandbox.calls if path.endswith("/reboot/")]
    assert reboots == ["/api/v1/servers/12345/reboot/"]
    assert slack.answers(name)[-1]["text"] == (
        "This click was already received and handled; it is not run twice."
    )
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"]) == ("reboot", "succeeded")


def _open_delete_dialog(slack, local_slack, text="delete web-02"):
    slack.command(text)
    [opened] = local_slack.api_calls("views.open")
    assert opened.body["view"]["title"]["text"] == "Delete server"
    [filled] = local_slack.api_calls("views.update")
    return opened, filled


def test_delete_dialog_opens_first_then_asks_for_the_name(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.reset_calls()

    opened, filled = _open_delete_dialog(slack, local_slack)

    assert local_slack.calls.index(opened) < local_slack.calls.index(filled)
    [loading] = opened.body["view"]["blocks"]
    assert loading["text"]["text"] == "Looking up web-02…"
    view = filled.body["view"]
    [field] = [b for b in view["blocks"] if b["type"] == "input"]
    assert field["label"]["text"] == "Server name"
    assert field["block_id"] == DELETE_NAME_BLOCK
    assert not [m for m, _ in sandbox.calls if m == "DELETE"]
    assert audit_rows(session_factory) == []


def test_delete_with_the_wrong_name_is_refused_inline(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    _, filled = _open_delete_dialog(slack, local_slack)
    view = {**filled.body["view"], "id": filled.body["view_id"]}

    response = slack.submit(view, {DELETE_NAME_BLOCK: {DELETE_NAME_ACTION: "web-01"}})

    answer = response.json()
    assert answer["response_action"] == "errors"
    assert answer["errors"][DELETE_NAME_BLOCK] == (
        "That is not this server's name. Type web-02 exactly; nothing was deleted."
    )
    assert not [m for m, _ in sandbox.calls if m == "DELETE"]
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"], row["server_id"], row["server_name"]) == (
        "delete",
        "failed",
        12346,
        "web-02",
    )
    assert row["detail"] == "typed name 'web-01' did not match; nothing deleted"


def test_delete_submitted_twice_deletes_once(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    web02 = _server(sandbox, "web-02")
    _, filled = _open_delete_dialog(slack, local_slack)
    view = {**filled.body["view"], "id": filled.body["view_id"]}
    sandbox.reset_calls()
    typed = {DELETE_NAME_BLOCK: {DELETE_NAME_ACTION: "web-02"}}

    first = slack.submit(view, typed)
    second = slack.submit(view, typed)

    assert (first.status_code, first.text) == (200, "")
    assert (second.status_code, second.text) == (200, "")
    deletes = [path for method, path in sandbox.calls if method == "DELETE"]
    assert deletes == [f"/api/v1/servers/{web02['id']}/"]
    assert all(s["name"] != "web-02" for s in sandbox.list_servers())
    [announce] = local_slack.api_calls("chat.postMessage")
    assert f"<@{ALICE}> deleted *web-02*" in announce.body["text"]
    answers = [c.body.get("text", "") for c in local_slack.responses()]
    assert any("was already submitted" in text for text in answers)
    rows = [(r["action"], r["outcome"]) for r in audit_rows(session_factory)]
    assert rows == [("delete", "succeeded")]


def test_a_delete_refused_before_any_provider_call_can_be_submitted_again(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    _, filled = _open_delete_dialog(slack, local_slack)
    view = {**filled.body["view"], "id": filled.body["view_id"]}
    typed = {DELETE_NAME_BLOCK: {DELETE_NAME_ACTION: "web-02"}}
    set_policy(session_factory, {**ALL_ALLOWED, "delete": "deny"})
    sandbox.reset_calls()

    slack.submit(view, typed)
    refused_deletes = [path for method, path in sandbox.calls if method == "DELETE"]
    set_policy(session_factory, ALL_ALLOWED)
    slack.submit(view, typed)

    assert refused_deletes == []
    deletes = [path for method, path in sandbox.calls if method == "DELETE"]
    assert deletes == ["/api/v1/servers/12346/"]
    rows = [(r["action"], r["outcome"]) for r in audit_rows(session_factory)]
    assert rows == [("delete", "denied"), ("delete", "succeeded")]


def test_delete_of_a_server_renamed_since_the_dialog_opened_does_nothing(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    web02 = _server(sandbox, "web-02")
    _, filled = _open_delete_dialog(slack, local_slack)
    view = {**filled.body["view"], "id": filled.body["view_id"]}
    slack.command("rename web-02 web-22")
    sandbox.reset_calls()

    slack.submit(view, {DELETE_NAME_BLOCK: {DELETE_NAME_ACTION: "web-02"}})

    assert not [m for m, _ in sandbox.calls if m == "DELETE"]
    assert sandbox.get(web02["id"])["name"] == "web-22"
    answers = " ".join(c.body.get("text", "") for c in local_slack.responses())
    assert "is now called web-22, not web-02, so nothing was deleted" in answers
    assert audit_rows(session_factory)[-1]["outcome"] == "failed"


def test_delete_dialog_for_a_denied_user_says_so_in_the_dialog(
    slack, session_factory, local_slack
):
    set_policy(session_factory, {**ALL_ALLOWED, "delete": "deny"})

    _, filled = _open_delete_dialog(slack, local_slack)

    view = filled.body["view"]
    assert "submit" not in view
    assert "does not allow `delete`" in str(view["blocks"])


def test_delete_button_opens_the_same_dialog(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    db01 = _server(sandbox, "db-01")

    slack.press("vps_delete", str(db01["id"]))

    [filled] = local_slack.api_calls("views.update")
    assert "db-01" in str(filled.body["view"]["blocks"])
    assert f'"channel_id":"{CHANNEL}"' in filled.body["view"]["private_metadata"]


@pytest.mark.parametrize("value", ["abc", "", "-1", "9" * 19, "12345\n", "１２３４５"])
def test_a_button_whose_value_is_no_server_id_does_nothing(
    slack, session_factory, sandbox, value
):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.reset_calls()

    _, name = slack.press("vps_reboot", value)

    assert slack.answer_text(name) == (
        "This button does not name a server vpsbot knows how to find; nothing "
        "was done. `/vps list` shows the servers."
    )
    assert sandbox.calls == []
    assert audit_rows(session_factory) == []
