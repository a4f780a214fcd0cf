"""Following long operations: polling, backoff, the end, and notifications.

The sandbox and the follower share one fake clock, so every wait is a jump
of the clock and each test runs in a moment.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.ops.conftest import (
    ACTOR,
    RecordingNotifier,
    make_follower,
    server_named,
    start_reboot,
)
from vpsbot.ops.tracking import Backoff, NotifyFailedError, NotifyLaterError
from vpsbot.store import FollowedOperationRepository, session_scope


def _row(session_factory, operation_id):
    with session_scope(session_factory) as session:
        return FollowedOperationRepository(session).get(operation_id)


def _gets(sandbox, server_id):
    path = f"/api/v1/servers/{server_id}/"
    return [p for method, p in sandbox.calls if method == "GET" and p == path]


def _run_to_end(follower, session_factory, clock, operation_id, *, limit=200):
    """Jump from one due moment to the next until the operation finishes."""
    for _ in range(limit):
        row = _row(session_factory, operation_id)
        if row.finished_at is not None:
            return row
        clock.to(row.next_poll_at)
        follower.run_once()
    raise AssertionError("the operation did not finish")


def test_backoff_schedule_without_jitter():
    backoff = Backoff(jitter=0.0)

    delays = [backoff.delay(polls) for polls in range(9)]

    assert delays == [2.0, 3.0, 4.5, 6.75, 10.125, 15.1875, 22.78125, 30.0, 30.0]


def test_backoff_jitter_stays_within_its_fraction():
    backoff = Backoff(jitter=0.1)

    assert backoff.delay(0, lambda: 0.0) == pytest.approx(1.8)
    assert backoff.delay(0, lambda: 0.999999) == pytest.approx(2.2, rel=1e-5)


def test_a_reboot_is_followed_until_active_with_one_final_message(
    follower, session_factory, clock, sandbox, vps, notifier
):
    operation_id = start_reboot(vps, follower)
    server_id = server_named(vps, "web-01").id
    sandbox.reset_calls()

    row = _run_to_end(follower, session_factory, clock, operation_id)

    # Polls at 2, 5, 9.5 and 16.25 s see "rebooting"; 26.375 s sees "active".
    assert len(_gets(sandbox, server_id)) == 5
    [progress] = notifier.progress()
    assert (progress.state, progress.status) == ("settled", "active")
    assert progress.elapsed == pytest.approx(26.375)
    assert (row.result, row.last_status, row.polls) == ("settled", "active", 5)
    [(operation, _)] = notifier.seen
    assert operation.message_ts == "1700000001.000100"
    assert operation.headline == "rebooted *web-01*"
    assert operation.request_id == ACTOR.request_id


def test_the_poll_schedule_backs_off(follower, session_factory, clock, vps, sandbox):
    sandbox.transition_delay = 1000.0
    operation_id = start_reboot(vps, follower)
    started = _row(session_factory, operation_id).started_at
    moments = []

    for _ in range(9):
        row = _row(session_factory, operation_id)
        moments.append((row.next_poll_at - started).total_seconds())
        clock.to(row.next_poll_at)
        follower.run_once()

    # Waits of 2, 3, 4.5, 6.75, 10.125, 15.1875, 22.78125, then 30 s at most.
    assert moments == [
        2.0,
        5.0,
        9.5,
        16.25,
        26.375,
        41.5625,
        64.34375,
        94.34375,
        124.34375,
    ]


def test_a_status_change_is_shown_before_the_end(
    follower, session_factory, clock, sandbox, vps, notifier
):
    operation_id = start_reboot(vps, follower)
    server_id = server_named(vps, "web-01").id
    clock.advance(2)
    follower.run_once()
    sandbox.set_status(server_id, "starting", then="active")

    _run_to_end(follower, session_factory, clock, operation_id)

    states = [(p.state, p.status) for p in notifier.progress()]
    assert states == [("following", "starting"), ("settled", "active")]


def test_the_elapsed_time_is_refreshed_now_and_then(
    follower, session_factory, clock, sandbox, vps, notifier
):
    sandbox.transition_delay = 100.0
    operation_id = start_reboot(vps, follower)

    _run_to_end(follower, session_factory, clock, operation_id)

    shown = [(p.state, p.status, round(p.elapsed, 2)) for p in notifier.progress()]
    # The time moves on between polls (2, 5, … 94.3, 124.3 s); the message is
    # redrawn at most every 30 s, then once more at the end.
    assert shown == [
        ("following", "rebooting", 41.56),
        ("following", "rebooting", 94.34),
        ("settled", "active", 124.34),
    ]


def test_a_create_shows_the_new_address_at_the_end(
    follower, session_factory, clock, vps, notifier
):
    created = vps.create(name="web-03", plan_id=1, os_id=5, location="us-west")
    operation_id = follower.follow(
        ACTOR, "create", created, "created *web-03*", message_ts="1.1"
    )

    row = _run_to_end(follower, session_factory, clock, operation_id)

    [progress] = notifier.progress()
    assert (progress.state, progress.status) == ("settled", "active")
    assert progress.ip_address is not None
    assert progress.ip_address.startswith("203.0.113.")
    assert progress.server is not None and progress.server.name == "web-03"
    assert row.ip_address == progress.ip_address


def test_retry_after_from_the_provider_is_honoured(
    follower, session_factory, clock, sandbox, vps, notifier
):
    operation_id = start_reboot(vps, follower)
    server_id = server_named(vps, "web-01").id
    sandbox.fail_next(429, retry_after=40, path_contains=f"/servers/{server_id}/")
    sandbox.reset_calls()

    clock.advance(2)
    follower.run_once()
    row = _row(session_factory, operation_id)
    assert row.last_error == "rate_limited"
    assert (row.next_poll_at - row.started_at).total_seconds() == 42.0

    clock.advance(39.5)
    follower.run_once()
    assert len(_gets(sandbox, server_id)) == 1

    clock.advance(0.5)
    follower.run_once()
    assert len(_gets(sandbox, server_id)) == 2
    assert [p.status for p in notifier.progress()] == ["active"]


def test_provider_failures_are_retried_with_backoff(
    follower, session_factory, clock, sandbox, vps, notifier
):
    operation_id = start_reboot(vps, follower)
    server_id = server_named(vps, "web-01").id
    sandbox.fail_next(503, times=3, path_contains=f"/servers/{server_id}/")

    row = _run_to_end(follower, session_factory, clock, operation_id)

    assert row.result == "settled"
    assert [p.state for p in notifier.progress()] == ["settled"]


def test_it_gives_up_at_the_timeout(session_factory, clock, sandbox, vps, notifier):
    follower = make_follower(session_factory, vps, notifier, clock, timeout=120)
    server_id = server_named(vps, "db-01").id
    operation_id = start_reboot(vps, follower, "db-01")
    sandbox.set_status(server_id, "rebooting")  # and never settles

    row = _run_to_end(follower, session_factory, clock, operation_id)

    final = notifier.progress()[-1]
    assert (final.state, final.status, final.elapsed) == ("gave_up", "rebooting", 120)
    assert row.result == "gave_up"
    follower.stop()


def test_a_deleted_server_is_gone(
    follower, session_factory, clock, sandbox, vps, notifier
):
    operation_id = start_reboot(vps, follower)
    vps.delete(server_named(vps, "web-01").id)

    row = _run_to_end(follower, session_factory, clock, operation_id)

    assert [p.state for p in notifier.progress()] == ["gone"]
    assert row.result == "gone"
    assert row.polls == 1


def test_a_new_server_not_yet_visible_is_not_gone(
    follower, session_factory, clock, sandbox, vps, notifier
):
    created = vps.create(name="web-04", plan_id=1, os_id=5, location="us-west")
    operation_id = follower.follow(
        ACTOR, "create", created, "created *web-04*", message_ts="1.2"
    )
    sandbox.fail_next(404, path_contains=f"/servers/{created.id}/")

    row = _run_to_end(follower, session_factory, clock, operation_id)

    assert row.result == "settled"
    assert [p.state for p in notifier.progress()] == ["settled"]


def test_another_resting_status_ends_it_once_seen_twice(
    follower, session_factory, clock, sandbox, vps, notifier
):
    operation_id = start_reboot(vps, follower)
    server_id = server_named(vps, "web-01").id
    sandbox.set_status(server_id, "error")

    row = _run_to_end(follower, session_factory, clock, operation_id)

    assert [(p.state, p.status) for p in notifier.progress()] == [
        ("following", "error"),
        ("settled", "error"),
    ]
    # Seen at 2 s, confirmed 15 s later.
    assert row.polls == 2
    assert (row.ended_at - row.started_at).total_seconds() == 17.0


def test_a_passing_status_is_not_taken_for_the_end(
    follower, session_factory, clock, sandbox, vps, notifier
):
    operation_id = start_reboot(vps, follower)
    server_id = server_named(vps, "web-01").id
    sandbox.set_status(server_id, "stopped")
    clock.advance(2)
    follower.run_once()
    sandbox.set_status(server_id, "active")

    row = _run_to_end(follower, session_factory, clock, operation_id)

    assert [(p.state, p.status) for p in notifier.progress()] == [
        ("following", "stopped"),
        ("settled", "active"),
    ]
    assert row.result == "settled"


def test_the_last_message_is_retried_after_slack_asks_to_wait(
    follower, session_factory, clock, vps, notifier
):
    operation_id = start_reboot(vps, follower)
    notifier.script.append(NotifyLaterError(12))
    for moment in (2, 3, 4.5, 6.75, 10.125):
        clock.advance(moment)
        follower.run_once()
    row = _row(session_factory, operation_id)
    assert (row.result, row.finished_at) == ("settled", None)
    assert notifier.attempts == 1
    retry_at = row.next_poll_at

    clock.to(retry_at - timedelta(seconds=1))
    follower.run_once()
    assert notifier.attempts == 1

    clock.to(retry_at)
    follower.run_once()
    assert notifier.attempts == 2
    [progress] = notifier.progress()
    assert (progress.state, progress.status) == ("settled", "active")
    # The time shown is when it settled, not when the message got through.
    assert progress.elapsed == pytest.approx(26.375)
    assert _row(session_factory, operation_id).finished_at is not None


def test_a_message_that_cannot_be_updated_ends_the_follow(
    follower, session_factory, clock, sandbox, vps, notifier
):
    operation_id = start_reboot(vps, follower)
    server_id = server_named(vps, "web-01").id
    clock.advance(2)
    follower.run_once()
    sandbox.set_status(server_id, "starting", then="active")
    notifier.script.append(NotifyFailedError("message_not_found"))
    clock.advance(3)
    follower.run_once()
    sandbox.reset_calls()

    row = _row(session_factory, operation_id)
    clock.advance(60)
    follower.run_once()

    assert row.result == "undeliverable"
    assert row.finished_at is not None
    assert notifier.attempts == 1
    assert _gets(sandbox, server_id) == []


def test_an_unknown_notifier_failure_retries_the_last_message(
    follower, session_factory, clock, vps
):
    notifier = RecordingNotifier()
    notifier.script.append(RuntimeError("network hiccup"))
    follower = make_follower(session_factory, vps, notifier, clock, owner="p-b")
    operation_id = start_reboot(vps, follower)

    row = _run_to_end(follower, session_factory, clock, operation_id)

    assert notifier.attempts == 2
    assert row.result == "settled"
    follower.stop()


def test_following_writes_nothing_to_the_audit_log(
    follower, session_factory, clock, vps
):
    from vpsbot.store import AuditRepository

    operation_id = start_reboot(vps, follower)
    _run_to_end(follower, session_factory, clock, operation_id)

    with session_scope(session_factory) as session:
        assert AuditRepository(session).find_last() is None


def test_only_the_four_long_operations_are_followed(follower, vps):
    server = server_named(vps, "web-01")

    with pytest.raises(ValueError, match="'rename' is not an operation"):
        follower.follow(ACTOR, "rename", server, "renamed", message_ts="1.3")


def test_a_retry_after_beyond_the_timeout_gives_up_without_another_call(
    session_factory, clock, sandbox, vps, notifier
):
    follower = make_follower(session_factory, vps, notifier, clock, timeout=120)
    operation_id = start_reboot(vps, follower)
    server_id = server_named(vps, "web-01").id
    sandbox.fail_next(429, retry_after=500, path_contains=f"/servers/{server_id}/")
    sandbox.reset_calls()

    row = _run_to_end(follower, session_factory, clock, operation_id)

    assert len(_gets(sandbox, server_id)) == 1
    [progress] = notifier.progress()
    assert (progress.state, progress.error, progress.elapsed) == (
        "gave_up",
        "rate_limited",
        120,
    )
    assert row.result == "gave_up"
    follower.stop()


def test_a_retry_after_beyond_reason_is_capped_not_a_crash(
    follower, session_factory, clock, sandbox, vps, notifier
):
    operation_id = start_reboot(vps, follower)
    sandbox.fail_next(429, retry_after="99999999999999")
    clock.advance(2)
    follower.run_once()

    row = _row(session_factory, operation_id)
    assert row.last_error == "rate_limited"
    assert (row.next_poll_at - row.started_at).total_seconds() == 900.0
