"""One process of the multi-process approval test (run with ``python -m``).

Arguments: database URL, sandbox URL, the request's public id, a file to append
verdicts to (one JSON object per line), this process's name and how many
threads press Approve in it. The process signals it is ready, waits for the go
file next to its output, then every thread presses Approve once, as one of two
approvers.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from vpsbot.catalog import Catalog
from vpsbot.ops import Actor, Operations
from vpsbot.store import make_engine, make_session_factory
from vpsbot.vps import VpsClient

TOKEN = "follow-token"
TEAM = "T0TEST"
CHANNEL = "C0OPS"
APPROVERS = ("U0BOB", "U0CAROL")


def main(
    database_url: str,
    vps_url: str,
    public_id: str,
    output: str,
    name: str,
    threads: str,
) -> int:
    out = Path(output)
    engine = make_engine(database_url)
    vps = VpsClient(vps_url, TOKEN, max_retries=0)
    ops = Operations.build(
        sessions=make_session_factory(engine),
        vps=vps,
        admins=("U0ALICE",),
        catalog=Catalog.load(),
    )
    count = int(threads)
    barrier = threading.Barrier(count)
    lock = threading.Lock()
    kinds: list[str] = []

    def press(number: int) -> None:
        actor = Actor(TEAM, CHANNEL, APPROVERS[number % 2], f"r-{name}-{number}")
        barrier.wait()
        verdict = ops.approvals.decide(
            actor, public_id, approve=True, members_of=lambda group: set()
        )
        with lock:
            kinds.append(verdict.kind)

    (out.parent / f"{name}.ready").touch()
    deadline = time.monotonic() + 60
    while not (out.parent / "go").exists():
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.01)
    workers = [threading.Thread(target=press, args=(n,)) for n in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    out.write_text("".join(json.dumps({"kind": kind}) + "\n" for kind in kinds))
    vps.close()
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:7]))
