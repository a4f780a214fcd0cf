"""The composition root: settings in, a wired application out.

Nothing is created at import time. Tests and the shell pass their own pieces
(a provider client pointed at the sandbox, a session factory on a test
database); ``serve`` and ``socket`` let ``create_app`` build them from settings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import App
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from vpsbot.catalog import Catalog
from vpsbot.config import Secret, Settings
from vpsbot.credentials import TokenCipher, WorkspaceCredentials
from vpsbot.ops import (
    ApprovalExpiry,
    Operations,
    ProviderAccounts,
    SingleAccount,
    WorkspaceAccounts,
)
from vpsbot.ops.connecting import AccountConnection
from vpsbot.ops.guard import Guard
from vpsbot.ops.tracking import Follower
from vpsbot.slack import build_bolt_app, installs
from vpsbot.slack.approvals import ApprovalNotices
from vpsbot.slack.progress import SlackProgress
from vpsbot.slack.worker import Background
from vpsbot.slack.workspaces import InstalledWorkspaces, SlackClients
from vpsbot.store import make_engine, make_session_factory
from vpsbot.vps import VpsClient

logger = logging.getLogger(__name__)

# Web API calls are made after acknowledgement, but a stuck call still holds a
# worker: give up well before the provider's own slowest answer.
SLACK_TIMEOUT = 10
# How long a stopping vpsbot lets queued work finish before it starts no
# more; with the longest provider call after it, this stays inside the
# gunicorn grace period (vpsbot.serving.GRACEFUL_SECONDS).
DRAIN_SECONDS = 15
# Threads that poll followed operations and update their messages; each poll
# is one short GET, so a few threads keep up with hundreds of operations.
FOLLOW_THREADS = 8


@dataclass
class VpsBot:
    """A running vpsbot: the Bolt app plus what it was built from."""

    bolt: App
    ops: Operations
    background: Background
    vps: ProviderAccounts
    sessions: sessionmaker[Session]
    follower: Follower
    expiry: ApprovalExpiry
    follow_vps: ProviderAccounts | None = None
    # Workspaces' stored VPS.org tokens (multi-workspace mode only).
    credentials: WorkspaceCredentials | None = None

    def start_background(self) -> None:
        """Start following operations and expiring approval requests."""
        self.follower.start()
        self.expiry.start()

    def close(self) -> None:
        """Finish acknowledged work, stop the background loops, close connections.

        Queued work has ``DRAIN_SECONDS`` to finish; what has not started by
        then is answered that nothing was done, and what is running ends.
        Stopping the follower releases its leases for other processes at once.
        """
        self.background.shutdown(drain=DRAIN_SECONDS)
        self.expiry.stop()
        self.follower.stop()
        self.vps.close()
        if self.follow_vps is not None:
            self.follow_vps.close()


def create_app(
    settings: Settings,
    *,
    vps: VpsClient | None = None,
    sessions: sessionmaker[Session] | None = None,
    slack_client: WebClient | None = None,
    catalog: Catalog | None = None,
    follow_vps: VpsClient | None = None,
    provider_url: Callable[[Secret], str] | None = None,
) -> VpsBot:
    """Build vpsbot: for one workspace, or for many when OAuth is configured.

    The follower of long operations and the expiry of approval requests are
    built but not started: ``serve``, ``socket`` and ``shell`` start them
    (``bot.start_background()``).

    Args:
        settings: the parsed configuration.
        vps: the provider client (default: one built from ``VPS_API_URL`` and
            ``VPS_API_TOKEN``). Single-workspace mode only.
        sessions: the database session factory (default: from ``DATABASE_URL``).
        slack_client: the Web API client (default: from ``SLACK_BOT_TOKEN`` and
            ``SLACK_API_URL``). In multi-workspace mode it holds no token; its
            base URL is used for every workspace's client.
        catalog: what the create dialog offers (default: read from
            ``VPSBOT_CATALOG``, else the shipped catalog).
        follow_vps: the provider client for following operations; it should
            not retry (``max_retries=0``), so a 429 never holds a polling
            thread. Default: built from settings along with ``vps``, or
            ``vps`` itself when that was passed in.
        provider_url: the VPS.org base URL for a workspace's token
            (multi-workspace mode; default ``VPS_API_URL`` for every token).
            Tests use it to give each workspace a sandbox of its own.

    Raises:
        ConfigError: a setting the app needs is missing, or the catalog is
            malformed.
    """
    if sessions is None:
        sessions = make_session_factory(make_engine(settings.database_url))
    if settings.multi_workspace:
        return _create_multi_workspace_app(
            settings,
            sessions=sessions,
            slack_client=slack_client,
            catalog=catalog,
            provider_url=provider_url or (lambda token: settings.vps_api_url),
        )
    if vps is None:
        settings.require("vps_api_token")
        assert settings.vps_api_token is not None
        vps = VpsClient(
            settings.vps_api_url,
            settings.vps_api_token.value,
            pool_size=settings.worker_threads,
        )
        if follow_vps is None:
            follow_vps = VpsClient(
                settings.vps_api_url,
                settings.vps_api_token.value,
                max_retries=0,
                pool_size=FOLLOW_THREADS,
            )
    if slack_client is None:
        settings.require("slack_bot_token")
        assert settings.slack_bot_token is not None
        slack_client = WebClient(
            token=settings.slack_bot_token.value,
            base_url=settings.slack_api_url,
            timeout=SLACK_TIMEOUT,
        )
    settings.require("slack_signing_secret")
    assert settings.slack_signing_secret is not None

    ops = Operations.build(
        sessions=sessions,
        vps=vps,
        admins=settings.admins,
        catalog=catalog or Catalog.load(settings.catalog_path),
        approval_ttl=settings.approval_ttl,
    )
    return _assemble(
        settings,
        sessions=sessions,
        ops=ops,
        client=slack_client,
        clients=slack_client,
        vps=SingleAccount(vps),
        follow_vps=(
            SingleAccount(follow_vps)
            if follow_vps is not None and follow_vps is not vps
            else None
        ),
    )


def _create_multi_workspace_app(
    settings: Settings,
    *,
    sessions: sessionmaker[Session],
    slack_client: WebClient | None,
    catalog: Catalog | None,
    provider_url: Callable[[Secret], str],
) -> VpsBot:
    """Many workspaces, each with its bot token and its own VPS.org account.

    Raises:
        ConfigError: ``VPSBOT_SECRET_KEY`` or the signing secret is missing.
    """
    settings.require("slack_signing_secret")
    assert settings.slack_signing_secret is not None
    assert settings.slack_client_id and settings.slack_client_secret
    cipher = TokenCipher(settings.secret_keys)
    credentials = WorkspaceCredentials(sessions, cipher)
    engine = sessions.kw["bind"]
    if slack_client is None:
        slack_client = WebClient(base_url=settings.slack_api_url, timeout=SLACK_TIMEOUT)
    oauth = installs.oauth_settings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.value,
        engine=engine,
        cipher=cipher,
    )
    workspaces = InstalledWorkspaces(
        oauth.installation_store,
        base_url=slack_client.base_url,
        timeout=slack_client.timeout,
    )

    def client(token: Secret, **options: Any) -> VpsClient:
        return VpsClient(provider_url(token), token.value, **options)

    accounts = WorkspaceAccounts(
        credentials, lambda token: client(token, pool_size=settings.worker_threads)
    )
    follow_accounts = WorkspaceAccounts(
        credentials,
        lambda token: client(token, max_retries=0, pool_size=FOLLOW_THREADS),
    )
    installers = installs.installer_of(oauth)
    ops = Operations.build(
        sessions=sessions,
        vps=accounts,
        admins=settings.admins,
        catalog=catalog or Catalog.load(settings.catalog_path),
        approval_ttl=settings.approval_ttl,
        workspace_admins=installers,
    )
    connection = AccountConnection(
        guard=Guard(sessions, admins=settings.admins, workspace_admins=installers),
        sessions=sessions,
        credentials=credentials,
        # Tried before Slack is answered: give up well inside its 3 seconds.
        make_client=lambda token: client(
            token, max_retries=0, connect_timeout=1.0, read_timeout=1.5
        ),
    )

    def forget_workspace(team_id: str) -> None:
        credentials.delete(team_id)
        accounts.forget(team_id)
        follow_accounts.forget(team_id)

    return _assemble(
        settings,
        sessions=sessions,
        ops=ops,
        client=slack_client,
        clients=workspaces,
        vps=accounts,
        follow_vps=follow_accounts,
        connection=connection,
        oauth=oauth,
        on_removed=forget_workspace,
        credentials=credentials,
    )


def _assemble(
    settings: Settings,
    *,
    sessions: sessionmaker[Session],
    ops: Operations,
    client: WebClient,
    clients: WebClient | SlackClients,
    vps: ProviderAccounts,
    follow_vps: ProviderAccounts | None,
    connection: AccountConnection | None = None,
    oauth: OAuthSettings | None = None,
    on_removed: installs.OnRemoved | None = None,
    credentials: WorkspaceCredentials | None = None,
) -> VpsBot:
    """The pools, the follower, the approval notices and the Bolt app, wired.

    ``client`` is Bolt's own client; ``clients`` give each workspace's for
    work done outside a request (following, approval notices).
    """
    assert settings.slack_signing_secret is not None
    background = Background(workers=settings.worker_threads)
    follower = Follower(
        sessions=sessions,
        vps=follow_vps or vps,
        notifier=SlackProgress(clients),
        timeout=settings.follow_timeout,
        workers=FOLLOW_THREADS,
    )
    notices = ApprovalNotices(clients)
    bolt = build_bolt_app(
        signing_secret=settings.slack_signing_secret.value,
        client=client,
        ops=ops,
        background=background,
        follower=follower,
        notices=notices,
        connection=connection,
        oauth=oauth,
        on_removed=on_removed,
    )
    return VpsBot(
        bolt=bolt,
        ops=ops,
        background=background,
        vps=vps,
        sessions=sessions,
        follower=follower,
        expiry=ApprovalExpiry(ops.approvals, notices),
        follow_vps=follow_vps,
        credentials=credentials,
    )
