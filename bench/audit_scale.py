"""The audit log at 1,000,000 entries: filtered queries, export and verify.

A fresh database per backend (a SQLite file in a temporary folder; a new
PostgreSQL database next to the one ``--postgres`` names, dropped after) is
migrated and filled with N entries carrying correct hashes: one workspace,
10 channels, 40 users, 500 servers, times spread over the last 365 days,
written in append order with ``executemany`` in chunks.

Reported per database:

- ``/vps audit`` queries, exactly as the command runs them (``audit.query``
  in its own transaction, first page of 20): by server id, by server name,
  by user, and by a one-day time range, each with 100 random values; p50,
  p95 and max in milliseconds. The first query of all, which also opens a
  connection, is shown on its own line.
- ``vpsbot audit export`` of every entry (JSON lines to /dev/null) in a
  child process: entries per second, and the child's resident memory after
  10%, 50% and 100% of the entries, to show it stays flat.
- ``vpsbot audit verify`` of every entry in a child process: seconds and
  peak resident memory.

    python bench/audit_scale.py [--entries 1000000]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]
        [--skip-sqlite]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vpsbot import audit  # noqa: E402
from vpsbot.store import (  # noqa: E402
    make_engine,
    make_session_factory,
    session_scope,
    upgrade_database,
)
from vpsbot.store.models import AuditEntry, AuditHead  # noqa: E402

logger = logging.getLogger("bench.audit_scale")

TEAM = "T0BENCH"
CHANNELS = [f"C0BENCH{n:02d}" for n in range(10)]
USERS = [f"U0BENCH{n:02d}" for n in range(40)]
SERVERS = list(range(1000, 1500))
ACTIONS = sorted(audit.ACTIONS)
OUTCOMES = ["succeeded"] * 8 + ["failed", "denied"]
SPAN = timedelta(days=365)
END = datetime(2026, 12, 1, tzinfo=UTC)
CHUNK = 10_000
QUERIES_PER_KIND = 100
PAGE_SIZE = 20


def fill(url: str, count: int, seed: int) -> float:
    """Append ``count`` hashed entries; seconds taken."""
    rng = random.Random(seed)
    engine = make_engine(url)
    table = AuditEntry.__table__
    step = SPAN / count
    start = END - SPAN
    prev_hash = audit.GENESIS_HASH
    began = time.perf_counter()
    with engine.begin() as connection:
        rows: list[dict[str, object]] = []
        for seq in range(1, count + 1):
            server = rng.choice(SERVERS)
            entry = SimpleNamespace(
                seq=seq,
                at=start + step * seq,
                team=TEAM,
                channel=rng.choice(CHANNELS),
                user=rng.choice(USERS),
                action=rng.choice(ACTIONS),
                server_id=server,
                server_name=f"web-{server}",
                outcome=rng.choice(OUTCOMES),
                detail=f"bench entry {seq}",
                request_id=f"r-{seq:08d}",
                prev_hash=prev_hash,
            )
            entry.hash = audit.entry_hash(entry)
            prev_hash = entry.hash
            rows.append(vars(entry))
            if len(rows) == CHUNK:
                connection.execute(insert(table), rows)
                rows = []
        if rows:
            connection.execute(insert(table), rows)
        connection.execute(
            insert(AuditHead.__table__),
            [{"id": 1, "seq": count, "hash": prev_hash, "updated_at": END}],
        )
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("VACUUM ANALYZE audit_entries")
        else:
            connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    return time.perf_counter() - began


def time_queries(url: str, seed: int) -> dict[str, list[float]]:
    """Milliseconds per ``audit.query`` call, by kind of filter."""
    rng = random.Random(seed + 1)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    kinds = {
        "server id": lambda: {"server_id": rng.choice(SERVERS)},
        "server name": lambda: {"server_name": f"web-{rng.choice(SERVERS)}"},
        "user": lambda: {"user": rng.choice(USERS)},
        "one-day range": lambda: _day_range(rng),
    }
    # The very first query also opens the pool's first connection; it is
    # timed on its own and left out of the figures below.
    began = time.perf_counter()
    with session_scope(sessions) as session:
        audit.query(session, team=TEAM, channel=CHANNELS[0], limit=PAGE_SIZE)
    timings: dict[str, list[float]] = {
        "first query (opens a connection)": [(time.perf_counter() - began) * 1000]
    }
    for kind, make_filter in kinds.items():
        found = []
        samples = []
        for _ in range(QUERIES_PER_KIND):
            filters = make_filter()
            channel = rng.choice(CHANNELS)
            began = time.perf_counter()
            with session_scope(sessions) as session:
                entries = audit.query(
                    session, team=TEAM, channel=channel, limit=PAGE_SIZE, **filters
                )
            samples.append((time.perf_counter() - began) * 1000)
            found.append(len(entries))
        timings[kind] = samples
        logger.info(
            "%s: %d entries found per page on average", kind, sum(found) // len(found)
        )
    engine.dispose()
    return timings


def _day_range(rng: random.Random) -> dict[str, datetime]:
    since = END - SPAN + timedelta(days=rng.randrange(364))
    return {"since": since, "until": since + timedelta(days=1)}


class _RssProbe:
    """A text sink that drops what it gets and notes RSS at given line counts."""

    def __init__(self, marks: list[int]) -> None:
        self._marks = sorted(marks)
        self.lines = 0
        self.rss_mib: dict[int, float] = {}

    def write(self, chunk: str) -> int:
        self.lines += chunk.count("\n")
        while self._marks and self.lines >= self._marks[0]:
            self.rss_mib[self._marks.pop(0)] = _rss_mib()
        return len(chunk)


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _export_child(url: str, count: int, queue: multiprocessing.Queue) -> None:
    sessions = make_session_factory(make_engine(url))
    probe = _RssProbe([count // 10, count // 2, count])
    start_rss = _rss_mib()
    began = time.perf_counter()
    with session_scope(sessions) as session:
        written = audit.export(session, probe)  # type: ignore[arg-type]
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((written, seconds, start_rss, probe.rss_mib, peak))


def _verify_child(url: str, queue: multiprocessing.Queue) -> None:
    sessions = make_session_factory(make_engine(url))
    began = time.perf_counter()
    with session_scope(sessions) as session:
        result = audit.verify(session)
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((result, seconds, peak))


def _in_child(target, *args):  # type: ignore[no-untyped-def]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    outcome = queue.get()
    process.join()
    return outcome


def run(name: str, url: str, count: int, seed: int) -> None:
    upgrade_database(url)
    fill_s = fill(url, count, seed)
    print(f"\n## {name}: {count:,} entries (filled in {fill_s:.0f} s)")

    timings = time_queries(url, seed)
    print("\n| `/vps audit` filter | p50 | p95 | max |")
    print("| --- | ---: | ---: | ---: |")
    for kind, samples in timings.items():
        ordered = sorted(samples)
        p95 = ordered[int(len(ordered) * 0.95) - 1]
        print(
            f"| {kind} | {statistics.median(ordered):.2f} ms | {p95:.2f} ms "
            f"| {ordered[-1]:.2f} ms |"
        )

    written, seconds, start_rss, marks, peak = _in_child(_export_child, url, count)
    at_marks = ", ".join(f"{mark:,}: {rss:.0f} MiB" for mark, rss in marks.items())
    print(
        f"\nexport: {written:,} entries in {seconds:.1f} s = "
        f"{written / seconds:,.0f} entries/s; RSS at start {start_rss:.0f} MiB, "
        f"after {at_marks}; peak {peak:.0f} MiB"
    )

    result, seconds, peak = _in_child(_verify_child, url)
    print(
        f"verify: ok={result.ok}, {result.checked:,} entries in {seconds:.1f} s; "
        f"peak RSS {peak:.0f} MiB"
    )


def _fresh_postgres(server_url: str) -> tuple[str, str]:
    """Create an empty database beside ``server_url``'s; (its URL, its name)."""
    name = f"vpsbot_bench_audit_{os.getpid()}"
    engine = make_engine(server_url)
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(False), name


def _drop_postgres(server_url: str, name: str) -> None:
    engine = make_engine(server_url)
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL to create a database by")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{Path(folder) / 'audit.db'}"
            run("SQLite", url, args.entries, args.seed)
    if args.postgres:
        url, name = _fresh_postgres(args.postgres)
        try:
            run("PostgreSQL", url, args.entries, args.seed)
        finally:
            _drop_postgres(args.postgres, name)


if __name__ == "__main__":
    main()
