"""``/vps audit export`` and the Export button: the entries as a CSV upload."""

from __future__ import annotations

import csv
import io
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.slack.conftest import (
    ALICE,
    ALL_ALLOWED,
    BOB,
    CHANNEL,
    TEAM,
    buttons,
    set_policy,
)
from vpsbot import audit
from vpsbot.localslack import UPLOAD
from vpsbot.slack.ids import AUDIT_EXPORT_BUTTON
from vpsbot.store import session_scope
from vpsbot.store.models import AuditEntry

T0 = datetime(2026, 3, 1, 9, 30, 0, 250000, tzinfo=UTC)
HEADER = [
    "at",
    "team",
    "channel",
    "user",
    "action",
    "server_id",
    "server_name",
    "outcome",
    "detail",
    "request_id",
]


def _entry(session_factory, *, channel: str = CHANNEL, **fields) -> None:
    values = {
        "team": TEAM,
        "channel": channel,
        "user": ALICE,
        "action": "reboot",
        "outcome": "succeeded",
        "request_id": "r-1",
        **fields,
    }
    with session_scope(session_factory) as session:
        audit.record(session, **values)


def _history(session_factory) -> None:
    """Three reboots and a stop here, two reboots in another channel."""
    _entry(
        session_factory,
        at=T0,
        request_id="r-1",
        server_id=12345,
        server_name="web-01",
        detail="reboot one",
    )
    _entry(
        session_factory,
        at=T0 + timedelta(minutes=1),
        request_id="r-2",
        user=BOB,
        server_name='=HYPERLINK("http://evil.invalid")',
        detail="-2+3 and more",
    )
    _entry(
        session_factory,
        at=T0 + timedelta(minutes=2),
        action="stop",
        request_id="r-3",
        server_id=777,
        server_name="db-01",
        detail="stopped for maintenance",
    )
    _entry(
        session_factory,
        at=T0 + timedelta(minutes=3),
        request_id="r-4",
        server_name="@SUM(A1)",
        detail="\tleading tab, then +1",
        outcome="failed",
    )
    for number in (5, 6):
        _entry(
            session_factory,
            channel="C0OTHER",
            at=T0 + timedelta(minutes=number),
            request_id=f"r-{number}",
            detail="another channel",
        )


REBOOT_ROWS = [
    [
        "2026-03-01T09:30:00.250000Z",
        TEAM,
        CHANNEL,
        ALICE,
        "reboot",
        "12345",
        "web-01",
        "succeeded",
        "reboot one",
        "r-1",
    ],
    [
        "2026-03-01T09:31:00.250000Z",
        TEAM,
        CHANNEL,
        BOB,
        "reboot",
        "",
        '\'=HYPERLINK("http://evil.invalid")',
        "succeeded",
        "'-2+3 and more",
        "r-2",
    ],
    [
        "2026-03-01T09:33:00.250000Z",
        TEAM,
        CHANNEL,
        ALICE,
        "reboot",
        "",
        "'@SUM(A1)",
        "failed",
        "'\tleading tab, then +1",
        "r-4",
    ],
]


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def _last_entries(session_factory, count: int) -> list[tuple[str, str, str, str]]:
    with session_scope(session_factory) as session:
        entries = session.scalars(
            select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(count)
        ).all()
        return [
            (entry.action, entry.outcome, entry.user, entry.detail)
            for entry in reversed(entries)
        ]


