"""The composition root: settings in, a wired application out.

Nothing is created at import time. Tests and the shell pass their own pieces
(a provider client pointed at the sandbox, a session factory on a test
database); ``serve`` and ``socket`` let ``create_app`` build them from settings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_bolt import App
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from vpsbot.catalog import Catalog
from vpsbot.config import Settings
from vpsbot.ops import ApprovalExpiry, Operations
from vpsbot.ops.tracking import Follower
from vpsbot.slack import build_bolt_app
from vpsbot.slack.approvals import ApprovalNotices
from vpsbot.slack.progress import SlackProgress
from vpsbot.slack.worker import Background
from vpsbot.store import make_engine, make_session_factory
from vpsbot.vps import VpsClient

logger = logging.getLogger(__name__)

# Web API calls are made after acknowledgement, but a stuck call still holds a
# worker: give up well before the provider's own slowest answer.
SLACK_TIMEOUT = 10
# Threads that poll followed operations and update their messages; each poll
# is one short GET, so a few threads keep up with hundreds of operations.
FOLLOW_THREADS = 8


@dataclass
class VpsBot:
    """A running vpsbot: the Bolt app plus what it was built from."""

    bolt: App
    ops: Operations
    background: Background
    vps: VpsClient
    sessions: sessionmaker[Session]
    follower: Follower
    expiry: ApprovalExpiry
    follow_vps: VpsClient | None = None

    def start_background(self) -> None:
        """Start following operations and expiring approval requests."""
        self.follower.start()
        self.expiry.start()

    def close(self) -> None:
        """Finish queued work, stop the background loops and close connections.

        Stopping the follower releases its leases for other processes at once.
        """
        self.background.wait_idle(timeout=30)
        self.background.shutdown()
        self.expiry.stop()
        self.follower.stop()
        self.vps.close()
        if self.follow_vps is not None and self.follow_vps is not self.vps:
            self.follow_vps.close()


def create_app(
    settings: Settings,
    *,
    vps: VpsClient | None = None,
    sessions: sessionmaker[Session] | None = None,
    slack_client: WebClient | None = None,
    catalog: Catalog | None = None,
    follow_vps: VpsClient | None = None,
) -> VpsBot:
    """Build vpsbot for one workspace.

    The follower of long operations and the expiry of approval requests are
    built but not started: ``serve``, ``socket`` and ``shell`` start them
    (``bot.start_background()``).

    Args:
        settings: the parsed configuration.
        vps: the provider client (default: one built from ``VPS_API_URL`` and
            ``VPS_API_TOKEN``).
        sessions: the database session factory (default: from ``DATABASE_URL``).
        slack_client: the Web API client (default: from ``SLACK_BOT_TOKEN`` and
            ``SLACK_API_URL``).
        catalog: what the create dialog offers (default: read from
            ``VPSBOT_CATALOG``, else the shipped catalog).
        follow_vps: the provider client for following operations; it should
            not retry (``max_retries=0``), so a 429 never holds a polling
            thread. Default: built from settings along with ``vps``, or
            ``vps`` itself when that was passed in.

    Raises:
        ConfigError: a setting the app needs is missing, or the catalog is
            malformed.
    """
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
    if sessions is None:
        sessions = make_session_factory(make_engine(settings.database_url))
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
    background = Background(workers=settings.worker_threads)
    follower = Follower(
        sessions=sessions,
        vps=follow_vps or vps,
        notifier=SlackProgress(slack_client),
        timeout=settings.follow_timeout,
        workers=FOLLOW_THREADS,
    )
    notices = ApprovalNotices(slack_client)
    bolt = build_bolt_app(
        signing_secret=settings.slack_signing_secret.value,
        client=slack_client,
        ops=ops,
        background=background,
        follower=follower,
        notices=notices,
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
    )
