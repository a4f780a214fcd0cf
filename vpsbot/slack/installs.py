"""The multi-workspace install: Slack's OAuth flow and its stores.

With ``SLACK_CLIENT_ID`` and ``SLACK_CLIENT_SECRET`` set, any workspace can
install vpsbot from ``GET /slack/install``; Slack sends the admin back to
``GET /slack/oauth_redirect``, where the code is exchanged for a bot token
and the installation kept in slack_sdk's SQLAlchemy installation store, on
vpsbot's own database and tables (migration 0006). Requests from a workspace
are then answered with its own bot token.

When the app is uninstalled, or its bot token revoked, the workspace's
installation, bot token and VPS.org credential are deleted; its audit
entries stay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App, BoltContext
from slack_bolt.authorization.authorize import InstallationStoreAuthorize
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Engine, and_

logger = logging.getLogger(__name__)

# The bot scopes of app-manifest.yml; an install asks for exactly these.
BOT_SCOPES = ("commands", "chat:write", "usergroups:read")
# Seconds between /slack/install and Slack's redirect back.
STATE_TTL = 600

# Called with a team id once its installation is gone.
OnRemoved = Callable[[str], None]


class OnceOAuthStateStore(SQLAlchemyOAuthStateStore):
    """slack_sdk's state store, with a state consumed at most once.

    The stock ``consume`` reads the row and then deletes it, so two processes
    handed the same redirect could both accept it. Here the delete itself is
    the test: only the process whose DELETE removed the row goes on.
    """

    def consume(self, state: str) -> bool:
        now = datetime.now(UTC).replace(tzinfo=None)
        column = self.oauth_states.c
        try:
            with self.engine.begin() as connection:
                result = connection.execute(
                    self.oauth_states.delete().where(
                        and_(column.state == state, column.expire_at > now)
                    )
                )
                return result.rowcount == 1
        except Exception as exc:
            # The state is a one-time secret: name the failure, not the state.
            logger.warning("OAuth state could not be checked: %s", type(exc).__name__)
            return False


def oauth_settings(
    *,
    client_id: str,
    client_secret: str,
    engine: Engine,
    scopes: Sequence[str] = BOT_SCOPES,
) -> OAuthSettings:
    """OAuth settings on vpsbot's database.

    ``/slack/install`` redirects straight to Slack (no intermediate page),
    carrying a state that the redirect must bring back once, before
    ``STATE_TTL`` seconds.
    """
    return OAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=list(scopes),
        installation_store=SQLAlchemyInstallationStore(
            client_id=client_id,
            engine=engine,
            logger=logging.getLogger(f"{__name__}.installations"),
        ),
        state_store=OnceOAuthStateStore(
            expiration_seconds=STATE_TTL,
            engine=engine,
            logger=logging.getLogger(f"{__name__}.states"),
        ),
        install_page_rendering_enabled=False,
    )


def authorize(settings: OAuthSettings, client: WebClient) -> InstallationStoreAuthorize:
    """Bolt's installation-store authorization, with its ``auth.test`` cache on.

    Without the cache every request costs an ``auth.test`` call before the
    listener can acknowledge. A removed installation is still refused at once:
    the store is read on every request, and only ``auth.test`` is cached.
    """
    return InstallationStoreAuthorize(
        installation_store=settings.installation_store,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        logger=logging.getLogger(f"{__name__}.authorize"),
        bot_only=True,
        cache_enabled=True,
        client=client,
    )


def installer_of(settings: OAuthSettings) -> Callable[[str], frozenset[str]]:
    """Who installed vpsbot in a workspace (latest install), as a set."""
    store = settings.installation_store

    def installers(team_id: str) -> frozenset[str]:
        installation = store.find_installation(enterprise_id=None, team_id=team_id)
        if installation is None or not installation.user_id:
            return frozenset()
        return frozenset({installation.user_id})

    return installers


def register(app: App, settings: OAuthSettings, on_removed: OnRemoved) -> None:
    """Forget a workspace's tokens when it uninstalls vpsbot or revokes them."""
    store = settings.installation_store

    def forget_uninstalled_workspace(context: BoltContext) -> None:
        """Event ``app_uninstalled``."""
        team_id = context.team_id
        if not team_id:
            return
        store.delete_all(enterprise_id=context.enterprise_id, team_id=team_id)
        on_removed(team_id)
        logger.info(
            "vpsbot uninstalled from workspace %s: its tokens and VPS.org "
            "credential are deleted; its audit entries stay",
            team_id,
        )

    def forget_revoked_tokens(event: dict[str, Any], context: BoltContext) -> None:
        """Event ``tokens_revoked``: a revoked bot token ends the install."""
        team_id = context.team_id
        tokens = event.get("tokens") or {}
        if not team_id or not tokens.get("bot"):
            return
        store.delete_all(enterprise_id=context.enterprise_id, team_id=team_id)
        on_removed(team_id)
        logger.info(
            "vpsbot's bot token was revoked in workspace %s: its tokens and "
            "VPS.org credential are deleted; its audit entries stay",
            team_id,
        )

    app.event("app_uninstalled")(forget_uninstalled_workspace)
    app.event("tokens_revoked")(forget_revoked_tokens)
