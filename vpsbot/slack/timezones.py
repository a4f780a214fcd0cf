"""Times as each viewer reads and types them: in their own time zone.

Shown times use Slack's date formatting (``<!date^…>``): every Slack client
draws them in its own user's time zone, so one message reads right for the
whole channel, and the fallback text (UTC) is what clients that cannot format
show. Typed times without an offset (``since=2026-12-01``) are read in the
typing user's zone, which ``users.info`` tells (scope ``users:read``); when
Slack cannot tell, UTC is used and said.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

logger = logging.getLogger(__name__)

# How long a user's zone is trusted before it is asked again; people travel.
ZONE_TTL = 3600.0
# After a failed lookup, UTC is used for this long before Slack is asked again.
FAILURE_TTL = 60.0
# Zones kept in memory at most; the oldest lookup is dropped first.
MAX_USERS = 10_000


def shown(moment: datetime, *, seconds: bool = True) -> str:
    """``moment`` as mrkdwn that each reader's Slack shows in their own zone.

    Only mrkdwn text formats it; plain text would show the markup.
    """
    at = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    clock = "{time_secs}" if seconds else "{time}"
    fallback = at.astimezone(UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC"
    )
    return f"<!date^{int(at.timestamp())}^{{date_num}} {clock}|{fallback}>"


def zone_name(zone: tzinfo) -> str:
    """How a zone is named to its user: ``Europe/Paris``, ``UTC+05:30``."""
    if isinstance(zone, ZoneInfo):
        return zone.key
    return zone.tzname(None) or "UTC"


def zone_from_profile(user: dict[str, object]) -> tzinfo | None:
    """The zone in a ``users.info`` user object, if it names one.

    The IANA name (``tz``) is preferred; a name this machine does not know
    falls back to the fixed ``tz_offset`` in seconds.
    """
    name = user.get("tz")
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            logger.info("unknown time zone %r in a Slack profile", name[:64])
    offset = user.get("tz_offset")
    if not isinstance(offset, int) or isinstance(offset, bool):
        return None
    if offset == 0:
        return UTC
    if abs(offset) < 24 * 3600:
        return timezone(timedelta(seconds=offset))
    return None


class ViewerZones:
    """Each user's time zone, asked of Slack once an hour at most.

    Users are told apart by workspace too (the client's token names it), so
    one instance serves every workspace.
    """

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._known: OrderedDict[tuple[str, str], tuple[tzinfo | None, float]] = (
            OrderedDict()
        )

    def zone_of(self, user_id: str, client: WebClient) -> tzinfo | None:
        """The user's zone, or ``None`` when Slack could not tell it."""
        key = (client.token or "", user_id)
        now = self._monotonic()
        with self._lock:
            cached = self._known.get(key)
            if cached is not None and cached[1] > now:
                return cached[0]
        zone, ttl = self._ask(user_id, client)
        with self._lock:
            self._known[key] = (zone, now + ttl)
            self._known.move_to_end(key)
            while len(self._known) > MAX_USERS:
                self._known.popitem(last=False)
        return zone

    def _ask(self, user_id: str, client: WebClient) -> tuple[tzinfo | None, float]:
        try:
            answer = client.users_info(user=user_id)
        except SlackApiError as exc:
            logger.warning(
                "users.info for %s failed (%s); reading typed times in UTC",
                user_id,
                exc.response.get("error", "unknown error"),
            )
            return None, FAILURE_TTL
        except (SlackClientError, OSError) as exc:
            logger.warning(
                "users.info for %s did not answer (%s); reading typed times in UTC",
                user_id,
                type(exc).__name__,
            )
            return None, FAILURE_TTL
        user = answer.get("user")
        zone = zone_from_profile(user) if isinstance(user, dict) else None
        return zone, ZONE_TTL
