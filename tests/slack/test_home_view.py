"""The Home view's rendering: Slack's limits, escaping and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vpsbot.ops import Approval, Home
from vpsbot.slack.home_view import entry_line, home_view
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
