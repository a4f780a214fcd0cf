"""Connecting a workspace's VPS.org account (``/vps connect``), free of Slack.

An admin hands over the account's API token. It is tried with one list call
first, so a mistyped or revoked token is refused and nothing is stored; a
token VPS.org accepts is stored encrypted and replaces any before it. Each
submission is audited as a ``policy`` action; the token never appears in the
log, only what happened to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeoutError

from sqlalchemy.orm import Session, sessionmaker

from vpsbot.config import Secret
from vpsbot.credentials import WorkspaceCredentials
from vpsbot.errors import PermissionDeniedError, UserError
from vpsbot.ops.context import Actor
from vpsbot.ops.guard import Guard, Target
from vpsbot.store import session_scope
from vpsbot.vps import UnauthorizedError, VpsClient

logger = logging.getLogger(__name__)

CONNECTED = "connected the workspace's VPS.org account"
TOKEN_REFUSED = "VPS.org did not accept this token"
UNREACHABLE = "could not reach VPS.org; nothing was stored"
MALFORMED = (
    "A VPS.org API token is one line of letters, digits and punctuation (at most "
    "500 characters); paste it again."
)
# The whole try, however VPS.org trickles its answer: Slack waits 3 seconds
# for the dialog's answer.
CHECK_DEADLINE = 2.0
MAX_TOKEN_CHARS = 500


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot be a VPS.org token, or ``None``.

    Only visible ASCII fits an HTTP header; anything else would fail inside
    the HTTP library with the token in its message.
    """
    if not 0 < len(token) <= MAX_TOKEN_CHARS:
        return MALFORMED
    if not all(33 <= ord(char) <= 126 for char in token):
        return MALFORMED
    return None


class TokenRefusedError(UserError):
    """VPS.org answered 401 to the token; nothing was stored."""

    def __init__(self) -> None:
        super().__init__(TOKEN_REFUSED)


class ProviderUnreachableError(UserError):
    """The token could not be tried (network, 5xx, 429); nothing was stored."""

    def __init__(self) -> None:
        super().__init__(UNREACHABLE)


class AccountConnection:
    """Checks and stores a workspace's VPS.org token.

    Args:
        guard: who administers a workspace (``Guard.admins_for``), and the
            audit entries.
        sessions: the database.
        credentials: where the token is kept, encrypted.
        make_client: a provider client for a token (``VPS_API_URL``).
    """

    def __init__(
        self,
        *,
        guard: Guard,
        sessions: sessionmaker[Session],
        credentials: WorkspaceCredentials,
        make_client: Callable[[Secret], VpsClient],
    ) -> None:
        self._guard = guard
        self._sessions = sessions
        self._credentials = credentials
        self._make_client = make_client
        self._tries = ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="vpsbot-connect"
        )

    def __repr__(self) -> str:
        return "AccountConnection()"

    def may_connect(self, actor: Actor) -> bool:
        """Whether the actor administers their workspace."""
        return actor.user_id in self._guard.admins_for(actor.team_id)

    def refusal(self) -> str:
        """The one sentence a non-admin gets."""
        return (
            "Only an admin (VPSBOT_ADMINS, or whoever installed vpsbot in this "
            "workspace) can connect its VPS.org account."
        )

    def check_may_connect(self, actor: Actor) -> None:
        """Refuse a non-admin before the dialog opens (not an attempt; unaudited).

        Raises:
            PermissionDeniedError: the actor is not an admin.
        """
        if not self.may_connect(actor):
            raise PermissionDeniedError(self.refusal())

    def check_token(self, actor: Actor, token: Secret) -> int:
        """Try ``token`` with one list call; the number of servers it sees.

        Nothing is stored or audited here: the dialog calls this before it
        answers Slack, so the whole try gives up after ``CHECK_DEADLINE``
        seconds, and an answer that comes later is thrown away.

        Raises:
            TokenRefusedError: VPS.org answered 401.
            ProviderUnreachableError: no usable answer in time (network, 5xx,
                429, a slow answer).
        """
        attempt = self._tries.submit(self._count_servers, actor, token)
        try:
            return attempt.result(timeout=CHECK_DEADLINE)
        except FutureTimeoutError:
            logger.warning(
                "could not try a VPS.org token within %.1f s [%s]",
                CHECK_DEADLINE,
                actor.request_id,
            )
            raise ProviderUnreachableError() from None

    def _count_servers(self, actor: Actor, token: Secret) -> int:
        client = self._make_client(token)
        try:
            return len(client.get_all(request_id=actor.request_id))
        except UnauthorizedError:
            raise TokenRefusedError() from None
        except Exception as exc:
            # Only the kind of failure: a message could quote the token.
            logger.warning(
                "could not try a VPS.org token: %s [%s]",
                type(exc).__name__,
                actor.request_id,
            )
            raise ProviderUnreachableError() from None
        finally:
            client.close()

    def record_denied(self, actor: Actor) -> None:
        """Audit a submission by someone who is not an admin."""
        self._guard.record(
            actor,
            "policy",
            "denied",
            Target(),
            "connect the workspace's VPS.org account: not an admin",
        )

    def record_refused(self, actor: Actor, error: UserError) -> None:
        """Audit a token that could not be tried or was not accepted."""
        if isinstance(error, TokenRefusedError):
            detail = "VPS.org did not accept the token offered; nothing stored"
        else:
            detail = "could not reach VPS.org to try the token offered; nothing stored"
        self._guard.record(actor, "policy", "failed", Target(), detail)

    def store(self, actor: Actor, token: Secret, servers: int) -> None:
        """Keep an accepted token for the actor's workspace, with its audit entry.

        Both are written in one transaction: without the entry, nothing is
        stored.

        Raises:
            StoreUnavailableError: the database did not answer; nothing stored.
        """
        with session_scope(self._sessions) as session:
            self._credentials.store_in(
                session, actor.team_id, token, connected_by=actor.user_id
            )
            self._guard.record_in(
                session,
                actor,
                "policy",
                "succeeded",
                Target(),
                f"{CONNECTED} ({servers} server{'' if servers == 1 else 's'} on it)",
            )
