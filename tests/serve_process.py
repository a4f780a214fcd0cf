"""``vpsbot serve`` as a real process, for the tests that need one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

_SETTINGS_PREFIXES = ("SLACK_", "VPS_", "VPSBOT_", "PORT")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServeProcess:
    """One ``vpsbot serve`` on 127.0.0.1; its log goes to a file."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        # Only the settings given here, never a developer's own.
        inherited = {
            name: value
            for name, value in os.environ.items()
            if name != "DATABASE_URL" and not name.startswith(_SETTINGS_PREFIXES)
        }
        self._env = {**inherited, **env, "PORT": str(self.port)}
        self._args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServeProcess:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vpsbot", "serve", "--host", "127.0.0.1"]
                + list(self._args),
                env=self._env,
                cwd=self.log.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.output()}")
            try:
                if requests.get(self.url + "/readyz", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve did not get ready:\n{self.output()}")

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> int:
        """SIGTERM, then wait; kill if it will not stop."""
        assert self.process is not None
        if self.process.poll() is None:
            self.terminate()
        try:
            return self.wait()
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def output(self) -> str:
        return self.log.read_text(errors="replace")
