"""Times in the viewer's zone: shown through Slack's date tokens, typed times
read in the typing user's zone (``users.info``), UTC when Slack cannot tell."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from slack_sdk import WebClient

from tests.slack.conftest import ALICE, ALL_ALLOWED, BOB, CHANNEL, TEAM, set_policy
from vpsbot import audit
from vpsbot.localslack import LocalSlack
from vpsbot.slack import timezones
from vpsbot.slack.timezones import ViewerZones, zone_from_profile
from vpsbot.store import session_scope


def test_shown_is_a_date_token_with_a_utc_fallback():
    moment = datetime(2026, 12, 1, 23, 30, 5, tzinfo=UTC)

    assert timezones.shown(moment) == (
        "<!date^1796167805^{date_num} {time_secs}|2026-12-01 23:30:05 UTC>"
    )
    assert timezones.shown(moment, seconds=False) == (
        "<!date^1796167805^{date_num} {time}|2026-12-01 23:30 UTC>"
    )
    paris = moment.astimezone(ZoneInfo("Europe/Paris"))
    assert timezones.shown(paris) == timezones.shown(moment)


def test_a_profile_names_its_zone_by_name_or_by_offset():
    assert zone_from_profile({"tz": "Asia/Tokyo", "tz_offset": 32400}) == ZoneInfo(
        "Asia/Tokyo"
    )
    assert zone_from_profile({"tz": "Mars/Olympus", "tz_offset": -18000}) == (
        timezone(timedelta(hours=-5))
    )
    assert zone_from_profile({"tz_offset": 0}) is UTC
    assert zone_from_profile({"tz_offset": True}) is None
    assert zone_from_profile({"tz_offset": 90_000}) is None
    assert zone_from_profile({}) is None
    assert timezones.zone_name(ZoneInfo("Asia/Tokyo")) == "Asia/Tokyo"
    assert timezones.zone_name(timezone(timedelta(hours=5, minutes=30))) == (
        "UTC+05:30"
    )


def test_a_users_zone_is_asked_once_an_hour_and_after_a_failure_a_minute_later():
    now = [1000.0]
    with LocalSlack(time_zones={"U1": "Asia/Tokyo"}) as local:
        client = WebClient(token="xoxb-test", base_url=local.api_url)
        zones = ViewerZones(monotonic=lambda: now[0])

        assert zones.zone_of("U1", client) == ZoneInfo("Asia/Tokyo")
        assert zones.zone_of("U1", client) == ZoneInfo("Asia/Tokyo")
        assert len(local.api_calls("users.info")) == 1

        now[0] += timezones.ZONE_TTL + 1
        local.time_zones["U1"] = "Europe/Paris"
        assert zones.zone_of("U1", client) == ZoneInfo("Europe/Paris")
        assert len(local.api_calls("users.info")) == 2

        local.fail("users.info", "missing_scope")
        assert zones.zone_of("U2", client) is None
        assert zones.zone_of("U2", client) is None
        assert len(local.api_calls("users.info")) == 3
        now[0] += timezones.FAILURE_TTL + 1
        assert zones.zone_of("U2", client) is None
        assert len(local.api_calls("users.info")) == 4


def _entries_around_midnight(session_factory) -> None:
    """One entry just before and one just after 2026-12-02 00:00 UTC."""
    with session_scope(session_factory) as session:
        for number, at in (
            (1, datetime(2026, 12, 1, 23, 30, tzinfo=UTC)),
            (2, datetime(2026, 12, 2, 0, 30, tzinfo=UTC)),
        ):
            audit.record(
                session,
                team=TEAM,
                channel=CHANNEL,
                user=ALICE,
                action="reboot",
                outcome="succeeded",
                request_id=f"r-{number}",
                server_id=12345,
                server_name="web-01",
                detail=f"reboot number {number}",
                at=at,
            )


def test_typed_times_are_read_in_the_viewers_zone(slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)
    _entries_around_midnight(session_factory)
    slack.local.time_zones[ALICE] = "Asia/Tokyo"

    # 08:00-09:00 in Tokyo is 23:00-00:00 UTC: only the first entry.
    _, name = slack.command("audit since=2026-12-02T08:00 until=2026-12-02T09:00")

    text = slack.answer_text(name)
    assert "reboot number 1" in text
    assert "reboot number 2" not in text
    assert (
        "since=<!date^1796166000^{date_num} {time}|2026-12-01 23:00 UTC> "
        "until=<!date^1796169600^{date_num} {time}|2026-12-02 00:00 UTC>"
    ) in text
    assert (
        "<!date^1796167800^{date_num} {time_secs}|2026-12-01 23:30:00 UTC> "
        "<@U0ALICE> reboot *web-01* → *succeeded*"
    ) in text
    assert "read in UTC" not in text
    assert len(slack.local.api_calls("users.info")) == 1


def test_ages_and_offsets_need_no_zone(slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)
    _entries_around_midnight(session_factory)

    _, name = slack.command("audit since=2026-12-02T00:00Z")

    text = slack.answer_text(name)
    assert "reboot number 2" in text
    assert "reboot number 1" not in text
    assert slack.local.api_calls("users.info") == []


def test_without_a_zone_typed_times_are_read_in_utc_and_the_answer_says_so(
    slack, session_factory
):
    set_policy(session_factory, ALL_ALLOWED)
    _entries_around_midnight(session_factory)
    slack.local.fail("users.info", "missing_scope")

    _, name = slack.command("audit since=2026-12-02")

    text = slack.answer_text(name)
    assert "reboot number 2" in text
    assert "reboot number 1" not in text
    assert (
        "The dates and times you typed were read in UTC: Slack did not tell "
        "vpsbot your time zone."
    ) in text


def test_the_order_of_a_mixed_range_is_judged_in_the_viewers_zone(
    slack, session_factory
):
    set_policy(session_factory, ALL_ALLOWED)
    _entries_around_midnight(session_factory)
    slack.local.time_zones[ALICE] = "Asia/Tokyo"

    # 08:00 on the 2nd in Tokyo is 23:00 UTC on the 1st: before 23:45 UTC.
    _, kept = slack.command("audit since=2026-12-02T08:00 until=2026-12-01T23:45Z")
    # 06:00 on the 2nd in Tokyo is 21:00 UTC on the 1st: before 22:00 UTC.
    _, refused = slack.command("audit since=2026-12-01T22:00Z until=2026-12-02T06:00")

    assert "reboot number 1" in slack.answer_text(kept)
    assert "reboot number 2" not in slack.answer_text(kept)
    assert slack.answer_text(refused) == (
        "That `audit` is not quite right: `since` must come before `until`. "
        "Usage: `/vps audit [<server>] [<@user>] [action=…] [outcome=…] "
        "[since=…] [until=…]`"
    )


def test_times_out_of_range_get_the_usage_answer(slack, session_factory):
    set_policy(session_factory, ALL_ALLOWED)
    slack.local.time_zones[ALICE] = "Pacific/Honolulu"

    response, _ = slack.command("audit since=999999w")
    far, _ = slack.command("audit export until=9999-12-31T23:59")
    # Before 1970 only once read in bob's zone (UTC+05:30 at that time).
    slack.local.time_zones[BOB] = "Asia/Kathmandu"
    _, early = slack.command("audit since=1970-01-01T05:00", user=BOB)

    assert response.status_code == 200
    assert response.json()["text"] == (
        "That `audit` is not quite right: `since=999999w` is out of range; times "
        "from 1970 to 8999 are accepted. Usage: `/vps audit [<server>] [<@user>] "
        "[action=…] [outcome=…] [since=…] [until=…]`"
    )
    assert far.json()["text"] == (
        "That `audit` is not quite right: `until=9999-12-31T23:59` is out of range; "
        "times from 1970 to 8999 are accepted. Usage: `/vps audit [<server>] "
        "[<@user>] [action=…] [outcome=…] [since=…] [until=…]`"
    )
    assert slack.answer_text(early) == (
        "That `audit` is not quite right: `since=1970-01-01T05:00` is out of range; "
        "times from 1970 to 8999 are accepted. Usage: `/vps audit [<server>] "
        "[<@user>] [action=…] [outcome=…] [since=…] [until=…]`"
    )


def test_a_time_inside_a_spring_forward_gap_is_refused_not_shifted(
    slack, session_factory
):
    set_policy(session_factory, ALL_ALLOWED)
    slack.local.time_zones[ALICE] = "America/New_York"

    _, name = slack.command("audit since=2026-03-08T02:10 until=2026-03-08T02:50")

    assert slack.answer_text(name) == (
        "That `audit` is not quite right: `since=2026-03-08T02:10`: that time did "
        "not exist in your time zone (the clocks went forward). Usage: `/vps audit "
        "[<server>] [<@user>] [action=…] [outcome=…] [since=…] [until=…]`"
    )
