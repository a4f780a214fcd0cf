"""``/vps audit`` pages: Next and Previous buttons redraw the answer in place."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from sqlalchemy import select

from tests.slack.conftest import ALICE, ALL_ALLOWED, CHANNEL, TEAM, buttons, set_policy
from vpsbot import audit
from vpsbot.slack.blocks import audit_message
from vpsbot.slack.ids import AUDIT_NEWER_BUTTON, AUDIT_OLDER_BUTTON
from vpsbot.store import session_scope
from vpsbot.store.models import AuditEntry


def _reboots(session_factory, count: int) -> None:
    with session_scope(session_factory) as session:
        for number in range(1, count + 1):
            audit.record(
                session,
                team=TEAM,
                channel=CHANNEL,
                user=ALICE,
                action="reboot",
                outcome="succeeded",
                request_id=f"r-{number:04d}",
                server_id=12345,
                server_name="web-01",
                detail=f"reboot number {number}",
            )


def _numbers(body: dict) -> list[int]:
    text = "\n".join(
        block["text"]["text"] for block in body["blocks"] if block.get("text")
    )
    return [int(found) for found in re.findall(r"reboot number (\d+)", text)]


def _button(body: dict, label: str) -> tuple[str, str]:
    [(action_id, value)] = [
        (action_id, value) for text, action_id, value in buttons(body) if text == label
    ]
    return action_id, value


def test_next_and_previous_walk_through_the_pages(slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)
    _reboots(session_factory, 45)

    _, name = slack.command("audit action=reboot")

    [first] = slack.answers(name)
    assert _numbers(first) == list(range(45, 25, -1))
    assert [label for label, _, _ in buttons(first)] == ["Next", "Export"]

    _, second_name = slack.press(*_button(first, "Next"))
    [second] = slack.answers(second_name)
    assert second["replace_original"] is True
    assert _numbers(second) == list(range(25, 5, -1))
    assert [label for label, _, _ in buttons(second)] == ["Previous", "Next", "Export"]

    _, third_name = slack.press(*_button(second, "Next"))
    [third] = slack.answers(third_name)
    assert _numbers(third) == [5, 4, 3, 2, 1]
    assert [label for label, _, _ in buttons(third)] == ["Previous", "Export"]

    _, back_name = slack.press(*_button(third, "Previous"))
    [back] = slack.answers(back_name)
    assert _numbers(back) == list(range(25, 5, -1))
    _, top_name = slack.press(*_button(back, "Previous"))
    [top] = slack.answers(top_name)
    assert _numbers(top) == list(range(45, 25, -1))
    assert [label for label, _, _ in buttons(top)] == ["Next", "Export"]


def test_a_page_is_checked_against_the_policy_when_pressed(slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)
    _reboots(session_factory, 30)
    _, name = slack.command("audit")
    [first] = slack.answers(name)
    set_policy(session_factory, {**ALL_ALLOWED, "audit": "deny"})

    _, pressed = slack.press(*_button(first, "Next"))

    assert "does not allow `audit`" in slack.answer_text(pressed)
    assert "reboot number" not in slack.answer_text(pressed)


def test_a_forged_page_value_does_nothing(slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)
    value = json.dumps({"f": {"channel": "C0OTHER"}, "b": 5, "h": []})

    _, pressed = slack.press(AUDIT_OLDER_BUTTON, value)
    _, garbage = slack.press(AUDIT_NEWER_BUTTON, "not json")

    for answer in (pressed, garbage):
        assert slack.answer_text(answer) == (
            "This button's data is damaged; nothing was done. Run the command again."
        )


def test_pages_follow_the_order_shown_when_times_and_positions_disagree(
    slack, session_factory
):
    from datetime import UTC, datetime, timedelta

    set_policy(session_factory, ALL_ALLOWED)
    _reboots(session_factory, 30)
    earlier = datetime.now(UTC) - timedelta(hours=1)
    with session_scope(session_factory) as session:
        for number in range(31, 41):
            audit.record(
                session,
                team=TEAM,
                channel=CHANNEL,
                user=ALICE,
                action="reboot",
                outcome="succeeded",
                request_id=f"r-{number:04d}",
                detail=f"reboot number {number}",
                at=earlier + timedelta(seconds=number),
            )

    _, name = slack.command("audit action=reboot")
    [first] = slack.answers(name)
    _, second_name = slack.press(*_button(first, "Next"))
    [second] = slack.answers(second_name)

    assert _numbers(first) == list(range(30, 10, -1))
    assert _numbers(second) == list(range(10, 0, -1)) + list(range(40, 30, -1))
    assert [label for label, _, _ in buttons(second)][-2:] == ["Previous", "Export"]


def test_forged_values_that_look_valid_are_refused(slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)
    forged = [
        json.dumps({"f": {}, "b": 10**30, "h": []}),
        json.dumps({"f": {}, "b": 1, "h": [10**30]}),
        json.dumps({"f": {"since": "2020-01-01"}, "b": 0, "h": []}),
        "[" * 1000 + "]" * 1000,
    ]

    for value in forged:
        _, pressed = slack.press(AUDIT_OLDER_BUTTON, value)
        assert slack.answer_text(pressed) == (
            "This button's data is damaged; nothing was done. Run the command again."
        )


def test_reads_under_approve_are_refused_and_audited_like_deny(slack, session_factory):
    set_policy(session_factory, {**ALL_ALLOWED, "audit": "approve", "read": "approve"})
    _reboots(session_factory, 3)

    _, audit_answer = slack.command("audit")
    _, list_answer = slack.command("list")
    _, pressed = slack.press(
        AUDIT_OLDER_BUTTON, json.dumps({"f": {}, "b": 2, "h": [0]})
    )

    assert slack.answer_text(audit_answer) == (
        "`audit` needs a second person's approval in this channel, and reading "
        "cannot wait for one; an admin can allow it with `/vps policy audit=allow`."
    )
    assert slack.answer_text(list_answer) == (
        "`read` needs a second person's approval in this channel, and reading "
        "cannot wait for one; an admin can allow it with `/vps policy read=allow`."
    )
    assert slack.answer_text(pressed) == slack.answer_text(audit_answer)
    with session_scope(session_factory) as session:
        refused = session.execute(
            select(AuditEntry.action, AuditEntry.outcome, AuditEntry.detail)
            .where(AuditEntry.seq > 3)
            .order_by(AuditEntry.seq)
        ).all()
    assert [tuple(row) for row in refused] == [
        (
            "audit",
            "denied",
            "policy: audit=approve (a read cannot wait for an approval)",
        ),
        ("list", "denied", "policy: read=approve (a read cannot wait for an approval)"),
        (
            "audit",
            "denied",
            "policy: audit=approve (a read cannot wait for an approval)",
        ),
    ]


def test_a_bare_word_like_a_user_id_is_a_server_name(slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)
    with session_scope(session_factory) as session:
        audit.record(
            session,
            team=TEAM,
            channel=CHANNEL,
            user=ALICE,
            action="reboot",
            outcome="succeeded",
            request_id="r-web01",
            server_id=7,
            server_name="WEB01",
        )

    _, name = slack.command("audit WEB01")

    [answer] = slack.answers(name)
    assert "server=WEB01" in answer["blocks"][0]["text"]["text"]
    assert "(1 shown)" in answer["blocks"][0]["text"]["text"]


def test_filter_values_with_control_characters_are_refused(slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)

    _, pressed = slack.press(
        AUDIT_OLDER_BUTTON, json.dumps({"f": {"server": "a\u0000b"}, "b": 0, "h": []})
    )

    assert slack.answer_text(pressed) == (
        "This button's data is damaged; nothing was done. Run the command again."
    )


def test_newlines_in_an_audit_line_become_spaces():
    entry = AuditEntry(
        seq=1,
        at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
        team=TEAM,
        channel=CHANNEL,
        user=ALICE,
        action="rename",
        server_id=1,
        server_name="web\t01",
        outcome="failed",
        detail="no\n2026-12-01 <@U0BOB> delete *db-01* → *succeeded*",
        request_id="r-1",
    )

    [_, lines] = audit_message([entry], "")

    assert lines["text"]["text"] == (
        "<!date^1796112000^{date_num} {time_secs}|2026-12-01 08:00:00 UTC> "
        f"<@{ALICE}> rename *web 01* → *failed* — no 2026-12-01 &lt;@U0BOB&gt; "
        "delete *db-01* → *succeeded*"
    )


def test_the_notification_text_counts_entries_in_words_that_fit(slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)
    _reboots(session_factory, 1)

    _, one = slack.command("audit action=reboot")
    _, none = slack.command("audit action=delete")

    assert [answer["text"] for answer in slack.answers(one)] == ["1 audit entry"]
    assert [answer["text"] for answer in slack.answers(none)] == ["0 audit entries"]


def test_forged_values_out_of_range_or_too_long_are_refused(slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)
    forged = [
        {"f": {"since": "0001-01-01T00:00:00+14:00"}, "b": 0, "h": []},
        {"f": {"until": "9999-12-31T23:59:00-10:00"}, "b": 0, "h": []},
        {"f": {"server": "x" * 3000}, "b": 0, "h": []},
    ]

    for value in forged:
        _, pressed = slack.press(AUDIT_OLDER_BUTTON, json.dumps(value))
        assert slack.answer_text(pressed) == (
            "This button's data is damaged; nothing was done. Run the command again."
        )
