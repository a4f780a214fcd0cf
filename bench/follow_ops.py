"""Following 500 operations at once: time, threads, memory, provider calls.

The provider (the sandbox, over HTTP on 127.0.0.1) runs in a child process,
so this process holds only what ``vpsbot`` itself would: one ``Follower``
with its default settings (8 polling threads, 2 s first wait, x1.5, 30 s
cap), its database, and a notifier that records instead of calling Slack.
Each of the N servers is put in ``rebooting`` with its own random delay
before it turns ``active`` (uniform between --min-delay and --max-delay
seconds, seeded), and N followed operations are recorded at once.

Reported per database: wall time until every operation has ended, peak
thread count, peak RSS growth (``ru_maxrss`` is the process's lifetime peak,
so only the first database run in a process shows its own growth; use
``--skip-sqlite`` for PostgreSQL's), provider calls per operation, and the
calls a naive fixed 1 s poll would have made for the same delays.

    python bench/follow_ops.py [--operations 500] [--min-delay 5]
        [--max-delay 60] [--postgres postgresql+psycopg://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import random
import resource
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vpsbot.ops import Actor  # noqa: E402
from vpsbot.ops.tracking import Follower  # noqa: E402
from vpsbot.store import (  # noqa: E402
    make_engine,
    make_session_factory,
    upgrade_database,
)
from vpsbot.vps import VpsClient  # noqa: E402

TOKEN = "bench-token"
ACTOR = Actor("T0BENCH", "C0BENCH", "U0BENCH", "r-bench")


def provider(connection, count: int, low: float, high: float, seed: int) -> None:
    """Child process: a sandbox with ``count`` servers, served over HTTP."""
    from vpsbot.vps.sandbox import Sandbox, SandboxServer

    sandbox = Sandbox(TOKEN, seed=False)
    server = SandboxServer(sandbox).start()
    ids = [sandbox.add_server(f"bench-{n:04d}")["id"] for n in range(count)]
    connection.send((server.url, ids))
    connection.recv()  # go
    chance = random.Random(seed)
    delays = {}
    for server_id in ids:
        delays[server_id] = chance.uniform(low, high)
        sandbox.transition_delay = delays[server_id]
        sandbox.set_status(server_id, "rebooting", then="active")
    connection.send(delays)
    connection.recv()  # report
    gets = Counter(
        int(path.rstrip("/").rsplit("/", 1)[1])
        for method, path in sandbox.calls
        if method == "GET" and path.rstrip("/").rsplit("/", 1)[1].isdigit()
    )
    connection.send(dict(gets))
    connection.recv()
    server.stop()


class CountingNotifier:
    def __init__(self) -> None:
        self.finals = 0
        self.updates = 0
        self._lock = threading.Lock()

    def notify(self, operation, progress) -> None:
        with self._lock:
            self.updates += 1
            if progress.final:
                self.finals += 1


def rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(database_url: str, args: argparse.Namespace) -> dict[str, object]:
    upgrade_database(database_url)
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(
        target=provider,
        args=(child, args.operations, args.min_delay, args.max_delay, args.seed),
    )
    process.start()
    url, ids = parent.recv()
    vps = VpsClient(url, TOKEN, max_retries=0, pool_size=8)
    notifier = CountingNotifier()
    follower = Follower(sessions=sessions, vps=vps, notifier=notifier)

    threads_before = threading.active_count()
    rss_before = rss_mib()
    parent.send("go")
    delays = parent.recv()
    started = time.monotonic()
    for server_id in ids:
        server = vps.get_by_id(server_id)
        follower.follow(ACTOR, "reboot", server, "bench", message_ts=str(server_id))
    setup_gets = len(ids)
    follower.start()

    peak_threads = threading.active_count()
    while follower.open_count():
        peak_threads = max(peak_threads, threading.active_count())
        time.sleep(0.2)
    wall = time.monotonic() - started
    follower.stop()
    peak_rss_growth = rss_mib() - rss_before

    parent.send("report")
    gets = parent.recv()
    parent.send("stop")
    process.join(timeout=10)
    vps.close()
    engine.dispose()

    # One GET per server was made here to read it before following.
    calls = sorted(gets.get(server_id, 0) - 1 for server_id in ids)
    naive = sorted(math.floor(delay) + 1 for delay in delays.values())
    assert setup_gets == len(ids)
    return {
        "operations": len(ids),
        "finals": notifier.finals,
        "updates": notifier.updates,
        "wall": wall,
        "longest_delay": max(delays.values()),
        "threads_before": threads_before,
        "peak_threads": peak_threads,
        "rss_before": rss_before,
        "rss_growth": peak_rss_growth,
        "calls_min": calls[0],
        "calls_median": statistics.median(calls),
        "calls_max": calls[-1],
        "calls_total": sum(calls),
        "naive_median": statistics.median(naive),
        "naive_total": sum(naive),
    }


def report(name: str, figures: dict[str, object]) -> None:
    print(f"\n{name}")
    for key, value in figures.items():
        shown = f"{value:.1f}" if isinstance(value, float) else value
        print(f"  {key:>15}: {shown}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=500)
    parser.add_argument("--min-delay", type=float, default=5.0)
    parser.add_argument("--max-delay", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (optional)")
    parser.add_argument(
        "--skip-sqlite",
        action="store_true",
        help="PostgreSQL only (peak RSS is per process, so run each alone)",
    )
    args = parser.parse_args()

    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            report("SQLite", run(f"sqlite:///{Path(folder) / 'bench.db'}", args))

    if args.postgres:
        server = make_url(args.postgres).set(drivername="postgresql+psycopg")
        name = f"vpsbot_bench_{secrets.token_hex(4)}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            url = server.set(database=name).render_as_string(hide_password=False)
            report("PostgreSQL", run(url, args))
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
