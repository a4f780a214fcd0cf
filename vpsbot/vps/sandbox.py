"""A local stand-in for the VPS.org servers API, for the shell, demos and tests.

``Sandbox`` is an in-memory, thread-safe WSGI application that answers the
nine documented endpoints the way a Django REST Framework service would:
DRF-shaped error bodies, page-number paging with absolute ``next`` links, a
301 for a path without its trailing slash, an HTML 404 for unknown paths, and
statuses that move on by themselves (provisioning, starting, stopping and
rebooting settle after ``transition_delay`` seconds, computed lazily from an
injectable clock). Tests can inject failures, add latency, inspect the calls
made and reach into the state directly.

``SandboxServer`` serves a sandbox over real HTTP/1.1 with keep-alive on a
background thread; ``run_sandbox`` does so in the foreground for
``vpsbot sandbox``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

__all__ = [
    "LOCATIONS",
    "OPERATING_SYSTEMS",
    "PLANS",
    "PROVISIONING_MESSAGE",
    "DropConnection",
    "Sandbox",
    "SandboxServer",
    "run_sandbox",
]

logger = logging.getLogger(__name__)

PLANS: Mapping[int, Mapping[str, Any]] = {
    plan_id: dict(
        zip(("name", "vcpus", "memory", "storage", "bandwidth"), row, strict=True)
    )
    for plan_id, row in (
        (1, ("Standard VPS", 2, 4096, 80, 2048)),
        (2, ("Performance VPS", 4, 8192, 160, 4096)),
        (3, ("Starter VPS", 1, 2048, 40, 1024)),
    )
}
OPERATING_SYSTEMS: Mapping[int, str] = {
    3: "Debian 12",
    5: "Ubuntu 22.04 LTS",
    7: "Rocky Linux 9",
}
LOCATIONS = ("us-west", "us-east", "eu-central")
FILTER_STATUSES = ("active", "stopped", "suspended")
PROVISIONING_MESSAGE = "Server is being provisioned. This may take 2-5 minutes."
API_PREFIX = "/api/v1/"

_NAME = re.compile(r"^[A-Za-z0-9-]+$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_TRUE = {True, "1", "true", "t", "yes", "y", "on"}
_FALSE = {False, "0", "false", "f", "no", "n", "off"}
_REQUIRED = "This field is required."
_NOT_NULL = "This field may not be null."
_NOT_BLANK = "This field may not be blank."
_BAD_INTEGER = "A valid integer is required."
_BAD_BOOLEAN = "Must be a valid boolean."
_AUTH_HEADER = ("WWW-Authenticate", 'Bearer realm="api"')
# name, status, location, created (UTC), plan id, OS id, backups
_SEEDS = (
    ("web-01", "active", "us-west", "2025-01-10T14:30:00", 1, 5, True),
    ("web-02", "active", "us-east", "2025-01-12T09:05:00", 1, 5, True),
    ("db-01", "active", "us-west", "2025-01-14T18:45:00", 2, 3, True),
    ("staging-01", "stopped", "us-east", "2025-02-03T08:00:00", 3, 5, False),
)
# cpu_percent, memory_used (MB), disk_used and bandwidth_used (GB), per seed
_SEED_USAGE = (
    (23.5, 2048, 35, 450),
    (11.0, 1536, 28, 210),
    (41.2, 6144, 120, 980),
    (0.0, 0, 12, 40),
)
# The power verbs: which status allows them, the status while they run, the
# status they settle in, and the message of the accepted answer.
_POWER = {
    "start": ("stopped", "starting", "active", "Server is starting"),
    "stop": ("active", "stopping", "stopped", "Server is stopping"),
    "reboot": ("active", "rebooting", "active", "Server is rebooting"),
}
_TRANSITIONAL = ("provisioning", "starting", "stopping", "rebooting")

Body = bytes
Response = tuple[int, list[tuple[str, str]], Body]


class DropConnection(Exception):
    """Raised by the WSGI app to make ``SandboxServer`` close the connection
    without answering (``fail_next(0)``). Other WSGI servers answer 500.
    """


@dataclass
class _Fault:
    status: int
    times: int
    body: object
    retry_after: float | str | None
    path_contains: str | None
    method: str | None = None


@dataclass
class _Request:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    origin: str

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))


class Sandbox:
    """An in-memory VPS.org API, usable as a WSGI application.

    Args:
        token: The only bearer token accepted.
        transition_delay: Seconds before provisioning, starting, stopping and
            rebooting settle.
        credit: How many more creates succeed before the API answers 402;
            None for no limit.
        page_size: Servers per list page.
        seed: Start with four example servers (web-01, web-02, db-01 active,
            staging-01 stopped).
        clock: Seconds, monotonic; tests pass a fake to move time on.

    Attributes:
        calls: ``(method, path_with_query)`` of every request, in order,
            including refused ones.
        latency: Seconds every answer is held back (after the state changed).
        link_origin: When set (e.g. ``"http://other:9000"``), the scheme and
            host of ``next``/``previous`` links, as a misconfigured proxy
            would produce; by default the request's own.
        credit: As given; decreases with each create.
        page_size: As given; may be changed at any time.
    """

    def __init__(
        self,
        token: str = "sandbox-token",
        *,
        transition_delay: float = 2.0,
        credit: int | None = None,
        page_size: int = 100,
        seed: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.transition_delay = transition_delay
        self.credit = credit
        self.page_size = page_size
        self.latency = 0.0
        self.link_origin: str | None = None
        self.calls: list[tuple[str, str]] = []
        self._clock = clock
        self._lock = threading.RLock()
        self._servers: dict[int, dict[str, Any]] = {}
        self._pending: dict[int, tuple[str, float]] = {}
        self._faults: list[_Fault] = []
        self._next_id = 12345
        self._addresses = 20
        self._epoch = (datetime.now(UTC), clock())
        if seed:
            self._seed()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(servers={len(self._servers)})"

    # Test hooks ---------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        body: object = None,
        retry_after: float | str | None = None,
        path_contains: str | None = None,
        method: str | None = None,
    ) -> None:
        """Make the next matching requests fail, before auth or routing.

        Args:
            status: The HTTP status to answer; 0 closes the connection without
                answering (under ``SandboxServer``).
            times: How many requests to fail.
            body: A dict or list (sent as JSON), a str (HTML if it starts with
                "<", else plain text) or bytes; by default an HTML page for
                5xx and a ``{"detail": ...}`` object otherwise.
            retry_after: Sent as the ``Retry-After`` header, verbatim.
            path_contains: Only requests whose path and query contain this.
            method: Only requests with this HTTP method, e.g. "POST".
        """
        with self._lock:
            self._faults.append(
                _Fault(status, times, body, retry_after, path_contains, method)
            )

    def reset_calls(self) -> None:
        """Forget the recorded calls."""
        with self._lock:
            self.calls.clear()

    def get(self, server_id: int) -> dict[str, Any] | None:
        """A copy of a server as stored (the detail view), or None."""
        with self._lock:
            self._settle()
            record = self._servers.get(server_id)
            return self._render(record, "detail") if record else None

    def list_servers(self) -> list[dict[str, Any]]:
        """Copies of every server, detail view, sorted by id."""
        with self._lock:
            self._settle()
            return [
                self._render(self._servers[key], "detail")
                for key in sorted(self._servers)
            ]

    def add_server(
        self,
        name: str,
        *,
        status: str = "active",
        location: str = "us-west",
        plan_id: int = 1,
        os_id: int = 5,
        hostname: str | None = None,
        backups_enabled: bool = False,
        ip_address: str | None = None,
        server_id: int | None = None,
    ) -> dict[str, Any]:
        """Add a server directly, without validation or credit; returns its copy.

        A server added in a transitional status stays in it until
        ``set_status`` moves it on.
        """
        with self._lock:
            if server_id is None:
                server_id = self._next_id
            self._next_id = max(self._next_id, server_id + 1)
            now = self._wall()
            record = self._new_record(
                server_id,
                name,
                hostname,
                location,
                plan_id,
                os_id,
                backups_enabled,
                now,
            )
            record["status"] = status
            if status != "provisioning":
                record["ip_address"] = ip_address or self._new_ipv4()
                record["ipv6_address"] = self._new_ipv6()
                if status == "active":
                    self._wake(record)
            self._servers[server_id] = record
            return self._render(record, "detail")

    def set_status(
        self, server_id: int, status: str, *, then: str | None = None
    ) -> None:
        """Set a server's status now, cancelling any transition under way.

        Args:
            server_id: The server.
            status: The new status word (any word, e.g. "error").
            then: A status to settle in after ``transition_delay`` seconds.

        Raises:
            KeyError: no such server.
        """
        with self._lock:
            record = self._servers[server_id]
            self._pending.pop(server_id, None)
            record["status"] = status
            self._touch(record)
            if then is not None:
                self._pending[server_id] = (then, self._clock() + self.transition_delay)

    # WSGI ---------------------------------------------------------------

    def __call__(
        self, environ: Mapping[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Answer one request (the WSGI entry point)."""
        request = _read_request(environ)
        shown = request.path + (f"?{request.query}" if request.query else "")
        with self._lock:
            self.calls.append((request.method, shown))
            fault = self._take_fault(request.method, shown)
            if fault is None:
                status, headers, body = self._respond(request)
        if fault is not None:
            status, headers, body = self._fault_response(fault, request)
        if self.latency > 0:
            time.sleep(self.latency)

        start_response(_status_line(status), headers)
        return [body]

    def _respond(self, request: _Request) -> Response:
        path = request.path
        if not path.endswith("/") and _route(path + "/") is not None:
            location = request.origin + path + "/"
            if request.query:
                location += "?" + request.query
            return 301, [("Location", location), ("Content-Type", "text/html")], b""
        route = _route(path)
        if route is None:
            return _html(404, "Not Found", f"Nothing is served at {path}.")

        denied = self._authenticate(request.headers.get("Authorization"))
        if denied is not None:
            return denied

        kind, server_id, verb = route
        allowed = _METHODS[kind]
        allow = [("Allow", ", ".join((*allowed, "OPTIONS")))]
        method = "GET" if request.method == "HEAD" else request.method
        if method == "OPTIONS":
            media = ["application/json"]
            return _json(200, {"name": kind, "renders": media, "parses": media}, allow)
        if method not in allowed:
            detail = f'Method "{request.method}" not allowed.'
            return _json(405, {"detail": detail}, allow)

        self._settle()
        if kind == "list":
            if method == "GET":
                return self._list(request)
            return self._with_body(request, self._create)
        if server_id not in self._servers:
            return _json(404, {"detail": "No Server matches the given query."})
        if kind == "power":
            return self._power(server_id, verb)
        if method == "GET":
            return _json(200, self._render(self._servers[server_id], "detail"))
        if method == "DELETE":
            del self._servers[server_id]
            self._pending.pop(server_id, None)
            return 204, [], b""
        partial = method == "PATCH"
        return self._with_body(
            request, lambda data: self._update(server_id, data, partial=partial)
        )

    def _authenticate(self, header: str | None) -> Response | None:
        if not header:
            detail = "Authentication credentials were not provided."
        else:
            keyword, _, credentials = header.strip().partition(" ")
            if keyword.lower() != "bearer":
                detail = "Authentication credentials were not provided."
            elif not credentials.strip():
                detail = "Invalid token header. No credentials provided."
            elif credentials.strip() != self.token:
                detail = "Invalid token."
            else:
                return None
        return _json(401, {"detail": detail}, [_AUTH_HEADER])

    def _with_body(
        self, request: _Request, handler: Callable[[Any], Response]
    ) -> Response:
        if not request.body.strip():
            return handler({})
        media_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        if media_type != "application/json" and not media_type.endswith("+json"):
            return _json(
                415, {"detail": f'Unsupported media type "{media_type}" in request.'}
            )
        try:
            data = json.loads(request.body)
        except ValueError as exc:
            return _json(400, {"detail": f"JSON parse error - {exc}"})
        return handler(data)

    # Endpoints ----------------------------------------------------------

    def _list(self, request: _Request) -> Response:
        params = request.params
        status = params.get("status", "")
        if status and status not in FILTER_STATUSES:
            message = (
                f"Select a valid choice. {status} is not one of the available choices."
            )
            return _json(400, {"status": [message]})
        location = params.get("location", "")
        rows = [
            self._servers[key]
            for key in sorted(self._servers)
            if (not status or self._servers[key]["status"] == status)
            and (not location or self._servers[key]["location"] == location)
        ]

        size = max(1, self.page_size)
        pages = max(1, -(-len(rows) // size))
        raw_page = params.get("page", "1")
        page = pages if raw_page == "last" else _page_number(raw_page)
        if page is None or not 1 <= page <= pages:
            return _json(404, {"detail": "Invalid page."})

        origin = self.link_origin or request.origin
        base = f"{origin}{request.path}"
        return _json(
            200,
            {
                "count": len(rows),
                "next": _page_link(base, request.query, page + 1)
                if page < pages
                else None,
                "previous": _page_link(base, request.query, page - 1)
                if page > 1
                else None,
                "results": [
                    self._render(row, "list")
                    for row in rows[(page - 1) * size : page * size]
                ],
            },
        )

    def _create(self, data: Any) -> Response:
        if not isinstance(data, dict):
            return _json(400, _not_a_dict(data))
        errors: dict[str, list[str]] = {}
        name = _check(errors, "name", data, _name_value)
        hostname = _check(errors, "hostname", data, _hostname_value, required=False)
        plan_id = _check(errors, "plan_id", data, _pk_value(PLANS))
        os_id = _check(errors, "os_id", data, _pk_value(OPERATING_SYSTEMS))
        location = _check(errors, "location", data, _location_value)
        _check(errors, "ssh_key_id", data, _integer_value, required=False, null=True)
        backups = _check(
            errors, "backups_enabled", data, _boolean_value, required=False
        )
        if errors:
            return _json(400, errors)
        if self.credit is not None:
            if self.credit <= 0:
                return _json(
                    402, {"detail": "Insufficient credit to create this server."}
                )
            self.credit -= 1

        server_id = self._next_id
        self._next_id += 1
        record = self._new_record(
            server_id,
            name,
            hostname,
            location,
            plan_id,
            os_id,
            bool(backups),
            self._wall(),
        )
        self._servers[server_id] = record
        self._pending[server_id] = ("active", self._clock() + self.transition_delay)
        answer = self._render(record, "create")
        answer["message"] = PROVISIONING_MESSAGE
        return _json(201, answer)

    def _update(self, server_id: int, data: Any, *, partial: bool) -> Response:
        if not isinstance(data, dict):
            return _json(400, _not_a_dict(data))
        errors: dict[str, list[str]] = {}
        changes: dict[str, Any] = {}
        for key, check in (
            ("name", _name_value),
            ("hostname", _hostname_value),
            ("backups_enabled", _boolean_value),
        ):
            if partial and key not in data:
                continue
            value = _check(errors, key, data, check)
            if key not in errors:
                changes[key] = value
        if partial and not errors and not changes:
            errors["non_field_errors"] = [
                "Give at least one of name, hostname, backups_enabled."
            ]
        if errors:
            return _json(400, errors)

        record = self._servers[server_id]
        record.update(changes)
        self._touch(record)
        return _json(200, self._render(record, "detail"))

    def _power(self, server_id: int, verb: str) -> Response:
        record = self._servers[server_id]
        needed, running, settled, message = _POWER[verb]
        status = record["status"]
        if status != needed:
            if verb == "start" and status == "active":
                # DRF sends a ValidationError raised with a string as a bare list.
                return _json(400, ["Server is already running."])
            if status in _TRANSITIONAL or status.endswith("ing"):
                detail = f"Server is {status}; wait until it settles."
            elif status == "suspended":
                detail = "Server is suspended."
            elif status == "stopped":
                detail = "Server is not running."
            else:
                detail = f"Server cannot {verb} while {status}."
            return _json(400, {"detail": detail})

        record["status"] = running
        self._touch(record)
        self._pending[server_id] = (settled, self._clock() + self.transition_delay)
        return _json(
            200,
            {
                "status": "success",
                "message": message,
                "server": {"id": server_id, "name": record["name"], "status": running},
            },
        )

    # State --------------------------------------------------------------

    def _seed(self) -> None:
        for seed, usage in zip(_SEEDS, _SEED_USAGE, strict=True):
            name, status, location, created, plan_id, os_id, backups = seed
            server_id = self._next_id
            self._next_id += 1
            when = datetime.fromisoformat(created).replace(tzinfo=UTC)
            record = self._new_record(
                server_id,
                name,
                f"{name}.example.com",
                location,
                plan_id,
                os_id,
                backups,
                when,
            )
            record.update(
                status=status,
                ip_address=self._new_ipv4(),
                ipv6_address=self._new_ipv6(),
                updated_at=when + timedelta(days=5, hours=3),
                resource_usage=dict(
                    zip(
                        ("cpu_percent", "memory_used", "disk_used", "bandwidth_used"),
                        usage,
                        strict=True,
                    )
                ),
            )
            self._servers[server_id] = record

    def _new_record(
        self,
        server_id: int,
        name: str,
        hostname: str | None,
        location: str,
        plan_id: int,
        os_id: int,
        backups_enabled: bool,
        now: datetime,
    ) -> dict[str, Any]:
        plan = PLANS.get(plan_id) or {"name": f"Plan {plan_id}"}
        return {
            "id": server_id,
            "name": name,
            "hostname": hostname,
            "status": "provisioning",
            "ip_address": None,
            "ipv6_address": None,
            "location": location,
            "plan": {"id": plan_id, **plan},
            "os": {"id": os_id, "name": OPERATING_SYSTEMS.get(os_id, f"OS {os_id}")},
            "backups_enabled": backups_enabled,
            "resource_usage": {
                "cpu_percent": 0.0,
                "memory_used": 0,
                "disk_used": 0,
                "bandwidth_used": 0,
            },
            "created_at": now,
            "updated_at": now,
        }

    def _settle(self) -> None:
        now = self._clock()
        for server_id, (target, due) in list(self._pending.items()):
            if due > now:
                continue
            del self._pending[server_id]
            record = self._servers.get(server_id)
            if record is None:
                continue
            if record["status"] == "provisioning" and target == "active":
                record["ip_address"] = self._new_ipv4()
                record["ipv6_address"] = self._new_ipv6()
            record["status"] = target
            if target == "active":
                self._wake(record)
            elif target == "stopped":
                record["resource_usage"].update(cpu_percent=0.0, memory_used=0)
            self._touch(record, self._wall(due))

    def _wake(self, record: dict[str, Any]) -> None:
        usage = record["resource_usage"]
        if not usage["memory_used"]:
            usage.update(
                cpu_percent=3.5, memory_used=(record["plan"].get("memory") or 1024) // 8
            )

    def _touch(self, record: dict[str, Any], when: datetime | None = None) -> None:
        when = when or self._wall()
        previous = record["updated_at"]
        record["updated_at"] = max(when, previous + timedelta(microseconds=1))

    def _wall(self, at: float | None = None) -> datetime:
        wall, start = self._epoch
        return wall + timedelta(seconds=(self._clock() if at is None else at) - start)

    def _new_ipv4(self) -> str:
        self._addresses += 1
        return f"203.0.113.{self._addresses % 254 + 1}"

    def _new_ipv6(self) -> str:
        return f"2001:db8::{self._addresses:x}"

    def _render(self, record: dict[str, Any], view: str) -> dict[str, Any]:
        data = copy.deepcopy(record)
        data["created_at"] = _timestamp(record["created_at"])
        data["updated_at"] = _timestamp(record["updated_at"])
        if view != "detail":
            # The documented list and create answers leave these out.
            del data["ipv6_address"], data["resource_usage"]
            data["plan"].pop("bandwidth", None)
        if view == "list":
            del data["backups_enabled"]
        return data

    def _take_fault(self, method: str, shown: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method is not None and fault.method != method:
                continue
            if fault.path_contains is None or fault.path_contains in shown:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _fault_response(self, fault: _Fault, request: _Request) -> Response:
        if fault.status == 0:
            raise DropConnection
        headers: list[tuple[str, str]] = []
        if fault.retry_after is not None:
            retry_after = fault.retry_after
            if isinstance(retry_after, float) and retry_after.is_integer():
                retry_after = int(retry_after)
            headers.append(("Retry-After", str(retry_after)))
        if 300 <= fault.status < 400:
            headers.append(("Location", request.origin + request.path))
        body = fault.body
        if body is None:
            phrase = _phrase(fault.status)
            if fault.status >= 500:
                return _html(fault.status, phrase, f"{fault.status} {phrase}", headers)
            if fault.status == 429:
                wait = fault.retry_after or 60
                body = {
                    "detail": f"Request was throttled; try again in {wait} seconds."
                }
            else:
                body = {"detail": f"{phrase}."}
        if isinstance(body, bytes):
            return fault.status, headers, body
        if isinstance(body, str):
            kind = "text/html" if body.lstrip().startswith("<") else "text/plain"
            headers.append(("Content-Type", f"{kind}; charset=utf-8"))
            return fault.status, headers, body.encode()
        return _json(fault.status, body, headers)


class SandboxServer:
    """Serves a ``Sandbox`` over HTTP/1.1 with keep-alive, one thread per connection.

    Args:
        sandbox: The application to serve.
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one.

    Attributes:
        sandbox: As given.
    """

    def __init__(
        self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.sandbox = sandbox
        self._address = (host, port)
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The API base URL, ending in ``/api/v1/``."""
        if self._server is None:
            raise RuntimeError("the sandbox server is not started")
        host, port = self._server.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}{API_PREFIX}"

    @property
    def connections_opened(self) -> int:
        """How many TCP connections were accepted since the start."""
        return self._server.connections_opened if self._server else 0

    def start(self) -> SandboxServer:
        """Bind and serve on a background thread; returns self."""
        if self._server is not None:
            return self
        self._server = _HttpServer(self._address, self.sandbox)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="vps-sandbox",
            daemon=True,
        )
        self._thread.start()
        logger.info("VPS.org sandbox serving at %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def run_sandbox(
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    token: str = "sandbox-token",
    transition_delay: float = 2.0,
) -> None:
    """Serve a seeded sandbox in the foreground until Ctrl-C.

    Prints one line with the base URL and the token to use.
    """
    sandbox = Sandbox(token, transition_delay=transition_delay)
    with SandboxServer(sandbox, host, port) as server:
        print(
            f"VPS.org sandbox at {server.url} (token: {token}); Ctrl-C stops it.",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("sandbox stopped", file=sys.stderr)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], app: Sandbox) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.app = app
        self.connections_opened = 0
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self.connections_opened += 1
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up before its answer (a test's read timeout) is
        # normal here; anything else is worth a traceback.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            logger.debug("sandbox: client %s went away: %r", client_address, error)
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vps-sandbox"
    sys_version = ""
    # Idle keep-alive connections are closed after this many seconds.
    timeout = 120
    # Headers and body go out in separate writes; without this, Nagle's
    # algorithm and delayed ACKs hold every answer back by about 40 ms.
    disable_nagle_algorithm = True
    server: _HttpServer

    def _serve(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._answer(411, [("Content-Type", "text/plain")], b"Length Required")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(urlsplit(self.path).path),
            "QUERY_STRING": urlsplit(self.path).query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = value

        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> Any:
            started["status"], started["headers"] = status, headers
            return lambda data: None

        try:
            payload = b"".join(self.server.app(environ, start_response))
        except DropConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._answer(int(started["status"].split()[0]), started["headers"], payload)

    def _answer(
        self, status: int, headers: list[tuple[str, str]], payload: bytes
    ) -> None:
        self.send_response(status, _phrase(status))
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

    def log_message(self, fmt: str, *args: Any) -> None:
        logger.debug("sandbox: %s", fmt % args)


def _read_request(environ: Mapping[str, Any]) -> _Request:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    headers = {
        key[5:].replace("_", "-").title(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    headers["Content-Type"] = environ.get("CONTENT_TYPE", "")
    host = environ.get("HTTP_HOST") or (
        f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    )
    return _Request(
        method=environ.get("REQUEST_METHOD", "GET").upper(),
        path=environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "/"),
        query=environ.get("QUERY_STRING", ""),
        headers=headers,
        body=body,
        origin=f"{environ.get('wsgi.url_scheme', 'http')}://{host}",
    )


_METHODS = {
    "list": ("GET", "POST"),
    "item": ("GET", "PUT", "PATCH", "DELETE"),
    "power": ("POST",),
}
_ROUTES = (
    (re.compile(r"^/api/v1/servers/$"), "list"),
    (re.compile(r"^/api/v1/servers/(-?\d+)/$"), "item"),
    (re.compile(r"^/api/v1/servers/(-?\d+)/(start|stop|reboot)/$"), "power"),
)


def _route(path: str) -> tuple[str, int | None, str | None] | None:
    for pattern, kind in _ROUTES:
        match = pattern.match(path)
        if match:
            groups = match.groups()
            server_id = int(groups[0]) if groups else None
            return kind, server_id, groups[1] if len(groups) > 1 else None
    return None


def _check(
    errors: dict[str, list[str]],
    key: str,
    data: Mapping[str, Any],
    check: Callable[[Any], tuple[Any, str | None]],
    *,
    required: bool = True,
    null: bool = False,
) -> Any:
    """Validate one field like a DRF serializer field; record any error."""
    if key not in data:
        if required:
            errors[key] = [_REQUIRED]
        return None
    value = data[key]
    if value is None:
        if not null:
            errors[key] = [_NOT_NULL]
        return None
    clean, error = check(value)
    if error:
        errors[key] = [error]
    return clean


def _text_value(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, bool | dict | list):
        return None, "Not a valid string."
    text = str(value).strip()
    return (text, None) if text else (None, _NOT_BLANK)


def _name_value(value: Any) -> tuple[str | None, str | None]:
    text, error = _text_value(value)
    if error or text is None:
        return None, error
    if len(text) > 63:
        return None, "Ensure this field has no more than 63 characters."
    if not _NAME.match(text):
        return None, "Enter a valid name: letters, digits and hyphens only."
    return text, None


def _hostname_value(value: Any) -> tuple[str | None, str | None]:
    text, error = _text_value(value)
    if error or text is None:
        return None, error
    if len(text) > 253:
        return None, "Ensure this field has no more than 253 characters."
    labels = text.removesuffix(".").split(".")
    if (
        len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        return None, "Enter a valid fully qualified domain name."
    return text, None


def _integer_value(value: Any) -> tuple[int | None, str | None]:
    if isinstance(value, bool):
        return None, _BAD_INTEGER
    if isinstance(value, int):
        return value, None
    if isinstance(value, float) and value.is_integer():
        return int(value), None
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,18}\s*", value):
        return int(value), None
    return None, _BAD_INTEGER


def _pk_value(
    catalog: Mapping[int, Any],
) -> Callable[[Any], tuple[int | None, str | None]]:
    def check(value: Any) -> tuple[int | None, str | None]:
        number, error = _integer_value(value)
        if error or number is None:
            return None, error
        if number not in catalog:
            return None, f'Invalid pk "{value}" - object does not exist.'
        return number, None

    return check


def _location_value(value: Any) -> tuple[str | None, str | None]:
    text, error = _text_value(value)
    if error or text is None:
        return None, error
    if text not in LOCATIONS:
        return None, f'"{text}" is not a valid choice.'
    return text, None


def _boolean_value(value: Any) -> tuple[bool | None, str | None]:
    key = value.strip().lower() if isinstance(value, str) else value
    if isinstance(key, float | int) and not isinstance(key, bool) and key not in (0, 1):
        return None, _BAD_BOOLEAN
    try:
        if key in _TRUE:
            return True, None
        if key in _FALSE:
            return False, None
    except TypeError:
        pass
    return None, _BAD_BOOLEAN


def _not_a_dict(data: Any) -> dict[str, list[str]]:
    if data is None:
        return {"non_field_errors": ["No data provided"]}
    kind = {bool: "bool", int: "int", float: "float", str: "str", list: "list"}.get(
        type(data), type(data).__name__
    )
    return {
        "non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]
    }


def _page_number(raw: str) -> int | None:
    return int(raw) if raw.strip().isdigit() else None


def _page_link(base: str, query: str, page: int) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    params = [(key, value) for key, value in pairs if key != "page"]
    if page > 1:
        params.append(("page", str(page)))
    return base + (f"?{urlencode(params)}" if params else "")


def _timestamp(value: datetime) -> str:
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


def _json(
    status: int, body: object, headers: list[tuple[str, str]] | None = None
) -> Response:
    return (
        status,
        [*(headers or []), ("Content-Type", "application/json"), ("Vary", "Accept")],
        json.dumps(body).encode(),
    )


def _html(
    status: int,
    title: str,
    text: str,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    page = (
        f"<!doctype html>\n<html><head><title>{title}</title></head>"
        f"<body><h1>{title}</h1><p>{text}</p></body></html>\n"
    )
    return (
        status,
        [*(headers or []), ("Content-Type", "text/html; charset=utf-8")],
        page.encode(),
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _status_line(status: int) -> str:
    return f"{status} {_phrase(status)}"
