"""``VpsClient``: one method per documented VPS.org server endpoint.

There is no hidden I/O: each method makes the calls its docstring says, and
nothing is fetched on attribute access. Transport policy (timeouts, retries,
which failures are ambiguous) lives in ``vps/_http.py`` and is summarised in
the class docstring.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from vpsbot.vps._http import Answer, HttpTransport, new_request_id
from vpsbot.vps.errors import NotFoundError
from vpsbot.vps.servers import PowerResult, Server

__all__ = ["FILTERABLE_STATUSES", "VpsClient"]

logger = logging.getLogger(__name__)

#: The status values the provider documents for its list filter; other
#: statuses are filtered on our side.
FILTERABLE_STATUSES = frozenset({"active", "stopped", "suspended"})
PATCHABLE_FIELDS = frozenset({"name", "hostname", "backups_enabled"})

_T = TypeVar("_T")


class VpsClient:
    """A client for the VPS.org servers API, for one token.

    Policy:

    - Timeouts: ``connect_timeout`` for opening a connection; ``read_timeout``
      for the answer to a read; ``write_timeout`` for the answer to anything
      that changes a server (create, update, patch, delete, start, stop,
      reboot), longer because a lost answer to a change is ambiguous.
    - Reads (GET) are retried up to ``max_retries`` times on 429, 500, 502,
      503, 504, read timeouts and dropped connections, with exponential
      backoff (``backoff_factor``) and jitter; a ``Retry-After`` up to
      ``retry_after_max`` seconds is waited out, a longer one is raised as
      ``RateLimitedError`` at once.
    - Changes are never resent once they may have reached the provider; only
      a failure to open the connection is retried. If a change's answer is
      lost, ``OutcomeUnknownError`` is raised and the caller should look
      rather than resend.
    - Redirects are never followed; a 3xx is ``UnexpectedResponseError``.
    - Thread safety: one client, and so one ``requests.Session`` with
      ``pool_size`` reusable connections, may be shared by all worker threads.

    Every method takes ``request_id``, sent as ``X-Request-ID`` and logged, so
    a Slack request, its audit entry and its provider calls can be tied
    together; a fresh id is used when it is None.

    Args:
        base_url: The API root, e.g. ``https://admin.vps.org/api/v1/``.
        token: The API token. It is kept out of every repr, log line and error.
        connect_timeout: Seconds.
        read_timeout: Seconds.
        write_timeout: Seconds.
        max_retries: Retries of a read, per cause.
        backoff_factor: Seconds; 0 retries at once (tests).
        retry_after_max: Seconds.
        max_pages: Most list pages ``get_all`` will fetch.
        pool_size: Connections kept open; match the number of worker threads.
        user_agent: Put in front of ``vpsbot/<version> python-requests/<v>``.

    Raises:
        ValueError: base_url is not an http(s) URL, or token is empty.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        write_timeout: float = 30.0,
        max_retries: int = 3,
        backoff_factor: float = 0.5,
        retry_after_max: float = 20.0,
        max_pages: int = 50,
        pool_size: int = 16,
        user_agent: str | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if parts.query or parts.fragment:
            raise ValueError("base_url must not have a query or fragment")
        if not token:
            raise ValueError("token must not be empty")
        if max_pages < 1:
            raise ValueError("max_pages must be at least 1")

        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.max_pages = max_pages
        self._http = HttpTransport(
            self.base_url,
            token,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            retry_after_max=retry_after_max,
            pool_size=pool_size,
            user_agent=user_agent,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def __enter__(self) -> VpsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections; the client should not be used after."""
        self._http.close()

    def get_all(
        self,
        *,
        status: str | None = None,
        location: str | None = None,
        request_id: str | None = None,
    ) -> list[Server]:
        """Every server of the account, following the list's pages.

        Only the query string of each ``next`` link is used, against our own
        base URL, so the token never goes to a host the link names. Servers
        are deduplicated by id and sorted by id. The walk stops after
        ``max_pages`` pages (logged), or quietly when a later page answers 404
        because the list shrank meanwhile.

        Args:
            status: Keep only servers with this status. The provider filters
                only active, stopped and suspended; other values are filtered
                here from the full list.
            location: Keep only servers in this data centre.
            request_id: See the class docstring.

        Raises:
            VpsApiError: the first page failed, or a later one failed other
                than with 404.
        """
        request_id = request_id or new_request_id()
        wanted_status = status.strip().lower() if status else None
        params: dict[str, str] = {}
        if wanted_status in FILTERABLE_STATUSES:
            params["status"] = wanted_status
        if location:
            params["location"] = location
        query = urlencode(params)

        found: dict[int, Server] = {}
        asked: set[str] = set()
        for page in range(1, self.max_pages + 1):
            asked.add(query)
            try:
                answer = self._http.request(
                    "GET", "servers/", query=query, request_id=request_id
                )
            except NotFoundError:
                if page == 1:
                    raise
                logger.info("server list ended early at page %d (404)", page)
                break
            results, next_link = _page_of(answer)
            for item in results:
                server = _parse(answer, Server.from_dict, item)
                found[server.id] = server

            if not next_link:
                break
            query = urlsplit(next_link).query
            if not query or query in asked:
                logger.warning("server list gave a next link that repeats a page")
                break
        else:
            logger.warning(
                "server list still had pages after %d; showing what was read",
                self.max_pages,
            )

        servers = found.values()
        if wanted_status:
            servers = [s for s in servers if s.status.lower() == wanted_status]
        if location:
            place = location.casefold()
            servers = [s for s in servers if (s.location or "").casefold() == place]
        return sorted(servers, key=lambda server: server.id)

    def get_by_id(self, server_id: int, *, request_id: str | None = None) -> Server:
        """One server, in the detail view (with IPv6 and resource usage).

        Raises:
            NotFoundError: there is no such server.
            VpsApiError: the call failed otherwise.
        """
        answer = self._http.request(
            "GET", _server_path(server_id), request_id=request_id
        )
        return _parse(answer, Server.from_dict, answer.body)

    def create(
        self,
        *,
        name: str,
        plan_id: int,
        os_id: int,
        location: str,
        hostname: str | None = None,
        ssh_key_id: int | None = None,
        backups_enabled: bool = False,
        request_id: str | None = None,
    ) -> Server:
        """Order a new server; it costs money and is never sent twice.

        The answer has status "provisioning", no IP yet, and the provider's
        ``message``.

        Args:
            name: Letters, digits and hyphens.
            plan_id: A plan id.
            os_id: An operating-system id.
            location: A data-centre code, e.g. "us-west".
            hostname: A fully qualified domain name.
            ssh_key_id: An SSH key id known to the account.
            backups_enabled: Whether to turn on backups.
            request_id: See the class docstring.

        Raises:
            InvalidInputError: a value was refused; see ``field_errors``.
            PaymentRequiredError: not enough credit.
            OutcomeUnknownError: the answer was lost; list the servers to see
                whether it was created.
            VpsApiError: the call failed otherwise.
        """
        body: dict[str, Any] = {
            "name": name,
            "plan_id": plan_id,
            "os_id": os_id,
            "location": location,
            "backups_enabled": backups_enabled,
        }
        if hostname is not None:
            body["hostname"] = hostname
        if ssh_key_id is not None:
            body["ssh_key_id"] = ssh_key_id
        answer = self._http.request(
            "POST", "servers/", body=body, request_id=request_id, action="create"
        )
        return _parse(answer, Server.from_dict, answer.body)

    def update(
        self,
        server_id: int,
        *,
        name: str,
        hostname: str,
        backups_enabled: bool,
        request_id: str | None = None,
    ) -> Server:
        """Replace the editable fields (PUT: all three are sent).

        Raises:
            InvalidInputError: a value was refused; see ``field_errors``.
            NotFoundError: there is no such server.
            OutcomeUnknownError: the answer was lost.
            VpsApiError: the call failed otherwise.
        """
        body = {"name": name, "hostname": hostname, "backups_enabled": backups_enabled}
        answer = self._http.request(
            "PUT",
            _server_path(server_id),
            body=body,
            request_id=request_id,
            action="update",
        )
        return _parse(answer, Server.from_dict, answer.body)

    def patch(
        self, server_id: int, *, request_id: str | None = None, **changes: Any
    ) -> Server:
        """Change only the given fields (PATCH).

        Args:
            server_id: The server.
            request_id: See the class docstring.
            **changes: Any of ``name``, ``hostname``, ``backups_enabled``.

        Raises:
            ValueError: no change was given, or a field that cannot be patched.
            InvalidInputError: a value was refused; see ``field_errors``.
            NotFoundError: there is no such server.
            OutcomeUnknownError: the answer was lost.
            VpsApiError: the call failed otherwise.
        """
        unknown = sorted(set(changes) - PATCHABLE_FIELDS)
        if unknown:
            raise ValueError(f"cannot patch {', '.join(unknown)}")
        if not changes:
            raise ValueError(
                "patch needs at least one of name, hostname, backups_enabled"
            )
        answer = self._http.request(
            "PATCH",
            _server_path(server_id),
            body=changes,
            request_id=request_id,
            action="update",
        )
        return _parse(answer, Server.from_dict, answer.body)

    def delete(self, server_id: int, *, request_id: str | None = None) -> None:
        """Delete a server for good (the provider answers 204, with no body).

        Raises:
            NotFoundError: there is no such server (perhaps already deleted).
            OutcomeUnknownError: the answer was lost; get the server to see.
            VpsApiError: the call failed otherwise.
        """
        self._http.request(
            "DELETE", _server_path(server_id), request_id=request_id, action="delete"
        )

    def start(self, server_id: int, *, request_id: str | None = None) -> PowerResult:
        """Start a stopped server.

        Raises:
            ActionRejectedError: the server's state forbids it (e.g. running).
            NotFoundError: there is no such server.
            OutcomeUnknownError: the answer was lost.
            VpsApiError: the call failed otherwise.
        """
        return self._power(server_id, "start", request_id)

    def stop(self, server_id: int, *, request_id: str | None = None) -> PowerResult:
        """Shut a running server down gracefully.

        Raises:
            ActionRejectedError: the server's state forbids it (e.g. stopped).
            NotFoundError: there is no such server.
            OutcomeUnknownError: the answer was lost.
            VpsApiError: the call failed otherwise.
        """
        return self._power(server_id, "stop", request_id)

    def reboot(self, server_id: int, *, request_id: str | None = None) -> PowerResult:
        """Restart a running server gracefully.

        Raises:
            ActionRejectedError: the server's state forbids it (e.g. stopped).
            NotFoundError: there is no such server.
            OutcomeUnknownError: the answer was lost.
            VpsApiError: the call failed otherwise.
        """
        return self._power(server_id, "reboot", request_id)

    def _power(self, server_id: int, verb: str, request_id: str | None) -> PowerResult:
        answer = self._http.request(
            "POST",
            _server_path(server_id, f"{verb}/"),
            request_id=request_id,
            action=verb,
        )
        return _parse(answer, PowerResult.from_dict, answer.body)


def _server_path(server_id: int, suffix: str = "") -> str:
    if isinstance(server_id, str) and server_id.strip().isdigit():
        server_id = int(server_id)
    if isinstance(server_id, bool) or not isinstance(server_id, int) or server_id < 0:
        raise ValueError(f"server id must be a non-negative integer, got {server_id!r}")
    return f"servers/{server_id:d}/{suffix}"


def _page_of(answer: Answer) -> tuple[list[Any], str | None]:
    body = answer.body
    if isinstance(body, list):
        return body, None
    if isinstance(body, Mapping) and isinstance(body.get("results"), list):
        next_link = body.get("next")
        if next_link is not None and not isinstance(next_link, str):
            raise answer.unexpected("'next' is not a URL")
        return body["results"], next_link
    raise answer.unexpected("no list of results")


def _parse(answer: Answer, parser: Callable[[Any], _T], data: Any) -> _T:
    try:
        return parser(data)
    except ValueError as exc:
        raise answer.unexpected(str(exc)) from exc
