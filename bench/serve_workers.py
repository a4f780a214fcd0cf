"""Acknowledgement latency, throughput and memory of ``vpsbot serve`` by workers.

One command, on PostgreSQL, under 50 concurrent senders of signed ``/vps
list`` commands (the method of ``bench/ack_latency.py``, whose pieces it
reuses). The bare baseline runs throughout; each vpsbot target is started in
turn, measured in rounds that alternate with the baseline's (so that drift on
the machine hits both alike), and stopped before the next, so that no more
than one target's database pools are open at a time:

* ``bare``: the skeleton issue's baseline, a Bolt app whose only listener
  acknowledges ``/vps``, under waitress with 16 threads;
* ``waitress``: vpsbot's app on that same one-process stack, as ``vpsbot
  serve`` ran before it moved to gunicorn;
* ``1w``, ``2w``, ``4w``: ``vpsbot serve --workers N`` (gunicorn, gthread,
  16 threads a worker).

All vpsbot targets share one fresh database (created on the server given,
dropped at the end), the provider sandbox and the Slack stand-in. After each
target the audit log is counted, to show every command was answered; the
resident memory of every worker is read from /proc and the database
connections it holds are sampled while it runs.

    python bench/serve_workers.py [--senders 50] [--requests 2000] [--rounds 4]
        [--targets waitress,1w,2w,4w]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from ack_latency import (
    BARE_APP,
    SECRET,
    SERVER_THREADS,
    free_port,
    measure,
    open_channel,
    percentile,
    start_fakes,
)
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

WORKER_COUNTS = (1, 2, 4)

# Run as a child process: vpsbot's app under waitress in one process, built
# from the environment and logging as ``vpsbot serve`` did before gunicorn.
WAITRESS_APP = """
import os, sys, waitress
from vpsbot.access_log import AccessLog
from vpsbot.app import create_app
from vpsbot.cli import configure_logging
from vpsbot.config import Settings
from vpsbot.store import make_engine, make_session_factory
from vpsbot.web import SlackWsgiApp
settings = Settings.from_env(os.environ)
configure_logging(settings)
engine = make_engine(settings.database_url)
bot = create_app(settings, sessions=make_session_factory(engine))
bot.start_background()
secret = settings.slack_signing_secret.value
app = AccessLog(SlackWsgiApp(bot.bolt, engine, signing_secret=secret))
waitress.serve(
    app, host="127.0.0.1", port=int(sys.argv[1]), threads=int(sys.argv[2]),
    _quiet=True,
)
"""


def wait_until_up(url: str, timeout: float = 120.0) -> None:
    """Wait for any answer at ``url``; a busy machine may be slow to give one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def timed_round(url: str, response_url: str, senders: int, count: int):
    started = time.perf_counter()
    latencies = measure(url, response_url, senders, count)
    return latencies, time.perf_counter() - started


def audited_lists(database_url: str, expected: int, timeout: float = 600) -> int:
    """Wait until ``expected`` list commands are audited; how many were."""
    engine = create_engine(database_url, poolclass=NullPool)
    query = text("SELECT count(*) FROM audit_entries WHERE action = 'list'")
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                count = connection.execute(query).scalar_one()
            if count >= expected or time.monotonic() > deadline:
                return count
            time.sleep(0.5)
    finally:
        engine.dispose()


