"""One process of the multi-process follow test (run with ``python -m``).

Arguments: database URL, sandbox URL, a file to append notifications to (one
JSON object per line), and this process's owner name. The process signals it
is ready, waits for the go file next to its output, then follows operations
until none is left open.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from vpsbot.ops.tracking import Backoff, FollowedOp, Follower, Progress
from vpsbot.store import make_engine, make_session_factory
from vpsbot.vps import VpsClient

TOKEN = "follow-token"


class FileNotifier:
    def __init__(self, path: Path, owner: str) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._owner = owner
        self._lock = threading.Lock()

    def notify(self, operation: FollowedOp, progress: Progress) -> None:
        note = {
            "op": operation.id,
            "owner": self._owner,
            "state": progress.state,
            "status": progress.status,
        }
        with self._lock:
            self._file.write(json.dumps(note) + "\n")
            self._file.flush()


def main(database_url: str, vps_url: str, output: str, owner: str) -> int:
    out = Path(output)
    engine = make_engine(database_url)
    vps = VpsClient(vps_url, TOKEN, max_retries=0)
    follower = Follower(
        sessions=make_session_factory(engine),
        vps=vps,
        notifier=FileNotifier(out, owner),
        workers=4,
        tick_interval=0.05,
        claim_batch=3,
        backoff=Backoff(first=0.2, factor=1.5, cap=0.5),
        owner=owner,
    )
    (out.parent / f"{owner}.ready").touch()
    deadline = time.monotonic() + 60
    while not (out.parent / "go").exists():
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.02)
    follower.start()
    try:
        while follower.open_count() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        follower.stop()
        vps.close()
        engine.dispose()
    return 0 if time.monotonic() < deadline else 4


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
