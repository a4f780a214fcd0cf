"""The create and edit dialogs, and the one-line create, end to end over HTTP."""

from __future__ import annotations

import json

import requests

from tests.slack.conftest import ALICE, ALL_ALLOWED, BOB, set_policy
from tests.slack.test_commands import audit_rows
from vpsbot.slack.ids import FORM_ACTION


def _posts(sandbox) -> list[str]:
    return [path for method, path in sandbox.calls if method == "POST"]


def _open(slack, local_slack, text: str) -> tuple[dict, dict]:
    """Run ``text``; the opened (loading) view and the filled view, with ids."""
    slack.command(text)
    [opened] = local_slack.api_calls("views.open")
    [filled] = local_slack.api_calls("views.update")
    view = {**filled.body["view"], "id": filled.body["view_id"], "hash": "h-1"}
    return opened.body["view"], view


def _inputs(view: dict) -> dict[str, dict]:
    return {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}


def _form(**fields: str) -> dict[str, dict[str, str]]:
    return {field: {FORM_ACTION: value} for field, value in fields.items()}


def _last_view(local_slack) -> dict:
    return local_slack.api_calls("views.update")[-1].body["view"]


def _view_text(view: dict) -> str:
    parts = []
    for block in view["blocks"]:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"]["text"])
        for element in block.get("elements") or []:
            parts.append(element.get("text", ""))
        if isinstance(block.get("hint"), dict):
            parts.append(block["hint"]["text"])
    return "\n".join(parts)


VALID = {
    "name": "web-03",
    "plan": "1",
    "os": "5",
    "location": "us-west",
    "hostname": "web-03.example.com",
    "backups": "on",
}


# Create


def test_create_dialog_opens_first_then_offers_the_catalog_and_servers_plans(
    slack, session_factory, local_slack
):
    set_policy(session_factory, ALL_ALLOWED)

    opened, view = _open(slack, local_slack, "create")

    assert opened["title"]["text"] == "Create server"
    assert opened["blocks"][0]["text"]["text"] == "Looking up the plans…"
    inputs = _inputs(view)
    assert [block["label"]["text"] for block in inputs.values()] == [
        "Name",
        "Plan",
        "Operating system",
        "Location",
        "Hostname",
        "Backups",
    ]
    plans = [o["text"]["text"] for o in inputs["plan"]["element"]["options"]]
    # Plans 1 and 2 come from the shipped catalog, plan 3 from staging-01.
    assert plans == [
        "Standard VPS · 2 vCPU · 4 GB · 80 GB",
        "Performance VPS · 4 vCPU · 8 GB · 160 GB",
        "Starter VPS · 1 vCPU · 2 GB · 40 GB",
    ]
    systems = [o["value"] for o in inputs["os"]["element"]["options"]]
    assert systems == ["5", "3"]
    places = [o["value"] for o in inputs["location"]["element"]["options"]]
    assert places == ["us-west", "us-east"]
    assert inputs["hostname"]["optional"] is True
    assert inputs["backups"]["element"]["initial_option"]["value"] == "off"
    assert view["submit"]["text"] == "Create"
    assert audit_rows(session_factory) == []


def test_create_dialog_for_a_denied_channel_says_so_in_the_dialog(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, {"read": "allow", "create": "deny"})

    _, view = _open(slack, local_slack, "create")

    assert "submit" not in view
    assert "policy does not allow" in _view_text(view)
    assert _posts(sandbox) == []


def test_bad_fields_are_marked_inline_and_nothing_is_sent(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "create")
    sandbox.reset_calls()

    response = slack.submit(
        view,
        _form(**{**VALID, "name": "-web 03", "hostname": "not a host", "plan": ""}),
    )

    answer = response.json()
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"name", "plan", "hostname"}
    assert answer["errors"]["plan"] == "Choose one."
    assert answer["errors"]["hostname"].startswith("Give a fully qualified domain name")
    assert sandbox.calls == []
    assert audit_rows(session_factory) == []


