"""Parsing the provider's server objects into domain types."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from vpsbot.vps import OperatingSystem, Plan, PowerResult, ResourceUsage, Server
from vpsbot.vps.servers import classify_status, parse_timestamp

logger = logging.getLogger(__name__)

# The documented detail view of a server, as the provider's docs show it.
DETAIL = {
    "id": 12345,
    "name": "web-server-01",
    "hostname": "web01.example.com",
    "status": "active",
    "ip_address": "203.0.113.10",
    "ipv6_address": "2001:0db8::1",
    "location": "us-west",
    "plan": {
        "id": 1,
        "name": "Standard VPS",
        "vcpus": 2,
        "memory": 4096,
        "storage": 80,
        "bandwidth": 2048,
    },
    "os": {"id": 5, "name": "Ubuntu 22.04 LTS"},
    "backups_enabled": True,
    "resource_usage": {
        "cpu_percent": 23.5,
        "memory_used": 2048,
        "disk_used": 35,
        "bandwidth_used": 450,
    },
    "created_at": "2025-01-10T14:30:00Z",
    "updated_at": "2025-01-16T15:45:00Z",
}


def test_documented_detail_view_parses() -> None:
    server = Server.from_dict(DETAIL)

    assert server == Server(
        id=12345,
        name="web-server-01",
        hostname="web01.example.com",
        status="active",
        ip_address="203.0.113.10",
        location="us-west",
        plan=Plan(1, "Standard VPS", 2, 4096, 80, 2048),
        os=OperatingSystem(5, "Ubuntu 22.04 LTS"),
        backups_enabled=True,
        created_at=datetime(2025, 1, 10, 14, 30, tzinfo=UTC),
        updated_at=datetime(2025, 1, 16, 15, 45, tzinfo=UTC),
        ipv6_address="2001:0db8::1",
        resource_usage=ResourceUsage(23.5, 2048, 35, 450),
    )


def test_documented_create_answer_parses() -> None:
    data = {
        key: value
        for key, value in DETAIL.items()
        if key not in ("ipv6_address", "resource_usage")
    }
    data.update(
        status="provisioning",
        ip_address=None,
        message="Server is being provisioned. This may take 2-5 minutes.",
    )

    server = Server.from_dict(data)

    assert server.ip_address is None
    assert server.ipv6_address is None
    assert server.resource_usage is None
    assert server.message == "Server is being provisioned. This may take 2-5 minutes."
    assert server.status_kind == "transitional"


def test_unknown_keys_are_ignored_and_missing_optionals_are_none() -> None:
    server = Server.from_dict(
        {"id": 3, "name": "x", "status": "active", "flavour": "new", "hostname": None}
    )

    assert server.hostname is None
    assert server.plan is None
    assert server.os is None
    assert server.location is None
    assert server.backups_enabled is None
    assert server.created_at is None


@pytest.mark.parametrize(
    "data",
    [
        {"name": "x", "status": "active"},
        {"id": "abc", "name": "x", "status": "active"},
        {"id": True, "name": "x", "status": "active"},
        {"id": 1, "status": "active"},
        {"id": 1, "name": "x"},
        {"id": 1, "name": "x", "status": " "},
        {"id": 1, "name": "x", "status": "active", "plan": "Standard"},
        {"id": 1, "name": "x", "status": "active", "os": {"name": "no id"}},
        ["not", "an", "object"],
    ],
)
def test_malformed_servers_raise_value_error(data: object) -> None:
    with pytest.raises(ValueError):
        Server.from_dict(data)  # type: ignore[arg-type]


def test_numbers_are_read_leniently() -> None:
    plan = Plan.from_dict(
        {"id": "2", "name": "P", "vcpus": 4.0, "memory": "8192", "storage": "big"}
    )
    usage = ResourceUsage.from_dict(
        {"cpu_percent": "12.5", "memory_used": None, "disk_used": "nan"}
    )

    assert plan == Plan(2, "P", 4, 8192, None, None)
    assert usage == ResourceUsage(12.5, None, None, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-10T14:30:00Z", datetime(2025, 1, 10, 14, 30, tzinfo=UTC)),
        (
            "2025-01-10T14:30:00.123456Z",
            datetime(2025, 1, 10, 14, 30, 0, 123456, tzinfo=UTC),
        ),
        ("2025-01-10T16:30:00+02:00", datetime(2025, 1, 10, 14, 30, tzinfo=UTC)),
        ("2025-01-10 14:30:00", datetime(2025, 1, 10, 14, 30, tzinfo=UTC)),
        ("2025-01-10", datetime(2025, 1, 10, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
        (1736519400, None),
    ],
)
def test_timestamps_become_aware_utc(text: object, expected: datetime | None) -> None:
    parsed = parse_timestamp(text)

    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == timedelta(0)
        assert parsed.tzinfo in (UTC, UTC)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("active", "stable"),
        ("stopped", "stable"),
        ("Active ", "stable"),
        ("provisioning", "transitional"),
        ("starting", "transitional"),
        ("stopping", "transitional"),
        ("rebooting", "transitional"),
        ("migrating", "transitional"),
        ("suspended", "blocked"),
        ("error", "blocked"),
        ("failed", "blocked"),
        ("billing_hold", "blocked"),
    ],
)
def test_status_classification(status: str, kind: str) -> None:
    assert classify_status(status) == kind


@pytest.mark.parametrize(
    ("status", "start", "stop", "reboot", "delete"),
    [
        ("active", False, True, True, True),
        ("stopped", True, False, False, True),
        ("provisioning", False, False, False, False),
        ("rebooting", False, False, False, True),
        ("suspended", False, False, False, True),
    ],
)
def test_allowed_actions_follow_the_status(
    status: str, start: bool, stop: bool, reboot: bool, delete: bool
) -> None:
    server = Server.from_dict({"id": 1, "name": "x", "status": status})

    assert (server.can_start, server.can_stop, server.can_reboot) == (
        start,
        stop,
        reboot,
    )
    assert server.can_delete is delete


def test_power_result_parses_the_documented_answer() -> None:
    result = PowerResult.from_dict(
        {
            "status": "success",
            "message": "Server is starting",
            "server": {"id": 12345, "name": "web-server-01", "status": "starting"},
        }
    )

    assert result == PowerResult(
        "success", "Server is starting", 12345, "web-server-01", "starting"
    )


def test_power_result_without_server_member() -> None:
    result = PowerResult.from_dict({"status": "success"})

    assert result == PowerResult("success", None, None, None, None)


@pytest.mark.parametrize("data", [{}, {"status": "ok", "server": []}, "success"])
def test_malformed_power_results_raise(data: object) -> None:
    with pytest.raises(ValueError):
        PowerResult.from_dict(data)  # type: ignore[arg-type]
