"""Acknowledgement latency of ``/vps list`` under concurrent senders.

Measures, in one run on one server stack (waitress on 127.0.0.1), the time
from sending a signed slash command to receiving Slack's acknowledgement:

* ``bare``: a Bolt app whose only listener acknowledges ``/vps`` — the floor;
* ``vpsbot``: the real app, doing its whole job after the acknowledgement
  (policy check, provider list against the in-process sandbox, audit entry,
  answer through the response_url to a local stand-in for Slack).

Rounds alternate between the two so that drift on the machine hits both.

    python bench/ack_latency.py [--senders 20] [--requests 1000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import waitress
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from vpsbot import payloads
from vpsbot.app import create_app
from vpsbot.config import Secret, Settings
from vpsbot.localslack import LocalSlack
from vpsbot.store import (
    PolicyRepository,
    make_engine,
    make_session_factory,
    session_scope,
    upgrade_database,
)
from vpsbot.vps import VpsClient
from vpsbot.vps.sandbox import Sandbox, SandboxServer
from vpsbot.web import SlackWsgiApp

SECRET = "bench-secret"
TEAM, CHANNEL, USER = "T0BENCH", "C0BENCH", "U0BENCH"
SERVER_THREADS = 16


def serve(wsgi_app: Callable[..., Any]) -> tuple[str, Any]:
    server = waitress.create_server(
        wsgi_app, host="127.0.0.1", port=0, threads=SERVER_THREADS
    )
    threading.Thread(target=server.run, daemon=True).start()
    return f"http://127.0.0.1:{server.effective_port}/slack/events", server


def bare_app(slack_api: str) -> App:
    app = App(
        signing_secret=SECRET,
        client=WebClient(token="xoxb-bench", base_url=slack_api),
        token_verification_enabled=False,
    )

    @app.command("/vps")
    def acknowledge(ack: Any) -> None:
        ack()

    return app


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    database_url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    upgrade_database(database_url)
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        PolicyRepository(session).set_rules(
            team_id=TEAM, channel_id=CHANNEL, rules={"read": "allow"}, updated_by=USER
        )

    sandbox = SandboxServer(Sandbox(token="bench-token"))
    sandbox.start()
    slack = LocalSlack(team_id=TEAM).start()
    settings = Settings(
        slack_signing_secret=Secret(SECRET), slack_api_url=slack.api_url, admins=(USER,)
    )
    bot = create_app(
        settings,
        vps=VpsClient(sandbox.url, "bench-token"),
        sessions=sessions,
        slack_client=WebClient(token="xoxb-bench", base_url=slack.api_url),
    )
    vpsbot_url, vpsbot_server = serve(SlackWsgiApp(bot.bolt, engine))
    bare_url, bare_server = serve(SlackRequestHandler(bare_app(slack.api_url)))
    response_url = slack.response_url("bench")

    measure(bare_url, response_url, args.senders, args.senders * 5)
    measure(vpsbot_url, response_url, args.senders, args.senders * 5)
    bot.background.wait_idle(120)

    results: dict[str, list[float]] = {"bare": [], "vpsbot": []}
    per_round = args.requests // args.rounds
    for _ in range(args.rounds):
        results["bare"] += measure(bare_url, response_url, args.senders, per_round)
        results["vpsbot"] += measure(vpsbot_url, response_url, args.senders, per_round)
        bot.background.wait_idle(300)
    answered = len(slack.responses("bench"))

    print(f"senders={args.senders} requests/app={len(results['bare'])}")
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
    print(f"answers posted to the response_url: {answered}")

    vpsbot_server.close()
    bare_server.close()
    bot.close()
    slack.stop()
    sandbox.stop()
    tmp.cleanup()


if __name__ == "__main__":
    main()
