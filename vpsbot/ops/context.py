"""Who is asking, where, and under which request id."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

# Server ids are positive integers that fit the audit log's BIGINT column.
_SERVER_ID = re.compile(r"[0-9]{1,18}")


def as_server_id(ref: str) -> int | None:
    """The server id ``ref`` spells in ASCII digits, or ``None`` for a name."""
    return int(ref) if _SERVER_ID.fullmatch(ref) else None


def new_request_id() -> str:
    """A short id that ties a Slack request, provider calls, logs and audit."""
    return "r-" + secrets.token_hex(6)


@dataclass(frozen=True)
class Actor:
    """The person behind one request, and the channel the request came from.

    ``approval_id`` and ``approved_verb`` are set only when an approved request
    runs: the actor is then the requester, under the original request id, and
    the guard lets that verb pass an ``approve`` rule (never a ``deny``).
    """

    team_id: str
    channel_id: str
    user_id: str
    request_id: str
    approval_id: int | None = None
    approved_verb: str | None = None


def with_reason(detail: str, reason: str | None) -> str:
    """An audit detail with the requester's reason, when one was given."""
    return f"{detail} (reason: {reason})" if reason else detail