def test_a_valid_create_is_sent_once_announced_and_audited(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, 'create reason="new web node"')
    sandbox.reset_calls()

    response = slack.submit(view, _form(**VALID))

    assert response.json()["response_action"] == "update"
    assert "Creating *web-03*" in _view_text(response.json()["view"])
    assert _posts(sandbox) == ["/api/v1/servers/"]
    [created] = [s for s in sandbox.list_servers() if s["name"] == "web-03"]
    assert (created["plan"]["id"], created["os"]["id"], created["location"]) == (
        1,
        5,
        "us-west",
    )
    assert created["hostname"] == "web-03.example.com"
    assert created["backups_enabled"] is True
    assert "*web-03* is being created" in _view_text(_last_view(local_slack))
    [announce] = local_slack.api_calls("chat.postMessage")
    assert announce.body["text"].startswith(
        f":new: <@{ALICE}> ordered *web-03* (id {created['id']}): Standard VPS, "
        f"Ubuntu 22.04 LTS, us-west, backups on; it is provisioning."
    )
    assert "Reason: new web node" in announce.body["text"]
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"], row["server_id"]) == (
        "create",
        "succeeded",
        created["id"],
    )
    assert row["detail"] == (
        f"ordered web-03 (id {created['id']}): Standard VPS, Ubuntu 22.04 LTS, "
        f"us-west, backups on (reason: new web node)"
    )


def test_the_same_submission_twice_creates_once(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "create")
    sandbox.reset_calls()

    slack.submit(view, _form(**VALID))
    slack.submit(view, _form(**VALID))

    assert _posts(sandbox) == ["/api/v1/servers/"]
    assert [s["name"] for s in sandbox.list_servers()].count("web-03") == 1
    assert "had already arrived and is carried out once" in _view_text(
        _last_view(local_slack)
    )
    rows = [(r["action"], r["outcome"]) for r in audit_rows(session_factory)]
    assert rows == [("create", "succeeded")]


def test_a_name_in_use_is_marked_on_the_redrawn_form(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "create")
    sandbox.reset_calls()

    slack.submit(view, _form(**{**VALID, "name": "WEB-01"}))

    assert _posts(sandbox) == []
    redrawn = _last_view(local_slack)
    inputs = _inputs(redrawn)
    assert inputs["name"]["hint"]["text"] == (
        "⚠ WEB-01 is already the name of server 12345"
    )
    # What was typed and chosen is kept.
    assert inputs["name"]["element"]["initial_value"] == "WEB-01"
    assert inputs["plan"]["element"]["initial_option"]["value"] == "1"
    assert inputs["backups"]["element"]["initial_option"]["value"] == "on"
    assert redrawn["submit"]["text"] == "Create"
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"]) == ("create", "failed")
    assert row["detail"] == "name: WEB-01 is already the name of server 12345"


def test_the_providers_field_errors_land_on_the_dialogs_fields(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "create")
    sandbox.fail_next(
        400,
        method="POST",
        body={"hostname": ["Enter a valid hostname."], "os_id": ["Not offered."]},
    )

    slack.submit(view, _form(**VALID))

    inputs = _inputs(_last_view(local_slack))
    assert (
        inputs["hostname"]["hint"]["text"] == "⚠ VPS.org says: Enter a valid hostname"
    )
    assert inputs["os"]["hint"]["text"] == "⚠ VPS.org says: Not offered"
    assert "web-03" not in [s["name"] for s in sandbox.list_servers()]
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"]) == ("create", "failed")


def test_no_credit_says_so_plainly(slack, session_factory, local_slack, sandbox):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "create")
    sandbox.credit = 0

    slack.submit(view, _form(**VALID))

    assert _view_text(_last_view(local_slack)) == (
        "Not enough credit on the VPS.org account to create this server; nothing "
        "was created."
    )
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"]) == ("create", "failed")
    assert local_slack.api_calls("chat.postMessage") == []


def test_a_lost_answer_is_reported_as_unknown_and_not_resent(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "create")
    sandbox.reset_calls()
    sandbox.fail_next(502, method="POST")

    slack.submit(view, _form(**VALID))

    assert _posts(sandbox) == ["/api/v1/servers/"]
    text = _view_text(_last_view(local_slack))
    assert "whether it exists is unknown — check `/vps list`" in text
    assert "did not send it twice" in text
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"]) == ("create", "failed")
    assert row["detail"] == "outcome unknown: the answer was lost; not resent"


def test_the_policy_is_checked_again_when_the_dialog_is_submitted(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "create")
    set_policy(session_factory, {**ALL_ALLOWED, "create": "deny"})

    slack.submit(view, _form(**VALID))

    assert _posts(sandbox) == []
    assert "policy does not allow" in _view_text(_last_view(local_slack))
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"]) == ("create", "denied")


