"""Who follows an operation: leases on SQLite and PostgreSQL, and several
real processes sharing one PostgreSQL database.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest

from tests.ops.conftest import (
    ACTOR,
    TOKEN,
    make_follower,
    server_named,
    start_reboot,
)
from vpsbot.store import FollowedOperationRepository, session_scope
from vpsbot.vps import VpsClient
from vpsbot.vps.sandbox import Sandbox, SandboxServer

REPO_ROOT = Path(__file__).resolve().parents[2]


def _owners(session_factory, ids):
    with session_scope(session_factory) as session:
        repository = FollowedOperationRepository(session)
        return {i: repository.get(i).owner for i in ids}


def _follow_many(follower, vps, count):
    ids = []
    for number in range(count):
        server = server_named(vps, "web-01")
        ids.append(
            follower.follow(
                ACTOR, "reboot", server, f"op {number}", message_ts=f"1.{number}"
            )
        )
    return ids


def test_two_followers_never_take_the_same_operation(
    session_factory, vps, notifier, clock
):
    first = make_follower(session_factory, vps, notifier, clock, owner="a")
    second = make_follower(session_factory, vps, notifier, clock, owner="b")
    ids = _follow_many(first, vps, 40)
    taken: dict[str, list[int]] = {}
    barrier = threading.Barrier(2)

    def claim(name: str) -> None:
        barrier.wait()
        got: list[int] = []
        for _ in range(10):
            with session_scope(session_factory) as session:
                got += FollowedOperationRepository(session).claim(
                    owner=name, now=clock.utc(), ttl_seconds=60, limit=3
                )
        taken[name] = got

    threads = [threading.Thread(target=claim, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert set(taken["a"]).isdisjoint(taken["b"])
    assert sorted(taken["a"] + taken["b"]) == ids
    owners = _owners(session_factory, ids)
    assert {i for i, o in owners.items() if o == "a"} == set(taken["a"])
    first.stop()
    second.stop()


def test_a_live_owner_keeps_its_operations(session_factory, vps, notifier, clock):
    sandbox_owner = make_follower(session_factory, vps, notifier, clock, owner="a")
    other = make_follower(session_factory, vps, notifier, clock, owner="b")
    sandbox_owner_ids = _follow_many(sandbox_owner, vps, 3)
    sandbox_owner.run_once()

    for _ in range(4):
        clock.advance(35)
        sandbox_owner.run_once()
        other.run_once()

    assert set(_owners(session_factory, sandbox_owner_ids).values()) == {"a"}
    other.stop()


def test_an_expired_lease_is_taken_over_after_a_crash(
    session_factory, vps, notifier, clock, sandbox
):
    crashed = make_follower(session_factory, vps, notifier, clock, owner="crashed")
    operation_id = start_reboot(vps, crashed)
    crashed.run_once()  # takes the operation, then "dies": never runs again
    with session_scope(session_factory) as session:
        stale = FollowedOperationRepository(session).get(operation_id)
    assert stale.owner == "crashed"

    restarted = make_follower(session_factory, vps, notifier, clock, owner="new")
    clock.advance(59)
    restarted.run_once()
    assert _owners(session_factory, [operation_id]) == {operation_id: "crashed"}

    clock.advance(2)
    restarted.run_once()
    assert _owners(session_factory, [operation_id]) == {operation_id: "new"}
    for _ in range(10):
        clock.advance(30)
        restarted.run_once()
    assert [p.state for p in notifier.progress()] == ["settled"]

    # The old owner, were it to wake up, can no longer write or notify.
    crashed.advance(stale)
    assert len(notifier.progress()) == 1
    restarted.stop()


def test_stopping_releases_operations_for_others_at_once(
    session_factory, vps, notifier, clock
):
    leaving = make_follower(session_factory, vps, notifier, clock, owner="leaving")
    ids = _follow_many(leaving, vps, 5)
    leaving.run_once()
    leaving.stop()

    staying = make_follower(session_factory, vps, notifier, clock, owner="staying")
    staying.run_once()

    assert set(_owners(session_factory, ids).values()) == {"staying"}
    staying.stop()


def test_finished_operations_are_pruned_after_a_week(
    session_factory, vps, notifier, clock, follower
):
    operation_id = start_reboot(vps, follower)
    for _ in range(10):
        clock.advance(30)
        follower.run_once()
    assert follower.open_count() == 0

    clock.advance(timedelta(days=8).total_seconds())
    follower._last_prune = None
    follower.run_once()

    with session_scope(session_factory) as session:
        assert FollowedOperationRepository(session).get(operation_id) is None


# Several processes on one PostgreSQL database


@pytest.mark.postgres
def test_each_operation_is_followed_by_exactly_one_of_four_processes(
    database_url, session_factory, tmp_path
):
    sandbox = Sandbox(TOKEN, transition_delay=1.5, seed=False)
    with SandboxServer(sandbox) as server, VpsClient(server.url, TOKEN) as vps:
        inserter = make_follower(
            session_factory, vps, None, _WallClock(), owner="inserter"
        )
        ids = []
        for number in range(48):
            added = sandbox.add_server(f"mp-{number:02d}")
            vps.reboot(added["id"])
            ids.append(
                inserter.follow(
                    ACTOR,
                    "reboot",
                    vps.get_by_id(added["id"]),
                    f"op {number}",
                    message_ts=f"2.{number}",
                )
            )
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.ops.follow_worker",
                    database_url,
                    server.url,
                    str(tmp_path / f"worker-{n}.jsonl"),
                    f"worker-{n}",
                ],
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for n in range(4)
        ]
        _start_together(tmp_path, workers)
        outputs = [worker.communicate(timeout=90)[0] for worker in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output.decode()

    notes = [
        json.loads(line)
        for path in tmp_path.glob("worker-*.jsonl")
        for line in path.read_text().splitlines()
    ]
    finals = defaultdict(list)
    senders = defaultdict(set)
    for note in notes:
        senders[note["op"]].add(note["owner"])
        if note["state"] != "following":
            finals[note["op"]].append(note)
    assert sorted(finals) == ids
    assert all(len(final) == 1 for final in finals.values())
    assert all(final[0]["status"] == "active" for final in finals.values())
    assert all(len(owners) == 1 for owners in senders.values())
    assert len({owner for owners in senders.values() for owner in owners}) > 1
    with session_scope(session_factory) as session:
        assert FollowedOperationRepository(session).count_open() == 0


def _start_together(folder: Path, workers: list[subprocess.Popen]) -> None:
    """Let the workers go once all are ready, so that they compete."""
    for _ in range(3000):
        if len(list(folder.glob("*.ready"))) == len(workers):
            break
        if any(worker.poll() is not None for worker in workers):
            break
        threading.Event().wait(0.02)
    (folder / "go").touch()


class _WallClock:
    def utc(self):
        from vpsbot.ops.tracking import utc_now

        return utc_now()
