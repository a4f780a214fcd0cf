"""Our own thread pools for work that follows Slack's acknowledgement.

Bolt runs listeners on a small pool whose threads are also the ones that
acknowledge requests. A provider call can take 30 seconds, so listeners only
parse, hand the work over here and acknowledge; this keeps Bolt's threads free.
Dialogs get a pool of their own: a trigger_id lives 3 seconds, and opening the
dialog must not queue behind slow provider calls. App Home renders and audit
exports each get a small pool of their own too, so that however many of them
wait, commands, clicks and each other are never queued behind them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from vpsbot.errors import StoreUnavailableError, UserError
from vpsbot.slack import messages
from vpsbot.vps import VpsApiError

logger = logging.getLogger(__name__)

Reply = Callable[[str], object]


class TrackedPool:
    """A thread pool that can tell when all it was given has finished, and that
    stops without starting what is still queued."""

    def __init__(self, max_workers: int, name: str) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix=name
        )
        self._pending = 0
        self._idle = threading.Condition()
        self._stopping = False

    def submit(
        self, fn: Callable[[], object], dropped: Callable[[], object] | None = None
    ) -> None:
        """Queue ``fn``; if the pool stops before it starts, ``dropped`` runs
        instead (it should tell whoever waits for ``fn``)."""
        with self._idle:
            self._pending += 1
        try:
            self._executor.submit(self._run, fn, dropped)
        except RuntimeError:
            self._done()
            raise

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until no task is queued or running; ``False`` on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def stop_starting(self) -> None:
        """From now on, a queued task is not started: its ``dropped`` runs."""
        with self._idle:
            self._stopping = True

    def shutdown(self) -> None:
        """Wait for running tasks; queued ones are dropped if stopping."""
        self._executor.shutdown(wait=True, cancel_futures=False)

    def _run(
        self, fn: Callable[[], object], dropped: Callable[[], object] | None
    ) -> None:
        try:
            with self._idle:
                stopping = self._stopping
            if not stopping:
                fn()
            elif dropped is not None:
                dropped()
        finally:
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()


class Background:
    """Runs a request's work after the acknowledgement and answers its failures.

    A refusal (``UserError``), a provider error and a database outage each
    become one plain sentence for the asker; anything else is logged with the
    request id, and the asker gets that id as an incident number.
    """

    def __init__(
        self,
        *,
        workers: int,
        dialog_workers: int = 4,
        read_workers: int = 2,
        export_workers: int = 2,
    ) -> None:
        self.work = TrackedPool(workers, "vpsbot-work")
        self.dialogs = TrackedPool(dialog_workers, "vpsbot-dialog")
        self.reads = TrackedPool(read_workers, "vpsbot-read")
        self.exports = TrackedPool(export_workers, "vpsbot-export")

    def run(self, request_id: str, reply: Reply, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the work pool, answering any failure through ``reply``."""
        self.work.submit(
            lambda: guarded(request_id, reply, fn), lambda: dropped(request_id, reply)
        )

    def run_dialog(
        self, request_id: str, reply: Reply, fn: Callable[[], object]
    ) -> None:
        """Run ``fn`` on the dialog pool (it must only open a view)."""
        self.dialogs.submit(
            lambda: guarded(request_id, reply, fn), lambda: dropped(request_id, reply)
        )

    def run_read(self, request_id: str, reply: Reply, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the slow-read pool (App Home renders)."""
        self.reads.submit(
            lambda: guarded(request_id, reply, fn), lambda: dropped(request_id, reply)
        )

    def run_export(
        self, request_id: str, reply: Reply, fn: Callable[[], object]
    ) -> None:
        """Run ``fn`` on the export pool (audit exports)."""
        self.exports.submit(
            lambda: guarded(request_id, reply, fn), lambda: dropped(request_id, reply)
        )

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until all pools are idle (the shell and tests use this).

        Dialogs hand work to the work pool, and the work pool hands Homes to
        the read pool, so they are waited for in that order.
        """
        return (
            self.dialogs.wait_idle(timeout)
            and self.work.wait_idle(timeout)
            and self.reads.wait_idle(timeout)
            and self.exports.wait_idle(timeout)
        )

    def shutdown(self, drain: float = 0.0) -> None:
        """Stop: give queued and running work ``drain`` seconds to finish, then
        start nothing more (each request not started is told so and logged)
        and wait for what is running.

        Work that has started is never cut off here: a provider call that has
        begun ends, and is audited and announced.
        """
        if drain > 0 and not self.wait_idle(timeout=drain):
            logger.warning(
                "stopping with work still queued after %.0f s; requests not "
                "started are answered that nothing was done",
                drain,
            )
        pools = (self.dialogs, self.work, self.reads, self.exports)
        for pool in pools:
            pool.stop_starting()
        for pool in pools:
            pool.shutdown()


def guarded(request_id: str, reply: Reply, fn: Callable[[], object]) -> None:
    """Call ``fn``; turn what it raises into one sentence for the asker."""
    try:
        fn()
    except UserError as exc:
        _reply_safely(request_id, reply, str(exc))
    except VpsApiError as exc:
        logger.warning("provider error [%s]: %s", request_id, exc)
        # The sentence may quote the provider's own words; show them as text.
        _reply_safely(request_id, reply, messages.escape(exc.user_message))
    except StoreUnavailableError as exc:
        logger.error("database unavailable [%s]: %s", request_id, exc.__cause__)
        _reply_safely(request_id, reply, str(exc))
    except Exception:
        logger.exception("request %s failed", request_id)
        _reply_safely(request_id, reply, messages.incident(request_id))


def dropped(request_id: str, reply: Reply) -> None:
    """A request acknowledged but never started, because vpsbot is stopping."""
    logger.warning("request %s not carried out: vpsbot is stopping", request_id)
    _reply_safely(request_id, reply, messages.stopped_before_starting())


def _reply_safely(request_id: str, reply: Reply, text: str) -> None:
    try:
        reply(text)
    except Exception:
        logger.exception("could not send the answer to request %s", request_id)
