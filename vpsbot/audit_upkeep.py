"""Audit upkeep while vpsbot runs: verify once at start, then retention.

``serve`` and ``socket`` start one ``AuditUpkeep``. Its daemon thread first
walks the whole log (so start-up does not wait on a long one) and logs a
WARNING naming the first bad entry when the log is not whole; the process
keeps running either way. With ``VPSBOT_AUDIT_RETENTION_DAYS`` set it then
prunes at once and again every ``interval_s`` seconds.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from vpsbot import audit
from vpsbot.store import session_scope

logger = logging.getLogger(__name__)

# Retention runs this often; entries are kept by the day, so hourly is plenty.
PRUNE_INTERVAL_S = 3600.0
# How long ``stop`` waits for a verification or pruning under way.
STOP_TIMEOUT_S = 30.0


class AuditUpkeep:
    """Verification at start and periodic retention, on one daemon thread.

    Args:
        sessions: the process's session factory.
        retention_days: prune entries older than this; ``None`` keeps all.
        interval_s: seconds between prunings.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        retention_days: int | None,
        interval_s: float = PRUNE_INTERVAL_S,
    ) -> None:
        self._sessions = sessions
        self._retention_days = retention_days
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._first_pass = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread; returns at once."""
        self._thread = threading.Thread(
            target=self._run, name="vpsbot-audit-upkeep", daemon=True
        )
        self._thread.start()

    def wait_first_pass(self, timeout: float | None = None) -> bool:
        """Wait until the start-up verification (and first pruning) ended."""
        return self._first_pass.wait(timeout)

    def stop(self) -> None:
        """Ask the thread to end and wait for work under way to finish."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
            if self._thread.is_alive():
                logger.warning("audit upkeep still running after %.0fs", STOP_TIMEOUT_S)

    def verify_once(self) -> audit.VerifyResult | None:
        """Verify the whole log and log the outcome; ``None`` if it could not run."""
        try:
            with session_scope(self._sessions) as session:
                result = audit.verify(session)
        except Exception:
            logger.exception("could not verify the audit log")
            return None
        if result.ok:
            logger.info("audit log is whole: %d entries verified", result.checked)
        else:
            logger.warning(
                "audit log is NOT whole, first bad entry %s: %s "
                "(run `vpsbot audit verify`; vpsbot keeps running)",
                result.first_bad_seq,
                result.problem,
            )
        return result

    def prune_once(self) -> audit.PruneResult | None:
        """Apply retention once; ``None`` when it is off or could not run."""
        if self._retention_days is None:
            return None
        try:
            return audit.prune_all(self._sessions, older_than_days=self._retention_days)
        except audit.AuditLogDamagedError as exc:
            logger.warning("%s", exc)
        except Exception:
            logger.exception("audit retention failed")
        return None

    def _run(self) -> None:
        try:
            self.verify_once()
            self.prune_once()
        finally:
            self._first_pass.set()
        while self._retention_days is not None and not self._stopping.wait(
            self._interval_s
        ):
            self.prune_once()
