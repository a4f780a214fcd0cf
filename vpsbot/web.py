"""The HTTP face of ``vpsbot serve``: one Request URL and two health checks.

``POST /slack/events`` takes slash commands, interactivity and events.
With the multi-workspace install, ``GET /slack/install`` starts Slack's OAuth
flow and ``GET /slack/oauth_redirect`` ends it.
``GET /healthz`` answers while the process serves; ``GET /readyz`` only when
the database answers and its migrations are current. A request whose signature
headers are malformed gets 401 here, before Bolt (whose verifier would raise
on a non-numeric timestamp and answer 500).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine, text

from vpsbot.store import migrations_current

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
# Slack's payloads are small; anything far larger is not from Slack.
MAX_BODY = 1_000_000

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class SlackWsgiApp:
    """A WSGI application serving Bolt and the health checks."""

    def __init__(self, bolt: App, engine: Engine, *, signing_secret: str) -> None:
        self._bolt = bolt
        self._engine = engine
        self._verifier = SignatureVerifier(signing_secret)

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        if path == EVENTS_PATH and method == "POST":
            return self._slack(environ, start_response)
        if method == "GET" and self._bolt.oauth_flow is not None:
            flow = self._bolt.oauth_flow
            if path == flow.install_path:
                return self._oauth(environ, start_response, flow.handle_installation)
            if path == flow.redirect_uri_path:
                return self._oauth(environ, start_response, flow.handle_callback)
        if path == "/healthz" and method in ("GET", "HEAD"):
            return _reply(start_response, 200, {"status": "ok"})
        if path == "/readyz" and method in ("GET", "HEAD"):
            return self._ready(start_response)
        return _reply(start_response, 404, {"error": "not found"})

    def _slack(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            return _reply(start_response, 413, {"error": "request too large"})
        body = environ["wsgi.input"].read(length).decode("utf-8", "replace")
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if "CONTENT_TYPE" in environ:
            headers["content-type"] = environ["CONTENT_TYPE"]
        if not self._signed_by_slack(body, headers):
            return _reply(start_response, 401, {"error": "invalid request"})
        try:
            request = BoltRequest(
                body=body, query=environ.get("QUERY_STRING", ""), headers=headers
            )
        except (ValueError, TypeError, RecursionError) as exc:
            # Signed by Slack, yet not a payload Bolt can read.
            logger.warning("unreadable Slack payload: %s", type(exc).__name__)
            return _reply(start_response, 400, {"error": "unreadable payload"})
        return _send(start_response, self._bolt.dispatch(request))

    def _oauth(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        handle: Callable[[BoltRequest], BoltResponse],
    ) -> Iterable[bytes]:
        """``GET /slack/install`` and ``/slack/oauth_redirect`` (OAuth only).

        The query carries a one-time code and state: neither is logged.
        """
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        request = BoltRequest(
            body="", query=environ.get("QUERY_STRING", ""), headers=headers
        )
        return _send(start_response, handle(request))

    def _ready(self, start_response: StartResponse) -> Iterable[bytes]:
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            current = migrations_current(self._engine)
        except Exception as exc:
            logger.warning("not ready: database unreachable (%s)", type(exc).__name__)
            return _reply(start_response, 503, {"status": "database unreachable"})
        if not current:
            return _reply(start_response, 503, {"status": "migrations pending"})
        return _reply(start_response, 200, {"status": "ready"})

    def _signed_by_slack(self, body: str, headers: dict[str, str]) -> bool:
        """Check the signature before anything reads the body.

        Bolt checks it again, but only after parsing the body, which lets an
        unsigned request make the parser fail loudly.
        """
        timestamp = headers.get("x-slack-request-timestamp", "")
        signature = headers.get("x-slack-signature", "")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return False
        return self._verifier.is_valid(body, timestamp, signature)


def _send(start_response: StartResponse, response: BoltResponse) -> Iterable[bytes]:
    payload = (response.body or "").encode("utf-8")
    out_headers = [
        (name, value)
        for name, values in response.headers.items()
        for value in values
        if name.lower() != "content-length"
    ]
    out_headers.append(("Content-Length", str(len(payload))))
    start_response(_status_line(response.status), out_headers)
    return [payload]


def _reply(
    start_response: StartResponse, status: int, body: dict[str, str]
) -> Iterable[bytes]:
    payload = json.dumps(body).encode()
    start_response(
        _status_line(status),
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
    )
    return [payload]


def _status_line(status: int) -> str:
    reasons = {
        200: "OK",
        302: "Found",
        400: "Bad Request",
        401: "Unauthorized",
        404: "Not Found",
        413: "Payload Too Large",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }
    return f"{status} {reasons.get(status, 'Status')}"


class BackgroundServer:
    """A WSGI app served by waitress on a thread of this process.

    For the end-to-end tests. The serving loop polls in short steps
    and ends when told to; ``stop()`` then closes every connection, idle
    keep-alive ones included, from the calling thread once the loop is gone.
    """

    POLL_SECONDS = 0.1

    def __init__(
        self, app: Callable[..., Any], *, host: str = "127.0.0.1", threads: int = 8
    ) -> None:
        import waitress

        self._server = waitress.create_server(app, host=host, port=0, threads=threads)
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, name="waitress", daemon=True
        )
        self.url = f"http://{host}:{self._server.effective_port}"

    def _serve(self) -> None:
        from waitress import wasyncore

        server = self._server
        while not self._stopping.is_set():
            wasyncore.loop(
                timeout=self.POLL_SECONDS,
                map=server._map,
                use_poll=server.adj.asyncore_use_poll,
                count=1,
            )

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """End the loop, then close the listening socket and every connection."""
        self._stopping.set()
        self._thread.join(timeout)
        server = self._server
        for channel in list(server._map.values()):
            try:
                channel.close()
            except OSError as exc:
                logger.debug("closing %r: %s", channel, exc)
        server.task_dispatcher.shutdown(timeout=timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
