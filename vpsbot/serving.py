"""``vpsbot serve`` under gunicorn: pre-forked worker processes.

The calling process becomes gunicorn's master: it binds the port and forks the
workers, and forks a new one if a worker dies. Nothing that holds a
connection, a thread or a lock is built before the fork: each worker calls
``build`` once it is running, which makes its own database engine, Slack and
provider clients, work pools and background loops, and closes them when the
worker exits.

Stopping: on SIGTERM the master closes the listening socket and tells every
worker to stop; a worker finishes the requests it has already accepted, then
(in ``ServedApp.close``) the work it has acknowledged, and releases the
operations it follows, all within ``GRACEFUL_SECONDS``; past that the master
kills it. Ctrl-C (SIGINT) stops the workers at once, but still finishes their
acknowledged work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

logger = logging.getLogger(__name__)

# Request threads per worker. They only verify, parse and acknowledge; the
# slow part runs on the work pool (VPSBOT_WORKER_THREADS).
THREADS_PER_WORKER = 16
# How long a stopping worker has for its requests in flight and the work it
# has acknowledged: VpsBot.close() lets queued work start for 15 s, and the
# longest provider call (a write may take 30 s) still fits after that.
GRACEFUL_SECONDS = 60
# Seconds a worker may go without a heartbeat before the master replaces it.
WORKER_TIMEOUT = 60


@dataclass
class ServedApp:
    """What one worker serves, and how to let go of it."""

    wsgi: Callable[..., Iterable[bytes]]
    close: Callable[[], None]


class _RootLogs(GunicornLogger):
    """gunicorn's own lines go through the root logger, in vpsbot's format.

    Its access log stays off: ``vpsbot.access_log`` writes one line per request.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in list(self.error_log.handlers):
            self.error_log.removeHandler(handler)
        self.error_log.propagate = True


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """gunicorn's master, configured in code rather than from its command line."""

    def __init__(
        self,
        build: Callable[[], ServedApp],
        *,
        host: str,
        port: int,
        workers: int,
        threads: int = THREADS_PER_WORKER,
    ) -> None:
        self._build = build
        self._served: ServedApp | None = None
        self._options: dict[str, Any] = {
            "bind": [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"],
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            "preload_app": False,
            "graceful_timeout": GRACEFUL_SECONDS,
            "timeout": WORKER_TIMEOUT,
            "keepalive": 5,
            "proc_name": "vpsbot",
            "logger_class": _RootLogs,
            "accesslog": None,
            "control_socket_disable": True,
            "worker_exit": self._worker_exit,
        }
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)

    def load(self) -> Callable[..., Iterable[bytes]]:
        """Build this worker's app; gunicorn calls this after the fork."""
        self._served = self._build()
        return self._served.wsgi

    def _worker_exit(self, arbiter: object, worker: Any) -> None:
        if self._served is None:
            return
        logger.info(
            "worker %s stopping: finishing acknowledged work, releasing followed "
            "operations",
            worker.pid,
        )
        self._served.close()
        self._served = None
