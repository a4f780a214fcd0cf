"""vpsbot: run VPS.org servers from Slack, with policies, confirmations and audit."""

from __future__ import annotations

__version__ = "0.1.0"
