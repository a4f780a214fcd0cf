"""VpsClient failure handling over real HTTP: error mapping, retries, timeouts,
redirects, connection reuse, and keeping the token out of every text.
"""

from __future__ import annotations

import logging
import socket

import pytest

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
    VpsClient,
)
from vpsbot.vps.sandbox import Sandbox, SandboxServer

logger = logging.getLogger(__name__)


def _methods(sandbox: Sandbox, method: str) -> list[str]:
    return [path for verb, path in sandbox.calls if verb == method]


def test_field_errors_become_invalid_input(client: VpsClient, sandbox: Sandbox) -> None:
    with pytest.raises(InvalidInputError) as caught:
        client.create(
            name="bad name!", plan_id=99, os_id=5, location="us-west", hostname="x"
        )

    error = caught.value
    assert error.status == 400
    assert error.detail is None
    assert error.field_errors == {
        "name": ["Enter a valid name: letters, digits and hyphens only."],
        "hostname": ["Enter a valid fully qualified domain name."],
        "plan_id": ['Invalid pk "99" - object does not exist.'],
    }
    assert error.method == "POST"
    assert error.path == "/api/v1/servers/"
    assert error.user_message == (
        "VPS.org rejected the values that were sent (name: Enter a valid name: "
        "letters, digits and hyphens only; hostname: Enter a valid fully qualified "
        'domain name; plan_id: Invalid pk "99" - object does not exist).'
    )


def test_bare_list_400_is_an_action_rejection(client: VpsClient) -> None:
    with pytest.raises(ActionRejectedError) as caught:
        client.start(12345, request_id="req-start")

    error = caught.value
    assert (error.status, error.detail, error.field_errors) == (
        400,
        "Server is already running.",
        {},
    )
    assert (
        error.user_message == "VPS.org refused to do this: Server is already running."
    )
    assert str(error) == (
        "VPS.org refused to do this: Server is already running. "
        "[POST /api/v1/servers/12345/start/, HTTP 400, request id req-start]"
    )


def test_detail_400_is_an_action_rejection(client: VpsClient) -> None:
    with pytest.raises(ActionRejectedError) as caught:
        client.reboot(12348)

    assert caught.value.detail == "Server is not running."


def test_wrong_token_is_unauthorized(
    sandbox_server: SandboxServer, sandbox: Sandbox, make_client
) -> None:
    with (
        VpsClient(sandbox_server.url, "not-the-token", backoff_factor=0) as vps,
        pytest.raises(UnauthorizedError) as caught,
    ):
        vps.get_all()

    assert caught.value.status == 401
    assert caught.value.detail == "Invalid token."
    assert caught.value.user_message == (
        "VPS.org refused vpsbot's API token; an admin needs to check VPS_API_TOKEN."
    )
    assert sandbox.calls == [("GET", "/api/v1/servers/")]


def test_no_credit_is_payment_required(client: VpsClient, sandbox: Sandbox) -> None:
    sandbox.credit = 0

    with pytest.raises(PaymentRequiredError) as caught:
        client.create(name="app-01", plan_id=1, os_id=5, location="us-west")

    assert caught.value.status == 402
    assert caught.value.user_message == (
        "Not enough credit on the VPS.org account to do this."
    )
    assert len(_methods(sandbox, "POST")) == 1