def test_one_line_create_takes_names_and_ids(slack, session_factory, local_slack):
    set_policy(session_factory, ALL_ALLOWED)

    slack.command('create web-04 plan="standard vps" os=5 location=US-EAST backups=on')

    [announce] = local_slack.api_calls("chat.postMessage")
    assert f"<@{ALICE}> ordered *web-04*" in announce.body["text"]
    assert (
        "Standard VPS, Ubuntu 22.04 LTS, us-east, backups on" in announce.body["text"]
    )
    assert local_slack.api_calls("views.open") == []


def test_one_line_create_with_an_unknown_plan_shows_the_choices_and_the_form(
    slack, session_factory, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.reset_calls()

    _, name = slack.command("create web-04 plan=9 os=5 location=us-east")

    text = slack.answer_text(name)
    assert text.startswith(
        "That `create` is not quite right: plan: '9' is not offered here (choose "
        "from 1 (Standard VPS), 2 (Performance VPS), 3 (Starter VPS))."
    )
    assert "Usage: `/vps create <name> plan=<id or name>" in text
    assert _posts(sandbox) == []


def test_one_line_create_that_does_not_parse_is_not_an_attempt(
    slack, session_factory, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.reset_calls()

    response, _ = slack.command("create web-04 plan=1")

    assert "it needs `os=` and `location=`" in response.json()["text"]
    assert sandbox.calls == []
    assert audit_rows(session_factory) == []


# Edit


def test_edit_dialog_is_prefilled_with_the_servers_values(
    slack, session_factory, local_slack
):
    set_policy(session_factory, ALL_ALLOWED)

    opened, view = _open(slack, local_slack, "update web-01")

    assert opened["title"]["text"] == "Edit server"
    inputs = _inputs(view)
    assert [block["label"]["text"] for block in inputs.values()] == [
        "Name",
        "Hostname",
        "Backups",
    ]
    assert inputs["name"]["element"]["initial_value"] == "web-01"
    assert inputs["hostname"]["element"]["initial_value"] == "web-01.example.com"
    assert inputs["backups"]["element"]["initial_option"]["value"] == "on"
    assert audit_rows(session_factory) == []


def test_an_edit_sends_all_three_fields_in_one_put(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "update web-01")
    sandbox.reset_calls()

    slack.submit(view, _form(name="web-01", hostname="www.example.org", backups="off"))

    puts = [path for method, path in sandbox.calls if method == "PUT"]
    assert puts == ["/api/v1/servers/12345/"]
    server = sandbox.get(12345)
    assert (server["name"], server["hostname"], server["backups_enabled"]) == (
        "web-01",
        "www.example.org",
        False,
    )
    [announce] = local_slack.api_calls("chat.postMessage")
    assert announce.body["text"] == (
        f":memo: <@{ALICE}> edited *web-01* (id 12345): "
        f"hostname web-01.example.com → www.example.org; backups on → off."
    )
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"], row["detail"]) == (
        "update",
        "succeeded",
        "hostname web-01.example.com → www.example.org; backups on → off",
    )


def test_an_edit_of_a_server_changed_meanwhile_overwrites_nothing(
    slack, session_factory, local_slack, sandbox, sandbox_server
):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "update web-01")
    # Someone else renames it in the provider's console.
    requests.patch(
        f"{sandbox_server.url}servers/12345/",
        json={"name": "web-01-old"},
        headers={"Authorization": "Bearer sandbox-token"},
        timeout=5,
    )
    sandbox.reset_calls()

    slack.submit(view, _form(name="web-01", hostname="www.example.org", backups="on"))

    assert [m for m, _ in sandbox.calls if m in ("PUT", "PATCH")] == []
    assert sandbox.get(12345)["name"] == "web-01-old"
    redrawn = _last_view(local_slack)
    text = _view_text(redrawn)
    assert "web-01-old changed after this dialog was opened" in text
    assert "It is now `active`, last changed " in text
    assert ": name web-01-old, hostname web-01.example.com, backups on." in text
    assert _inputs(redrawn)["hostname"]["element"]["initial_value"] == (
        "www.example.org"
    )
    # Submitting the redrawn form applies the values.
    again = {**redrawn, "id": view["id"], "hash": "h-2"}
    slack.submit(again, _form(name="web-01", hostname="www.example.org", backups="on"))
    assert sandbox.get(12345)["name"] == "web-01"
    outcomes = [(r["action"], r["outcome"]) for r in audit_rows(session_factory)]
    assert outcomes == [("update", "failed"), ("update", "succeeded")]


