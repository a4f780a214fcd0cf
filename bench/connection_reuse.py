"""Does the VPS.org client reuse its connections?

Sends N reads (``get_by_id`` and ``get_all``, alternating) from one client,
first from one thread and then from eight at once, against the sandbox over
real HTTP, and counts the TCP connections the sandbox accepted. The baseline
is the same reads sent with a bare ``requests.get`` each, which opens a
connection per request.

    python bench/connection_reuse.py [--reads 200]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from vpsbot.vps import VpsClient
from vpsbot.vps.sandbox import Sandbox, SandboxServer


def run(reads: int, threads: int) -> tuple[int, float]:
    sandbox = Sandbox(token="bench-token")
    with SandboxServer(sandbox) as server:
        client = VpsClient(server.url, "bench-token", pool_size=threads)
        first = client.get_all()[0].id

        def read(n: int) -> None:
            if n % 2:
                client.get_by_id(first)
            else:
                client.get_all()

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(read, range(reads)))
        elapsed = time.perf_counter() - started
        client.close()
        return server.connections_opened, elapsed


def run_baseline(reads: int) -> tuple[int, float]:
    sandbox = Sandbox(token="bench-token")
    with SandboxServer(sandbox) as server:
        headers = {"Authorization": "Bearer bench-token"}
        started = time.perf_counter()
        for n in range(reads):
            path = "servers/12345/" if n % 2 else "servers/"
            requests.get(server.url.rstrip("/") + "/" + path, headers=headers).json()
        elapsed = time.perf_counter() - started
        return server.connections_opened, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=200)
    args = parser.parse_args()
    connections, elapsed = run_baseline(args.reads)
    print(
        f"baseline requests.get reads={args.reads} connections_opened={connections} "
        f"({args.reads / elapsed:.0f} reads/s)"
    )
    for threads in (1, 8):
        connections, elapsed = run(args.reads, threads)
        print(
            f"threads={threads} reads={args.reads + 1} "
            f"connections_opened={connections} "
            f"({(args.reads + 1) / elapsed:.0f} reads/s)"
        )


if __name__ == "__main__":
    main()
