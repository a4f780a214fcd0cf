"""Starting vpsbot for real: HTTP (``serve``) or Socket Mode (``socket``)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

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
# waitress threads only verify, parse and acknowledge; slow work runs on the
# work pool (VPSBOT_WORKER_THREADS), so a fixed number is enough.
HTTP_THREADS = 16


@contextmanager
def _provider(
    settings: Settings, sandbox: bool
) -> Iterator[tuple[VpsClient, VpsClient] | None]:
    """The in-process sandbox's clients with ``--sandbox``, else ``None``.

    The second client is for following operations: it never retries.
    """
    if not sandbox:
        yield None
        return
    from vpsbot.vps.sandbox import Sandbox, SandboxServer

    server = SandboxServer(Sandbox(token=SANDBOX_TOKEN))
    server.start()
    logger.info("sandbox VPS.org API at %s", server.url)
    client = VpsClient(server.url, SANDBOX_TOKEN, pool_size=settings.worker_threads)
    follow_client = VpsClient(server.url, SANDBOX_TOKEN, max_retries=0)
    try:
        yield client, follow_client
    finally:
        server.stop()


def _build(
    settings: Settings,
    clients: tuple[VpsClient, VpsClient] | None,
    catalog: Catalog,
) -> tuple[VpsBot, Engine, AuditUpkeep]:
    upgrade_database(settings.database_url)
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


def run_http(settings: Settings, *, host: str, sandbox: bool) -> None:
    """Serve Slack's requests over HTTP until interrupted.

    Raises:
        ConfigError: a required setting is missing.
    """
    import waitress

    settings.require("slack_signing_secret")
    settings.require_slack_credentials()
    if not sandbox and not settings.multi_workspace:
        settings.require("vps_api_token")
    catalog = Catalog.load(settings.catalog_path)
    with _provider(settings, sandbox) as clients:
        bot, engine, upkeep = _build(settings, clients, catalog)
        assert settings.slack_signing_secret is not None
        app = SlackWsgiApp(
            bot.bolt, engine, signing_secret=settings.slack_signing_secret.value
        )
        _stop_on_sigterm()
        logger.info("vpsbot serving on http://%s:%d/slack/events", host, settings.port)
        try:
            waitress.serve(
                app,
                host=host,
                port=settings.port,
                threads=HTTP_THREADS,
                ident="vpsbot",
            )
        finally:
            upkeep.stop()
            bot.close()


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
    with _provider(settings, sandbox) as clients:
        bot, _, upkeep = _build(settings, clients, catalog)
        assert settings.slack_app_token is not None
        _stop_on_sigterm()
        try:
            SocketModeHandler(bot.bolt, settings.slack_app_token.value).start()
        finally:
            upkeep.stop()
            bot.close()
