"""Exception roots shared by every layer.

The tree::

    VpsbotError
     ├── ConfigError            a setting is missing or malformed (stops the program)
     ├── UserError              refused for a known reason; ``str()`` is safe to show
     │    ├── PermissionDeniedError
     │    ├── ServerLookupError  no such server, or a name that matches several
     │    └── ActionStateError   the server's state forbids the action right now
     │         └── RepeatedSubmissionError  this very request was handled before
     ├── StoreUnavailableError  the database could not be reached
     └── vps.errors.VpsApiError the provider said no, or could not be reached
"""

from __future__ import annotations


class VpsbotError(Exception):
    """Root of every error vpsbot raises on purpose."""


class ConfigError(VpsbotError):
    """A setting is missing or malformed; the message names the variable."""


class UserError(VpsbotError):
    """A refusal with a reason that is safe to show to the person who asked."""


class PermissionDeniedError(UserError):
    """The channel's policy does not let this person do this action here."""


class ServerLookupError(UserError):
    """The server named in a command does not exist, or the name is ambiguous."""


class ActionStateError(UserError):
    """The action makes no sense in the server's current state, or one is running."""


class RepeatedSubmissionError(ActionStateError):
    """The same click or dialog submission arrived again; it was handled once."""


class StoreUnavailableError(VpsbotError):
    """The database did not answer; nothing was done."""

    def __str__(self) -> str:
        return (
            "vpsbot cannot reach its database right now, so nothing was done. "
            "Please try again in a minute."
        )