def test_the_command_uploads_this_channels_matching_entries_as_csv(
    slack, local_slack, session_factory
):
    set_policy(session_factory, ALL_ALLOWED)
    _history(session_factory)

    response, name = slack.command("audit export action=reboot")

    assert response.status_code == 200
    [upload] = local_slack.completed_uploads()
    assert upload.channel_id == CHANNEL
    assert re.fullmatch(r"vpsbot-audit-C0OPS-\d{8}-\d{6}\.csv", upload.filename)
    assert upload.title == "vpsbot audit export, C0OPS"
    assert upload.initial_comment == (
        "Audit export: 3 entries (action=reboot), asked for by <@U0ALICE>."
    )
    assert upload.data is not None
    assert upload.length == len(upload.data)
    assert _rows(upload.data) == [HEADER, *REBOOT_ROWS]
    assert upload.data.startswith(b"at,team,channel,user,action,server_id,")
    [started] = local_slack.api_calls("files.getUploadURLExternal")
    assert started.body["filename"] == upload.filename
    [completed] = local_slack.api_calls("files.completeUploadExternal")
    assert completed.body["channel_id"] == CHANNEL
    # The upload speaks for itself; the asker gets no second answer.
    assert slack.answers(name) == []
    assert _last_entries(session_factory, 1) == [
        ("audit", "succeeded", ALICE, "export: 3 entries (action=reboot)")
    ]


def test_filters_narrow_the_export(slack, local_slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)
    _history(session_factory)

    slack.command("audit export web-01")
    slack.command(f"audit export <@{BOB}|bob>")
    slack.command("audit export outcome=failed")
    slack.command("audit export since=2026-03-01T09:32 until=2026-03-01T09:34")

    server, user, outcome, window = local_slack.completed_uploads()
    assert _rows(server.data)[1:] == [REBOOT_ROWS[0]]
    assert _rows(user.data)[1:] == [REBOOT_ROWS[1]]
    assert _rows(outcome.data)[1:] == [REBOOT_ROWS[2]]
    assert [row[-1] for row in _rows(window.data)[1:]] == ["r-3", "r-4"]
    assert server.initial_comment == (
        "Audit export: 1 entry (server=web-01), asked for by <@U0ALICE>."
    )


def test_the_export_button_under_an_audit_answer_uploads_its_filters(
    slack, local_slack, session_factory
):
    set_policy(session_factory, ALL_ALLOWED)
    _history(session_factory)
    _, name = slack.command("audit action=reboot")
    [answer] = slack.answers(name)
    [(action_id, value)] = [
        (action_id, value)
        for label, action_id, value in buttons(answer)
        if label == "Export"
    ]
    assert action_id == AUDIT_EXPORT_BUTTON
    assert len(value) <= 2000

    response, pressed = slack.press(action_id, value, user=BOB)

    assert response.status_code == 200
    [upload] = local_slack.completed_uploads()
    assert _rows(upload.data) == [HEADER, *REBOOT_ROWS]
    assert upload.initial_comment == (
        "Audit export: 3 entries (action=reboot), asked for by <@U0BOB>."
    )
    assert slack.answers(pressed) == []
    assert _last_entries(session_factory, 1) == [
        ("audit", "succeeded", BOB, "export: 3 entries (action=reboot)")
    ]


def test_an_export_refused_by_policy_uploads_nothing(
    slack, local_slack, session_factory
):
    set_policy(session_factory, {**ALL_ALLOWED, "audit": "deny"})
    _history(session_factory)

    _, name = slack.command("audit export")

    assert "This channel's policy does not allow `audit`." in slack.answer_text(name)
    assert local_slack.api_calls("files.getUploadURLExternal") == []
    assert local_slack.uploads == {}
    assert _last_entries(session_factory, 1) == [
        ("audit", "denied", ALICE, "export refused: policy: audit=deny")
    ]


def test_an_approve_rule_refuses_an_export(slack, local_slack, session_factory):
    set_policy(session_factory, {**ALL_ALLOWED, "audit": "approve"})
    _history(session_factory)

    _, name = slack.command("audit export")

    assert slack.answer_text(name) == (
        "`audit` needs a second person's approval in this channel, and an export "
        "cannot wait for one; an admin can allow it with `/vps policy audit=allow`."
    )
    assert local_slack.uploads == {}
    assert _last_entries(session_factory, 1) == [
        ("audit", "denied", ALICE, "export refused: policy: audit=approve")
    ]


