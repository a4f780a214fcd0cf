"""Acknowledgement latency, throughput and memory of ``vpsbot serve`` by workers.

One command, on PostgreSQL, under 50 concurrent senders of signed ``/vps
list`` commands (the method of ``bench/ack_latency.py``, whose pieces it
reuses). Every target runs at once, each in processes of its own, and rounds
alternate between them so that drift on the machine hits all alike:

* ``bare``: the skeleton issue's baseline, a Bolt app whose only listener
  acknowledges ``/vps``, under waitress with 16 threads;
* ``waitress``: vpsbot's app on that same one-process stack, as ``vpsbot
  serve`` ran before it moved to gunicorn;
* ``1w``, ``2w``, ``4w``: ``vpsbot serve --workers N`` (gunicorn, gthread,
  16 threads a worker).

All vpsbot targets share one fresh database (created on the server given,
dropped at the end), the provider sandbox and the Slack stand-in. At the end
the audit log is counted, to show every command was answered, and the
resident memory of every worker is read from /proc.

    python bench/serve_workers.py [--senders 50] [--requests 2000] [--rounds 4]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from ack_latency import (
    BARE_APP,
    CHANNEL,
    FAKE_SLACK,
    SECRET,
    SERVER_THREADS,
    TEAM,
    USER,
    free_port,
    measure,
    percentile,
    wait_for_entries,
)
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from vpsbot import payloads

WORKER_COUNTS = (1, 2, 4)

# Run as a child process: vpsbot's app under waitress in one process, built
# from the environment as ``vpsbot serve`` built it before gunicorn.
WAITRESS_APP = """
import os, sys, waitress
from vpsbot.access_log import AccessLog
from vpsbot.app import create_app
from vpsbot.config import Settings
from vpsbot.store import make_engine, make_session_factory
from vpsbot.web import SlackWsgiApp
settings = Settings.from_env(os.environ)
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


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
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
    print(f"load average at start: {load_average()}")
    try:
        sandbox_port = free_port()
        children.append(
            subprocess.Popen(
                [vpsbot_cli, "sandbox", "--port", str(sandbox_port)],
                stdout=subprocess.DEVNULL,
                text=True,
            )
        )
        slack = subprocess.Popen(
            [python, "-c", FAKE_SLACK], stdout=subprocess.PIPE, text=True
        )
        children.append(slack)
        assert slack.stdout is not None
        slack_api, response_url = slack.stdout.readline().split()
        environment = {
            **os.environ,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_API_URL": slack_api,
            "VPS_API_URL": f"http://127.0.0.1:{sandbox_port}/api/v1/",
            "VPS_API_TOKEN": "sandbox-token",
            "DATABASE_URL": database_url,
            "VPSBOT_ADMINS": USER,
        }
        # Migrate once, before the servers start side by side.
        subprocess.run([vpsbot_cli, "db", "upgrade"], env=environment, check=True)

        ports: dict[str, int] = {}
        pids: dict[str, int] = {}

        def start(label: str, command: list[str], env: dict[str, str]) -> None:
            log = open(Path(logs.name) / f"{label}.log", "w")  # noqa: SIM115
            child = subprocess.Popen(command, env=env, stderr=log, text=True)
            children.append(child)
            pids[label] = child.pid

        ports["bare"] = free_port()
        start(
            "bare",
            [
                python,
                "-c",
                BARE_APP,
                SECRET,
                slack_api,
                str(ports["bare"]),
                str(SERVER_THREADS),
            ],
            environment,
        )
        ports["waitress"] = free_port()
        start(
            "waitress",
            [python, "-c", WAITRESS_APP, str(ports["waitress"]), str(SERVER_THREADS)],
            environment,
        )
        for workers in WORKER_COUNTS:
            label = f"{workers}w"
            ports[label] = free_port()
            start(
                label,
                [vpsbot_cli, "serve", "--host", "127.0.0.1", "--workers", str(workers)],
                {**environment, "PORT": str(ports[label])},
            )
        urls = {
            label: f"http://127.0.0.1:{port}/slack/events"
            for label, port in ports.items()
        }
        wait_until_up(urls["bare"])
        for label in ("waitress", *(f"{w}w" for w in WORKER_COUNTS)):
            wait_until_up(f"http://127.0.0.1:{ports[label]}/healthz")

        policy = payloads.slash_command(
            "policy read=allow",
            team_id=TEAM,
            channel_id=CHANNEL,
            user_id=USER,
            response_url=response_url,
        )
        requests.post(
            urls["1w"],
            data=policy.encode(),
            headers=payloads.signed_headers(SECRET, policy),
            timeout=10,
        ).raise_for_status()

        warm_up = args.senders * 4
        for url in urls.values():
            measure(url, response_url, args.senders, warm_up)
        vpsbot_labels = [label for label in urls if label != "bare"]
        sent = warm_up * len(vpsbot_labels)
        wait_for_entries(database_url, sent, timeout=300)

        latencies: dict[str, list[float]] = {label: [] for label in urls}
        seconds: dict[str, float] = {label: 0.0 for label in urls}
        per_round = args.requests // args.rounds
        for _ in range(args.rounds):
            for label, url in urls.items():
                values, took = timed_round(url, response_url, args.senders, per_round)
                latencies[label] += values
                seconds[label] += took
        sent += sum(len(latencies[label]) for label in vpsbot_labels)
        answered = wait_for_entries(database_url, sent, timeout=600)

        memory: dict[str, list[float]] = {}
        for label, pid in pids.items():
            workers = children_of(pid) if label.endswith("w") else []
            memory[label] = [rss_mib(p) for p in workers] or [rss_mib(pid)]
            if workers:
                memory[label + " master"] = [rss_mib(pid)]
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

    count = len(latencies["bare"])
    print(
        f"database=postgresql senders={args.senders} requests/target={count} "
        f"rounds={args.rounds} load average at end: {load_average()}"
    )
    bare_p50 = percentile(latencies["bare"], 0.50)
    bare_p99 = percentile(latencies["bare"], 0.99)
    bare_rate = count / seconds["bare"]
    print(
        "| target | p50 | p99 | throughput | p50 / bare | p99 / bare "
        "| throughput / bare | RSS per worker |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, values in latencies.items():
        p50, p99 = percentile(values, 0.50), percentile(values, 0.99)
        rate = len(values) / seconds[label]
        rss = memory[label]
        shown_rss = f"{sum(rss) / len(rss):.0f} MiB"
        if label + " master" in memory:
            shown_rss += f" (x{len(rss)}; master {memory[label + ' master'][0]:.0f})"
        print(
            f"| {label} | {p50:.1f} ms | {p99:.1f} ms | {rate:.0f} req/s "
            f"| {p50 / bare_p50:.2f} | {p99 / bare_p99:.2f} "
            f"| {rate / bare_rate:.2f} | {shown_rss} |"
        )
    print(f"list commands answered and audited: {answered} of {sent}")


if __name__ == "__main__":
    main()
