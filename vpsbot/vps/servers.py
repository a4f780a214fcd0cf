"""Domain types for VPS.org servers, parsed explicitly from the API's JSON.

Each type is a frozen dataclass with a ``from_dict`` classmethod that keeps the
documented keys and ignores the rest, so a new field at the provider cannot
break vpsbot. Fields that only the detail view carries (``ipv6_address``,
``resource_usage``, ``plan.bandwidth``) are None in list results. Timestamps
become aware UTC datetimes; one that cannot be read becomes None rather than
failing the whole answer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "OperatingSystem",
    "Plan",
    "PowerResult",
    "ResourceUsage",
    "Server",
    "StatusKind",
    "classify_status",
]

logger = logging.getLogger(__name__)

StatusKind = Literal["stable", "transitional", "blocked"]

_STABLE = frozenset({"active", "stopped"})
_TRANSITIONAL = frozenset({"provisioning", "starting", "stopping", "rebooting"})


def classify_status(status: str) -> StatusKind:
    """Sort a raw status word into stable, transitional or blocked.

    ``active`` and ``stopped`` are stable; ``provisioning``, ``starting``,
    ``stopping``, ``rebooting`` and any other word ending in "ing" are
    transitional; everything else (``suspended``, ``error``, words never seen
    before) is blocked.
    """
    word = status.strip().lower()
    if word in _STABLE:
        return "stable"
    if word in _TRANSITIONAL or word.endswith("ing"):
        return "transitional"
    return "blocked"


@dataclass(frozen=True)
class Plan:
    """A VPS plan as embedded in a server: memory in MB, storage and bandwidth in GB.

    ``bandwidth`` is only in the detail view.
    """

    id: int
    name: str
    vcpus: int | None
    memory: int | None
    storage: int | None
    bandwidth: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """Parse the API's plan object.

        Raises:
            ValueError: ``id`` is missing or not an integer, or data is no object.
        """
        data = _mapping(data, "plan")
        return cls(
            id=_required_int(data, "id"),
            name=_text(data.get("name")) or "",
            vcpus=_int(data.get("vcpus")),
            memory=_int(data.get("memory")),
            storage=_int(data.get("storage")),
            bandwidth=_int(data.get("bandwidth")),
        )


@dataclass(frozen=True)
class OperatingSystem:
    """An operating-system image as embedded in a server."""

    id: int
    name: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OperatingSystem:
        """Parse the API's os object.

        Raises:
            ValueError: ``id`` is missing or not an integer, or data is no object.
        """
        data = _mapping(data, "os")
        return cls(id=_required_int(data, "id"), name=_text(data.get("name")) or "")


@dataclass(frozen=True)
class ResourceUsage:
    """Usage as reported by the provider: CPU in percent, memory in MB, disk and
    bandwidth in GB. Only in the detail view.
    """

    cpu_percent: float | None
    memory_used: int | None
    disk_used: int | None
    bandwidth_used: int | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResourceUsage:
        """Parse the API's resource_usage object; unreadable values become None.

        Raises:
            ValueError: data is no object.
        """
        data = _mapping(data, "resource_usage")
        return cls(
            cpu_percent=_float(data.get("cpu_percent")),
            memory_used=_int(data.get("memory_used")),
            disk_used=_int(data.get("disk_used")),
            bandwidth_used=_int(data.get("bandwidth_used")),
        )


@dataclass(frozen=True)
class Server:
    """One server, from a list, detail, create or update answer.

    ``status`` is the provider's raw word, to show as is; ``status_kind`` and
    the ``can_*`` properties say what it allows. ``message`` is only set on the
    answer to a create.
    """

    id: int
    name: str
    hostname: str | None
    status: str
    ip_address: str | None
    location: str | None
    plan: Plan | None
    os: OperatingSystem | None
    backups_enabled: bool | None
    created_at: datetime | None
    updated_at: datetime | None
    ipv6_address: str | None = None
    resource_usage: ResourceUsage | None = None
    message: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Server:
        """Parse the API's server object.

        Raises:
            ValueError: ``id``, ``name`` or ``status`` is missing or of the
                wrong type, or a nested object is malformed.
        """
        data = _mapping(data, "server")
        name = data.get("name")
        status = data.get("status")
        if not isinstance(name, str):
            raise ValueError("server has no name")
        if not isinstance(status, str) or not status.strip():
            raise ValueError("server has no status")

        plan = data.get("plan")
        os_ = data.get("os")
        usage = data.get("resource_usage")
        return cls(
            id=_required_int(data, "id"),
            name=name,
            hostname=_text(data.get("hostname")),
            status=status.strip(),
            ip_address=_text(data.get("ip_address")),
            location=_text(data.get("location")),
            plan=Plan.from_dict(plan) if plan is not None else None,
            os=OperatingSystem.from_dict(os_) if os_ is not None else None,
            backups_enabled=_bool(data.get("backups_enabled")),
            created_at=parse_timestamp(data.get("created_at")),
            updated_at=parse_timestamp(data.get("updated_at")),
            ipv6_address=_text(data.get("ipv6_address")),
            resource_usage=(
                ResourceUsage.from_dict(usage) if usage is not None else None
            ),
            message=_text(data.get("message")),
        )

    @property
    def status_kind(self) -> StatusKind:
        """The status's class: stable, transitional or blocked (``classify_status``)."""
        return classify_status(self.status)

    @property
    def can_start(self) -> bool:
        """Whether a start makes sense now (the server is stopped)."""
        return self.status.lower() == "stopped"

    @property
    def can_stop(self) -> bool:
        """Whether a stop makes sense now (the server is active)."""
        return self.status.lower() == "active"

    @property
    def can_reboot(self) -> bool:
        """Whether a reboot makes sense now (the server is active)."""
        return self.status.lower() == "active"

    @property
    def can_delete(self) -> bool:
        """Whether a delete may be offered (anything but provisioning)."""
        return self.status.lower() != "provisioning"


@dataclass(frozen=True)
class PowerResult:
    """The answer to start, stop or reboot.

    Attributes:
        status: The outcome word, "success" when the action was accepted.
        message: The provider's sentence, e.g. "Server is starting".
        server_id: The server's id as echoed back.
        server_name: The server's name as echoed back.
        server_status: Its new status, e.g. "starting".
    """

    status: str
    message: str | None
    server_id: int | None
    server_name: str | None
    server_status: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PowerResult:
        """Parse the answer to a power action.

        Raises:
            ValueError: data or its ``server`` member is no object, or ``status``
                is missing.
        """
        data = _mapping(data, "power result")
        status = data.get("status")
        if not isinstance(status, str):
            raise ValueError("power result has no status")
        server = data.get("server")
        server = _mapping(server, "server") if server is not None else {}
        return cls(
            status=status,
            message=_text(data.get("message")),
            server_id=_int(server.get("id")),
            server_name=_text(server.get("name")),
            server_status=_text(server.get("status")),
        )


def parse_timestamp(value: object) -> datetime | None:
    """Read an ISO 8601 timestamp leniently, as an aware UTC datetime.

    Accepts ``Z`` or an offset, fractions of a second, a space instead of
    ``T``; a timestamp without an offset is taken as UTC. Anything else gives
    None.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        logger.debug("unreadable timestamp %r", value)
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} is not a JSON object")
    return value


def _required_int(data: Mapping[str, Any], key: str) -> int:
    number = _int(data.get(key))
    if number is None:
        raise ValueError(f"{key!r} is missing or not an integer")
    return number


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None
