"""Fixtures for following operations: a fake clock shared by the sandbox and
the follower, a provider client that never retries, and a recording notifier.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from vpsbot.ops import Actor
from vpsbot.ops.tracking import Backoff, FollowedOp, Follower, Progress
from vpsbot.vps import Server, VpsClient
from vpsbot.vps.sandbox import Sandbox, SandboxServer

TOKEN = "follow-token"
EPOCH = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
ACTOR = Actor("T0TEST", "C0OPS", "U0ALICE", "r-follow")


class Clock:
    """Seconds for the sandbox, and the same moment as a UTC datetime."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def utc(self) -> datetime:
        return EPOCH + timedelta(seconds=self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def to(self, moment: datetime) -> None:
        self.now = max(self.now, (moment - EPOCH).total_seconds())


class RecordingNotifier:
    """Remembers each notification; raises the scripted errors first."""

    def __init__(self) -> None:
        self.seen: list[tuple[FollowedOp, Progress]] = []
        self.attempts = 0
        self.script: deque[BaseException] = deque()
        self._lock = threading.Lock()

    def notify(self, operation: FollowedOp, progress: Progress) -> None:
        with self._lock:
            self.attempts += 1
            if self.script:
                raise self.script.popleft()
            self.seen.append((operation, progress))

    def progress(self) -> list[Progress]:
        return [progress for _, progress in self.seen]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sandbox(clock: Clock) -> Sandbox:
    return Sandbox(TOKEN, transition_delay=20.0, clock=clock)


@pytest.fixture
def sandbox_server(sandbox: Sandbox) -> Iterator[SandboxServer]:
    with SandboxServer(sandbox) as server:
        yield server


@pytest.fixture
def vps(sandbox_server: SandboxServer) -> Iterator[VpsClient]:
    with VpsClient(
        sandbox_server.url,
        TOKEN,
        max_retries=0,
        backoff_factor=0.0,
        connect_timeout=1.0,
        read_timeout=2.0,
    ) as client:
        yield client


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


def make_follower(session_factory, vps, notifier, clock: Clock, **options) -> Follower:
    settings = {
        "sessions": session_factory,
        "vps": vps,
        "notifier": notifier,
        "clock": clock.utc,
        "backoff": Backoff(jitter=0.0),
        "owner": "process-a",
        "workers": 2,
    }
    settings.update(options)
    return Follower(**settings)


@pytest.fixture
def follower(session_factory, vps, notifier, clock) -> Iterator[Follower]:
    follower = make_follower(session_factory, vps, notifier, clock)
    yield follower
    follower.stop()


def server_named(vps: VpsClient, name: str) -> Server:
    return next(server for server in vps.get_all() if server.name == name)


def start_reboot(vps: VpsClient, follower: Follower, name: str = "web-01") -> int:
    """Reboot a sandbox server and follow it, as the Slack side would."""
    server = server_named(vps, name)
    vps.reboot(server.id)
    rebooting = vps.get_by_id(server.id)
    return follower.follow(
        ACTOR,
        "reboot",
        rebooting,
        f"rebooted *{name}*",
        message_ts="1700000001.000100",
    )
