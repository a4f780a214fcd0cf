"""The ``vpsbot`` command: serve, socket, shell, sandbox, db, audit and keys.

This is the process entry point: the only place that reads the environment
(through ``Settings.from_env``) and configures logging. A bad setting ends
the program with one line naming it, never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
from dotenv import dotenv_values
from sqlalchemy import Engine

from vpsbot import __version__
from vpsbot.config import Settings
from vpsbot.errors import ConfigError, StoreUnavailableError, VpsbotError
from vpsbot.moments import FORMS, OUT_OF_RANGE, parse_moment

logger = logging.getLogger(__name__)


def load_settings() -> Settings:
    """Settings from ``.env`` in the working directory, overridden by the env."""
    env = {
        key: value for key, value in dotenv_values(".env").items() if value is not None
    }
    env.update(os.environ)
    return Settings.from_env(env)


class _OneLineFormatter(logging.Formatter):
    """Text lines in which a message stays on its line.

    Messages may quote what a request carried (ids, names); a newline or other
    control character there is written escaped, so it cannot start a line
    that looks like another record. Tracebacks keep their lines.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802
        line = super().formatMessage(record)
        if line.isprintable():
            return line
        return "".join(
            char if char.isprintable() else char.encode("unicode_escape").decode()
            for char in line
        )


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        # An access line's fields (vpsbot.access_log) stand on their own.
        entry.update(getattr(record, "access", None) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            _OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Bolt logs a rejected request's whole body (with its response_url) at
    # INFO; keep Bolt's own loggers to warnings.
    for name in ("vpsbot.bolt", "slack_bolt", "slack_sdk"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Turn vpsbot's known errors into one line on stderr and an exit status."""
    try:
        yield
    except ConfigError as exc:
        click.echo(f"vpsbot: configuration error: {exc}", err=True)
        sys.exit(2)
    except StoreUnavailableError as exc:
        cause = type(exc.__cause__).__name__ if exc.__cause__ else "unknown"
        click.echo(
            f"vpsbot: cannot reach the database named by DATABASE_URL ({cause}); "
            f"nothing was done.",
            err=True,
        )
        sys.exit(1)
    except VpsbotError as exc:
        click.echo(f"vpsbot: {exc}", err=True)
        sys.exit(1)


@click.group()
@click.version_option(__version__, prog_name="vpsbot")
def main() -> None:
    """Run VPS.org servers from Slack, safely."""


@main.command()
@click.option("--sandbox", is_flag=True, help="Run the sandbox API in-process.")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to bind.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Worker processes (default: VPSBOT_WEB_WORKERS, else 1); "
    "more than one needs PostgreSQL.",
)
def serve(sandbox: bool, host: str, workers: int | None) -> None:
    """HTTP mode: POST /slack/events, GET /healthz, GET /readyz."""
    from vpsbot.runtime import run_http

    with _clear_errors():
        settings = load_settings()
        configure_logging(settings)
        run_http(settings, host=host, sandbox=sandbox, workers=workers)


@main.command()
@click.option("--sandbox", is_flag=True, help="Run the sandbox API in-process.")
def socket(sandbox: bool) -> None:
    """Socket Mode, for installs without a public URL."""
    from vpsbot.runtime import run_socket_mode

    with _clear_errors():
        settings = load_settings()
        configure_logging(settings)
        run_socket_mode(settings, sandbox=sandbox)


@main.command()
def shell() -> None:
    """A local chat with vpsbot; no Slack or VPS.org account needed."""
    from vpsbot.shell import run_shell

    with _clear_errors():
        logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
        sys.exit(run_shell())


@main.command()
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--token", default="sandbox-token", show_default=True)
@click.option(
    "--delay",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds a server spends starting, stopping, rebooting or provisioning.",
)
def sandbox(port: int, token: str, delay: float) -> None:
    """A local VPS.org API on 127.0.0.1, for trying things out."""
    from vpsbot.vps.sandbox import run_sandbox

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    run_sandbox(host="127.0.0.1", port=port, token=token, transition_delay=delay)


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending Alembic migrations."""
    from vpsbot.store import upgrade_database

    with _clear_errors():
        settings = load_settings()
        configure_logging(settings, logging.WARNING)
        upgrade_database(settings.database_url)
        click.echo("Database is up to date.")


@main.group()
def audit() -> None:
    """The audit log."""


@audit.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
)
@click.option(
    "--since",
    help="Only entries at or after this time: 2026-12-01, 2026-12-01T08:00 (UTC), "
    "or an age such as 2h or 3d.",
)
def audit_export(fmt: str, since: str | None) -> None:
    """Print the audit log, oldest first."""
    from vpsbot import audit as audit_log
    from vpsbot.store import make_session_factory, session_scope

    with _clear_errors():
        settings = load_settings()
        configure_logging(settings, logging.WARNING)
        since_at = _parse_since(since)
        sessions = make_session_factory(_existing_database(settings.database_url))
        with session_scope(sessions) as session:
            audit_log.export(session, sys.stdout, fmt=fmt, since=since_at)


@audit.command("verify")
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    metavar="SEQ:HASH",
    help="A head printed by an earlier verify, kept outside the database; it must "
    "still be in the chain. Repeatable.",
)
def audit_verify(anchors: tuple[str, ...]) -> None:
    """Check that the audit log is complete and unaltered (exit 1 if not).

    Prints the head (last position and hash). Kept where the database's
    writers cannot reach and passed back with --anchor, it shows whether the
    log was rewritten or cut back since.
    """
    from vpsbot import audit as audit_log
    from vpsbot.store import make_session_factory, session_scope

    with _clear_errors():
        try:
            parsed = [audit_log.Anchor.parse(text) for text in anchors]
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--anchor") from None
        settings = load_settings()
        configure_logging(settings, logging.WARNING)
        sessions = make_session_factory(_existing_database(settings.database_url))
        with session_scope(sessions) as session:
            result = audit_log.verify(session, anchors=parsed)
        if result.ok:
            click.echo(f"Audit log is whole: {result.checked} entries verified.")
            click.echo(f"Head: {result.head_seq}:{result.head_hash}")
            return
        click.echo(f"Audit log is NOT whole: {result.problem}", err=True)
        sys.exit(1)


@audit.command("prune")
@click.option(
    "--older-than-days",
    type=click.IntRange(1, 100 * 366),
    help="Remove entries at least this old; VPSBOT_AUDIT_RETENTION_DAYS by default.",
)
def audit_prune(older_than_days: int | None) -> None:
    """Apply retention now: remove old entries, leaving a checkpoint.

    Also removes expired claims. Exits 1, removing nothing, when the part to
    remove is not whole.
    """
    from vpsbot import audit as audit_log
    from vpsbot.store import make_session_factory

    with _clear_errors():
        settings = load_settings()
        configure_logging(settings, logging.WARNING)
        days = older_than_days or settings.audit_retention_days
        if days is None:
            raise click.UsageError(
                "VPSBOT_AUDIT_RETENTION_DAYS is not set (entries are kept forever); "
                "give --older-than-days to prune anyway"
            )
        sessions = make_session_factory(_existing_database(settings.database_url))
        result = audit_log.prune_all(sessions, older_than_days=days)
        if result.checkpoint_seq is None:
            click.echo(
                f"Nothing older than {days} days; "
                f"{result.claims_removed} expired claims removed."
            )
            return
        click.echo(
            f"Removed {result.removed} audit entries older than {days} days "
            f"(checkpoint at entry {result.checkpoint_seq}) and "
            f"{result.claims_removed} expired claims."
        )


@main.group()
def keys() -> None:
    """The keys that encrypt stored tokens (VPSBOT_SECRET_KEY)."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored token (VPS.org and Slack) with the first key.

    Put the new key first in VPSBOT_SECRET_KEY, keep the old ones after it,
    run this, then drop the old keys.
    """
    from vpsbot.credentials import TokenCipher, WorkspaceCredentials
    from vpsbot.slack.installs import apply_token_rotation, plan_token_rotation
    from vpsbot.store import make_session_factory

    with _clear_errors():
        settings = load_settings()
        configure_logging(settings, logging.WARNING)
        cipher = TokenCipher(settings.secret_keys)
        engine = _existing_database(settings.database_url)
        # Every Slack token is opened before any token is rewritten: a key
        # missing from the list stops the rotation with nothing changed.
        slack_tokens = plan_token_rotation(engine, cipher)
        result = WorkspaceCredentials(make_session_factory(engine), cipher).rotate_all()
        installs = apply_token_rotation(engine, slack_tokens)
        click.echo(
            f"Re-encrypted {result.rotated} workspace token"
            f"{'' if result.rotated == 1 else 's'} and {installs} Slack "
            f"installation{'' if installs == 1 else 's'} with the first key"
            + (
                f"; {result.skipped} changed meanwhile and already use it."
                if result.skipped
                else "."
            )
        )


def _existing_database(url: str) -> Engine:
    """An engine on vpsbot's database, which must exist and be migrated.

    Reading commands must not create an empty SQLite file where none was.

    Raises:
        VpsbotError: no such database, or not at the current migration.
        StoreUnavailableError: the database could not be reached.
    """
    from sqlalchemy.engine import make_url

    from vpsbot.store import make_engine, migrations_current

    parsed = make_url(url)
    path = parsed.database or ""
    is_file = parsed.get_backend_name() == "sqlite" and path not in ("", ":memory:")
    if is_file and not Path(path).exists():
        raise VpsbotError(
            f"there is no database at {path} (DATABASE_URL); nothing to read"
        )
    engine = make_engine(url)
    if not migrations_current(engine):
        raise VpsbotError(
            "the database named by DATABASE_URL is not at vpsbot's current "
            "migration; run `vpsbot db upgrade` first"
        )
    return engine


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_moment(value, datetime.now(UTC))
    except ValueError as exc:
        problem = str(exc) if str(exc) == OUT_OF_RANGE else f"use {FORMS}"
        raise click.BadParameter(
            f"{value!r} is not a time; {problem}", param_hint="--since"
        ) from None
