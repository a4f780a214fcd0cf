"""Acknowledgement latency of ``/vps list`` under concurrent senders.

Measures, in one run on one server stack (waitress, 16 threads, 127.0.0.1),
the time from sending a signed slash command to receiving its acknowledgement:

* ``bare``: a Bolt app whose only listener acknowledges ``/vps`` — the floor;
* ``vpsbot``: ``vpsbot serve`` itself, doing its whole job after the
  acknowledgement (policy check, provider list, audit entry, answer through
  the response_url).

Each app runs in a process of its own, as it would in production; the
provider (``vpsbot sandbox``) and a stand-in for Slack's Web API and
response_urls run in two more processes, and the senders in this one. Rounds
alternate between the two apps so that drift on the machine hits both. At the
end the audit log is counted, to show every command was answered, not just
acknowledged.

    python bench/ack_latency.py [--senders 20] [--requests 4000] [--rounds 8]
        [--database-url postgresql+psycopg://…/empty_db]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from sqlalchemy import func, select

from vpsbot import payloads
from vpsbot.store import make_engine, make_session_factory, session_scope
from vpsbot.store.models import AuditEntry

SECRET = "bench-secret"
TEAM, CHANNEL, USER = "T0BENCH", "C0BENCH", "U0BENCH"
SERVER_THREADS = 16

# Run as a child process: the stand-in for Slack, printing its two URLs.
FAKE_SLACK = """
import time
from vpsbot.localslack import LocalSlack
slack = LocalSlack(team_id="T0BENCH").start()
print(slack.api_url, slack.response_url("bench"), flush=True)
while True:
    time.sleep(3600)
"""

# Run as a child process: the bare Bolt app on the same server stack.
BARE_APP = """
import sys, waitress
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
app = App(
    signing_secret=sys.argv[1],
    client=WebClient(token="xoxb-bench", base_url=sys.argv[2]),
    token_verification_enabled=False,
)
@app.command("/vps")
def acknowledge(ack):
    ack()
waitress.serve(
    SlackRequestHandler(app), host="127.0.0.1", port=int(sys.argv[3]),
    threads=int(sys.argv[4]), _quiet=True,
)
"""


def open_channel(url: str, response_url: str) -> None:
    """The admin opens the channel for reads, as a team would."""
    policy = payloads.slash_command(
        "policy read=allow",
        team_id=TEAM,
        channel_id=CHANNEL,
        user_id=USER,
        response_url=response_url,
    )
    requests.post(
        url,
        data=policy.encode(),
        headers=payloads.signed_headers(SECRET, policy),
        timeout=10,
    ).raise_for_status()


def start_fakes(
    python: str, children: list[subprocess.Popen[str]], database_url: str
) -> tuple[dict[str, str], str]:
    """Start the provider sandbox and the Slack stand-in as child processes.

    Returns the environment a ``vpsbot`` process needs to use them (with
    ``database_url``), and the stand-in's response_url.
    """
    vpsbot_cli = str(Path(python).with_name("vpsbot"))
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
    return environment, response_url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def measure(url: str, response_url: str, senders: int, count: int) -> list[float]:
    """Send ``count`` commands from ``senders`` threads; latencies in ms."""
    per_sender = count // senders
    latencies: list[float] = []
    lock = threading.Lock()

    def sender() -> None:
        session = requests.Session()
        mine = []
        for _ in range(per_sender):
            body = payloads.slash_command(
                "list",
                team_id=TEAM,
                channel_id=CHANNEL,
                user_id=USER,
                response_url=response_url,
            )
            headers = payloads.signed_headers(SECRET, body)
            started = time.perf_counter()
            response = session.post(
                url, data=body.encode(), headers=headers, timeout=10
            )
            mine.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"status {response.status_code}: {response.text}")
        with lock:
            latencies.extend(mine)

    with ThreadPoolExecutor(senders) as pool:
        for future in [pool.submit(sender) for _ in range(senders)]:
            future.result()
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def list_entries(database_url: str) -> int:
    sessions = make_session_factory(make_engine(database_url))
    with session_scope(sessions) as session:
        return session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "list")
        )


def wait_for_entries(database_url: str, expected: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while (count := list_entries(database_url)) < expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--database-url",
        help="an empty database for vpsbot (default: a fresh SQLite file)",
    )
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    database_url = args.database_url or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    python = sys.executable
    vpsbot_cli = str(Path(python).with_name("vpsbot"))
    children: list[subprocess.Popen[str]] = []
    try:
        vpsbot_port, bare_port = free_port(), free_port()
        environment, response_url = start_fakes(python, children, database_url)
        environment["PORT"] = str(vpsbot_port)
        children.append(
            subprocess.Popen(
                [vpsbot_cli, "serve", "--host", "127.0.0.1"],
                env=environment,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        )
        children.append(
            subprocess.Popen(
                [
                    python,
                    "-c",
                    BARE_APP,
                    SECRET,
                    environment["SLACK_API_URL"],
                    str(bare_port),
                    str(SERVER_THREADS),
                ],
                stderr=subprocess.DEVNULL,
                text=True,
            )
        )
        vpsbot_url = f"http://127.0.0.1:{vpsbot_port}/slack/events"
        bare_url = f"http://127.0.0.1:{bare_port}/slack/events"
        wait_until_up(f"http://127.0.0.1:{vpsbot_port}/healthz")
        wait_until_up(bare_url)

        open_channel(vpsbot_url, response_url)

        warm_up = args.senders * 5
        measure(bare_url, response_url, args.senders, warm_up)
        measure(vpsbot_url, response_url, args.senders, warm_up)
        wait_for_entries(database_url, warm_up)

        results: dict[str, list[float]] = {"bare": [], "vpsbot": []}
        per_round = args.requests // args.rounds
        for _ in range(args.rounds):
            results["bare"] += measure(bare_url, response_url, args.senders, per_round)
            results["vpsbot"] += measure(
                vpsbot_url, response_url, args.senders, per_round
            )
        answered = wait_for_entries(database_url, warm_up + len(results["vpsbot"]))
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=10)

    print(
        f"database={database_url.split(':')[0]} senders={args.senders} "
        f"requests/app={len(results['bare'])}"
    )
    for name, values in results.items():
        print(
            f"{name:7s} p50={percentile(values, 0.50):6.1f} ms  "
            f"p99={percentile(values, 0.99):6.1f} ms  "
            f"mean={statistics.fmean(values):6.1f} ms"
        )
    for label, fraction in (("p50", 0.50), ("p99", 0.99)):
        ratio = percentile(results["vpsbot"], fraction) / percentile(
            results["bare"], fraction
        )
        print(f"ratio {label} vpsbot/bare = {ratio:.2f}")
    print(f"list commands answered and audited: {answered}")


if __name__ == "__main__":
    main()
