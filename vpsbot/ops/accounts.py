"""Which VPS.org account a request acts on: the provider client per workspace.

A single-workspace vpsbot has one account (``VPS_API_TOKEN``) and every
request uses its client. In multi-workspace mode each workspace connects its
own account with ``/vps connect``; the request's team id chooses the client,
built from that workspace's decrypted token.

Clients are cached per workspace, keyed by the stored ciphertext: each lookup
reads the workspace's row (one primary-key query), so a token connected again
or deleted by any process is noticed at the next request of every process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from vpsbot.config import Secret
from vpsbot.credentials import WorkspaceCredentials
from vpsbot.errors import UserError
from vpsbot.ops.context import Actor
from vpsbot.ops.guard import Guard, Target
from vpsbot.vps import VpsClient

logger = logging.getLogger(__name__)

NO_ACCOUNT = (
    "This workspace has no VPS.org account connected yet; an admin can run "
    "`/vps connect`."
)


class NoProviderAccountError(UserError):
    """The workspace has not connected a VPS.org account; nothing was done."""

    def __init__(self) -> None:
        super().__init__(NO_ACCOUNT)


class ProviderAccounts(Protocol):
    """Hands out the provider client of a workspace."""

    def client_for(self, team_id: str) -> VpsClient:
        """The workspace's client.

        Raises:
            NoProviderAccountError: the workspace has no account connected.
        """
        ...

    def close(self) -> None:
        """Close the clients handed out."""
        ...


class SingleAccount:
    """One VPS.org account for every request (single-workspace mode)."""

    def __init__(self, client: VpsClient) -> None:
        self.client = client

    def client_for(self, team_id: str) -> VpsClient:
        return self.client

    def close(self) -> None:
        self.client.close()


def as_accounts(vps: VpsClient | ProviderAccounts) -> ProviderAccounts:
    """``vps`` as accounts: a lone client serves every workspace."""
    return SingleAccount(vps) if isinstance(vps, VpsClient) else vps


class WorkspaceAccounts:
    """Each workspace's own VPS.org account (multi-workspace mode).

    Args:
        credentials: where the encrypted tokens are kept.
        make_client: builds a client from a token (the base URL, retries and
            pool size are the caller's).
    """

    def __init__(
        self,
        credentials: WorkspaceCredentials,
        make_client: Callable[[Secret], VpsClient],
    ) -> None:
        self._credentials = credentials
        self._make_client = make_client
        self._lock = threading.Lock()
        # team id -> (ciphertext the client was built from, client)
        self._clients: dict[str, tuple[str, VpsClient]] = {}

    def __repr__(self) -> str:
        return f"WorkspaceAccounts(cached={len(self._clients)})"

    def client_for(self, team_id: str) -> VpsClient:
        """The workspace's client, rebuilt when its stored token changed.

        Raises:
            NoProviderAccountError: the workspace has no account connected.
            StoreUnavailableError: the database did not answer.
            UndecryptableCredentialError: no configured key opens the token.
        """
        stored = self._credentials.stored(team_id)
        if stored is None:
            self.forget(team_id)
            raise NoProviderAccountError()
        with self._lock:
            cached = self._clients.get(team_id)
            if cached is not None and cached[0] == stored.ciphertext:
                return cached[1]
        client = self._make_client(self._credentials.decrypt(stored))
        with self._lock:
            self._clients[team_id] = (stored.ciphertext, client)
        if cached is not None:
            logger.info("VPS.org token of workspace %s changed; new client", team_id)
        return client

    def forget(self, team_id: str) -> None:
        """Drop the workspace's cached client (its credential went away).

        The client is not closed: a request still using it may finish.
        """
        with self._lock:
            self._clients.pop(team_id, None)

    def close(self) -> None:
        with self._lock:
            clients = [client for _, client in self._clients.values()]
            self._clients.clear()
        for client in clients:
            client.close()


class AccountScoped:
    """Use cases that reach VPS.org with the actor's workspace's account.

    Every attempt checks the account before the channel's policy, so a
    workspace with none gets that one sentence and nothing is audited.
    """

    def __init__(self, *, guard: Guard, vps: VpsClient | ProviderAccounts) -> None:
        self._guard = guard
        self._accounts = as_accounts(vps)

    def _vps_for(self, actor: Actor) -> VpsClient:
        """The provider client of the actor's workspace.

        Raises:
            NoProviderAccountError: the workspace has no account connected.
        """
        return self._accounts.client_for(actor.team_id)

    def require_account(self, actor: Actor) -> None:
        """Refuse at once when the actor's workspace has no VPS.org account.

        Raises:
            NoProviderAccountError: the workspace has no account connected.
        """
        self._vps_for(actor)

    def _authorize(
        self, actor: Actor, verb: str, target: Target, *, audited: bool = True
    ) -> None:
        """The workspace's account first, then the channel's policy."""
        self.require_account(actor)
        self._guard.authorize(actor, verb, target, audited=audited)
