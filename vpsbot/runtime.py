"""Starting vpsbot for real: HTTP (``serve``) or Socket Mode (``socket``)."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from vpsbot.access_log import AccessLog
from vpsbot.app import VpsBot, create_app
from vpsbot.audit_upkeep import AuditUpkeep
from vpsbot.catalog import Catalog
from vpsbot.config import Settings
from vpsbot.errors import ConfigError
from vpsbot.store import make_engine, make_session_factory, upgrade_database
from vpsbot.vps import VpsClient
from vpsbot.web import SlackWsgiApp

logger = logging.getLogger(__name__)

SANDBOX_TOKEN = "sandbox-token"


@contextmanager
def _sandbox(sandbox: bool) -> Iterator[str | None]:
    """The in-process sandbox's URL with ``--sandbox``, else ``None``.

    Under ``serve`` it runs in gunicorn's master, shared by every worker. A
    worker leaves this block too when it exits (it is a fork of the master),
    but only the master, whose thread serves the sandbox, stops it.
    """
    if not sandbox:
        yield None
        return
    from vpsbot.vps.sandbox import Sandbox, SandboxServer

    server = SandboxServer(Sandbox(token=SANDBOX_TOKEN))
    server.start()
    owner = os.getpid()
    logger.info("sandbox VPS.org API at %s", server.url)
    try:
        yield server.url
    finally:
        if os.getpid() == owner:
            server.stop()


def _sandbox_clients(
    settings: Settings, url: str | None
) -> tuple[VpsClient, VpsClient] | None:
    """Clients of the sandbox at ``url``; the second (for following) never retries."""
    if url is None:
        return None
    client = VpsClient(url, SANDBOX_TOKEN, pool_size=settings.worker_threads)
    return client, VpsClient(url, SANDBOX_TOKEN, max_retries=0)


def _build(
    settings: Settings,
    clients: tuple[VpsClient, VpsClient] | None,
    catalog: Catalog,
) -> tuple[VpsBot, Engine, AuditUpkeep]:
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    vps, follow_vps = clients if clients is not None else (None, None)
    if settings.multi_workspace and vps is not None:
        # Every workspace connects to the in-process sandbox.
        settings = settings.replace(vps_api_url=vps.base_url)
    bot = create_app(
        settings,
        vps=vps,
        sessions=sessions,
        follow_vps=follow_vps,
        catalog=catalog,
    )
    bot.start_background()
    # Verifying a long log takes a while; it runs beside the app, not before.
    upkeep = AuditUpkeep(sessions, retention_days=settings.audit_retention_days)
    upkeep.start()
    return bot, engine, upkeep


def _stop_on_sigterm() -> None:
    """Treat SIGTERM (systemd, Docker, Kubernetes) like Ctrl-C: a clean stop.

    The work already acknowledged is finished and followed operations are
    released for another process at once, instead of the process vanishing
    with them.
    """

    def interrupt(signum: int, frame: object) -> None:
        logger.info("SIGTERM received; finishing acknowledged work, then stopping")
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _require_shared_database(settings: Settings, workers: int) -> None:
    """Several workers need a database that several processes write at once.

    Raises:
        ConfigError: more than one worker on SQLite.
    """
    if (
        workers > 1
        and make_url(settings.database_url).get_backend_name() != "postgresql"
    ):
        raise ConfigError(
            f"{workers} web workers need PostgreSQL (SQLite lets one process "
            f"write at a time); set DATABASE_URL to a postgresql:// URL or run "
            f"one worker (VPSBOT_WEB_WORKERS=1)"
        )


def run_http(
    settings: Settings, *, host: str, sandbox: bool, workers: int | None = None
) -> None:
    """Serve Slack's requests over HTTP with gunicorn until stopped.

    Settings are checked and migrations applied once, here, before the
    workers fork; each worker then builds its own app (``vpsbot.serving``).

    Args:
        workers: processes to fork (default ``VPSBOT_WEB_WORKERS``).

    Raises:
        ConfigError: a required setting is missing, or several workers were
            asked for on SQLite.
    """
    from vpsbot.serving import GunicornServer, ServedApp

    workers = workers or settings.web_workers
    settings.require("slack_signing_secret")
    settings.require_slack_credentials()
    if not sandbox and not settings.multi_workspace:
        settings.require("vps_api_token")
    _require_shared_database(settings, workers)
    catalog = Catalog.load(settings.catalog_path)
    assert settings.slack_signing_secret is not None
    signing_secret = settings.slack_signing_secret.value
    upgrade_database(settings.database_url)
    with _sandbox(sandbox) as sandbox_url:

        def build_worker() -> ServedApp:
            # Migrations ran above; a readiness probe needs no report of its own.
            logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
            clients = _sandbox_clients(settings, sandbox_url)
            bot, engine, upkeep = _build(settings, clients, catalog)
            app = AccessLog(
                SlackWsgiApp(bot.bolt, engine, signing_secret=signing_secret)
            )

            def close() -> None:
                upkeep.stop()
                bot.close()
                engine.dispose()

            return ServedApp(wsgi=app, close=close)

        logger.info(
            "vpsbot serving on http://%s:%d/slack/events with %d worker(s)",
            host,
            settings.port,
            workers,
        )
        GunicornServer(
            build_worker, host=host, port=settings.port, workers=workers
        ).run()


def run_socket_mode(settings: Settings, *, sandbox: bool) -> None:
    """Hold a Socket Mode connection to Slack until interrupted.

    Raises:
        ConfigError: a required setting is missing.
    """
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    settings.require("slack_app_token")
    if settings.multi_workspace:
        raise ConfigError(
            "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (the multi-workspace install) "
            "need `vpsbot serve`: Slack's OAuth redirect is an HTTP page; unset "
            "them to use Socket Mode for one workspace"
        )
    settings.require_slack_credentials()
    if not sandbox and not settings.multi_workspace:
        settings.require("vps_api_token")
    # Socket Mode frames are authenticated by the app-level token; Bolt does
    # not verify signatures there, so any placeholder secret will do.
    if not settings.slack_signing_secret:
        from vpsbot.config import Secret

        settings = settings.replace(slack_signing_secret=Secret("socket-mode"))
    catalog = Catalog.load(settings.catalog_path)
    upgrade_database(settings.database_url)
    with _sandbox(sandbox) as sandbox_url:
        clients = _sandbox_clients(settings, sandbox_url)
        bot, _, upkeep = _build(settings, clients, catalog)
        assert settings.slack_app_token is not None
        _stop_on_sigterm()
        try:
            SocketModeHandler(bot.bolt, settings.slack_app_token.value).start()
        finally:
            upkeep.stop()
            bot.close()
