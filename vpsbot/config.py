"""Settings, read once from the environment (and a ``.env`` file) at start.

No module below ``cli.py`` and ``app.py`` reads ``os.environ``: they are handed a
``Settings``. Secrets are kept in ``Secret`` wrappers whose repr is masked, so a
settings object can be logged without leaking anything.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from vpsbot.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_VPS_API_URL = "https://admin.vps.org/api/v1/"
DEFAULT_DATABASE_URL = "sqlite:///vpsbot.db"
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


@dataclass(frozen=True)
class Secret:
    """A secret string whose repr and str never show the value."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self.value)


@dataclass(frozen=True)
class Settings:
    """Every setting of the contract's configuration table, parsed and checked."""

    slack_signing_secret: Secret | None = None
    slack_bot_token: Secret | None = None
    slack_app_token: Secret | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    vps_api_url: str = DEFAULT_VPS_API_URL
    vps_api_token: Secret | None = None
    database_url: str = DEFAULT_DATABASE_URL
    admins: tuple[str, ...] = ()
    approval_ttl: int = 3600
    catalog_path: Path | None = None
    audit_retention_days: int | None = None
    slack_client_id: str | None = None
    slack_client_secret: Secret | None = None
    secret_keys: tuple[Secret, ...] = ()
    log_format: str = "text"
    port: int = 3000
    # Threads that run provider calls after Slack has been acknowledged; Bolt's
    # own listener pool only acknowledges and hands work over.
    worker_threads: int = 8
    # Seconds a long operation is followed before vpsbot gives up on it.
    follow_timeout: int = 900
    # Processes ``vpsbot serve`` forks to answer HTTP; more than one needs
    # PostgreSQL.
    web_workers: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse settings from an environment mapping.

        Raises:
            ConfigError: a value is malformed; the message names the variable.
        """
        get = _Reader(env)
        settings = cls(
            slack_signing_secret=get.secret("SLACK_SIGNING_SECRET"),
            slack_bot_token=get.secret("SLACK_BOT_TOKEN", prefix="xox"),
            slack_app_token=get.secret("SLACK_APP_TOKEN", prefix="xapp-"),
            slack_api_url=get.url("SLACK_API_URL", DEFAULT_SLACK_API_URL),
            vps_api_url=get.url("VPS_API_URL", DEFAULT_VPS_API_URL),
            vps_api_token=get.secret("VPS_API_TOKEN"),
            database_url=get.database_url("DATABASE_URL"),
            admins=get.user_ids("VPSBOT_ADMINS"),
            approval_ttl=get.integer(
                "VPSBOT_APPROVAL_TTL", 3600, minimum=60, maximum=7 * 86400
            )
            or 3600,
            catalog_path=get.path("VPSBOT_CATALOG"),
            audit_retention_days=get.integer(
                "VPSBOT_AUDIT_RETENTION_DAYS", None, minimum=1, maximum=100 * 366
            ),
            slack_client_id=get.text("SLACK_CLIENT_ID"),
            slack_client_secret=get.secret("SLACK_CLIENT_SECRET"),
            secret_keys=get.fernet_keys("VPSBOT_SECRET_KEY"),
            log_format=get.choice("VPSBOT_LOG_FORMAT", ("text", "json"), "text"),
            port=get.integer("PORT", 3000, minimum=1, maximum=65535) or 3000,
            worker_threads=get.integer(
                "VPSBOT_WORKER_THREADS", 8, minimum=1, maximum=256
            )
            or 8,
            follow_timeout=get.integer(
                "VPSBOT_FOLLOW_TIMEOUT", 900, minimum=30, maximum=86400
            )
            or 900,
            web_workers=get.integer("VPSBOT_WEB_WORKERS", 1, minimum=1, maximum=64)
            or 1,
        )
        if bool(settings.slack_client_id) != bool(settings.slack_client_secret):
            raise ConfigError(
                "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET go together; set both or "
                "neither"
            )
        return settings

    def replace(self, **changes: object) -> Settings:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def multi_workspace(self) -> bool:
        """Whether the OAuth install serves many workspaces (client id set)."""
        return bool(self.slack_client_id)

    def require_slack_credentials(self) -> None:
        """Check what the chosen mode needs to talk to Slack.

        One workspace needs ``SLACK_BOT_TOKEN``. Many (``SLACK_CLIENT_ID`` and
        ``SLACK_CLIENT_SECRET``) need ``VPSBOT_SECRET_KEY`` instead, to encrypt
        the workspaces' VPS.org tokens; a bot token is then ignored, since each
        workspace brings its own.

        Raises:
            ConfigError: a required setting is missing.
        """
        if not self.multi_workspace:
            self.require("slack_bot_token")
        elif not self.secret_keys:
            raise ConfigError(
                "VPSBOT_SECRET_KEY is required with SLACK_CLIENT_ID and "
                "SLACK_CLIENT_SECRET (the multi-workspace install), to encrypt each "
                "workspace's VPS.org token"
            )

    def require(self, *names: str) -> None:
        """Fail with one line naming the first required setting that is missing.

        Raises:
            ConfigError: one of the named fields is empty.
        """
        for name in names:
            if not getattr(self, name):
                raise ConfigError(f"{name.upper()} is required for this command")


class _Reader:
    """Reads and checks one variable at a time, naming it in every error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def secret(self, name: str, *, prefix: str = "") -> Secret | None:
        value = self.text(name)
        if value is None:
            return None
        if prefix and not value.startswith(prefix):
            raise ConfigError(f"{name} should start with {prefix!r}")
        return Secret(value)

    def secret_list(self, name: str) -> tuple[Secret, ...]:
        value = self.text(name) or ""
        return tuple(Secret(part.strip()) for part in value.split(",") if part.strip())

    def fernet_keys(self, name: str) -> tuple[Secret, ...]:
        """Comma-separated Fernet keys: 32 bytes each, URL-safe base64."""
        keys = self.secret_list(name)
        for position, key in enumerate(keys, start=1):
            try:
                raw = base64.urlsafe_b64decode(key.value.encode("ascii"))
            except (ValueError, UnicodeEncodeError):
                raw = b""
            if len(raw) != 32:
                # The key itself is never echoed, only where it stands.
                raise ConfigError(
                    f"{name}: key {position} is not a Fernet key (32 bytes in "
                    f"URL-safe base64, as Fernet.generate_key() makes)"
                )
        return keys

    def url(self, name: str, default: str) -> str:
        value = self.text(name) or default
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
        return value if value.endswith("/") else value + "/"

    def database_url(self, name: str) -> str:
        value = self.text(name) or DEFAULT_DATABASE_URL
        if value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        if not value.startswith(("sqlite:", "postgresql+")):
            raise ConfigError(f"{name} must be a sqlite:// or postgresql:// URL")
        return value

    def user_ids(self, name: str) -> tuple[str, ...]:
        value = self.text(name) or ""
        ids = tuple(part.strip() for part in value.split(",") if part.strip())
        for user_id in ids:
            if not _USER_ID.match(user_id):
                raise ConfigError(
                    f"{name} must list Slack user ids such as U012AB3CD, "
                    f"got {user_id!r}"
                )
        return ids

    def integer(
        self,
        name: str,
        default: int | None,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value = self.text(name)
        if value is None:
            return default
        if not re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
            raise ConfigError(f"{name} must be a whole number, got {value!r}")
        number = int(value)
        if minimum is not None and number < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise ConfigError(f"{name} must be at most {maximum}, got {number}")
        return number

    def path(self, name: str) -> Path | None:
        value = self.text(name)
        if value is None:
            return None
        path = Path(value)
        if not path.is_file():
            raise ConfigError(f"{name} names {value!r}, which is not a readable file")
        return path

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.text(name) or default).lower()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}")
        return value
