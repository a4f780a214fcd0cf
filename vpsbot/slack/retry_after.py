"""How long a refused Slack read is remembered before Slack is asked again.

Slack answers a rate-limited call with HTTP 429 and a ``Retry-After`` header
in seconds. Asking again sooner only earns another refusal and spends the
method's budget for every other caller, so a failed read is remembered for
that long, kept within bounds; a failure that names no wait gets the lower
bound.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

#: The shortest time a failed read is remembered.
FAILURE_FLOOR = 10.0
#: The longest time a failed read is remembered, whatever Slack asks.
FAILURE_CEILING = 300.0


def remembered_for(
    exc: BaseException | None,
    *,
    floor: float = FAILURE_FLOOR,
    ceiling: float = FAILURE_CEILING,
) -> float:
    """Seconds to remember ``exc`` (a ``SlackApiError``, or what caused one):
    its ``Retry-After`` within ``[floor, ceiling]``, else ``floor``."""
    wait = _retry_after(getattr(exc, "response", None))
    if wait is None:
        return floor
    return min(ceiling, max(floor, wait))


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    for name, value in headers.items():
        if str(name).lower() != "retry-after":
            continue
        raw = value[0] if isinstance(value, list | tuple) and value else value
        try:
            return float(raw)
        except (TypeError, ValueError):
            return None
    return None
