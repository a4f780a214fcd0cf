"""Middleware every request passes: a request id and one log line."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse

from vpsbot.ops import new_request_id

logger = logging.getLogger(__name__)


def register(app: App) -> None:
    """Stamp each request with an id and log what it was (never its body)."""

    def stamp_request(
        request: BoltRequest,
        context: dict[str, Any],
        next: Callable[[], BoltResponse],  # noqa: A002 - Bolt's argument name
    ) -> BoltResponse:
        context["request_id"] = new_request_id()
        started = time.perf_counter()
        response = next()
        body = request.body or {}
        kind = body.get("type") or ("command" if "command" in body else "other")
        logger.info(
            "slack %s team=%s channel=%s user=%s -> %s in %.0f ms [%s]",
            kind,
            context.get("team_id"),
            context.get("channel_id"),
            context.get("user_id"),
            response.status if response is not None else "-",
            (time.perf_counter() - started) * 1000,
            context["request_id"],
        )
        return response

    app.middleware(stamp_request)
