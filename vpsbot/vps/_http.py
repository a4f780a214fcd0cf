"""The HTTP layer under ``VpsClient``: one session, retries, and error mapping.

Policy, in one place:

- Every call has explicit (connect, read) timeouts and ``allow_redirects=False``;
  any 3xx answer is an ``UnexpectedResponseError`` (requests would turn a
  redirected POST into a GET).
- Only GET is retried, by urllib3 on the adapter: on 429, 500, 502, 503 and
  504 answers, read timeouts and dropped connections, with exponential backoff
  and jitter. ``Retry-After`` is obeyed up to ``retry_after_max`` seconds; a
  longer ask is not retried but handed back as a ``RateLimitedError``, and an
  unreadable one falls back to the backoff.
- A POST, PUT, PATCH or DELETE is never resent once it may have reached the
  provider. urllib3 does retry a failure to *open* a connection for every
  method, which is deliberate: nothing was sent, so nothing can be doubled.
- A change whose answer was lost (read timeout, connection dropped after
  sending, or a 502/504 from a gateway) raises ``OutcomeUnknownError``. Other
  5xx answers to a change are ``ProviderError``: the application answered
  itself and most likely did nothing.
- The token travels only in the ``Authorization`` header, set by an auth
  object so that ``~/.netrc`` can never replace it, and is never logged:
  INFO lines carry method, path, status, duration and request id; DEBUG
  adds bodies with secret-looking keys and the token itself masked.
"""

from __future__ import annotations

import json
import logging
import random
import re
import ssl
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import (
    ConnectTimeoutError,
    InvalidHeader,
    MaxRetryError,
    NewConnectionError,
    ResponseError,
)
from urllib3.util.retry import Retry

from vpsbot import __version__
from vpsbot.config import Secret
from vpsbot.vps.errors import (
    ActionRejectedError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    OutcomeUnknownError,
    PaymentRequiredError,
    ProviderError,
    RateLimitedError,
    UnauthorizedError,
    UnexpectedResponseError,
    UnreachableError,
    VpsApiError,
    normalize_error_body,
)

logger = logging.getLogger(__name__)

_ERRORS_BY_STATUS: dict[int, type[VpsApiError]] = {
    401: UnauthorizedError,
    402: PaymentRequiredError,
    403: ForbiddenError,
    404: NotFoundError,
    410: NotFoundError,
}
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Longest single wait between retries when computed from the backoff factor.
BACKOFF_MAX = 8.0
_MASK = "****"
_SECRET_KEY = re.compile(r"pass|token|secret|auth|credential|private", re.IGNORECASE)
_BODY_LOG_LIMIT = 2000


def new_request_id() -> str:
    """A fresh id for a call whose caller gave none."""
    return uuid.uuid4().hex


class BearerAuth(AuthBase):
    """Adds ``Authorization: Bearer <token>``; its repr never shows the token."""

    def __init__(self, token: str) -> None:
        self._token = Secret(token)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token.value}"
        return request

    def scrub(self, text: str) -> str:
        """Return text with every occurrence of the token masked."""
        token = self._token.value
        if len(token) >= 6 and token in text:
            return text.replace(token, _MASK)
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_MASK!r})"

    __str__ = __repr__


class LenientRetry(Retry):
    """urllib3's ``Retry`` with the changes vpsbot needs.

    - An unreadable or negative ``Retry-After`` falls back to the backoff
      instead of raising ``InvalidHeader``.
    - A ``Retry-After`` longer than ``retry_after_max`` ends the retries, so
      the caller gets the 429 with the real wait rather than a doomed retry.
    - The backoff is exponential with "equal jitter": half the step, plus a
      random share of the other half.
    - Each retry is logged at WARNING.
    """

    def get_retry_after(self, response: Any) -> float | None:
        try:
            return super().get_retry_after(response)
        except InvalidHeader:
            logger.warning(
                "ignoring unreadable Retry-After %r",
                response.headers.get("Retry-After"),
            )
            return None

    def get_backoff_time(self) -> float:
        attempts = 0
        for entry in reversed(self.history):
            if entry.redirect_location is not None:
                break
            attempts += 1
        if attempts == 0 or self.backoff_factor <= 0:
            return 0.0
        step = min(self.backoff_max, self.backoff_factor * 2 ** (attempts - 1))
        return step / 2 + random.uniform(0, step / 2)

    def increment(self, method=None, url=None, response=None, error=None, **kwargs):  # type: ignore[no-untyped-def,override]
        if response is not None and not error:
            wait = _retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None and wait > self.retry_after_max:
                raise MaxRetryError(
                    kwargs.get("_pool"),
                    url or "",
                    ResponseError("Retry-After too long"),
                )
        new = super().increment(method, url, response, error, **kwargs)
        cause = (
            f"HTTP {response.status}" if response is not None else type(error).__name__
        )
        logger.warning("retrying %s %s after %s", method, url, cause)
        return new


