"""Following long operations until the server settles, free of Slack.

After a create, start, stop or reboot the server is busy for a while. The
announcement of the change is recorded as a row of ``followed_operations``;
a ``Follower`` in every process polls the provider for the rows it owns and
hands each change of status (and, now and then, the elapsed time) to a
``Notifier``, which redraws the announcement.

Ownership lives in the database. A process takes free rows with a conditional
UPDATE (owner and lease), renews its leases while it runs, and releases them
when it stops; a process that dies leaves leases that expire after
``LEASE_TTL`` seconds, and another one (or the same one restarted) takes the
rows over. Every write an owner makes is conditional on still owning the row,
so at any moment one process follows each operation.

Polling backs off: the first look comes ``Backoff.first`` seconds after the
announcement and each later one ``Backoff.factor`` times later, up to
``Backoff.cap``. A 429 from the provider is waited out (its ``Retry-After``),
other provider failures are retried on the same schedule, and after
``timeout`` seconds the follower gives up and says so. Polls run on a small
thread pool; no thread is ever given to one operation.

Nothing here writes to the audit log: following is not an attempt at an
action. Log lines carry the request id of the change being followed.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy.orm import Session, sessionmaker

from vpsbot.errors import StoreUnavailableError, VpsbotError
from vpsbot.ops.accounts import NoProviderAccountError, ProviderAccounts, as_accounts
from vpsbot.ops.context import Actor
from vpsbot.store import FollowedOperationRepository, session_scope
from vpsbot.store.models import FollowedOperation
from vpsbot.vps import (
    NotFoundError,
    RateLimitedError,
    Server,
    VpsApiError,
    VpsClient,
)
from vpsbot.vps.servers import classify_status

__all__ = [
    "EXPECTED_STATUS",
    "Backoff",
    "FollowedOp",
    "Follower",
    "Notifier",
    "NotifyFailedError",
    "NotifyLaterError",
    "Progress",
]

logger = logging.getLogger(__name__)

#: The status each followed verb ends in when all goes well.
EXPECTED_STATUS = {
    "create": "active",
    "start": "active",
    "stop": "stopped",
    "reboot": "active",
}

#: Seconds a lease lasts without renewal; a live owner renews it at half time.
LEASE_TTL = 60.0
#: Seconds between two updates of one message when only the time moved on.
REFRESH_INTERVAL = 30.0
#: Seconds between two updates of one message, status changes excepted.
MIN_NOTIFY_INTERVAL = 3.0
#: A new server may not be visible at once (the provider's list lags its
#: create); a 404 this early in a create's life is not yet "gone".
CREATE_NOT_FOUND_GRACE = 30.0
#: How long after the end an undelivered last message is still retried.
FINAL_DELIVERY_GRACE = 900.0
#: Seconds before retrying a message whose delivery failed for an unknown cause.
NOTIFY_RETRY = 10.0
#: Seconds before a second look confirms an unexpected resting status (a reboot
#: that shows ``stopped``): long enough for a provider's stale read or a brief
#: dip to pass, so a passing status is not reported as the end.
CONFIRM_OTHER_STATUS = 15.0
#: The longest wait vpsbot accepts from a Retry-After (provider or Slack).
MAX_WAIT = 3600.0
#: Seconds to wait when Slack says "slow down" without saying for how long.
DEFAULT_NOTIFY_WAIT = 30.0
#: Finished operations are deleted after this many seconds.
KEEP_FINISHED = 7 * 24 * 3600.0

State = Literal["following", "settled", "gave_up", "gone"]


class NotifyLaterError(VpsbotError):
    """The notifier was told to slow down; try again after ``retry_after`` s."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"notification refused for now; retry after {retry_after}s")
        self.retry_after = retry_after


class NotifyFailedError(VpsbotError):
    """The message can never be updated (deleted, archived, no permission)."""


