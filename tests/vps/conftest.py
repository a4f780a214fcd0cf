"""Fixtures for the VPS.org client and sandbox tests.

``sandbox`` is a seeded ``Sandbox`` on a fake clock; ``sandbox_server`` serves
it on 127.0.0.1 for one test; ``client`` is a ``VpsClient`` pointed at it with
short timeouts and no backoff. ``recorder`` is a tiny HTTP server that answers
from a queue and remembers each request's headers, for what the sandbox does
not fake (odd bodies, foreign ``next`` hosts, request headers).
``call`` drives the sandbox's WSGI app directly, without a socket, and
``make_client`` builds more clients; helpers are fixtures rather than imports,
so the tests work under any pytest import mode.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from vpsbot.vps import VpsClient
from vpsbot.vps.sandbox import Sandbox, SandboxServer

logger = logging.getLogger(__name__)

TOKEN = "tok-Zq81-SECRET-5f2c9a"


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's proxy settings away from traffic to 127.0.0.1."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox(clock: FakeClock) -> Sandbox:
    return Sandbox(TOKEN, transition_delay=5.0, clock=clock)


@pytest.fixture
def sandbox_server(sandbox: Sandbox) -> Iterator[SandboxServer]:
    with SandboxServer(sandbox) as server:
        yield server


def _make_client(url: str, **options: Any) -> VpsClient:
    settings: dict[str, Any] = {
        "connect_timeout": 1.0,
        "read_timeout": 2.0,
        "write_timeout": 2.0,
        "max_retries": 2,
        "backoff_factor": 0.0,
        "retry_after_max": 1.0,
    }
    settings.update(options)
    return VpsClient(url, TOKEN, **settings)


@pytest.fixture
def token() -> str:
    """The token the sandbox accepts and the clients send."""
    return TOKEN


@pytest.fixture
def make_client() -> Callable[..., VpsClient]:
    """Build a client for a URL with test-sized timeouts and no backoff.

    Keyword options override those defaults.
    """
    return _make_client


@pytest.fixture
def client(sandbox_server: SandboxServer) -> Iterator[VpsClient]:
    with _make_client(sandbox_server.url) as vps:
        yield vps


@pytest.fixture
def call() -> Callable[..., WsgiAnswer]:
    """Send one request straight into a sandbox's WSGI app (see ``_call``)."""
    return _call


@dataclass
class WsgiAnswer:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw) if self.raw else None


def _call(
    app: Sandbox,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = TOKEN,
    raw: bytes | None = None,
    content_type: str = "application/json",
    host: str = "sandbox.test",
) -> WsgiAnswer:
    """Send one request straight into the sandbox's WSGI app."""
    path, _, query = path.partition("?")
    data = (
        raw if raw is not None else b"" if body is None else json.dumps(body).encode()
    )
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": content_type if data else "",
        "CONTENT_LENGTH": str(len(data)),
        "HTTP_HOST": host,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data),
    }
    if token is not None:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        started["status"] = int(status.split()[0])
        started["headers"] = dict(headers)

    payload = b"".join(app(environ, start_response))
    return WsgiAnswer(started["status"], started["headers"], payload)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """A local HTTP server that answers from a queue and records requests."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    default: tuple[int, dict[str, str], bytes] = (
        200,
        {"Content-Type": "application/json"},
        b'{"count": 0, "next": null, "previous": null, "results": []}',
    )

    def queue(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next request with this; a str or bytes body is sent as is."""
        if isinstance(body, str):
            payload = body.encode()
            kind = "text/html"
        elif isinstance(body, bytes):
            payload, kind = body, "application/octet-stream"
        else:
            payload = b"" if body is None else json.dumps(body).encode()
            kind = "application/json"
        self.answers.append(
            (status, {"Content-Type": kind, **(headers or {})}, payload)
        )


def _recorder_handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorder.requests.append(
                Recorded(self.command, self.path, dict(self.headers.items()), body)
            )
            status, headers, payload = (
                recorder.answers.pop(0) if recorder.answers else recorder.default
            )
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, fmt: str, *args: Any) -> None:
            logger.debug("recorder: %s", fmt % args)

    return Handler


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _recorder_handler(rec))
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/"
    yield rec
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
