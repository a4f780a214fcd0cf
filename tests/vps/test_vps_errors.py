"""The error types: body normalisation, user messages and log text."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from vpsbot.errors import VpsbotError
from vpsbot.vps import (
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
)
from vpsbot.vps.errors import normalize_error_body

logger = logging.getLogger(__name__)


@pytest.mark.parametrize(
    ("body", "detail", "fields"),
    [
        ({"detail": "Invalid token."}, "Invalid token.", {}),
        (
            {"detail": "Given token not valid", "code": "token_not_valid"},
            "Given token not valid",
            {},
        ),
        (
            {"detail": ["Server is busy.", "Try later."]},
            "Server is busy. Try later.",
            {},
        ),
        (
            {"name": ["This field is required."], "plan_id": ["A valid integer."]},
            None,
            {"name": ["This field is required."], "plan_id": ["A valid integer."]},
        ),
        (
            {"non_field_errors": ["Name already taken."]},
            None,
            {"non_field_errors": ["Name already taken."]},
        ),
        (
            {"plan": {"id": ["Invalid pk."]}, "tags": [{}, {"name": ["Too long."]}]},
            None,
            {"plan.id": ["Invalid pk."], "tags.1.name": ["Too long."]},
        ),
        (
            {"name": "Not a list.", "size": 3},
            None,
            {"name": ["Not a list."], "size": ["3"]},
        ),
        (["Server is already running."], "Server is already running.", {}),
        ([["nested"], {"x": "deep"}], "nested deep", {}),
        ("Service temporarily down", "Service temporarily down", {}),
        ("<!doctype html><h1>Server Error (500)</h1>", None, {}),
        ("  <html><body>Bad Gateway</body></html>", None, {}),
        ("", None, {}),
        (None, None, {}),
        (42, None, {}),
        ({"detail": None}, None, {}),
    ],
)
def test_normalize_error_body(
    body: object, detail: str | None, fields: dict[str, list[str]]
) -> None:
    assert normalize_error_body(body) == (detail, fields)


def test_normalize_collapses_whitespace_and_truncates() -> None:
    detail, _ = normalize_error_body({"detail": "word\n\t " + "x" * 400})

    assert detail is not None
    assert detail.startswith("word x")
    assert len(detail) == 300
    assert detail.endswith("…")


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            PaymentRequiredError(status=402),
            "Not enough credit on the VPS.org account to do this.",
        ),
        (
            UnauthorizedError(status=401),
            "VPS.org refused vpsbot's API token; an admin needs to check "
            "VPS_API_TOKEN.",
        ),
        (NotFoundError(status=404), "VPS.org has no such server."),
        (
            ForbiddenError(status=403),
            "VPS.org does not let vpsbot's API token do this; an admin needs to "
            "check the token's permissions.",
        ),
        (
            RateLimitedError(status=429, retry_after=12.2),
            "VPS.org is rate-limiting vpsbot; try again in 13 seconds.",
        ),
        (
            RateLimitedError(status=429),
            "VPS.org is rate-limiting vpsbot; try again in a minute.",
        ),
        (
            RateLimitedError(status=429, retry_after=86400),
            "VPS.org is rate-limiting vpsbot; try again in about 24 hours.",
        ),
        (
            ProviderError(status=503, method="GET"),
            "VPS.org had an internal error (HTTP 503), so nothing was changed; "
            "try again in a minute.",
        ),
        (
            ProviderError(status=500, method="post"),
            "VPS.org had an internal error (HTTP 500); nothing was changed that we "
            "know of, but check `/vps list` before trying again.",
        ),
        (
            UnreachableError(),
            "vpsbot could not reach VPS.org, so nothing was changed; try again in "
            "a minute.",
        ),
        (
            OutcomeUnknownError("reboot"),
            "VPS.org's answer was lost, so it is not known whether the reboot went "
            "through; check `/vps list`.",
        ),
        (
            ActionRejectedError(status=400, detail="Server is not running"),
            "VPS.org refused to do this: Server is not running.",
        ),
        (
            ActionRejectedError(status=400),
            "VPS.org refused to do this in the server's current state.",
        ),
        (
            InvalidInputError(
                status=400,
                field_errors={
                    "name": ["This field is required."],
                    "non_field_errors": ["Name already taken."],
                },
            ),
            "VPS.org rejected the values that were sent (name: This field is "
            "required; Name already taken).",
        ),
        (
            UnexpectedResponseError(status=301, method="GET"),
            "VPS.org answered in a way vpsbot does not understand (HTTP 301); an "
            "admin should check vpsbot's logs.",
        ),
    ],
)
def test_user_message_is_one_plain_sentence(error: VpsApiError, message: str) -> None:
    assert error.user_message == message
    assert message.count(". ") == 0
    assert isinstance(error, VpsbotError)


def test_provider_detail_never_reaches_the_user_message_for_5xx() -> None:
    error = ProviderError(status=500, detail="Traceback: KeyError 'plan'")

    assert "Traceback" not in error.user_message


def test_str_has_message_status_and_request_id() -> None:
    error = NotFoundError(
        status=404, request_id="req-1", method="get", path="/api/v1/servers/9/"
    )

    assert str(error) == (
        "VPS.org has no such server. [GET /api/v1/servers/9/, HTTP 404, "
        "request id req-1]"
    )
    assert repr(error) == ("NotFoundError(status=404, detail=None, request_id='req-1')")


def test_str_without_an_answer_says_so() -> None:
    error = UnreachableError("vpsbot could not reach VPS.org (ConnectTimeout)")

    assert str(error) == (
        "vpsbot could not reach VPS.org (ConnectTimeout) [no HTTP status]"
    )


def test_outcome_unknown_keeps_action_and_sent_at() -> None:
    sent = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    error = OutcomeUnknownError("create", sent_at=sent, method="POST", status=504)

    assert (error.action, error.sent_at, error.status) == ("create", sent, 504)
    assert error.is_write is True


def test_field_errors_are_copied() -> None:
    given = {"name": ["Too long."]}

    error = InvalidInputError(field_errors=given)
    given["name"].append("changed")

    assert error.field_errors == {"name": ["Too long."]}
