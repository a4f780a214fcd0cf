"""The multi-workspace install: Slack's OAuth flow and its stores.

With ``SLACK_CLIENT_ID`` and ``SLACK_CLIENT_SECRET`` set, any workspace can
install vpsbot from ``GET /slack/install``; Slack sends the admin back to
``GET /slack/oauth_redirect``, where the code is exchanged for a bot token
and the installation kept in slack_sdk's SQLAlchemy installation store, on
vpsbot's own database and tables (migration 0006). Requests from a workspace
are then answered with its own bot token.

Slack's tokens are stored encrypted with the same keys as the workspaces'
VPS.org tokens (``VPSBOT_SECRET_KEY``), and ``vpsbot keys rotate`` re-encrypts
both. When the app is uninstalled, or its bot token revoked, the workspace's
installation, bot token and VPS.org credential are deleted; its audit
entries stay.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App, BoltContext
from slack_bolt.authorization.authorize import InstallationStoreAuthorize
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Column, Engine, Table, and_, select, update

from vpsbot.credentials import TokenCipher, UndecryptableCredentialError
from vpsbot.store import slack_oauth

logger = logging.getLogger(__name__)

# The bot scopes of app-manifest.yml; an install asks for exactly these.
BOT_SCOPES = (
    "commands",
    "chat:write",
    "usergroups:read",
    "users:read",
    "files:write",
    "channels:read",
    "groups:read",
)
# Seconds between /slack/install and Slack's redirect back.
STATE_TTL = 600

# Called with a team id once its installation is gone.
OnRemoved = Callable[[str], None]


# Columns of slack_installations and slack_bots that hold a token.
TOKEN_COLUMNS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")


class EncryptedInstallationStore(SQLAlchemyInstallationStore):
    """slack_sdk's installation store, keeping every token Fernet-encrypted.

    Tokens are encrypted as they are saved and decrypted as they are found;
    ids, names and scopes stay readable. A value that is already a Fernet
    token is not encrypted twice (the stock ``save`` hands its own bot row to
    ``save_bot``).
    """

    def __init__(self, *, cipher: TokenCipher, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cipher = cipher

    def __repr__(self) -> str:
        return f"EncryptedInstallationStore(client_id={self.client_id!r})"

    def _seal(self, value: str | None) -> str | None:
        if not value or is_sealed(value):
            return value
        return self._cipher.encrypt(value)

    def _open(self, value: str | None) -> str | None:
        if not value or not is_sealed(value):
            return value
        return self._cipher.decrypt(value).value

    def _with(self, entity: Any, change: Callable[[str | None], str | None]) -> Any:
        changed = copy.copy(entity)
        for name in TOKEN_COLUMNS:
            if hasattr(changed, name):
                setattr(changed, name, change(getattr(changed, name)))
        return changed

    def save(self, installation: Installation) -> None:
        super().save(self._with(installation, self._seal))

    def save_bot(self, bot: Bot) -> None:
        super().save_bot(self._with(bot, self._seal))

    def find_bot(self, **kwargs: Any) -> Bot | None:
        bot = super().find_bot(**kwargs)
        return None if bot is None else self._with(bot, self._open)

    def find_installation(self, **kwargs: Any) -> Installation | None:
        installation = super().find_installation(**kwargs)
        return None if installation is None else self._with(installation, self._open)


def is_sealed(value: str) -> bool:
    """Whether ``value`` is a Fernet token (Slack's tokens start ``xox``)."""
    return value.startswith("gAAAAA")


class OnceOAuthStateStore(SQLAlchemyOAuthStateStore):
    """slack_sdk's state store, with a state consumed at most once.

    The stock ``consume`` reads the row and then deletes it, so two processes
    handed the same redirect could both accept it. Here the delete itself is
    the test: only the process whose DELETE removed the row goes on.
    """

    def issue(self, *args: Any, **kwargs: Any) -> str:
        """A new state; expired ones are deleted first, so the table stays small."""
        now = datetime.now(UTC).replace(tzinfo=None)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    self.oauth_states.delete().where(
                        self.oauth_states.c.expire_at <= now
                    )
                )
        except Exception as exc:
            logger.warning("expired OAuth states not deleted: %s", type(exc).__name__)
        return super().issue(*args, **kwargs)

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
    cipher: TokenCipher,
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
        installation_store=EncryptedInstallationStore(
            cipher=cipher,
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
    """Forget a workspace's tokens when it uninstalls vpsbot or revokes them.

    An event older than the workspace's current installation (Slack retrying
    it, or delivering it late, after a reinstall) is ignored: it speaks of
    the installation before.
    """
    store = settings.installation_store

    def forget(context: BoltContext, body: dict[str, Any], why: str) -> None:
        team_id = context.team_id
        if not team_id:
            return
        current = store.find_installation(
            enterprise_id=context.enterprise_id, team_id=team_id
        )
        event_time = body.get("event_time")
        if (
            current is not None
            and isinstance(event_time, int | float)
            # Slack's event times are whole seconds.
            and int(current.installed_at) > event_time
        ):
            logger.info(
                "ignored %s for workspace %s: it predates the current installation",
                why,
                team_id,
            )
            return
        store.delete_all(enterprise_id=context.enterprise_id, team_id=team_id)
        on_removed(team_id)
        logger.info(
            "%s in workspace %s: its tokens and VPS.org credential are deleted; "
            "its audit entries stay",
            why,
            team_id,
        )

    def forget_uninstalled_workspace(
        context: BoltContext, body: dict[str, Any]
    ) -> None:
        """Event ``app_uninstalled``."""
        forget(context, body, "vpsbot uninstalled")

    def forget_revoked_tokens(
        event: dict[str, Any], context: BoltContext, body: dict[str, Any]
    ) -> None:
        """Event ``tokens_revoked``: a revoked bot token ends the install."""
        if (event.get("tokens") or {}).get("bot"):
            forget(context, body, "vpsbot's bot token revoked")

    app.event("app_uninstalled")(forget_uninstalled_workspace)
    app.event("tokens_revoked")(forget_revoked_tokens)


@dataclass(frozen=True)
class TokenRotation:
    """Slack's stored tokens, each with its value under the first key."""

    changes: tuple[tuple[Table, Any, Column[Any], str, str], ...]


def plan_token_rotation(engine: Engine, cipher: TokenCipher) -> TokenRotation:
    """Decrypt every stored Slack token and encrypt it again with the first key.

    Nothing is written: run this before changing anything, so that a token no
    key opens stops the whole rotation.

    Raises:
        UndecryptableCredentialError: a Slack token no configured key opens.
    """
    changes = []
    with engine.connect() as connection:
        for table in (slack_oauth.installations, slack_oauth.bots):
            columns = [table.c[name] for name in TOKEN_COLUMNS if name in table.c]
            for row in connection.execute(select(table.c.id, *columns)).mappings():
                for column in columns:
                    old = row[column.name]
                    if not (old and is_sealed(old)):
                        continue
                    try:
                        new = cipher.rotate(old)
                    except UndecryptableCredentialError:
                        raise UndecryptableCredentialError(
                            f"a stored Slack token ({table.name}, row {row['id']}) "
                            f"cannot be decrypted with the keys of VPSBOT_SECRET_KEY; "
                            f"nothing was re-encrypted"
                        ) from None
                    changes.append((table, row["id"], column, old, new))
    return TokenRotation(tuple(changes))


def apply_token_rotation(engine: Engine, rotation: TokenRotation) -> int:
    """Write a planned rotation; how many rows changed.

    Each value is rewritten only if it is still the one read, so a token
    saved meanwhile (already under the first key) is left alone.
    """
    rows = set()
    with engine.begin() as connection:
        for table, row_id, column, old, new in rotation.changes:
            result = connection.execute(
                update(table)
                .where(table.c.id == row_id, column == old)
                .values({column.name: new})
            )
            if result.rowcount:
                rows.add((table.name, row_id))
    logger.info("re-encrypted the Slack tokens of %d rows", len(rows))
    return len(rows)


def rotate_tokens(engine: Engine, cipher: TokenCipher) -> int:
    """Re-encrypt Slack's stored tokens with the first key; how many rows.

    Raises:
        UndecryptableCredentialError: a token no configured key opens;
            nothing was changed.
    """
    return apply_token_rotation(engine, plan_token_rotation(engine, cipher))


def register_single_workspace(app: App) -> None:
    """One workspace: an uninstall is only logged (the bot token is dead).

    The manifest subscribes to these events for the multi-workspace install;
    answering them here keeps Slack from retrying them.
    """

    def note_uninstalled(context: BoltContext) -> None:
        """Event ``app_uninstalled`` (single-workspace mode)."""
        logger.warning(
            "vpsbot was uninstalled from workspace %s; SLACK_BOT_TOKEN no longer works",
            context.team_id,
        )

    def note_revoked(event: dict[str, Any], context: BoltContext) -> None:
        """Event ``tokens_revoked`` (single-workspace mode)."""
        if (event.get("tokens") or {}).get("bot"):
            logger.warning(
                "vpsbot's bot token was revoked in workspace %s; SLACK_BOT_TOKEN "
                "no longer works",
                context.team_id,
            )

    app.event("app_uninstalled")(note_uninstalled)
    app.event("tokens_revoked")(note_revoked)
