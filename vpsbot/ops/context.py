"""Who is asking, where, and under which request id."""

from __future__ import annotations

import secrets
from dataclasses import dataclass


def new_request_id() -> str:
    """A short id that ties a Slack request, provider calls, logs and audit."""
    return "r-" + secrets.token_hex(6)


@dataclass(frozen=True)
class Actor:
    """The person behind one request, and the channel the request came from."""

    team_id: str
    channel_id: str
    user_id: str
    request_id: str
