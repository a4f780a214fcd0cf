"""Errors raised by the VPS.org client.

Every failure of a provider call is a ``VpsApiError``; the subclass says what
kind of failure it was, and ``user_message`` gives one plain sentence that is
safe to show in Slack. ``str(err)`` is meant for logs: the message, the HTTP
status and the request id, so a line can be traced at the provider.

The tree::

    VpsbotError
     └── VpsApiError
          ├── InvalidInputError        400 with per-field messages
          ├── ActionRejectedError      400 with a sentence: the state forbids it
          ├── UnauthorizedError        401: the API token was refused
          ├── PaymentRequiredError     402: not enough credit
          ├── ForbiddenError           403: the token may not do this
          ├── NotFoundError            404: no such server
          ├── RateLimitedError         429: slow down, see ``retry_after``
          ├── ProviderError            5xx: the provider failed
          ├── UnreachableError         no connection, or no answer to a read
          ├── OutcomeUnknownError      a change was sent but its answer was lost
          └── UnexpectedResponseError  a redirect, or an answer vpsbot cannot read

Errors are chosen from the HTTP status and the *shape* of the body, never from
the wording of the provider's messages, which may be translated.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from vpsbot.errors import VpsbotError

__all__ = [
    "ActionRejectedError",
    "ForbiddenError",
    "InvalidInputError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PaymentRequiredError",
    "ProviderError",
    "RateLimitedError",
    "UnauthorizedError",
    "UnexpectedResponseError",
    "UnreachableError",
    "VpsApiError",
    "normalize_error_body",
]

logger = logging.getLogger(__name__)

#: Longest provider text kept in ``detail`` and in field messages.
MAX_DETAIL_LENGTH = 300
NON_FIELD_ERRORS = "non_field_errors"
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_HTML = re.compile(r"^\s*<|<\s*(html|body|head|title|h1|p|div)\b", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


class VpsApiError(VpsbotError):
    """A VPS.org call failed.

    Attributes:
        status: The HTTP status, or None when no answer came back.
        detail: The provider's own sentence, whitespace-collapsed and truncated;
            never HTML.
        field_errors: Messages per request field; nested fields are joined with
            dots (``plan.id``), and errors not tied to a field are kept under
            ``non_field_errors``.
        request_id: The ``X-Request-ID`` that was sent with the call.
        retry_after: Seconds the provider asked us to wait, when it said so.
        method: The HTTP method of the call.
        path: The URL path (and query) of the call.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        detail: str | None = None,
        field_errors: Mapping[str, list[str]] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.detail = detail
        self.field_errors: dict[str, list[str]] = {
            key: list(value) for key, value in (field_errors or {}).items()
        }
        self.request_id = request_id
        self.retry_after = retry_after
        self.method = method.upper() if method else None
        self.path = path
        self._message = message
        super().__init__(message or self.user_message)

    @property
    def is_write(self) -> bool:
        """Whether the failed call was one that changes something."""
        return self.method in _WRITE_METHODS

    @property
    def user_message(self) -> str:
        """One plain English sentence about the failure, safe to show in Slack."""
        return "VPS.org could not do this."

    def __str__(self) -> str:
        message = self._message or self.user_message
        facts = []
        if self.method and self.path:
            facts.append(f"{self.method} {self.path}")
        facts.append(f"HTTP {self.status}" if self.status else "no HTTP status")
        if self.request_id:
            facts.append(f"request id {self.request_id}")
        return f"{message} [{', '.join(facts)}]"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, "
            f"detail={self.detail!r}, request_id={self.request_id!r})"
        )


class InvalidInputError(VpsApiError):
    """The provider rejected some of the values sent (400 with a field dict)."""

    @property
    def user_message(self) -> str:
        parts = []
        for field, messages in self.field_errors.items():
            text = " ".join(message.rstrip(". ") for message in messages)
            parts.append(text if field == NON_FIELD_ERRORS else f"{field}: {text}")
        if not parts:
            return "VPS.org rejected the values that were sent."
        return f"VPS.org rejected the values that were sent ({'; '.join(parts)})."


class ActionRejectedError(VpsApiError):
    """The provider refused the action as such, e.g. starting a running server.

    The provider's sentence is in ``detail``.
    """

    @property
    def user_message(self) -> str:
        if not self.detail:
            return "VPS.org refused to do this in the server's current state."
        detail = self.detail if self.detail[-1] in ".!?" else self.detail + "."
        return f"VPS.org refused to do this: {detail}"


class UnauthorizedError(VpsApiError):
    """The provider refused the API token (401)."""

    @property
    def user_message(self) -> str:
        return (
            "VPS.org refused vpsbot's API token; an admin needs to check VPS_API_TOKEN."
        )


class PaymentRequiredError(VpsApiError):
    """The account has too little credit for this (402)."""

    @property
    def user_message(self) -> str:
        return "Not enough credit on the VPS.org account to do this."


class ForbiddenError(VpsApiError):
    """The token is valid but may not do this (403)."""

    @property
    def user_message(self) -> str:
        return (
            "VPS.org does not let vpsbot's API token do this; an admin needs to "
            "check the token's permissions."
        )


class NotFoundError(VpsApiError):
    """The server does not exist, or no longer does (404)."""

    @property
    def user_message(self) -> str:
        return "VPS.org has no such server."


class RateLimitedError(VpsApiError):
    """The provider is throttling us (429); ``retry_after`` says for how long."""

    @property
    def user_message(self) -> str:
        return (
            "VPS.org is rate-limiting vpsbot; try again in "
            f"{_describe_wait(self.retry_after)}."
        )