class ConnectionSampler:
    """Samples the connections open to one database, keeping the peak."""

    def __init__(self, admin: Engine, database: str) -> None:
        self._admin = admin
        self._database = database
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak = 0

    def _run(self) -> None:
        query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name")
        while not self._stop.wait(0.5):
            with self._admin.connect() as connection:
                count = connection.execute(query, {"name": self._database})
                self.peak = max(self.peak, count.scalar_one())

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--targets",
        default="waitress,1w,2w,4w",
        help="which vpsbot targets to measure, comma-separated",
    )
    parser.add_argument(
        "--postgres",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server; a fresh database is made on it for the run",
    )
    args = parser.parse_args()

    server = make_url(args.postgres)
    name = f"vpsbot_bench_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    database_url = server.set(database=name).render_as_string(hide_password=False)

    python = sys.executable
    vpsbot_cli = str(Path(python).with_name("vpsbot"))
    logs = tempfile.TemporaryDirectory()
    children: list[subprocess.Popen[str]] = []
    latencies: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    memory: dict[str, list[float]] = {}
    connections: dict[str, int] = {}

    def spawn(
        label: str, command: list[str], env: dict[str, str]
    ) -> subprocess.Popen[str]:
        log = open(Path(logs.name) / f"{label}.log", "w")  # noqa: SIM115
        return subprocess.Popen(command, env=env, stderr=log, text=True)

    print(f"load average at start: {load_average()}")
    try:
        environment, response_url = start_fakes(python, children, database_url)
        # Migrate once, before the servers start side by side.
        subprocess.run([vpsbot_cli, "db", "upgrade"], env=environment, check=True)

        bare_port = free_port()
        children.append(
            spawn(
                "bare",
                [
                    python,
                    "-c",
                    BARE_APP,
                    SECRET,
                    environment["SLACK_API_URL"],
                    str(bare_port),
                    str(SERVER_THREADS),
                ],
                environment,
            )
        )
        bare_url = f"http://127.0.0.1:{bare_port}/slack/events"
        wait_until_up(bare_url)
        bare_pid = children[-1].pid
        targets: dict[str, list[str]] = {
            "waitress": [python, "-c", WAITRESS_APP, "{port}", str(SERVER_THREADS)],
            **{
                f"{workers}w": [
                    vpsbot_cli,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--workers",
                    str(workers),
                ]
                for workers in WORKER_COUNTS
            },
        }
        chosen = args.targets.split(",")
        targets = {label: targets[label] for label in chosen}
        per_round = args.requests // args.rounds
        warm_up = args.senders * 4
        sent = 0
        for label, command in targets.items():
            port = free_port()
            child = spawn(
                label,
                [part.replace("{port}", str(port)) for part in command],
                {**environment, "PORT": str(port)},
            )
            children.append(child)
            wait_until_up(f"http://127.0.0.1:{port}/healthz")
            url = f"http://127.0.0.1:{port}/slack/events"
            if not sent:
                open_channel(url, response_url)
            measure(bare_url, response_url, args.senders, warm_up)
            measure(url, response_url, args.senders, warm_up)
            sent += warm_up
            with ConnectionSampler(admin, name) as sampler:
                for _ in range(args.rounds):
                    for who, where in ((f"bare {label}", bare_url), (label, url)):
                        values, took = timed_round(
                            where, response_url, args.senders, per_round
                        )
                        latencies.setdefault(who, []).extend(values)
                        seconds[who] = seconds.get(who, 0.0) + took
                sent += per_round * args.rounds
                answered = audited_lists(database_url, sent)
            connections[label] = sampler.peak
            workers = children_of(child.pid)
            memory[label] = [rss_mib(pid) for pid in workers] or [rss_mib(child.pid)]
            if workers:
                memory[label + " master"] = [rss_mib(child.pid)]
            child.terminate()
            child.wait(timeout=90)
            print(f"{label}: {answered} of {sent} list commands answered so far")
        memory["bare"] = [rss_mib(bare_pid)]
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    print(
        f"database=postgresql senders={args.senders} "
        f"requests/target={args.requests} rounds={args.rounds} "
        f"load average at end: {load_average()} bare RSS={memory['bare'][0]:.0f} MiB"
    )
    print(
        "| target | bare p50 / p99 | p50 | p99 | p50 / bare | p99 / bare "
        "| throughput (bare) | throughput / bare | RSS per worker "
        "| database connections at peak |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label in targets:
        values, bare = latencies[label], latencies[f"bare {label}"]
        p50, p99 = percentile(values, 0.50), percentile(values, 0.99)
        bare_p50, bare_p99 = percentile(bare, 0.50), percentile(bare, 0.99)
        rate = len(values) / seconds[label]
        bare_rate = len(bare) / seconds[f"bare {label}"]
        rss = memory[label]
        shown_rss = f"{sum(rss) / len(rss):.0f} MiB"
        if label + " master" in memory:
            shown_rss += f" (x{len(rss)}; master {memory[label + ' master'][0]:.0f})"
        print(
            f"| {label} | {bare_p50:.1f} / {bare_p99:.1f} ms | {p50:.1f} ms "
            f"| {p99:.1f} ms | {p50 / bare_p50:.2f} | {p99 / bare_p99:.2f} "
            f"| {rate:.0f} ({bare_rate:.0f}) req/s | {rate / bare_rate:.2f} "
            f"| {shown_rss} | {connections[label]} |"
        )
    print(f"list commands answered and audited: {answered} of {sent}")


if __name__ == "__main__":
    main()
