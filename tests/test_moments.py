"""Points in time as people type them, in UTC or in their own zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from vpsbot.moments import names_wall_clock, parse_moment

NOW = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)
TOKYO = ZoneInfo("Asia/Tokyo")


def test_dates_and_times_without_offset_are_read_in_the_zone_given():
    assert parse_moment("2026-12-02", NOW) == datetime(2026, 12, 2, tzinfo=UTC)
    assert parse_moment("2026-12-02", NOW, TOKYO) == datetime(
        2026, 12, 1, 15, 0, tzinfo=UTC
    )
    assert parse_moment("2026-12-02T08:30", NOW, TOKYO) == datetime(
        2026, 12, 1, 23, 30, tzinfo=UTC
    )


def test_offsets_and_ages_mean_the_same_moment_in_every_zone():
    assert parse_moment("2026-12-02T08:30Z", NOW, TOKYO) == datetime(
        2026, 12, 2, 8, 30, tzinfo=UTC
    )
    assert parse_moment("2026-12-02T08:30+01:00", NOW, TOKYO) == datetime(
        2026, 12, 2, 7, 30, tzinfo=UTC
    )
    assert parse_moment("2h", NOW, TOKYO) == datetime(2026, 12, 4, 21, 30, tzinfo=UTC)


def test_today_and_yesterday_start_at_midnight_in_the_zone():
    # 23:30 UTC on the 4th is already 08:30 on the 5th in Tokyo.
    assert parse_moment("today", NOW) == datetime(2026, 12, 4, tzinfo=UTC)
    assert parse_moment("today", NOW, TOKYO) == datetime(2026, 12, 5, tzinfo=TOKYO)
    assert parse_moment("yesterday", NOW, TOKYO) == datetime(
        2026, 12, 3, 15, 0, tzinfo=UTC
    )


def test_which_forms_depend_on_the_zone():
    assert [
        names_wall_clock(value)
        for value in (
            "2026-12-02",
            "2026-12-02T08:00",
            "today",
            "Yesterday",
            "2026-12-02T08:00Z",
            "2026-12-02T08:00+09:00",
            "3d",
            "soon",
        )
    ] == [True, True, True, True, False, False, False, False]


def test_an_unknown_form_is_refused():
    with pytest.raises(ValueError):
        parse_moment("next tuesday", NOW, TOKYO)


def test_moments_come_back_in_utc_and_far_ends_are_refused():
    kathmandu = ZoneInfo("Asia/Kathmandu")
    honolulu = ZoneInfo("Pacific/Honolulu")

    assert parse_moment("2026-12-02T08:30", NOW, TOKYO).tzinfo is UTC
    for value, zone in (
        ("999999w", UTC),
        ("0001-01-01", kathmandu),
        ("9999-12-31T23:59", honolulu),
        ("1969-12-31T23:59Z", UTC),
    ):
        with pytest.raises(ValueError, match="^times from 1970 to 8999 are accepted$"):
            parse_moment(value, NOW, zone)


def test_a_time_the_clocks_skipped_is_refused_and_a_repeated_one_read_first():
    new_york = ZoneInfo("America/New_York")

    with pytest.raises(ValueError, match="^that time did not exist in your time"):
        parse_moment("2026-03-08T02:30", NOW, new_york)
    # 01:30 on the night clocks go back happens twice; the first is taken.
    assert parse_moment("2026-11-01T01:30", NOW, new_york) == datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC
    )
    assert parse_moment("2026-03-08T03:00", NOW, new_york) == datetime(
        2026, 3, 8, 7, 0, tzinfo=UTC
    )