def test_the_button_is_checked_against_the_policy_when_pressed(
    slack, local_slack, session_factory
):
    set_policy(session_factory, ALL_ALLOWED)
    _history(session_factory)
    _, name = slack.command("audit")
    [answer] = slack.answers(name)
    [value] = [value for label, _, value in buttons(answer) if label == "Export"]
    set_policy(session_factory, {**ALL_ALLOWED, "audit": "deny"})

    _, pressed = slack.press(AUDIT_EXPORT_BUTTON, value)

    assert "does not allow `audit`" in slack.answer_text(pressed)
    assert local_slack.uploads == {}
    assert _last_entries(session_factory, 1) == [
        ("audit", "denied", ALICE, "export refused: policy: audit=deny")
    ]


def test_a_forged_export_value_does_nothing(slack, local_slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)
    _history(session_factory)

    _, pressed = slack.press(AUDIT_EXPORT_BUTTON, '{"f": {"channel": "C0OTHER"}}')

    assert slack.answer_text(pressed) == (
        "This button's data is damaged; nothing was done. Run the command again."
    )
    assert local_slack.uploads == {}


def test_nothing_matching_is_one_sentence_and_no_upload(
    slack, local_slack, session_factory
):
    set_policy(session_factory, ALL_ALLOWED)
    _history(session_factory)

    _, name = slack.command("audit export action=delete")

    assert slack.answer_text(name) == (
        "No audit entries of this channel match `action=delete`; nothing was uploaded."
    )
    assert local_slack.api_calls("files.getUploadURLExternal") == []
    assert _last_entries(session_factory, 1) == [
        ("audit", "succeeded", ALICE, "export: 0 entries (action=delete)")
    ]


NOT_A_MEMBER = (
    "The export could not be posted here: vpsbot is not a member of this "
    "conversation. Invite it (`/invite @vpsbot`) and try again."
)


@pytest.mark.parametrize(
    ("method", "error", "status", "sentence", "detail"),
    [
        (
            "files.getUploadURLExternal",
            "ratelimited",
            429,
            "Slack is limiting uploads right now; try the export again in a minute.",
            "files.getUploadURLExternal ratelimited",
        ),
        (
            "files.getUploadURLExternal",
            "missing_scope",
            200,
            "vpsbot may not upload files in this workspace (it lacks the "
            "`files:write` scope); an admin can reinstall the app to grant it.",
            "files.getUploadURLExternal missing_scope",
        ),
        (
            UPLOAD,
            "-",
            500,
            "Slack refused the export upload (http_500); try again later.",
            "upload http_500",
        ),
        (
            "files.completeUploadExternal",
            "not_in_channel",
            200,
            NOT_A_MEMBER,
            "files.completeUploadExternal not_in_channel",
        ),
        (
            "files.completeUploadExternal",
            "channel_not_found",
            200,
            NOT_A_MEMBER,
            "files.completeUploadExternal channel_not_found",
        ),
    ],
)
def test_a_slack_failure_at_any_upload_step_is_one_sentence(
    slack,
    local_slack,
    session_factory,
    caplog,
    method,
    error,
    status,
    sentence,
    detail,
):
    set_policy(session_factory, ALL_ALLOWED)
    _history(session_factory)
    local_slack.fail(method, error, status=status, retry_after=1)
    caplog.set_level(logging.INFO)

    _, name = slack.command("audit export action=reboot")

    assert slack.answer_text(name) == sentence
    assert local_slack.completed_uploads() == []
    assert _last_entries(session_factory, 2) == [
        ("audit", "succeeded", ALICE, "export: 3 entries (action=reboot)"),
        ("audit", "failed", ALICE, f"export of 3 entries not delivered: {detail}"),
    ]
    warnings = [r.getMessage() for r in caplog.records if "upload failed" in r.msg]
    assert len(warnings) == 1
    assert "xoxb-test" not in caplog.text
    assert "/response/" not in caplog.text
    assert "/upload/" not in caplog.text
