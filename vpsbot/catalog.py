"""What may be chosen when creating a server: plans, operating systems, locations.

VPS.org has no endpoint listing these, so they come from a catalog file: the
one shipped in ``vpsbot/data/catalog.toml`` (what the provider's docs name),
or an operator's own, named by ``VPSBOT_CATALOG`` (TOML, or JSON when the name
ends in ``.json``). The catalog is then merged with what existing servers show:
a plan, system or location in use on the account is offered even when the file
does not name it. For an id in both, the file's entry wins, so an operator can
rename or describe a plan.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from vpsbot.errors import ConfigError
from vpsbot.vps import Server

logger = logging.getLogger(__name__)

SETTING = "VPSBOT_CATALOG"
#: Slack shows at most 75 characters of an option.
MAX_LABEL = 75
MAX_ID = 2**63 - 1
_KEYS = {"plans", "os", "locations"}
_PLAN_KEYS = {"id", "name", "vcpus", "memory", "storage", "bandwidth"}
_SYSTEM_KEYS = {"id", "name"}
_LOCATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class PlanChoice:
    """A plan that may be ordered; memory in MB, storage in GB."""

    id: int
    name: str
    vcpus: int | None = None
    memory: int | None = None
    storage: int | None = None

    @property
    def label(self) -> str:
        """The plan with its sizes: ``Standard VPS · 2 vCPU · 4 GB · 80 GB``.

        At most ``MAX_LABEL`` characters: a long name is shortened, never the
        sizes.
        """
        sizes = []
        if self.vcpus:
            sizes.append(f"{self.vcpus} vCPU")
        if self.memory:
            sizes.append(_memory(self.memory))
        if self.storage:
            sizes.append(f"{self.storage} GB")
        tail = "".join(f" · {size}" for size in sizes)
        return _shorten(self.name or f"Plan {self.id}", MAX_LABEL - len(tail)) + tail


@dataclass(frozen=True)
class SystemChoice:
    """An operating-system image that may be installed."""

    id: int
    name: str

    @property
    def label(self) -> str:
        return _shorten(self.name or f"OS {self.id}", MAX_LABEL)


@dataclass(frozen=True)
class Catalog:
    """The choices offered, in the order they are shown."""

    plans: tuple[PlanChoice, ...] = ()
    systems: tuple[SystemChoice, ...] = ()
    locations: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        """Read the operator's catalog file, or the shipped one when ``path`` is None.

        Raises:
            ConfigError: the file cannot be read or is not of the right shape;
                the message names the setting, the file and the fault.
        """
        if path is None:
            text = resources.files("vpsbot.data").joinpath("catalog.toml").read_text()
            where, is_json = "the shipped catalog", False
        else:
            where, is_json = str(path), path.suffix.lower() == ".json"
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{SETTING}: cannot read {where}: {exc}") from exc
        try:
            data = json.loads(text) if is_json else tomllib.loads(text)
        except ValueError as exc:
            kind = "JSON" if is_json else "TOML"
            raise ConfigError(f"{SETTING}: {where} is not valid {kind}: {exc}") from exc
        try:
            return cls.from_mapping(data)
        except ValueError as exc:
            raise ConfigError(f"{SETTING}: {where}: {exc}") from exc

    @classmethod
    def from_mapping(cls, data: object) -> Catalog:
        """Build a catalog from parsed TOML or JSON.

        Raises:
            ValueError: a key is of the wrong type, or an id is given twice.
        """
        if not isinstance(data, Mapping):
            raise ValueError("the catalog must be a table (an object)")
        _refuse_unknown(data, _KEYS, "the catalog")
        plans = tuple(
            PlanChoice(
                id=_integer(item, "id", where),
                name=_name(item, where),
                vcpus=_size(item, "vcpus", where),
                memory=_size(item, "memory", where),
                storage=_size(item, "storage", where),
            )
            for where, item in _tables(data, "plans", _PLAN_KEYS)
        )
        systems = tuple(
            SystemChoice(id=_integer(item, "id", where), name=_name(item, where))
            for where, item in _tables(data, "os", _SYSTEM_KEYS)
        )
        locations = data.get("locations", [])
        if not isinstance(locations, list) or not all(
            isinstance(code, str) and _LOCATION.fullmatch(code.strip())
            for code in locations
        ):
            raise ValueError(
                "locations must be a list of data-centre codes (letters, digits, "
                "'.', '_' and '-', at most 64)"
            )
        _refuse_repeats("plans", [plan.id for plan in plans])
        _refuse_repeats("os", [system.id for system in systems])
        _refuse_repeats("locations", [code.strip().lower() for code in locations])
        return cls(plans, systems, tuple(code.strip() for code in locations))

    def with_servers(self, servers: Iterable[Server]) -> Catalog:
        """This catalog plus the plans, systems and locations ``servers`` use."""
        plans = {plan.id: plan for plan in self.plans}
        systems = {system.id: system for system in self.systems}
        locations = {code.lower(): code for code in self.locations}
        for server in servers:
            if server.plan is not None and server.plan.id not in plans:
                plans[server.plan.id] = PlanChoice(
                    server.plan.id,
                    server.plan.name,
                    server.plan.vcpus,
                    server.plan.memory,
                    server.plan.storage,
                )
            if server.os is not None and server.os.id not in systems:
                systems[server.os.id] = SystemChoice(server.os.id, server.os.name)
            if server.location and server.location.lower() not in locations:
                locations[server.location.lower()] = server.location
        return Catalog(
            tuple(plans.values()), tuple(systems.values()), tuple(locations.values())
        )

    def plan(self, text: str) -> PlanChoice | None:
        """The plan with this id, name or label (names compared without case)."""
        return _pick(self.plans, text)

    def system(self, text: str) -> SystemChoice | None:
        """The operating system with this id, name or label."""
        return _pick(self.systems, text)

    def location(self, text: str) -> str | None:
        """The location with this code, compared without case."""
        wanted = text.strip().lower()
        return next((code for code in self.locations if code.lower() == wanted), None)


_Choice = TypeVar("_Choice", PlanChoice, SystemChoice)


def _pick(choices: Iterable[_Choice], text: str) -> _Choice | None:
    wanted = text.strip()
    if wanted.isascii() and wanted.isdigit():
        if len(wanted) > 18:
            return None
        return next((choice for choice in choices if choice.id == int(wanted)), None)
    folded = wanted.casefold()
    return next(
        (
            choice
            for choice in choices
            if folded in (choice.name.casefold(), choice.label.casefold())
        ),
        None,
    )


def _tables(
    data: Mapping[str, Any], key: str, allowed: set[str]
) -> Iterable[tuple[str, Mapping[str, Any]]]:
    items = data.get(key, [])
    if not isinstance(items, list):
        raise ValueError(f"{key} must be a list of tables")
    for number, item in enumerate(items, start=1):
        where = f"{key} entry {number}"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where} must be a table")
        _refuse_unknown(item, allowed, where)
        yield where, item


def _refuse_unknown(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """A misspelt key would silently offer nothing; name it instead."""
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise ValueError(
            f"{where} has unknown key {unknown[0]!r} (known: "
            f"{', '.join(sorted(allowed))})"
        )


def _integer(item: Mapping[str, Any], key: str, where: str) -> int:
    value = item.get(key)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= MAX_ID
    ):
        raise ValueError(f"{where}: {key} must be a whole number")
    return value


def _size(item: Mapping[str, Any], key: str, where: str) -> int | None:
    if item.get(key) is None:
        return None
    return _integer(item, key, where)


def _name(item: Mapping[str, Any], where: str) -> str:
    value = item.get("name")
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: name must be a non-empty text")
    return value.strip()


def _refuse_repeats(key: str, values: list[Any]) -> None:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{key} names {value!r} twice")
        seen.add(value)


def _memory(megabytes: int) -> str:
    if megabytes < 1024:
        return f"{megabytes} MB"
    return f"{megabytes / 1024:.1f}".removesuffix(".0") + " GB"


def _shorten(text: str, limit: int) -> str:
    limit = max(limit, 8)
    return text if len(text) <= limit else text[: limit - 1] + "…"
