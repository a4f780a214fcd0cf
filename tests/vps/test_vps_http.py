"""The transport helpers: retry policy, Retry-After, and what counts as sent."""

from __future__ import annotations

import logging
import ssl
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.response import HTTPResponse

from vpsbot.vps._http import (
    BearerAuth,
    _may_have_reached_provider,
    _retry_after_seconds,
    build_retry,
)

logger = logging.getLogger(__name__)


def _response(status: int, retry_after: str | None = None) -> HTTPResponse:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return HTTPResponse(body=b"", headers=headers, status=status)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), (" 30 ", 30.0), ("-1509450059", None), ("soon", None), (None, None)],
)
def test_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    assert _retry_after_seconds(value) == seconds


def test_retry_after_as_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)

    seconds = _retry_after_seconds(format_datetime(when, usegmt=True))

    assert seconds is not None
    assert 100 <= seconds <= 121


def test_retry_allows_reads_only() -> None:
    retry = build_retry(3, 0.5, 20.0)

    assert retry.is_retry("GET", 503) is True
    assert retry.is_retry("GET", 429) is True
    assert retry.is_retry("GET", 404) is False
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert retry.is_retry(method, 503) is False
        assert retry.is_retry(method, 429, has_retry_after=True) is False


def test_unreadable_retry_after_gives_none_instead_of_raising() -> None:
    retry = build_retry(3, 0.5, 20.0)

    assert retry.get_retry_after(_response(429, "-1509450059")) is None
    assert retry.get_retry_after(_response(429, "5")) == 5


def test_long_retry_after_ends_the_retries() -> None:
    retry = build_retry(3, 0.5, 20.0)

    with pytest.raises(MaxRetryError):
        retry.increment("GET", "/api/v1/servers/", response=_response(429, "3600"))

    later = retry.increment("GET", "/api/v1/servers/", response=_response(429, "20"))
    assert later.total == 2


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    retry = build_retry(10, 0.5, 20.0)
    waits = []
    for _ in range(6):
        retry = retry.increment("GET", "/", response=_response(503))
        waits.append(retry.get_backoff_time())

    for attempt, wait in enumerate(waits, start=1):
        step = min(8.0, 0.5 * 2 ** (attempt - 1))
        assert step / 2 <= wait <= step


def test_zero_backoff_factor_means_no_wait() -> None:
    retry = build_retry(3, 0.0, 20.0).increment("GET", "/", response=_response(503))

    assert retry.get_backoff_time() == 0.0


def _cert_error() -> requests.exceptions.SSLError:
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error = requests.exceptions.SSLError(MaxRetryError(None, "/", cause))
    error.__context__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "reached"),
    [
        (requests.ConnectTimeout("connect timed out"), False),
        (
            requests.ConnectionError(
                MaxRetryError(None, "/", NewConnectionError(None, "refused"))
            ),
            False,
        ),
        (
            requests.ConnectionError(
                MaxRetryError(None, "/", ConnectTimeoutError("slow"))
            ),
            False,
        ),
        (requests.exceptions.ProxyError("proxy down"), False),
        (_cert_error(), False),
        (requests.exceptions.InvalidURL("bad"), False),
        (requests.ReadTimeout(ReadTimeoutError(None, "/", "timed out")), True),
        (requests.ConnectionError(ProtocolError("Connection aborted.")), True),
        (
            requests.ConnectionError(
                MaxRetryError(None, "/", ReadTimeoutError(None, "/", "timed out"))
            ),
            True,
        ),
        (requests.exceptions.SSLError("record layer failure"), True),
        (requests.exceptions.ChunkedEncodingError("cut short"), True),
    ],
)
def test_which_failures_may_have_reached_the_provider(
    error: requests.RequestException, reached: bool
) -> None:
    assert _may_have_reached_provider(error) is reached


def test_bearer_auth_masks_itself() -> None:
    auth = BearerAuth("abcdef-123456")
    prepared = requests.Request("GET", "http://127.0.0.1/").prepare()

    auth(prepared)

    assert prepared.headers["Authorization"] == "Bearer abcdef-123456"
    assert repr(auth) == str(auth) == "BearerAuth('****')"
    assert auth.scrub("echo abcdef-123456 back") == "echo **** back"
