"""The sandbox API's own behaviour, mostly through its WSGI entry point."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

import pytest
import requests

from vpsbot.vps.sandbox import PROVISIONING_MESSAGE, Sandbox, SandboxServer

logger = logging.getLogger(__name__)

VALID = {"name": "app-01", "plan_id": 1, "os_id": 5, "location": "us-west"}
FQDN = ["Enter a valid fully qualified domain name."]
NAME_RULE = ["Enter a valid name: letters, digits and hyphens only."]
TOO_LONG = ["Ensure this field has no more than 63 characters."]
NOT_NULL = ["This field may not be null."]
NOT_INTEGER = ["A valid integer is required."]


def test_missing_token_is_401_with_a_challenge(sandbox: Sandbox, call) -> None:
    answer = call(sandbox, "GET", "/api/v1/servers/", token=None)

    assert answer.status == 401
    assert answer.body == {"detail": "Authentication credentials were not provided."}
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert sandbox.calls == [("GET", "/api/v1/servers/")]


def test_wrong_token_is_401(sandbox: Sandbox, call) -> None:
    answer = call(sandbox, "DELETE", "/api/v1/servers/12345/", token="nope")

    assert (answer.status, answer.body) == (401, {"detail": "Invalid token."})
    assert sandbox.get(12345) is not None


def test_list_view_leaves_out_detail_fields(sandbox: Sandbox, call) -> None:
    answer = call(sandbox, "GET", "/api/v1/servers/")

    assert answer.status == 200
    assert answer.body["count"] == 4
    assert (answer.body["next"], answer.body["previous"]) == (None, None)
    first = answer.body["results"][0]
    assert sorted(first) == [
        "created_at",
        "hostname",
        "id",
        "ip_address",
        "location",
        "name",
        "os",
        "plan",
        "status",
        "updated_at",
    ]
    assert first["plan"] == {
        "id": 1,
        "name": "Standard VPS",
        "vcpus": 2,
        "memory": 4096,
        "storage": 80,
    }
    assert first["created_at"] == "2025-01-10T14:30:00Z"


def test_detail_view_has_every_field(sandbox: Sandbox, call) -> None:
    answer = call(sandbox, "GET", "/api/v1/servers/12347/")

    body = answer.body
    assert body["plan"] == {
        "id": 2,
        "name": "Performance VPS",
        "vcpus": 4,
        "memory": 8192,
        "storage": 160,
        "bandwidth": 4096,
    }
    assert body["os"] == {"id": 3, "name": "Debian 12"}
    assert body["resource_usage"] == {
        "cpu_percent": 41.2,
        "memory_used": 6144,
        "disk_used": 120,
        "bandwidth_used": 980,
    }
    assert body["backups_enabled"] is True
    assert body["ipv6_address"].startswith("2001:db8::")


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("status=active", ["web-01", "web-02", "db-01"]),
        ("status=stopped", ["staging-01"]),
        ("status=suspended", []),
        ("location=us-west", ["web-01", "db-01"]),
        ("status=active&location=us-east", ["web-02"]),
        ("location=mars", []),
        ("status=", ["web-01", "web-02", "db-01", "staging-01"]),
    ],
)
def test_list_filters(sandbox: Sandbox, call, query: str, names: list[str]) -> None:
    answer = call(sandbox, "GET", f"/api/v1/servers/?{query}")

    assert [server["name"] for server in answer.body["results"]] == names
    assert answer.body["count"] == len(names)


def test_list_refuses_an_undocumented_status_like_django_filter(
    sandbox: Sandbox, call
) -> None:
    answer = call(sandbox, "GET", "/api/v1/servers/?status=provisioning")

    assert answer.status == 400
    assert answer.body == {
        "status": [
            "Select a valid choice. provisioning is not one of the available choices."
        ]
    }


def test_paging_links_are_absolute_and_keep_filters(sandbox: Sandbox, call) -> None:
    sandbox.page_size = 1

    first = call(sandbox, "GET", "/api/v1/servers/?status=active")
    second = call(sandbox, "GET", "/api/v1/servers/?status=active&page=2")
    last = call(sandbox, "GET", "/api/v1/servers/?status=active&page=3")

    assert first.body["count"] == 3
    assert first.body["next"] == (
        "http://sandbox.test/api/v1/servers/?status=active&page=2"
    )
    assert first.body["previous"] is None
    assert second.body["previous"] == (
        "http://sandbox.test/api/v1/servers/?status=active"
    )
    assert [s["name"] for s in second.body["results"]] == ["web-02"]
    assert last.body["next"] is None


@pytest.mark.parametrize("page", ["0", "3", "abc", "-1"])
def test_out_of_range_page_is_404(sandbox: Sandbox, call, page: str) -> None:
    sandbox.page_size = 2

    answer = call(sandbox, "GET", f"/api/v1/servers/?page={page}")

    assert (answer.status, answer.body) == (404, {"detail": "Invalid page."})


def test_link_origin_overrides_the_host_in_links(sandbox: Sandbox, call) -> None:
    sandbox.page_size = 2
    sandbox.link_origin = "http://internal:8000"

    answer = call(sandbox, "GET", "/api/v1/servers/")

    assert answer.body["next"] == "http://internal:8000/api/v1/servers/?page=2"


def test_create_answers_201_provisioning(sandbox: Sandbox, call) -> None:
    answer = call(
        sandbox,
        "POST",
        "/api/v1/servers/",
        dict(VALID, hostname="app-01.example.com", backups_enabled="true"),
    )

    assert answer.status == 201
    body = answer.body
    assert body["id"] == 12349
    assert body["status"] == "provisioning"
    assert body["ip_address"] is None
    assert body["message"] == PROVISIONING_MESSAGE
    assert body["backups_enabled"] is True
    assert body["created_at"] == body["updated_at"]
    assert "ipv6_address" not in body
    assert "bandwidth" not in body["plan"]


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"name": None}, {"name": NOT_NULL}),
        ({"name": "  "}, {"name": ["This field may not be blank."]}),
        ({"name": "a" * 64}, {"name": TOO_LONG}),
        ({"name": "web_01"}, {"name": NAME_RULE}),
        ({"name": ["x"]}, {"name": ["Not a valid string."]}),
        ({"hostname": "localhost"}, {"hostname": FQDN}),
        ({"hostname": "-a.example.com"}, {"hostname": FQDN}),
        ({"hostname": "10.0.0.1"}, {"hostname": FQDN}),
        ({"plan_id": 99}, {"plan_id": ['Invalid pk "99" - object does not exist.']}),
        ({"plan_id": "99"}, {"plan_id": ['Invalid pk "99" - object does not exist.']}),
        ({"os_id": "ubuntu"}, {"os_id": NOT_INTEGER}),
        ({"os_id": True}, {"os_id": NOT_INTEGER}),
        ({"os_id": 1.5}, {"os_id": NOT_INTEGER}),
        ({"location": "mars"}, {"location": ['"mars" is not a valid choice.']}),
        ({"ssh_key_id": "k1"}, {"ssh_key_id": NOT_INTEGER}),
        (
            {"backups_enabled": "maybe"},
            {"backups_enabled": ["Must be a valid boolean."]},
        ),
        ({"backups_enabled": None}, {"backups_enabled": NOT_NULL}),
    ],
)
def test_create_validation(
    sandbox: Sandbox, call, changes: dict[str, object], errors: dict[str, list[str]]
) -> None:
    answer = call(sandbox, "POST", "/api/v1/servers/", dict(VALID, **changes))

    assert (answer.status, answer.body) == (400, errors)
    assert len(sandbox.list_servers()) == 4


def test_create_lists_every_missing_field(sandbox: Sandbox, call) -> None:
    answer = call(sandbox, "POST", "/api/v1/servers/", {})

    assert answer.status == 400
    assert answer.body == {
        "name": ["This field is required."],
        "plan_id": ["This field is required."],
        "os_id": ["This field is required."],
        "location": ["This field is required."],
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "Invalid data. Expected a dictionary, but got list."),
        ("text", "Invalid data. Expected a dictionary, but got str."),
        (None, "No data provided"),
    ],
)
def test_create_needs_an_object(sandbox: Sandbox, call, body, message) -> None:
    raw = b"null" if body is None else None

    answer = call(sandbox, "POST", "/api/v1/servers/", body, raw=raw)

    assert (answer.status, answer.body) == (400, {"non_field_errors": [message]})


def test_malformed_json_is_a_parse_error(sandbox: Sandbox, call) -> None:
    answer = call(sandbox, "POST", "/api/v1/servers/", raw=b'{"name": ')

    assert answer.status == 400
    assert answer.body["detail"].startswith("JSON parse error - ")


def test_form_bodies_are_unsupported(sandbox: Sandbox, call) -> None:
    answer = call(
        sandbox,
        "POST",
        "/api/v1/servers/",
        raw=b"name=x",
        content_type="application/x-www-form-urlencoded",
    )

    assert answer.status == 415


def test_credit_runs_out_with_402(call, clock) -> None:
    sandbox = Sandbox("t", credit=1, clock=clock)

    first = call(sandbox, "POST", "/api/v1/servers/", VALID, token="t")
    second = call(sandbox, "POST", "/api/v1/servers/", dict(VALID, name="b"), token="t")
    invalid = call(sandbox, "POST", "/api/v1/servers/", dict(VALID, os_id=9), token="t")

    assert first.status == 201
    assert (second.status, second.body) == (
        402,
        {"detail": "Insufficient credit to create this server."},
    )
    assert invalid.status == 400
    assert sandbox.credit == 0
    assert [s["name"] for s in sandbox.list_servers()][-1] == "app-01"


def test_provisioning_becomes_active_after_the_delay(
    sandbox: Sandbox, call, clock
) -> None:
    created = call(sandbox, "POST", "/api/v1/servers/", VALID).body

    clock.advance(4.99)
    waiting = sandbox.get(created["id"])
    clock.advance(0.01)
    active = call(sandbox, "GET", f"/api/v1/servers/{created['id']}/").body

    assert waiting is not None
    assert (waiting["status"], waiting["ip_address"]) == ("provisioning", None)
    assert active["status"] == "active"
    assert active["ip_address"].startswith("203.0.113.")
    assert active["ipv6_address"].startswith("2001:db8::")
    assert active["updated_at"] > created["updated_at"]


def test_put_needs_all_three_fields(sandbox: Sandbox, call) -> None:
    partial = call(sandbox, "PUT", "/api/v1/servers/12345/", {"name": "web-09"})
    full = call(
        sandbox,
        "PUT",
        "/api/v1/servers/12345/",
        {"name": "web-09", "hostname": "web-09.example.com", "backups_enabled": False},
    )

    assert partial.status == 400
    assert partial.body == {
        "hostname": ["This field is required."],
        "backups_enabled": ["This field is required."],
    }
    assert full.status == 200
    assert (full.body["name"], full.body["backups_enabled"]) == ("web-09", False)


def test_patch_changes_only_what_is_given(sandbox: Sandbox, call) -> None:
    before = sandbox.get(12346)

    answer = call(
        sandbox, "PATCH", "/api/v1/servers/12346/", {"hostname": "w2.example.org"}
    )

    assert answer.status == 200
    assert answer.body["hostname"] == "w2.example.org"
    assert answer.body["name"] == "web-02"
    assert before is not None
    assert answer.body["updated_at"] > before["updated_at"]


def test_patch_needs_at_least_one_field(sandbox: Sandbox, call) -> None:
    answer = call(sandbox, "PATCH", "/api/v1/servers/12346/", {"colour": "red"})

    assert answer.status == 400
    assert list(answer.body) == ["non_field_errors"]


def test_updated_at_moves_on_every_change_even_on_a_stopped_clock(
    sandbox: Sandbox, call
) -> None:
    stamps = []
    for name in ("a-1", "a-2", "a-3"):
        answer = call(sandbox, "PATCH", "/api/v1/servers/12345/", {"name": name})
        stamps.append(answer.body["updated_at"])

    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 3


def test_delete_answers_204_without_a_body(sandbox: Sandbox, call) -> None:
    deleted = call(sandbox, "DELETE", "/api/v1/servers/12348/")
    again = call(sandbox, "DELETE", "/api/v1/servers/12348/")

    assert (deleted.status, deleted.raw) == (204, b"")
    assert again.status == 404
    assert again.body == {"detail": "No Server matches the given query."}


@pytest.mark.parametrize(
    ("server_id", "verb", "status", "body"),
    [
        (12345, "start", 400, ["Server is already running."]),
        (12348, "reboot", 400, {"detail": "Server is not running."}),
        (12348, "stop", 400, {"detail": "Server is not running."}),
        (99, "start", 404, {"detail": "No Server matches the given query."}),
    ],
)
def test_power_actions_refused_by_state(
    sandbox: Sandbox, call, server_id: int, verb: str, status: int, body: object
) -> None:
    answer = call(sandbox, "POST", f"/api/v1/servers/{server_id}/{verb}/")

    assert (answer.status, answer.body) == (status, body)


@pytest.mark.parametrize(
    ("server_id", "verb", "running", "settled"),
    [
        (12348, "start", "starting", "active"),
        (12345, "stop", "stopping", "stopped"),
        (12345, "reboot", "rebooting", "active"),
    ],
)
def test_power_actions_move_through_a_transition(
    sandbox: Sandbox, call, clock, server_id: int, verb: str, running: str, settled: str
) -> None:
    answer = call(sandbox, "POST", f"/api/v1/servers/{server_id}/{verb}/")
    busy = call(sandbox, "POST", f"/api/v1/servers/{server_id}/{verb}/")
    clock.advance(5.0)
    after = sandbox.get(server_id)

    assert answer.status == 200
    assert answer.body["status"] == "success"
    assert answer.body["server"]["status"] == running
    assert busy.status == 400
    assert busy.body == {"detail": f"Server is {running}; wait until it settles."}
    assert after is not None and after["status"] == settled


def test_suspended_server_refuses_power(sandbox: Sandbox, call) -> None:
    sandbox.set_status(12345, "suspended")

    answer = call(sandbox, "POST", "/api/v1/servers/12345/reboot/")

    assert (answer.status, answer.body) == (400, {"detail": "Server is suspended."})


def test_set_status_can_schedule_a_transition(sandbox: Sandbox, clock) -> None:
    sandbox.set_status(12345, "migrating", then="active")
    clock.advance(5.0)

    server = sandbox.get(12345)

    assert server is not None and server["status"] == "active"


def test_add_server_uses_the_catalog(sandbox: Sandbox) -> None:
    added = sandbox.add_server(
        "edge-01", status="stopped", location="eu-central", plan_id=3, os_id=7
    )

    assert added["id"] == 12349
    assert added["plan"]["name"] == "Starter VPS"
    assert added["os"] == {"id": 7, "name": "Rocky Linux 9"}
    assert added["status"] == "stopped"
    assert added["ip_address"].startswith("203.0.113.")


def test_path_without_slash_is_redirected(sandbox: Sandbox, call) -> None:
    answer = call(sandbox, "GET", "/api/v1/servers?status=active")

    assert answer.status == 301
    assert answer.headers["Location"] == (
        "http://sandbox.test/api/v1/servers/?status=active"
    )


def test_unknown_path_is_an_html_404(sandbox: Sandbox, call) -> None:
    answer = call(sandbox, "GET", "/api/v2/servers/")

    assert answer.status == 404
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.raw.startswith(b"<!doctype html>")


def test_wrong_method_is_405(sandbox: Sandbox, call) -> None:
    answer = call(sandbox, "POST", "/api/v1/servers/12345/")

    assert answer.status == 405
    assert answer.body == {"detail": 'Method "POST" not allowed.'}
    assert answer.headers["Allow"] == "GET, PUT, PATCH, DELETE, OPTIONS"


def test_fail_next_matches_path_and_counts_down(sandbox: Sandbox, call) -> None:
    sandbox.fail_next(503, times=2, path_contains="/reboot/", retry_after=7)

    other = call(sandbox, "GET", "/api/v1/servers/12345/")
    first = call(sandbox, "POST", "/api/v1/servers/12345/reboot/")
    second = call(sandbox, "POST", "/api/v1/servers/12345/reboot/")
    third = call(sandbox, "POST", "/api/v1/servers/12345/reboot/")

    assert other.status == 200
    assert (first.status, second.status, third.status) == (503, 503, 200)
    assert first.headers["Retry-After"] == "7"
    assert first.headers["Content-Type"].startswith("text/html")


def test_fail_next_with_a_json_body(sandbox: Sandbox, call) -> None:
    sandbox.fail_next(400, body=["Server is locked."])

    answer = call(sandbox, "GET", "/api/v1/servers/")

    assert (answer.status, answer.body) == (400, ["Server is locked."])


def test_reset_calls_forgets(sandbox: Sandbox, call) -> None:
    call(sandbox, "GET", "/api/v1/servers/")

    sandbox.reset_calls()

    assert sandbox.calls == []


def test_server_keeps_connections_alive_and_counts_them(sandbox: Sandbox) -> None:
    with SandboxServer(sandbox) as server, requests.Session() as session:
        headers = {"Authorization": f"Bearer {sandbox.token}"}
        statuses = [
            session.get(server.url + "servers/", headers=headers).status_code
            for _ in range(3)
        ]
        head = session.head(server.url + "servers/12345/", headers=headers)

        assert statuses == [200, 200, 200]
        assert head.status_code == 200
        assert int(head.headers["Content-Length"]) > 0
        assert server.connections_opened == 1
        assert server.url.startswith("http://127.0.0.1:")


def test_server_url_needs_a_start(sandbox: Sandbox) -> None:
    server = SandboxServer(sandbox)

    with pytest.raises(RuntimeError):
        _ = server.url
    assert server.connections_opened == 0


def test_run_sandbox_prints_its_url_and_stops_on_ctrl_c() -> None:
    script = (
        "from vpsbot.vps.sandbox import run_sandbox; "
        "run_sandbox(port=0, token='demo-token', transition_delay=0.5)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split()[3]
        answer = requests.get(
            url + "servers/", headers={"Authorization": "Bearer demo-token"}, timeout=5
        )
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)

    assert line.startswith("VPS.org sandbox at http://127.0.0.1:")
    assert "(token: demo-token)" in line
    assert url.endswith("/api/v1/")
    assert answer.status_code == 200
    assert answer.json()["count"] == 4
    assert code == 0
