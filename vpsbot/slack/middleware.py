"""Middleware every request passes: a request id and the facts of its log line."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse

from vpsbot import access_log
from vpsbot.ops import new_request_id
from vpsbot.slack.parsing import USAGE

logger = logging.getLogger(__name__)

# Action ids, callback ids and event types are the app's or Slack's own names;
# anything else is shown as "other" rather than echoed into the log.
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def register(app: App) -> None:
    """Stamp each request with an id and note what it was (never its body)."""

    def stamp_request(
        request: BoltRequest,
        context: dict[str, Any],
        next: Callable[[], BoltResponse],  # noqa: A002 - Bolt's argument name
    ) -> BoltResponse:
        context["request_id"] = new_request_id()
        started = time.perf_counter()
        response = next()
        facts = {
            "request_id": context["request_id"],
            "team": context.get("team_id"),
            "channel": context.get("channel_id"),
            "user": context.get("user_id"),
            "action": action_of(request.body or {}),
        }
        if not access_log.note(**facts):
            facts["status"] = response.status if response is not None else None
            facts["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
            access_log.write(facts)
        return response

    app.middleware(stamp_request)


def action_of(body: dict[str, Any]) -> str:
    """What a request asks for, by name: the ``/vps`` verb, the button's action
    id, the dialog's callback id or the event's type.

    Free text never comes through: a ``/vps`` word that is not a verb is
    ``other``.
    """
    if "command" in body:
        words = str(body.get("text") or "").split()
        if not words:
            return "help"
        verb = words[0].lower()
        return verb if verb in USAGE else "other"
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions") or [{}]
        name = actions[0].get("action_id") if isinstance(actions[0], dict) else None
    elif kind in ("view_submission", "view_closed"):
        view = body.get("view") or {}
        name = view.get("callback_id") if isinstance(view, dict) else None
    elif kind == "event_callback":
        event = body.get("event") or {}
        name = event.get("type") if isinstance(event, dict) else None
    else:
        name = kind
    return name if isinstance(name, str) and _NAME.match(name) else "other"