class ProviderError(VpsApiError):
    """The provider failed with a 5xx answer.

    For a read nothing changed. For a change (a 500, 501 or 503; see
    ``OutcomeUnknownError`` for 502 and 504) the provider's application most
    likely failed before doing anything, but that cannot be proven.
    """

    @property
    def user_message(self) -> str:
        code = f" (HTTP {self.status})" if self.status else ""
        if self.is_write:
            return (
                f"VPS.org had an internal error{code}; nothing was changed that we "
                "know of, but check `/vps list` before trying again."
            )
        return (
            f"VPS.org had an internal error{code}, so nothing was changed; "
            "try again in a minute."
        )


class UnreachableError(VpsApiError):
    """No answer could be had: DNS, connection, TLS, or a read that timed out.

    Raised for a change only when nothing was sent (the connection was never
    made), so a change that raised it did not happen.
    """

    @property
    def user_message(self) -> str:
        return (
            "vpsbot could not reach VPS.org, so nothing was changed; "
            "try again in a minute."
        )


class OutcomeUnknownError(VpsApiError):
    """A change was sent but its answer was lost, so it may or may not have happened.

    Raised for a read timeout or a dropped connection after a POST, PUT, PATCH
    or DELETE was sent, and for a 502 or 504 to one: a gateway that gives up on
    the provider's application does not know what the application did. The
    caller should look (list or get the server) instead of resending.

    Args:
        action: The change in plain words ("create", "reboot"), used in
            ``user_message``.
        message: Text for logs; ``user_message`` by default.
        sent_at: When the request was sent (aware UTC); now by default.
        **fields: As for ``VpsApiError``.

    Attributes:
        action: As given.
        sent_at: As given; a create can be reconciled by looking for a server
            of the same name created after it.
    """

    def __init__(
        self,
        action: str = "change",
        message: str | None = None,
        *,
        sent_at: datetime | None = None,
        **fields: object,
    ) -> None:
        self.action = action
        self.sent_at = sent_at or datetime.now(UTC)
        super().__init__(message, **fields)  # type: ignore[arg-type]

    @property
    def user_message(self) -> str:
        return (
            "VPS.org's answer was lost, so it is not known whether the "
            f"{self.action} went through; check `/vps list`."
        )


class UnexpectedResponseError(VpsApiError):
    """The answer was a redirect, or was not what the API documents."""

    @property
    def user_message(self) -> str:
        if self.is_write and self.status is not None and 200 <= self.status < 300:
            return (
                "VPS.org accepted the request but answered in a way vpsbot does not "
                "understand; check `/vps list` for the result."
            )
        code = f" (HTTP {self.status})" if self.status else ""
        return (
            f"VPS.org answered in a way vpsbot does not understand{code}; "
            "an admin should check vpsbot's logs."
        )


def normalize_error_body(body: object) -> tuple[str | None, dict[str, list[str]]]:
    """Reduce any error body to a sentence and per-field messages.

    Accepts what a Django REST Framework service may send: ``{"detail": ...}``,
    a dict of field lists (nested dicts and lists become dotted keys), a bare
    list of sentences, a plain string, or anything else (HTML pages, empty
    bodies, numbers), which yields nothing.

    Args:
        body: The decoded JSON value, or the text of a non-JSON body, or None.

    Returns:
        ``(detail, field_errors)``; ``detail`` is collapsed, truncated and never
        HTML.
    """
    if isinstance(body, Mapping):
        if "detail" in body:
            return _sentence(_leaves(body["detail"])), {}
        fields: dict[str, list[str]] = {}
        _flatten_fields(body, "", fields)
        return None, fields
    if isinstance(body, list):
        return _sentence(_leaves(body)), {}
    if isinstance(body, str):
        if not body.strip() or _HTML.search(body):
            return None, {}
        return _sentence([body]), {}
    return None, {}


def _flatten_fields(value: object, prefix: str, out: dict[str, list[str]]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten_fields(item, f"{prefix}.{key}" if prefix else str(key), out)
        return
    if isinstance(value, list) and any(
        isinstance(item, Mapping | list) for item in value
    ):
        for index, item in enumerate(value):
            if isinstance(item, Mapping | list):
                if item:
                    _flatten_fields(item, f"{prefix}.{index}", out)
            else:
                _add_message(out, prefix, item)
        return
    for item in value if isinstance(value, list) else [value]:
        _add_message(out, prefix, item)


def _add_message(out: dict[str, list[str]], key: str, item: object) -> None:
    text = _clean(str(item))
    if text:
        out.setdefault(key or NON_FIELD_ERRORS, []).append(text)


def _leaves(value: object) -> list[str]:
    if isinstance(value, Mapping):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    if value is None:
        return []
    return [str(value)]


def _sentence(parts: list[str]) -> str | None:
    text = _clean(" ".join(part for part in parts if not _HTML.search(part)))
    return text or None


def _clean(text: str) -> str:
    text = _SPACE.sub(" ", text).strip()
    if len(text) > MAX_DETAIL_LENGTH:
        text = text[: MAX_DETAIL_LENGTH - 1].rstrip() + "…"
    return text


def _describe_wait(seconds: float | None) -> str:
    if seconds is None:
        return "a minute"
    whole = max(1, math.ceil(seconds))
    if whole < 120:
        return f"{whole} second{'s' if whole != 1 else ''}"
    if whole < 2 * 3600:
        return f"about {math.ceil(whole / 60)} minutes"
    return f"about {math.ceil(whole / 3600)} hours"