def test_unknown_server_is_not_found(client: VpsClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.get_by_id(999)

    assert caught.value.status == 404
    assert caught.value.user_message == "VPS.org has no such server."


def test_403_is_forbidden(client: VpsClient, sandbox: Sandbox) -> None:
    sandbox.fail_next(403)

    with pytest.raises(ForbiddenError) as caught:
        client.delete(12345)

    assert caught.value.detail == "Forbidden."
    assert sandbox.get(12345) is not None


def test_429_on_a_read_is_retried_after_retry_after(
    client: VpsClient, sandbox: Sandbox
) -> None:
    sandbox.fail_next(429, retry_after=1)

    servers = client.get_all()

    assert len(servers) == 4
    assert _methods(sandbox, "GET") == ["/api/v1/servers/", "/api/v1/servers/"]


def test_429_with_a_long_retry_after_is_not_waited_out(
    client: VpsClient, sandbox: Sandbox
) -> None:
    sandbox.fail_next(429, retry_after=3600, times=5)

    with pytest.raises(RateLimitedError) as caught:
        client.get_by_id(12345)

    assert caught.value.retry_after == 3600.0
    assert caught.value.user_message == (
        "VPS.org is rate-limiting vpsbot; try again in about 60 minutes."
    )
    assert len(sandbox.calls) == 1


def test_unreadable_retry_after_falls_back_to_backoff(
    client: VpsClient, sandbox: Sandbox
) -> None:
    sandbox.fail_next(503, retry_after="-1509450059")

    server = client.get_by_id(12345)

    assert server.name == "web-01"
    assert len(sandbox.calls) == 2


def test_429_on_a_write_is_not_retried(client: VpsClient, sandbox: Sandbox) -> None:
    sandbox.fail_next(429, retry_after=1)

    with pytest.raises(RateLimitedError) as caught:
        client.reboot(12345)

    assert caught.value.retry_after == 1.0
    assert caught.value.user_message == (
        "VPS.org is rate-limiting vpsbot; try again in 1 second."
    )
    assert _methods(sandbox, "POST") == ["/api/v1/servers/12345/reboot/"]


def test_500_on_a_read_is_retried_then_succeeds(
    client: VpsClient, sandbox: Sandbox
) -> None:
    sandbox.fail_next(500, times=2)

    server = client.get_by_id(12347)

    assert server.name == "db-01"
    assert len(sandbox.calls) == 3


def test_500_on_a_read_gives_up_after_max_retries(
    client: VpsClient, sandbox: Sandbox
) -> None:
    sandbox.fail_next(500, times=10)

    with pytest.raises(ProviderError) as caught:
        client.get_all()

    error = caught.value
    assert error.status == 500
    assert error.detail is None
    assert "<" not in str(error)
    assert error.user_message == (
        "VPS.org had an internal error (HTTP 500), so nothing was changed; "
        "try again in a minute."
    )
    assert len(sandbox.calls) == 3


def test_500_on_a_write_is_not_retried(client: VpsClient, sandbox: Sandbox) -> None:
    sandbox.fail_next(500, times=5)

    with pytest.raises(ProviderError) as caught:
        client.create(name="app-01", plan_id=1, os_id=5, location="us-west")

    assert caught.value.user_message == (
        "VPS.org had an internal error (HTTP 500); nothing was changed that we "
        "know of, but check `/vps list` before trying again."
    )
    assert sandbox.calls == [("POST", "/api/v1/servers/")]


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_error_on_a_write_is_an_unknown_outcome(
    client: VpsClient, sandbox: Sandbox, status: int
) -> None:
    sandbox.fail_next(status, times=5)

    with pytest.raises(OutcomeUnknownError) as caught:
        client.stop(12345)

    error = caught.value
    assert (error.status, error.action) == (status, "stop")
    assert error.user_message == (
        "VPS.org's answer was lost, so it is not known whether the stop went "
        "through; check `/vps list`."
    )
    assert len(sandbox.calls) == 1


def test_read_timeout_on_a_write_is_an_unknown_outcome(
    sandbox_server: SandboxServer, sandbox: Sandbox, make_client
) -> None:
    sandbox.latency = 2.0

    with (
        make_client(sandbox_server.url, write_timeout=0.5) as vps,
        pytest.raises(OutcomeUnknownError) as caught,
    ):
        vps.create(name="app-01", plan_id=1, os_id=5, location="us-west")

    assert caught.value.action == "create"
    assert caught.value.status is None
    assert caught.value.sent_at.tzinfo is not None
    assert sandbox.calls == [("POST", "/api/v1/servers/")]
    # The provider did act on it: exactly one server was created.
    assert [s["name"] for s in sandbox.list_servers()].count("app-01") == 1


def test_dropped_connection_on_a_write_is_an_unknown_outcome(
    client: VpsClient, sandbox: Sandbox
) -> None:
    sandbox.fail_next(0)

    with pytest.raises(OutcomeUnknownError) as caught:
        client.delete(12345)

    assert caught.value.action == "delete"
    assert sandbox.calls == [("DELETE", "/api/v1/servers/12345/")]


def test_dropped_connection_on_a_read_is_retried(
    client: VpsClient, sandbox: Sandbox
) -> None:
    sandbox.fail_next(0)

    assert client.get_by_id(12345).name == "web-01"
    assert len(sandbox.calls) == 2


def test_read_timeout_on_a_read_is_retried_then_unreachable(
    sandbox_server: SandboxServer, sandbox: Sandbox, make_client
) -> None:
    sandbox.latency = 2.0

    with (
        make_client(sandbox_server.url, read_timeout=0.3, max_retries=1) as vps,
        pytest.raises(UnreachableError) as caught,
    ):
        vps.get_by_id(12345)

    assert caught.value.status is None
    assert caught.value.user_message == (
        "vpsbot could not reach VPS.org, so nothing was changed; try again in a minute."
    )
    assert len(sandbox.calls) == 2


def test_connection_refused_is_unreachable_even_for_a_write(make_client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with (
        make_client(f"http://127.0.0.1:{port}/api/v1/") as vps,
        pytest.raises(UnreachableError) as caught,
    ):
        vps.create(name="app-01", plan_id=1, os_id=5, location="us-west")

    assert caught.value.method == "POST"
    assert "ConnectionError" in str(caught.value)


@pytest.mark.parametrize("verb", ["get_all", "create"])
def test_redirect_is_never_followed(
    client: VpsClient, sandbox: Sandbox, verb: str
) -> None:
    sandbox.fail_next(301)

    with pytest.raises(UnexpectedResponseError) as caught:
        if verb == "get_all":
            client.get_all()
        else:
            client.create(name="app-01", plan_id=1, os_id=5, location="us-west")

    assert caught.value.status == 301
    assert len(sandbox.calls) == 1
    assert not any(server["name"] == "app-01" for server in sandbox.list_servers())


def test_non_json_success_is_unexpected(recorder, make_client) -> None:
    recorder.queue(200, "<html><body>maintenance</body></html>")

    with make_client(recorder.url) as vps, pytest.raises(UnexpectedResponseError):
        vps.get_by_id(1)


def test_unusable_success_body_is_unexpected(recorder, make_client) -> None:
    recorder.queue(201, {"id": "abc", "name": "x", "status": "provisioning"})

    with (
        make_client(recorder.url) as vps,
        pytest.raises(UnexpectedResponseError) as caught,
    ):
        vps.create(name="x", plan_id=1, os_id=5, location="us-west")

    assert caught.value.user_message == (
        "VPS.org accepted the request but answered in a way vpsbot does not "
        "understand; check `/vps list` for the result."
    )


def test_undocumented_status_is_unexpected(client: VpsClient, sandbox: Sandbox) -> None:
    sandbox.fail_next(418)

    with pytest.raises(UnexpectedResponseError) as caught:
        client.get_by_id(12345)

    assert caught.value.status == 418
    assert caught.value.detail == "I'm a Teapot."


def test_connections_are_reused(
    client: VpsClient, sandbox_server: SandboxServer
) -> None:
    client.get_all()
    for server_id in (12345, 12346, 12347, 12348):
        client.get_by_id(server_id)
    client.reboot(12345)
    client.patch(12346, name="web-02b")

    assert sandbox_server.connections_opened == 1


def test_token_never_shows_in_reprs_errors_or_logs(
    client: VpsClient,
    sandbox: Sandbox,
    token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[VpsApiError] = []
    sandbox.fail_next(400, body={"detail": f"token {token} is bad"})
    sandbox.fail_next(500, times=3)
    sandbox.fail_next(0)
    for action in (
        lambda: client.reboot(12345),
        lambda: client.get_all(),
        lambda: client.stop(12345),
        lambda: client.start(12345),
        lambda: client.get_by_id(1),
    ):
        with pytest.raises(VpsApiError) as caught:
            action()
        errors.append(caught.value)
    client.create(name="app-01", plan_id=1, os_id=5, location="us-west")

    assert errors[0].detail == "token **** is bad"
    texts = [repr(client), str(client), repr(client._http)]
    for error in errors:
        texts += [str(error), repr(error), error.user_message, repr(vars(error))]
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]
    assert len(caplog.records) > 10
    assert [text for text in texts if token in text] == []
    assert repr(client).startswith("VpsClient(base_url='http://127.0.0.1:")


def test_one_info_line_per_call(
    client: VpsClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vpsbot.vps")

    client.get_by_id(12345, request_id="req-log")

    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(lines) == 1
    assert lines[0].startswith("VPS.org GET /api/v1/servers/12345/ -> 200 in ")
    assert lines[0].endswith(" ms (request id req-log)")


def test_debug_bodies_are_redacted(
    recorder, make_client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="vpsbot.vps")
    recorder.queue(
        200,
        {
            "status": "success",
            "message": "Server is starting",
            "server": {"id": 1, "name": "a", "status": "starting"},
            "root_password": "pa55word-xyz",
        },
    )

    with make_client(recorder.url) as vps:
        vps.start(1)

    text = "\n".join(r.getMessage() for r in caplog.records)
    assert '"root_password": "****"' in text
    assert "pa55word-xyz" not in text
