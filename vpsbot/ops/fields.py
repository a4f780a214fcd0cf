"""The fields a person fills in to create or edit a server, and what is wrong with them.

Checked before anything is sent, so a typo costs no provider call; the
provider's own 400 answer is mapped onto the same field names, so a dialog can
show either next to the input it is about.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping

from vpsbot.errors import UserError
from vpsbot.vps import InvalidInputError, Server

logger = logging.getLogger(__name__)

#: The fields of the create and edit dialogs, in the order they are shown.
FIELDS = ("name", "plan", "os", "location", "hostname", "backups")
#: Problems that belong to no one field.
GENERAL = "general"

MAX_NAME = 63
MAX_HOSTNAME = 253

# Letters, digits and hyphens as the provider allows; vpsbot also wants a letter
# (a name of digits alone would be read as a server id) and no hyphen at
# either end.
_NAME = re.compile(r"(?![0-9]+$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")

# The provider's request fields, as the dialogs name them.
_PROVIDER_FIELDS = {
    "name": "name",
    "plan_id": "plan",
    "os_id": "os",
    "location": "location",
    "hostname": "hostname",
    "backups_enabled": "backups",
}


class FieldErrors(UserError):
    """Some fields are wrong; ``problems`` maps a field (or ``general``) to why."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__(describe(self.problems))


def describe(problems: Mapping[str, str]) -> str:
    """The problems as one sentence, fields in dialog order."""
    ordered = sorted(
        problems.items(),
        key=lambda item: FIELDS.index(item[0]) if item[0] in FIELDS else len(FIELDS),
    )
    parts = [
        text if field == GENERAL else f"{_shown(field)}: {text}"
        for field, text in ordered
    ]
    return "; ".join(parts)


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a server's name, or None when it can."""
    if not name:
        return "a name is needed"
    if not _NAME.fullmatch(name):
        return (
            f"use letters, digits and hyphens (at most {MAX_NAME}), with at least "
            f"one letter and no hyphen at either end"
        )
    return None


def hostname_problem(hostname: str) -> str | None:
    """Why ``hostname`` is not a fully qualified domain name, or None when it is."""
    if len(hostname) > MAX_HOSTNAME:
        return f"a hostname has at most {MAX_HOSTNAME} characters"
    labels = hostname.removesuffix(".").split(".")
    if (
        len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        return "give a fully qualified domain name, e.g. web-03.example.com"
    return None


def from_provider(error: InvalidInputError) -> FieldErrors:
    """The provider's 400 answer, on the dialog's fields."""
    problems: dict[str, str] = {}
    for key, messages in error.field_errors.items():
        field = _PROVIDER_FIELDS.get(key.split(".")[0], GENERAL)
        text = " ".join(message.rstrip(". ") for message in messages) or "refused"
        if field == GENERAL and key in _PROVIDER_FIELDS.values():
            text = f"{key}: {text}"
        previous = problems.get(field)
        problems[field] = f"{previous}; {text}" if previous else text
    if not problems:
        problems[GENERAL] = "VPS.org rejected the values that were sent"
    return FieldErrors(
        {field: f"VPS.org says: {text}" for field, text in problems.items()}
    )


def holder_of(
    servers: Iterable[Server], name: str, *, besides: int | None
) -> int | None:
    """The id of a server other than ``besides`` called ``name``, any case."""
    wanted = name.lower()
    return next(
        (
            server.id
            for server in servers
            if server.name.lower() == wanted and server.id != besides
        ),
        None,
    )


def _shown(field: str) -> str:
    return "operating system" if field == "os" else field
