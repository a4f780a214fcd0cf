"""The VPS.org client, its domain types and errors, and a local sandbox API.

``VpsClient`` talks to the provider; ``vpsbot.vps.sandbox`` holds an in-memory
stand-in for it (imported on demand, not from here).
"""

from __future__ import annotations

import logging

from vpsbot.vps.client import VpsClient
from vpsbot.vps.errors import (
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
from vpsbot.vps.servers import (
    OperatingSystem,
    Plan,
    PowerResult,
    ResourceUsage,
    Server,
    StatusKind,
)

__all__ = [
    "ActionRejectedError",
    "ForbiddenError",
    "InvalidInputError",
    "NotFoundError",
    "OperatingSystem",
    "OutcomeUnknownError",
    "PaymentRequiredError",
    "Plan",
    "PowerResult",
    "ProviderError",
    "RateLimitedError",
    "ResourceUsage",
    "Server",
    "StatusKind",
    "UnauthorizedError",
    "UnexpectedResponseError",
    "UnreachableError",
    "VpsApiError",
    "VpsClient",
]

logger = logging.getLogger(__name__)
