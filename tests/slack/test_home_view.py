"""The Home view's rendering: Slack's limits, escaping and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vpsbot.ops import Approval, Home
from vpsbot.slack.home_view import entry_line, home_view, request_text
from vpsbot.store.models import AuditEntry

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
NASTY = "<!channel> & <https://evil.invalid|click>"


def _entry(n: int) -> AuditEntry:
    return AuditEntry(
        seq=n,
        at=T0 + timedelta(minutes=n),
        team="T0TEST",
        channel="C0OPS",
        user="U0BOB",
        action="rename",
        server_id=1,
        server_name=(NASTY * 10)[:255],
        outcome="failed",
        detail=NASTY * 60,
        request_id=f"r-{n}",
    )


def _approval(n: int) -> Approval:
    return Approval(
        id=n,
        request_id=f"r-ask-{n}",
        team_id="T0TEST",
        channel_id="C0OPS",
        requester="U0ALICE",
        verb="rename",
        server_id=1,
        server_name=(NASTY * 10)[:255],
        server_status="active",
        params={"new_name": NASTY * 5},
        reason=NASTY * 40,
        status="pending",
        created_at=T0,
        expires_at=T0 + timedelta(hours=1),
    )


def test_a_full_home_stays_inside_slacks_limits_and_escapes_everything():
    home = Home(
        mine=[_entry(n) for n in range(10)],
        pending=[_approval(n) for n in range(10)],
        more_pending=True,
        activity=[_entry(n) for n in range(10, 20)],
        groups_unread=True,
        at=T0,
    )

    view = home_view(home, notice="You approved it.")

    blocks = view["blocks"]
    assert len(blocks) <= 100
    texts = [block["text"]["text"] for block in blocks if block["type"] == "section"]
    assert all(len(text) <= 3000 for text in texts)
    joined = "\n".join(texts)
    assert "<!channel>" not in joined
    assert "<https://" not in joined
    assert "&lt;!channel&gt; &amp; &lt;https://evil.invalid|click&gt;" in joined
    assert sum(block["type"] == "actions" for block in blocks) == 10
    assert blocks[1]["text"]["text"] == "You approved it."


def test_times_are_date_tokens_each_reader_sees_in_their_zone():
    assert entry_line(_entry(0)).startswith(
        "<!date^1796112000^{date_num} {time}|2026-12-01 08:00 UTC> <@U0BOB> rename *"
    )


FAKE_LINE = "ok\n\t<!date^1796112000^{time}|08:00> <@U0ALICE> delete *db-01*\r\n"


def test_newlines_in_an_entry_cannot_draw_a_line_of_their_own():
    entry = _entry(0)
    entry.server_name = "web\n01"
    entry.detail = FAKE_LINE

    line = entry_line(entry)

    assert "\n" not in line
    assert line == (
        "<!date^1796112000^{date_num} {time}|2026-12-01 08:00 UTC> <@U0BOB> "
        "rename *web 01* → *failed* in <#C0OPS> — ok &lt;!date^1796112000^{time}"
        "|08:00&gt; &lt;@U0ALICE&gt; delete *db-01*"
    )


def test_newlines_in_a_request_stay_inside_its_own_lines():
    approval = _approval(0)
    approval = Approval(
        **{
            **approval.__dict__,
            "server_name": "web\n\n01",
            "params": {"new_name": "a\nb"},
            "reason": "tidy\nServer: fake",
        }
    )

    text = request_text(approval)

    assert text.split("\n") == [
        "<@U0ALICE> asks to *rename web 01 to a b* in <#C0OPS>",
        "Server: web 01 (id 1) · `active` · open until "
        "<!date^1796115600^{date_num} {time}|2026-12-01 09:00 UTC>",
        "Reason: tidy Server: fake",
    ]
