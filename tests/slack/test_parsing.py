"""The /vps grammar: normalisation, every verb, and the refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vpsbot.slack.parsing import ParseError, normalise, parse, tokenize

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {"verb": "help"}),
        ("   HELP  ", {"verb": "help"}),
        ("list", {"verb": "list", "status": None, "location": None}),
        ("list Active US-West", {"status": "active", "location": "us-west"}),
        ("list us-east", {"status": None, "location": "us-east"}),
        ("list provisioning", {"status": "provisioning"}),
        (
            "list status=stopped location=eu-central",
            {"status": "stopped", "location": "eu-central"},
        ),
        ("show web-01", {"verb": "show", "server": "web-01"}),
        ("show 12345", {"server": "12345"}),
        ("Reboot web-01", {"verb": "reboot", "server": "web-01", "reason": None}),
        ('stop db-01 reason="disk full"', {"verb": "stop", "reason": "disk full"}),
        ("stop db-01 reason=“curly quotes”", {"reason": "curly quotes"}),
        ("start web-01 reason=don't", {"reason": "don't"}),
        ("rename web-01 web-03", {"verb": "rename", "new_name": "web-03"}),
        ("backups web-01 ON", {"verb": "backups", "enabled": True}),
        ("backups web-01 off", {"enabled": False}),
        ("delete web-01", {"verb": "delete", "server": "web-01"}),
        ("create", {"verb": "create"}),
        ("update web-01", {"verb": "update", "server": "web-01"}),
        ("approvals", {"verb": "approvals"}),
        ("connect", {"verb": "connect"}),
        ("policy", {"verb": "policy", "rules": {}, "approvers": None}),
        (
            "policy READ=Allow power=approve",
            {"rules": {"read": "allow", "power": "approve"}},
        ),
        (
            "policy approvers <@U0AB12|alice> <!subteam^S0OPS|@ops> <@W0XY>",
            {"approvers": ("U0AB12", "S0OPS", "W0XY")},
        ),
        ("policy approvers", {"approvers": ()}),
        ("audit", {"verb": "audit", "server": None, "user": None, "export": False}),
        (
            "audit db-01 <@U0BOB|bob> action=Stop outcome=denied",
            {"server": "db-01", "user": "U0BOB", "action": "stop", "outcome": "denied"},
        ),
        ("audit since=2h", {"since": datetime(2026, 12, 4, 10, 0, tzinfo=UTC)}),
        (
            "audit since=2026-12-01 until=2026-12-02T08:30",
            {
                "since": datetime(2026, 12, 1, tzinfo=UTC),
                "until": datetime(2026, 12, 2, 8, 30, tzinfo=UTC),
            },
        ),
        ("audit export action=delete", {"export": True, "action": "delete"}),
    ],
)
def test_valid_commands(text, expected):
    command = parse(text, now=NOW)

    for field, value in expected.items():
        assert getattr(command, field) == value, field


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frob", "`frob` is not a vpsbot command"),
        ("delete", "it needs a server id or name"),
        ("show", "it needs a server id or name"),
        ("show web-01 web-02", "it takes one server, got 2 words"),
        ("show web_01", "`web_01` is not a server id or name"),
        ("show <script>", "is not a server id or name"),
        ("rename web-01", "it needs the server and its new name"),
        ("rename web-01 bad_name!", "is not a valid server name"),
        ("policy read=allow READ=deny", "`read` is given twice"),
        ("rename web-01 12346", "`12346` is not a valid server name"),
        ("rename web-01 -lead", "`-lead` is not a valid server name"),
        ("rename web-01 trail-", "`trail-` is not a valid server name"),
        ("backups web-01 maybe", "it needs the server and `on` or `off`"),
        ("list a b c", "`b` is one word too many"),
        ("list colour=blue", "`colour=` is not an option here"),
        ('reboot web-01 reason="never closed', "quote is not closed"),
        ("reboot web-01 reason=", "`reason=` needs a value"),
        ("audit action=explode", "`explode` is not an action"),
        ("audit outcome=meh", "`meh` is not an outcome"),
        ("audit since=soon", "`since=soon` is not a time"),
        ("audit since=1d until=2d", "`since` must come before `until`"),
        ("policy read", "`read` is not `<action>=allow|approve|deny`"),
        ("policy approvers bob", "`bob` is not a user or user-group mention"),
        ("show " + "x" * 2100, "characters long; vpsbot reads at most 2,000"),
    ],
)
def test_malformed_commands_say_what_is_wrong(text, message):
    with pytest.raises(ParseError) as excinfo:
        parse(text, now=NOW)

    assert message in str(excinfo.value)


def test_refusal_shows_the_right_form():
    with pytest.raises(ParseError) as excinfo:
        parse("rename web-01", now=NOW)

    assert str(excinfo.value).endswith(
        'Usage: `/vps rename <server> <new-name> [reason="…"]`'
    )


def test_normalise_undoes_slack_escaping_and_typography():
    assert normalise("reboot  web-01 &amp; reason=“a&lt;b” — ok") == (
        'reboot web-01 & reason="a<b" -- ok'
    )


def test_tokenize_keeps_quoted_values_whole():
    assert tokenize("stop web-01 reason=\"two words\" x='y z'") == [
        "stop",
        "web-01",
        "reason=two words",
        "x=y z",
    ]


def test_create_alone_opens_the_dialog_and_keeps_a_reason():
    assert parse("create").create is None
    command = parse('create reason="new node"')
    assert (command.verb, command.create, command.reason) == (
        "create",
        None,
        "new node",
    )


def test_one_line_create_reads_every_option():
    command = parse(
        "Create web-03 plan=“Standard VPS” OS=5 location=us-west "
        "hostname=web-03.example.com backups=ON"
    )

    request = command.create
    assert (request.name, request.plan, request.os, request.location) == (
        "web-03",
        "Standard VPS",
        "5",
        "us-west",
    )
    assert (request.hostname, request.backups) == ("web-03.example.com", True)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("create plan=1 os=5 location=x", "it needs one name for the new server"),
        ("create web-03 os=5", "it needs `plan=` and `location=`"),
        ("create 123 plan=1 os=5 location=x", "`123` is not a valid server name"),
        ("create web_03 plan=1 os=5 location=x", "`web_03` is not a valid server"),
        (
            "create web-03 plan=1 os=5 location=x hostname=localhost",
            "`hostname=localhost` is not valid: give a fully qualified domain name",
        ),
        ("create web-03 plan=1 os=5 location=x backups=yes", "`backups=` takes"),
        ("create web-03 plan=1 os=5 location=x size=2", "`size=` is not an option"),
    ],
)
def test_malformed_creates_say_what_is_wrong_and_show_the_form(text, problem):
    with pytest.raises(ParseError) as caught:
        parse(text)

    assert problem in str(caught.value)
    assert "Usage: `/vps create <name> plan=<id or name> os=<id or name>" in str(
        caught.value
    )


def test_an_option_given_twice_is_refused():
    with pytest.raises(ParseError, match="`plan=` is given twice; give it once"):
        parse("create web-59 plan=1 plan=2 os=5 location=us-west")
