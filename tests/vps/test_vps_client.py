"""VpsClient against the sandbox over real HTTP: the happy paths and paging."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from vpsbot.vps import (
    OperatingSystem,
    Plan,
    PowerResult,
    ResourceUsage,
    Server,
    UnexpectedResponseError,
    VpsClient,
)
from vpsbot.vps.sandbox import PROVISIONING_MESSAGE, Sandbox, SandboxServer

LISTED = {
    "id": 7,
    "name": "a",
    "hostname": None,
    "status": "active",
    "ip_address": "198.51.100.7",
    "location": "us-west",
    "plan": {
        "id": 1,
        "name": "Standard VPS",
        "vcpus": 2,
        "memory": 4096,
        "storage": 80,
    },
    "os": {"id": 5, "name": "Ubuntu 22.04 LTS"},
    "created_at": "2025-01-10T14:30:00Z",
    "updated_at": "2025-01-10T14:30:00Z",
}


def test_get_all_returns_the_seeded_servers_sorted_by_id(client: VpsClient) -> None:
    servers = client.get_all()

    assert [(s.id, s.name, s.status, s.location) for s in servers] == [
        (12345, "web-01", "active", "us-west"),
        (12346, "web-02", "active", "us-east"),
        (12347, "db-01", "active", "us-west"),
        (12348, "staging-01", "stopped", "us-east"),
    ]
    web01 = servers[0]
    assert web01.plan == Plan(1, "Standard VPS", 2, 4096, 80, bandwidth=None)
    assert web01.os == OperatingSystem(5, "Ubuntu 22.04 LTS")
    assert web01.hostname == "web-01.example.com"
    assert web01.created_at == datetime(2025, 1, 10, 14, 30, tzinfo=UTC)
    # The list view carries no detail-only fields.
    assert web01.ipv6_address is None
    assert web01.resource_usage is None


def test_get_all_sends_documented_filters(client: VpsClient, sandbox: Sandbox) -> None:
    stopped = client.get_all(status="stopped")
    in_east = client.get_all(location="us-east")

    assert [s.name for s in stopped] == ["staging-01"]
    assert [s.name for s in in_east] == ["web-02", "staging-01"]
    assert sandbox.calls == [
        ("GET", "/api/v1/servers/?status=stopped"),
        ("GET", "/api/v1/servers/?location=us-east"),
    ]


def test_get_all_filters_undocumented_statuses_itself(
    client: VpsClient, sandbox: Sandbox
) -> None:
    sandbox.add_server("new-01", status="provisioning", server_id=20000)

    servers = client.get_all(status="provisioning", location="us-west")

    assert [s.name for s in servers] == ["new-01"]
    assert sandbox.calls == [("GET", "/api/v1/servers/?location=us-west")]


def test_get_all_follows_every_page(client: VpsClient, sandbox: Sandbox) -> None:
    sandbox.page_size = 2
    sandbox.add_server("web-03", server_id=12360)

    servers = client.get_all(request_id="req-pages")

    assert [s.id for s in servers] == [12345, 12346, 12347, 12348, 12360]
    assert sandbox.calls == [
        ("GET", "/api/v1/servers/"),
        ("GET", "/api/v1/servers/?page=2"),
        ("GET", "/api/v1/servers/?page=3"),
    ]


def test_get_all_keeps_the_filter_across_pages(
    client: VpsClient, sandbox: Sandbox
) -> None:
    sandbox.page_size = 1

    servers = client.get_all(status="active", location="us-west")

    assert [s.name for s in servers] == ["web-01", "db-01"]
    assert sandbox.calls == [
        ("GET", "/api/v1/servers/?status=active&location=us-west"),
        ("GET", "/api/v1/servers/?status=active&location=us-west&page=2"),
    ]


def test_get_all_never_follows_next_to_another_host(
    client: VpsClient, sandbox: Sandbox, recorder
) -> None:
    sandbox.page_size = 3
    # The sandbox now writes ``next`` links naming the recorder's host.
    sandbox.link_origin = recorder.url.removesuffix("/api/v1/")

    servers = client.get_all()

    assert len(servers) == 4
    assert recorder.requests == []
    assert sandbox.calls == [
        ("GET", "/api/v1/servers/"),
        ("GET", "/api/v1/servers/?page=2"),
    ]


def test_get_all_stops_at_max_pages(
    sandbox_server: SandboxServer, sandbox: Sandbox, make_client
) -> None:
    sandbox.page_size = 1

    with make_client(sandbox_server.url, max_pages=2) as vps:
        servers = vps.get_all()

    assert [s.id for s in servers] == [12345, 12346]
    assert len(sandbox.calls) == 2


def test_get_all_ends_quietly_when_a_later_page_is_gone(
    client: VpsClient, sandbox: Sandbox
) -> None:
    sandbox.page_size = 2
    sandbox.fail_next(404, body={"detail": "Invalid page."}, path_contains="page=2")

    servers = client.get_all()

    assert [s.id for s in servers] == [12345, 12346]


def test_get_all_accepts_a_bare_list_and_dedupes(recorder, make_client) -> None:
    server = dict(LISTED)
    recorder.queue(200, [dict(server, id=9, name="b"), server, server])

    with make_client(recorder.url) as vps:
        servers = vps.get_all()

    assert [(s.id, s.name) for s in servers] == [(7, "a"), (9, "b")]


def test_get_all_rejects_a_list_answer_without_results(recorder, make_client) -> None:
    recorder.queue(200, {"count": 1, "servers": []})

    with make_client(recorder.url) as vps, pytest.raises(UnexpectedResponseError):
        vps.get_all()


def test_get_by_id_returns_the_detail_view(client: VpsClient) -> None:
    server = client.get_by_id(12347)

    assert server.name == "db-01"
    assert server.plan == Plan(2, "Performance VPS", 4, 8192, 160, bandwidth=4096)
    assert server.os == OperatingSystem(3, "Debian 12")
    assert server.resource_usage == ResourceUsage(41.2, 6144, 120, 980)
    assert server.ipv6_address is not None
    assert server.ipv6_address.startswith("2001:db8::")
    assert server.backups_enabled is True
    assert server.status_kind == "stable"
    assert (server.can_start, server.can_stop, server.can_reboot) == (
        False,
        True,
        True,
    )


def test_create_returns_a_provisioning_server(
    client: VpsClient, sandbox: Sandbox
) -> None:
    server = client.create(
        name="app-01",
        plan_id=3,
        os_id=7,
        location="eu-central",
        hostname="app-01.example.com",
        ssh_key_id=42,
        backups_enabled=True,
    )

    assert isinstance(server, Server)
    assert server.id == 12349
    assert server.status == "provisioning"
    assert server.status_kind == "transitional"
    assert server.can_delete is False
    assert server.ip_address is None
    assert server.message == PROVISIONING_MESSAGE
    assert server.plan == Plan(3, "Starter VPS", 1, 2048, 40)
    assert server.os == OperatingSystem(7, "Rocky Linux 9")
    assert server.backups_enabled is True
    assert sandbox.calls == [("POST", "/api/v1/servers/")]


def test_created_server_becomes_active_with_addresses(client: VpsClient, clock) -> None:
    created = client.create(name="app-02", plan_id=1, os_id=5, location="us-west")

    clock.advance(5.0)
    settled = client.get_by_id(created.id)

    assert settled.status == "active"
    assert settled.ip_address is not None
    assert re.fullmatch(r"203\.0\.113\.\d+", settled.ip_address)
    assert settled.ipv6_address is not None
    assert settled.hostname is None
    assert settled.updated_at is not None and created.updated_at is not None
    assert settled.updated_at > created.updated_at


def test_update_puts_all_three_fields(client: VpsClient, sandbox: Sandbox) -> None:
    server = client.update(
        12345, name="web-01a", hostname="web-01a.example.com", backups_enabled=False
    )

    assert (server.name, server.hostname, server.backups_enabled) == (
        "web-01a",
        "web-01a.example.com",
        False,
    )
    assert sandbox.calls == [("PUT", "/api/v1/servers/12345/")]


def test_patch_sends_only_the_given_fields(client: VpsClient, sandbox: Sandbox) -> None:
    before = client.get_by_id(12348)

    after = client.patch(12348, backups_enabled=True, request_id="req-9")

    assert after.backups_enabled is True
    assert after.name == "staging-01"
    assert after.hostname == before.hostname
    assert after.updated_at is not None and before.updated_at is not None
    assert after.updated_at > before.updated_at


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "at least one"),
        ({"status": "active"}, "cannot patch status"),
        ({"name": "x", "location": "us-east"}, "cannot patch location"),
    ],
)
def test_patch_refuses_bad_changes_without_calling(
    client: VpsClient, sandbox: Sandbox, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        client.patch(12345, **changes)

    assert sandbox.calls == []


def test_delete_removes_the_server(client: VpsClient, sandbox: Sandbox) -> None:
    result = client.delete(12346)

    assert result is None
    assert sandbox.get(12346) is None
    assert sandbox.calls == [("DELETE", "/api/v1/servers/12346/")]


@pytest.mark.parametrize(
    ("server_id", "verb", "message", "status"),
    [
        (12348, "start", "Server is starting", "starting"),
        (12345, "stop", "Server is stopping", "stopping"),
        (12347, "reboot", "Server is rebooting", "rebooting"),
    ],
)
def test_power_actions_return_the_result(
    client: VpsClient,
    sandbox: Sandbox,
    server_id: int,
    verb: str,
    message: str,
    status: str,
) -> None:
    result = getattr(client, verb)(server_id)

    names = {12345: "web-01", 12347: "db-01", 12348: "staging-01"}
    assert result == PowerResult(
        "success", message, server_id, names[server_id], status
    )
    assert sandbox.calls == [("POST", f"/api/v1/servers/{server_id}/{verb}/")]


def test_power_action_settles_after_the_delay(client: VpsClient, clock) -> None:
    client.stop(12345)
    clock.advance(4.9)
    assert client.get_by_id(12345).status == "stopping"

    clock.advance(0.1)
    server = client.get_by_id(12345)

    assert server.status == "stopped"
    assert server.can_start is True


def test_string_ids_of_digits_are_accepted(client: VpsClient, sandbox: Sandbox) -> None:
    server = client.get_by_id("12345")  # type: ignore[arg-type]

    assert server.id == 12345
    assert sandbox.calls == [("GET", "/api/v1/servers/12345/")]


@pytest.mark.parametrize("bad", ["12/../1", "-1", 1.5, True, None, -3])
def test_malformed_ids_are_refused_before_any_call(
    client: VpsClient, sandbox: Sandbox, bad: object
) -> None:
    with pytest.raises(ValueError, match="server id"):
        client.get_by_id(bad)  # type: ignore[arg-type]

    assert sandbox.calls == []


def test_requests_carry_the_documented_headers(recorder, make_client, token) -> None:
    recorder.queue(200, [])
    recorder.queue(201, dict(LISTED, status="provisioning"))
    with make_client(recorder.url, user_agent="ops-team/2") as vps:
        vps.get_all(request_id="req-abc")
        vps.create(name="x", plan_id=1, os_id=5, location="us-west")

    first, second = recorder.requests
    assert first.method == "GET"
    assert first.path == "/api/v1/servers/"
    assert first.headers["Authorization"] == f"Bearer {token}"
    assert first.headers["Accept"] == "application/json"
    assert first.headers["Accept-Language"] == "en"
    assert first.headers["X-Request-ID"] == "req-abc"
    assert re.fullmatch(
        r"ops-team/2 vpsbot/\d+\.\d+\.\d+\S* python-requests/\S+",
        first.headers["User-Agent"],
    )
    assert second.headers["Content-Type"] == "application/json"
    assert second.headers["X-Request-ID"] != "req-abc"
    assert len(second.headers["X-Request-ID"]) == 32


def test_netrc_cannot_replace_the_bearer_token(
    recorder, make_client, token, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))

    with make_client(recorder.url) as vps:
        vps.get_all()

    assert recorder.requests[0].headers["Authorization"] == f"Bearer {token}"


def test_base_url_gets_its_trailing_slash() -> None:
    vps = VpsClient("http://127.0.0.1:9/api/v1", "t0ken-value")

    assert vps.base_url == "http://127.0.0.1:9/api/v1/"
    vps.close()


@pytest.mark.parametrize("url", ["ftp://x/api/v1/", "127.0.0.1/api", "http:///x"])
def test_base_url_must_be_http(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        VpsClient(url, "t0ken-value")
