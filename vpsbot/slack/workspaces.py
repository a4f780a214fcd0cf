"""The Web API client of a workspace, for work done outside a Slack request.

Within a request Bolt hands each listener a client holding that workspace's
bot token. The follower of long operations and the approval notices work
later, from a database row: they ask here for the client of the row's team.
A single-workspace vpsbot has one client; in multi-workspace mode the bot
token comes from the installation store.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import InstallationStore

logger = logging.getLogger(__name__)


class NotInstalledError(Exception):
    """The workspace has no installation (it was uninstalled or revoked)."""


class SlackClients(Protocol):
    """Hands out the Web API client of a workspace."""

    def for_team(self, team_id: str) -> WebClient:
        """The workspace's client.

        Raises:
            NotInstalledError: the app is not installed there (any more).
        """
        ...


class OneWorkspace:
    """The one client of a single-workspace vpsbot."""

    def __init__(self, client: WebClient) -> None:
        self.client = client

    def for_team(self, team_id: str) -> WebClient:
        return self.client


def as_slack_clients(client: WebClient | SlackClients) -> SlackClients:
    """``client`` as clients: a lone client serves every workspace."""
    return OneWorkspace(client) if isinstance(client, WebClient) else client


class InstalledWorkspaces:
    """Clients built from each workspace's bot token in the installation store.

    The store is read on every call (a newer install replaces the token; an
    uninstall removes it); clients are reused while the token is the same.
    """

    def __init__(
        self, store: InstallationStore, *, base_url: str, timeout: int
    ) -> None:
        self._store = store
        self._base_url = base_url
        self._timeout = timeout
        self._lock = threading.Lock()
        self._clients: dict[str, WebClient] = {}

    def __repr__(self) -> str:
        return f"InstalledWorkspaces(base_url={self._base_url!r})"

    def for_team(self, team_id: str) -> WebClient:
        bot = self._store.find_bot(enterprise_id=None, team_id=team_id)
        if bot is None or not bot.bot_token:
            raise NotInstalledError(team_id)
        with self._lock:
            client = self._clients.get(team_id)
            if client is None or client.token != bot.bot_token:
                client = WebClient(
                    token=bot.bot_token,
                    base_url=self._base_url,
                    timeout=self._timeout,
                )
                self._clients[team_id] = client
            return client
