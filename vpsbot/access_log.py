"""One log line per request: what was asked, by whom, how it ended, how long.

``AccessLog`` wraps the WSGI app of ``vpsbot serve``. While a request runs,
the Slack middleware adds what it knows (request id, workspace, channel, user
and action) with ``note``; when the answer is ready one line is written to the
``vpsbot.access`` logger. Under Socket Mode there is no WSGI request, so the
middleware writes the line itself with ``write``.

The line carries names and ids only, never a body, a token, a response_url or
a trigger_id. Its fields ride on the record as ``record.access``, which the
JSON log format spreads into the object; the text format reads them in the
message. Health checks are logged at DEBUG, so that a probe every few seconds
does not bury the requests that matter.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

logger = logging.getLogger("vpsbot.access")

HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
# The order fields are shown in the text format.
FIELDS = (
    "request_id",
    "team",
    "channel",
    "user",
    "action",
    "method",
    "path",
    "status",
    "latency_ms",
)

_current: ContextVar[dict[str, Any] | None] = ContextVar(
    "vpsbot_access_facts", default=None
)

StartResponse = Callable[..., Any]


def note(**facts: Any) -> bool:
    """Add facts to the line of the request being served.

    Returns ``False`` when no WSGI request is being served (Socket Mode), so
    the caller writes its own line.
    """
    current = _current.get()
    if current is None:
        return False
    current.update(facts)
    return True


def write(facts: dict[str, Any], *, level: int = logging.INFO) -> None:
    """Log one access line made of ``facts`` (absent fields are left out)."""
    shown = {name: facts[name] for name in FIELDS if facts.get(name) is not None}
    # A value with spaces or control characters (a forged id) is quoted, so
    # it cannot pass for a field or a log line of its own.
    text = " ".join(f"{name}={_plain(value)}" for name, value in shown.items())
    logger.log(level, "request %s", text, extra={"access": shown})


def _plain(value: Any) -> str:
    text = str(value)
    if text.isprintable() and " " not in text and "=" not in text:
        return text
    return json.dumps(text)


def _shown_path(path: str) -> str:
    """The path, if it is one of vpsbot's; a stranger's path may carry anything."""
    if path in HEALTH_PATHS or (
        path.startswith("/slack/") and len(path) <= 40 and path.isascii()
    ):
        return path
    return "(other)"


class AccessLog:
    """WSGI middleware writing one access line per request."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        facts: dict[str, Any] = {
            "method": environ.get("REQUEST_METHOD", "GET"),
            "path": _shown_path(path),
        }
        statuses: list[int] = []

        def recording_start_response(
            status: str, headers: list[tuple[str, str]], *exc_info: Any
        ) -> Any:
            statuses.append(int(status.split(" ", 1)[0]))
            return start_response(status, headers, *exc_info)

        token = _current.set(facts)
        started = time.perf_counter()
        try:
            return self._app(environ, recording_start_response)
        finally:
            _current.reset(token)
            facts["status"] = statuses[-1] if statuses else 500
            facts["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
            quiet = path in HEALTH_PATHS and facts["status"] == 200
            write(facts, level=logging.DEBUG if quiet else logging.INFO)