def test_an_edit_with_a_bad_hostname_is_refused_inline(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "update web-01")
    sandbox.reset_calls()

    response = slack.submit(view, _form(name="web-01", hostname="", backups="on"))

    answer = response.json()
    assert answer == {
        "response_action": "errors",
        "errors": {"hostname": "VPS.org needs a hostname when a server is edited."},
    }
    assert sandbox.calls == []


def test_an_edit_that_changes_nothing_sends_nothing(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "update web-01")
    sandbox.reset_calls()

    slack.submit(
        view, _form(name="web-01", hostname="web-01.example.com", backups="on")
    )

    assert [m for m, _ in sandbox.calls if m in ("PUT", "PATCH")] == []
    assert "nothing was sent" in _view_text(_last_view(local_slack))
    assert local_slack.api_calls("chat.postMessage") == []


def test_an_edit_by_someone_the_policy_denies_is_refused_at_submission(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "update web-01")
    set_policy(session_factory, {**ALL_ALLOWED, "modify": "deny"})
    sandbox.reset_calls()

    slack.submit(
        view,
        _form(name="web-09", hostname="web-01.example.com", backups="on"),
        user=BOB,
    )

    assert [m for m, _ in sandbox.calls if m == "PUT"] == []
    assert "policy does not allow" in _view_text(_last_view(local_slack))
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"], row["user"]) == ("update", "denied", BOB)


def test_a_damaged_edit_dialog_is_refused(slack, session_factory, local_slack):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "update web-01")
    view["private_metadata"] = json.dumps({"server_id": "x"})

    response = slack.submit(view, _form(name="web-01", hostname="a.example.com"))

    assert response.json()["errors"] == {
        "name": "This dialog is damaged; open it again."
    }


# Found by testers


def test_a_long_reason_in_any_script_fits_the_dialog(
    slack, session_factory, local_slack
):
    set_policy(session_factory, ALL_ALLOWED)

    _, view = _open(slack, local_slack, 'create reason="' + "😀" * 499 + '"')

    assert view["submit"]["text"] == "Create"
    assert json.loads(view["private_metadata"])["reason"] == "😀" * 499


def test_a_forged_backups_answer_is_refused_inline(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "create")
    sandbox.reset_calls()

    response = slack.submit(view, _form(**{**VALID, "backups": "maybe"}))

    assert response.json()["errors"] == {"backups": "Choose On or Off."}
    assert sandbox.calls == []


def test_an_edit_dialog_for_a_server_without_hostname_says_one_is_needed(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    sandbox.add_server("bare-01", server_id=20001)

    _, view = _open(slack, local_slack, "update bare-01")

    hostname = _inputs(view)["hostname"]
    assert "initial_value" not in hostname["element"]
    assert hostname["hint"]["text"] == (
        "This server has no hostname; VPS.org needs one to save."
    )


def test_an_edit_of_a_server_deleted_meanwhile_names_it(
    slack, session_factory, local_slack, sandbox, sandbox_server
):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "update web-02")
    requests.delete(
        f"{sandbox_server.url}servers/12346/",
        headers={"Authorization": "Bearer sandbox-token"},
        timeout=5,
    )

    slack.submit(view, _form(name="web-02", hostname="a.example.com", backups="on"))

    assert _view_text(_last_view(local_slack)).startswith(
        "There is no server with id 12346 (it may have been deleted)."
    )
    [row] = audit_rows(session_factory)
    assert (row["action"], row["outcome"], row["server_name"]) == (
        "update",
        "failed",
        "web-02",
    )


def test_a_lost_answer_to_an_edit_says_what_the_server_looks_like_now(
    slack, session_factory, local_slack, sandbox
):
    set_policy(session_factory, ALL_ALLOWED)
    _, view = _open(slack, local_slack, "update web-01")
    sandbox.fail_next(504, method="PUT")

    slack.submit(view, _form(name="web-01", hostname="b.example.com", backups="on"))

    assert _view_text(_last_view(local_slack)) == (
        "VPS.org's answer to the update of web-01 was lost, so vpsbot did not send "
        "it again. A fresh look shows that it is called web-01, with hostname "
        "web-01.example.com and backups on."
    )


def test_a_name_in_another_case_is_suggested(slack, session_factory, local_slack):
    set_policy(session_factory, ALL_ALLOWED)

    _, view = _open(slack, local_slack, "update WEB-01")

    assert "There is no server called WEB-01. Did you mean web-01?" in _view_text(view)
