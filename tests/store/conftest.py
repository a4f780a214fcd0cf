"""Fixtures for the store tests."""

from __future__ import annotations

import logging
import socket

import pytest

logger = logging.getLogger(__name__)


@pytest.fixture
def unused_port() -> int:
    """A local TCP port nothing listens on (bound, read, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