def build_retry(
    max_retries: int, backoff_factor: float, retry_after_max: float
) -> LenientRetry:
    """The retry policy for the adapter: GET only, statuses in ``RETRY_STATUSES``.

    Args:
        max_retries: Attempts after the first one, for any one cause.
        backoff_factor: Seconds; the n-th retry waits about factor × 2^(n-1).
        retry_after_max: Longest ``Retry-After`` that is waited out, in seconds.
    """
    return LenientRetry(
        total=max_retries,
        # An error that is neither a connect failure nor a read failure (a TLS
        # error mid-stream) is not retried for any method.
        other=0,
        redirect=False,
        allowed_methods=frozenset({"GET", "HEAD"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_factor,
        backoff_max=BACKOFF_MAX,
        respect_retry_after_header=True,
        retry_after_max=retry_after_max,  # type: ignore[arg-type]
        raise_on_status=False,
        raise_on_redirect=False,
    )


@dataclass(frozen=True)
class Answer:
    """A 2xx answer: the decoded JSON body (None when empty) and call facts."""

    status: int
    body: Any
    method: str
    path: str
    request_id: str

    def unexpected(self, reason: str) -> UnexpectedResponseError:
        """Build the error for a 2xx answer whose body makes no sense."""
        return UnexpectedResponseError(
            f"VPS.org's answer is unusable: {reason}",
            status=self.status,
            method=self.method,
            path=self.path,
            request_id=self.request_id,
        )


class HttpTransport:
    """Sends requests to one VPS.org base URL with one token.

    One ``requests.Session`` is shared by every thread that uses the client.
    That is safe for the way it is used here: the session is configured once
    in the constructor and never changed afterwards, redirects are never
    followed, cookies are refused (so the jar is never written), and the
    urllib3 pool under it is thread-safe. ``pool_size`` connections are kept
    open for reuse; more concurrent callers than that still work but open
    extra connections that are discarded afterwards.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        write_timeout: float,
        max_retries: int,
        backoff_factor: float,
        retry_after_max: float,
        pool_size: int,
        user_agent: str | None,
    ) -> None:
        self.base_url = base_url
        self._auth = BearerAuth(token)
        self._read_timeout = (connect_timeout, read_timeout)
        self._write_timeout = (connect_timeout, write_timeout)

        session = requests.Session()
        session.auth = self._auth
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        session.headers.update(
            {
                "User-Agent": _user_agent(user_agent),
                "Accept": "application/json",
                "Accept-Language": "en",
            }
        )
        adapter = HTTPAdapter(
            pool_connections=1,
            pool_maxsize=pool_size,
            max_retries=build_retry(max_retries, backoff_factor, retry_after_max),
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        query: str = "",
        body: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        action: str = "change",
    ) -> Answer:
        """Send one call and return its 2xx answer.

        Args:
            method: The HTTP method.
            path: Relative to the base URL, ending with "/".
            params: Query parameters to encode.
            query: An already encoded query string, used when params is None.
            body: Sent as JSON.
            request_id: Sent as ``X-Request-ID``; a fresh one when None.
            action: Plain words for the change, used if its outcome is lost.

        Raises:
            VpsApiError: a subclass for each way the call can fail.
        """
        method = method.upper()
        request_id = request_id or new_request_id()
        if params:
            query = urlencode(params)
        url = self.base_url + path + (f"?{query}" if query else "")
        shown = urlsplit(url).path + (f"?{query}" if query else "")
        is_write = method in WRITE_METHODS
        timeout = self._write_timeout if is_write else self._read_timeout
        if body is not None and logger.isEnabledFor(logging.DEBUG):
            logger.debug("VPS.org %s %s sends %s", method, shown, self._for_log(body))

        sent_at = datetime.now(UTC)
        started = time.perf_counter()
        try:
            response = self._session.request(
                method,
                url,
                json=body,
                headers={"X-Request-ID": request_id},
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            elapsed = _ms(started)
            facts = {"method": method, "path": shown, "request_id": request_id}
            reached = _may_have_reached_provider(exc)
            logger.warning(
                "VPS.org %s %s failed after %d ms: %s (request id %s)",
                method,
                shown,
                elapsed,
                type(exc).__name__,
                request_id,
            )
            if reached and is_write:
                raise OutcomeUnknownError(
                    action,
                    f"VPS.org's answer was lost ({type(exc).__name__}), so it is "
                    f"not known whether the {action} went through",
                    sent_at=sent_at,
                    **facts,
                ) from exc
            raise UnreachableError(
                f"vpsbot could not reach VPS.org ({type(exc).__name__})", **facts
            ) from exc

        status = response.status_code
        logger.info(
            "VPS.org %s %s -> %d in %d ms (request id %s)",
            method,
            shown,
            status,
            _ms(started),
            request_id,
        )
        decoded = _decode(response)
        if logger.isEnabledFor(logging.DEBUG) and response.content:
            logger.debug(
                "VPS.org %s %s answered %s", method, shown, self._for_log(decoded)
            )

        if 200 <= status < 300:
            if isinstance(decoded, str):
                raise UnexpectedResponseError(
                    "VPS.org answered with a body that is not JSON",
                    status=status,
                    method=method,
                    path=shown,
                    request_id=request_id,
                )
            return Answer(status, decoded, method, shown, request_id)
        raise self._error(response, decoded, method, shown, request_id, action, sent_at)

    def _error(
        self,
        response: requests.Response,
        decoded: Any,
        method: str,
        path: str,
        request_id: str,
        action: str,
        sent_at: datetime,
    ) -> VpsApiError:
        status = response.status_code
        detail, field_errors = normalize_error_body(decoded)
        if detail:
            detail = self._auth.scrub(detail)
        field_errors = {
            key: [self._auth.scrub(message) for message in messages]
            for key, messages in field_errors.items()
        }
        facts: dict[str, Any] = {
            "status": status,
            "detail": detail,
            "field_errors": field_errors,
            "request_id": request_id,
            "method": method,
            "path": path,
        }
        if 300 <= status < 400:
            location = urlsplit(response.headers.get("Location", "")).path
            return UnexpectedResponseError(
                f"VPS.org redirected to {location or '?'}; redirects are not followed",
                **facts,
            )
        if status in (400, 409, 422, 423):
            if detail and not field_errors:
                return ActionRejectedError(**facts)
            return InvalidInputError(**facts)
        if status in _ERRORS_BY_STATUS:
            return _ERRORS_BY_STATUS[status](**facts)
        if status == 429:
            wait = _retry_after_seconds(response.headers.get("Retry-After"))
            return RateLimitedError(retry_after=wait, **facts)
        if status >= 500:
            if status in (502, 504) and method in WRITE_METHODS:
                return OutcomeUnknownError(action, sent_at=sent_at, **facts)
            return ProviderError(**facts)
        return UnexpectedResponseError(
            f"VPS.org answered with an undocumented status {status}", **facts
        )

    def _for_log(self, value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(_redact(value))
        text = self._auth.scrub(text)
        if len(text) > _BODY_LOG_LIMIT:
            text = text[:_BODY_LOG_LIMIT] + "…"
        return text


def _decode(response: requests.Response) -> Any:
    """The JSON value of the body, its text when it is not JSON, None if empty."""
    if not response.content or not response.content.strip():
        return None
    try:
        return json.loads(response.content)
    except ValueError:
        return response.text


def _redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            key: _MASK if _SECRET_KEY.search(str(key)) else _redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item) for item in value]
    return value


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` value (delta or HTTP date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _may_have_reached_provider(exc: requests.RequestException) -> bool:
    """Whether the request may have been sent before ``exc`` happened.

    False only when the connection itself could not be made: DNS, refused,
    connect timeout, the proxy, a TLS certificate that failed verification,
    or a request that could not even be prepared.
    """
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.ProxyError):
        return False
    if isinstance(exc, requests.exceptions.SSLError):
        return not _is_certificate_failure(exc)
    if isinstance(exc, requests.ConnectionError):
        reason: object = exc.args[0] if exc.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        return not isinstance(reason, NewConnectionError | ConnectTimeoutError)
    return isinstance(
        exc,
        requests.Timeout
        | requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError,
    )


def _is_certificate_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLCertVerificationError):
            return True
        stack.extend(item.args)
        stack.extend([item.__cause__, item.__context__, getattr(item, "reason", None)])
    return False


def _user_agent(prefix: str | None) -> str:
    own = f"vpsbot/{__version__} python-requests/{requests.__version__}"
    return f"{prefix} {own}" if prefix else own


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
