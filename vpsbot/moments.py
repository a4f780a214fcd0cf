"""Points in time as people type them: dates, times and ages, all in UTC.

Shared by ``/vps audit since=… until=…`` and ``vpsbot audit export --since``.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

logger = logging.getLogger(__name__)

_AGE = re.compile(r"(\d{1,6})([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

FORMS = "a date like 2026-12-01, a time like 2026-12-01T08:00, or an age like 2h or 3d"


def parse_moment(value: str, now: datetime) -> datetime:
    """``2026-12-01``, ``2026-12-01T08:00`` (UTC unless an offset is given),
    ``30m``/``2h``/``3d``/``1w`` before ``now``, ``today`` or ``yesterday``.

    Raises:
        ValueError: none of these forms.
    """
    word = value.strip().lower()
    age = _AGE.fullmatch(word)
    if age:
        return now - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
    if word in ("today", "yesterday"):
        midnight = now.astimezone(UTC).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        return midnight - timedelta(days=1 if word == "yesterday" else 0)
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
