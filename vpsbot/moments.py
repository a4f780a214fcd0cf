"""Points in time as people type them: dates, times and ages.

Shared by ``/vps audit since=… until=…`` (read in the typing user's time zone)
and ``vpsbot audit export --since`` (read in UTC).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta, tzinfo

logger = logging.getLogger(__name__)

_AGE = re.compile(r"(\d{1,6})([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# The moments a filter may name: anything else is a typing slip, and the
# far ends of the calendar overflow once a time zone is applied.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
OUT_OF_RANGE = "times from 1970 to 8999 are accepted"
SKIPPED = "that time did not exist in your time zone (the clocks went forward)"

FORMS = "a date like 2026-12-01, a time like 2026-12-01T08:00, or an age like 2h or 3d"


def parse_moment(value: str, now: datetime, zone: tzinfo = UTC) -> datetime:
    """``2026-12-01``, ``2026-12-01T08:00`` (in ``zone`` unless an offset is
    given), ``30m``/``2h``/``3d``/``1w`` before ``now``, ``today`` or
    ``yesterday`` (midnight in ``zone``); in UTC, between 1970 and 9000.

    Raises:
        ValueError: none of these forms, a moment out of that range, or a
            wall-clock time the zone skipped (``SKIPPED``).
    """
    try:
        moment = _read(value, now, zone).astimezone(UTC)
    except OverflowError:
        raise ValueError(OUT_OF_RANGE) from None
    if not EARLIEST <= moment < LATEST:
        raise ValueError(OUT_OF_RANGE)
    return moment


def _read(value: str, now: datetime, zone: tzinfo) -> datetime:
    word = value.strip().lower()
    age = _AGE.fullmatch(word)
    if age:
        return now - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
    if word in ("today", "yesterday"):
        day = now.astimezone(zone).date()
        if word == "yesterday":
            day -= timedelta(days=1)
        return datetime(day.year, day.month, day.day, tzinfo=zone)
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        return moment
    local = moment.replace(tzinfo=zone)
    # A time the clocks skipped (spring forward) comes back changed.
    if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != moment:
        raise ValueError(SKIPPED)
    return local


def names_wall_clock(value: str) -> bool:
    """Whether ``value`` means a different moment in another time zone.

    Ages (``2h``) and times with an offset do not; dates, times without an
    offset, ``today`` and ``yesterday`` do.
    """
    word = value.strip().lower()
    if _AGE.fullmatch(word):
        return False
    if word in ("today", "yesterday"):
        return True
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return False
    return moment.tzinfo is None