@dataclass(frozen=True)
class Backoff:
    """The polling schedule: ``first`` seconds, then ``factor`` times longer.

    Args:
        first: Seconds from the announcement to the first poll.
        factor: How much longer each following wait is.
        cap: The longest wait, in seconds.
        jitter: Fraction by which a wait is randomly shortened or lengthened,
            so that operations started together do not poll together.
    """

    first: float = 2.0
    factor: float = 1.5
    cap: float = 30.0
    jitter: float = 0.1

    def delay(self, polls: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds before the next poll, once ``polls`` polls were made.

        ``delay(0)`` is the wait from the announcement to the first poll.
        """
        base = min(self.cap, self.first * self.factor ** min(polls, 64))
        if self.jitter:
            base *= 1 + self.jitter * (2 * rand() - 1)
        return base


@dataclass(frozen=True)
class FollowedOp:
    """What the notifier needs to know about one followed operation."""

    id: int
    team_id: str
    channel_id: str
    message_ts: str
    user_id: str
    request_id: str
    verb: str
    server_id: int
    server_name: str
    headline: str
    expected_status: str

    @classmethod
    def from_row(cls, row: FollowedOperation) -> FollowedOp:
        return cls(
            id=row.id,
            team_id=row.team_id,
            channel_id=row.channel_id,
            message_ts=row.message_ts,
            user_id=row.user_id,
            request_id=row.request_id,
            verb=row.verb,
            server_id=row.server_id,
            server_name=row.server_name,
            headline=row.headline,
            expected_status=row.expected_status,
        )


@dataclass(frozen=True)
class Progress:
    """How a followed operation stands.

    Attributes:
        state: ``following``; or the end: ``settled`` (in ``status``, which
            may differ from the expected one), ``gave_up`` (the timeout
            passed) or ``gone`` (the server no longer exists).
        status: The last status seen.
        elapsed: Seconds since the announcement (at the end: until the end).
        ip_address: The server's IPv4 address, when known.
        server: The server as last read, when this update comes from a poll.
        error: Why the last poll failed (``unreachable``, ``rate_limited``,
            …), or ``None``.
    """

    state: State
    status: str
    elapsed: float
    ip_address: str | None = None
    server: Server | None = None
    error: str | None = None

    @property
    def final(self) -> bool:
        return self.state != "following"


class Notifier(Protocol):
    """Shows a followed operation's progress to people (e.g. edits a message)."""

    def notify(self, operation: FollowedOp, progress: Progress) -> None:
        """Show ``progress``.

        Raises:
            NotifyLaterError: asked to wait; the follower retries afterwards.
            NotifyFailedError: the message cannot be updated, ever.
        """
        ...


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_owner_id() -> str:
    """A name for this process that a restarted one will not reuse."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass
class _Step:
    """What one look at an operation decided."""

    values: dict[str, Any]
    progress: Progress | None  # what to show now, if anything


class Follower:
    """Follows long operations to their end for one process.

    Args:
        sessions: The database.
        vps: Provider client for the polls, or the accounts that choose each
            workspace's client (row's team id). Build clients with
            ``max_retries=0`` so that a 429 is handed back at once instead of
            sleeping on a pool thread; the follower schedules the retry itself.
        notifier: Shows progress.
        timeout: Seconds after which an operation is given up.
        workers: Threads that poll and notify.
        lease_ttl: Seconds a lease lasts without renewal.
        tick_interval: Seconds between two looks for due work.
        backoff: The polling schedule.
        clock: The current time, timezone-aware (tests pass a fake).
        owner: This process's name in the ``owner`` column.
        max_in_flight: Most operations queued or running on the pool at once.
        claim_batch: Most free operations taken in one round, so that
            processes share a burst of new operations.
        refresh_interval: Seconds between updates that only show the time.
        min_notify_interval: Seconds between two updates of one message,
            unless its status changed.
        rand: Random numbers in [0, 1) for the backoff's jitter.
    """

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        vps: VpsClient | ProviderAccounts,
        notifier: Notifier,
        timeout: float = 900.0,
        workers: int = 8,
        lease_ttl: float = LEASE_TTL,
        tick_interval: float = 1.0,
        backoff: Backoff | None = None,
        clock: Callable[[], datetime] = utc_now,
        owner: str | None = None,
        max_in_flight: int | None = None,
        claim_batch: int = 32,
        refresh_interval: float = REFRESH_INTERVAL,
        min_notify_interval: float = MIN_NOTIFY_INTERVAL,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._sessions = sessions
        self._accounts = as_accounts(vps)
        self._notifier = notifier
        self.timeout = float(timeout)
        self._workers = workers
        self._lease_ttl = lease_ttl
        self._tick_interval = tick_interval
        self.backoff = backoff or Backoff()
        self._clock = clock
        self.owner = owner or new_owner_id()
        self._max_in_flight = max_in_flight or workers * 16
        self._claim_batch = claim_batch
        self.refresh_interval = refresh_interval
        self.min_notify_interval = min_notify_interval
        self._rand = rand

        self._lock = threading.Lock()
        self._in_flight: set[int] = set()
        self._idle = threading.Condition(self._lock)
        # Slack's rate limit is per workspace: one 429 quiets the whole team.
        self._quiet_until: dict[str, datetime] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._last_prune: datetime | None = None

    # Starting to follow

    def follow(
        self,
        actor: Actor,
        verb: str,
        server: Server,
        headline: str,
        *,
        message_ts: str,
        channel_id: str | None = None,
    ) -> int:
        """Record an operation to follow; no provider call is made here.

        Args:
            actor: Who made the change, where, and its request id.
            verb: ``create``, ``start``, ``stop`` or ``reboot``.
            server: The server as the change's answer left it.
            headline: The announcement's text (mrkdwn, already escaped).
            message_ts: The announcement's ``ts``, so it can be updated.
            channel_id: Where the announcement is, if not the actor's channel.

        Returns:
            The operation's id.

        Raises:
            ValueError: ``verb`` is not followed.
            StoreUnavailableError: the database did not answer.
        """
        if verb not in EXPECTED_STATUS:
            raise ValueError(f"{verb!r} is not an operation vpsbot follows")
        now = self._clock()
        row = FollowedOperation(
            team_id=actor.team_id,
            channel_id=channel_id or actor.channel_id,
            message_ts=message_ts,
            user_id=actor.user_id,
            request_id=actor.request_id,
            verb=verb,
            server_id=server.id,
            server_name=server.name,
            headline=headline,
            expected_status=EXPECTED_STATUS[verb],
            last_status=server.status,
            ip_address=server.ip_address,
            polls=0,
            started_at=now,
            next_poll_at=now + timedelta(seconds=self.backoff.delay(0, self._rand)),
            notified_at=now,
            notified_status=server.status,
        )
        with session_scope(self._sessions) as session:
            operation_id = FollowedOperationRepository(session).add(row)
        logger.info(
            "following %s of server %s (operation %s) [%s]",
            verb,
            server.id,
            operation_id,
            actor.request_id,
        )
        return operation_id

    # Running

    def start(self) -> None:
        """Start the background loop (one thread) and the polling pool."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._loop, name="vpsbot-follow", daemon=True
        )
        self._thread.start()
        logger.info("following operations as %s", self.owner)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop, let running polls finish, and release the leases.

        Released operations are free for another process at once, so a
        restart does not wait for the leases to expire.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._in_flight.clear()
        try:
            with session_scope(self._sessions) as session:
                released = FollowedOperationRepository(session).release(
                    owner=self.owner
                )
        except StoreUnavailableError:
            logger.warning("could not release follow leases; they will expire")
            return
        if released:
            logger.info("released %d followed operations", released)

    def run_once(self, *, wait: bool = True) -> int:
        """Renew leases, take free operations and start those that are due.

        Args:
            wait: Return only once the started work has finished (tests).

        Returns:
            How many operations were started.

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        now = self._clock()
        with session_scope(self._sessions) as session:
            repository = FollowedOperationRepository(session)
            repository.renew(owner=self.owner, now=now, ttl_seconds=self._lease_ttl)
        with self._lock:
            room = self._max_in_flight - len(self._in_flight)
            busy = set(self._in_flight)
        started = 0
        if room > 0:
            with session_scope(self._sessions) as session:
                repository = FollowedOperationRepository(session)
                claimed = repository.claim(
                    owner=self.owner,
                    now=now,
                    ttl_seconds=self._lease_ttl,
                    limit=min(room, self._claim_batch),
                )
            if claimed:
                logger.info("took up %d followed operations", len(claimed))
            with session_scope(self._sessions) as session:
                due = FollowedOperationRepository(session).due(
                    owner=self.owner, now=now, limit=room, exclude=busy
                )
            for row in due:
                self._submit(row)
                started += 1
        self._prune(now)
        if wait:
            self.wait_idle()
        return started

    def wait_idle(self, timeout: float | None = 60.0) -> bool:
        """Wait until no operation is being polled or notified here."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._in_flight, timeout=timeout)

    def open_count(self) -> int:
        """How many operations are still followed, by any process."""
        with session_scope(self._sessions) as session:
            return FollowedOperationRepository(session).count_open()

    # The loop and the pool

    def _loop(self) -> None:
        paused = False
        while not self._stopping.is_set():
            try:
                self.run_once(wait=False)
            except StoreUnavailableError:
                # Said once per outage, not once per tick.
                if not paused:
                    logger.warning("following paused: the database did not answer")
                paused = True
            except Exception:
                logger.exception("following: one round failed")
            else:
                if paused:
                    logger.info("following resumed: the database answers again")
                paused = False
            self._wake.wait(self._tick_interval)
            self._wake.clear()

    def _submit(self, row: FollowedOperation) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._workers, thread_name_prefix="vpsbot-follow"
                )
            self._in_flight.add(row.id)
            pool = self._pool
        try:
            pool.submit(self._run, row)
        except RuntimeError:
            self._done(row.id)

    def _run(self, row: FollowedOperation) -> None:
        try:
            self.advance(row)
        except StoreUnavailableError:
            logger.warning(
                "operation %s not advanced: the database did not answer [%s]",
                row.id,
                row.request_id,
            )
        except Exception:
            logger.exception(
                "operation %s failed to advance [%s]", row.id, row.request_id
            )
        finally:
            self._done(row.id)

    def _done(self, operation_id: int) -> None:
        with self._idle:
            self._in_flight.discard(operation_id)
            self._idle.notify_all()

    def _prune(self, now: datetime) -> None:
        if self._last_prune and now - self._last_prune < timedelta(hours=1):
            return
        self._last_prune = now
        with session_scope(self._sessions) as session:
            removed = FollowedOperationRepository(session).prune(
                finished_before=now - timedelta(seconds=KEEP_FINISHED)
            )
        if removed:
            logger.info("pruned %d finished followed operations", removed)

    # One operation

    def advance(self, row: FollowedOperation) -> None:
        """Look at one due operation: poll it, or deliver its last message.

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        now = self._clock()
        if row.result is None:
            step = self._poll(row, now)
            if not self._write(row, step.values):
                return
            progress = step.progress
        else:
            progress = self._final_progress(row)
        if progress is not None:
            self._notify(row, progress, now)

    def _poll(self, row: FollowedOperation, now: datetime) -> _Step:
        elapsed = _seconds(now - row.started_at)
        deadline = row.started_at + timedelta(seconds=self.timeout)
        values: dict[str, Any] = {"polls": row.polls + 1}
        status = row.last_status
        server: Server | None = None
        error: str | None = None
        retry_after: float | None = None
        state: State = "following"
        unconfirmed = False

        if now >= deadline and row.last_error == "rate_limited":
            # Waiting out the provider's Retry-After took us past the end; a
            # poll now would ignore its request.
            return self._end(
                row, now, "gave_up", status, elapsed, values, row.last_error
            )

        try:
            vps = self._accounts.client_for(row.team_id)
        except NoProviderAccountError:
            # The workspace's account was disconnected (or the app removed).
            logger.info(
                "operation %s no longer followed: workspace %s has no VPS.org "
                "account [%s]",
                row.id,
                row.team_id,
                row.request_id,
            )
            return self._end(row, now, "gave_up", status, elapsed, values, "no_account")
        try:
            server = vps.get_by_id(row.server_id, request_id=row.request_id)
        except NotFoundError:
            if row.verb == "create" and elapsed < CREATE_NOT_FOUND_GRACE:
                error = "not_found_yet"
            else:
                return self._end(row, now, "gone", status, elapsed, values, None)
        except RateLimitedError as exc:
            error = "rate_limited"
            retry_after = exc.retry_after
            logger.info(
                "provider rate limit while following operation %s; retry after %s [%s]",
                row.id,
                exc.retry_after,
                row.request_id,
            )
        except VpsApiError as exc:
            error = "unreachable"
            logger.warning(
                "could not read server %s while following operation %s: %s [%s]",
                row.server_id,
                row.id,
                type(exc).__name__,
                row.request_id,
            )

        if server is not None:
            status = server.status
            values.update(last_status=status[:32], server_name=server.name[:255])
            if server.ip_address:
                values["ip_address"] = server.ip_address[:64]
            if status.lower() == row.expected_status:
                state = "settled"
            elif classify_status(status) != "transitional":
                # Another resting status (a start that ends stopped, a reboot
                # that ends in error) counts once seen again after
                # CONFIRM_OTHER_STATUS: the provider may show the old status
                # for a moment.
                if status == row.last_status and row.polls > 0:
                    state = "settled"
                else:
                    unconfirmed = True
        values["last_error"] = error

        if state != "following":
            return self._end(row, now, state, status, elapsed, values, None, server)
        if now >= deadline:
            return self._end(
                row, now, "gave_up", status, elapsed, values, error, server
            )

        delay = self.backoff.delay(row.polls + 1, self._rand)
        if unconfirmed:
            delay = CONFIRM_OTHER_STATUS
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_WAIT))
        next_poll = min(now + timedelta(seconds=delay), deadline)
        values["next_poll_at"] = next_poll

        progress = Progress(
            "following",
            status,
            elapsed,
            ip_address=values.get("ip_address", row.ip_address),
            server=server,
            error=error,
        )
        if self._should_notify(row, progress, now):
            return _Step(values, progress)
        return _Step(values, None)

    def _end(
        self,
        row: FollowedOperation,
        now: datetime,
        state: State,
        status: str,
        elapsed: float,
        values: dict[str, Any],
        error: str | None,
        server: Server | None = None,
    ) -> _Step:
        values.update(result=state, ended_at=now, next_poll_at=now, last_error=error)
        ip = (server.ip_address if server else None) or row.ip_address
        logger.info(
            "operation %s (%s of server %s) ended: %s, status %s after %.0f s [%s]",
            row.id,
            row.verb,
            row.server_id,
            state,
            status,
            elapsed,
            row.request_id,
        )
        return _Step(values, Progress(state, status, elapsed, ip, server, error))

    def _final_progress(self, row: FollowedOperation) -> Progress:
        """The end of an operation whose last message is still to deliver."""
        ended = row.ended_at or row.started_at
        state = _STATES.get(row.result or "", "settled")
        return Progress(
            state,
            row.last_status,
            _seconds(ended - row.started_at),
            row.ip_address,
            None,
            row.last_error,
        )

    def _should_notify(
        self, row: FollowedOperation, progress: Progress, now: datetime
    ) -> bool:
        if self._slack_waits(row, now) is not None:
            return False
        if progress.status != row.notified_status:
            return True
        if row.notified_at is None:
            return True
        since = _seconds(now - row.notified_at)
        return since >= max(self.refresh_interval, self.min_notify_interval)

    def _slack_waits(self, row: FollowedOperation, now: datetime) -> datetime | None:
        """Until when Slack asked this operation's workspace to wait, if still."""
        with self._lock:
            quiet = self._quiet_until.get(row.team_id)
        until = max(
            (t for t in (quiet, row.notify_after) if t is not None), default=None
        )
        return until if until is not None and until > now else None

    def _notify(
        self, row: FollowedOperation, progress: Progress, now: datetime
    ) -> None:
        if progress.final:
            wait = self._slack_waits(row, now)
            if wait is not None:
                self._write(row, {"next_poll_at": wait})
                return
        operation = FollowedOp.from_row(row)
        try:
            self._notifier.notify(operation, progress)
        except NotifyLaterError as exc:
            until = now + timedelta(seconds=min(max(exc.retry_after, 1.0), MAX_WAIT))
            with self._lock:
                current = self._quiet_until.get(row.team_id)
                if current is None or current < until:
                    self._quiet_until[row.team_id] = until
            values: dict[str, Any] = {"notify_after": until}
            if progress.final:
                values["next_poll_at"] = until
            self._write(row, values)
            logger.info(
                "Slack asked to wait %.0f s before updating operation %s [%s]",
                exc.retry_after,
                row.id,
                row.request_id,
            )
            return
        except NotifyFailedError as exc:
            logger.warning(
                "operation %s no longer followed: its message cannot be updated "
                "(%s) [%s]",
                row.id,
                exc,
                row.request_id,
            )
            self._write(
                row,
                {
                    "result": progress.state if progress.final else "undeliverable",
                    "ended_at": row.ended_at or now,
                    "finished_at": now,
                },
            )
            return
        except Exception as exc:
            # Retried every NOTIFY_RETRY seconds: one line each, the trace on debug.
            logger.warning(
                "could not show progress of operation %s: %s: %s [%s]",
                row.id,
                type(exc).__name__,
                exc,
                row.request_id,
            )
            logger.debug("progress failure of operation %s", row.id, exc_info=True)
            if progress.final:
                ended = row.ended_at or now
                if _seconds(now - ended) >= FINAL_DELIVERY_GRACE:
                    logger.error(
                        "gave up delivering the end of operation %s [%s]",
                        row.id,
                        row.request_id,
                    )
                    self._write(row, {"finished_at": now})
                else:
                    retry = now + timedelta(seconds=NOTIFY_RETRY)
                    self._write(row, {"next_poll_at": retry})
            return

        values = {
            "notified_at": now,
            "notified_status": progress.status[:32],
            "notify_after": None,
        }
        if progress.final:
            values["finished_at"] = now
        self._write(row, values)

    def _write(self, row: FollowedOperation, values: dict[str, Any]) -> bool:
        with session_scope(self._sessions) as session:
            written = FollowedOperationRepository(session).update_owned(
                row.id, owner=self.owner, values=values
            )
        if not written:
            logger.info(
                "operation %s is no longer ours; dropped [%s]", row.id, row.request_id
            )
        return written


_STATES: dict[str, State] = {
    "settled": "settled",
    "gave_up": "gave_up",
    "gone": "gone",
}


def _seconds(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds())
