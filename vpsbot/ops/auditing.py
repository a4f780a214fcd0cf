"""Reading the audit log of a channel, for those the channel's policy allows."""

from __future__ import annotations

import io
import logging
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy.orm import Session, sessionmaker

from vpsbot import audit, audit_csv
from vpsbot.errors import PermissionDeniedError
from vpsbot.ops.context import Actor, as_server_id
from vpsbot.ops.guard import Guard, Target
from vpsbot.store import session_scope
from vpsbot.store.models import AuditEntry

logger = logging.getLogger(__name__)

#: Entries on one page of ``/vps audit``: a few sections, well inside Slack's
#: 50 blocks and 3,000 characters a section.
PAGE_SIZE = 20
# Entries read per query while exporting.
EXPORT_BATCH_SIZE = 1000


@dataclass(frozen=True)
class AuditFilters:
    """What ``/vps audit`` narrows the entries to; ``None`` means any."""

    server: str | None = None
    user: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def query_terms(self) -> dict[str, Any]:
        """The filters as ``audit.query`` and ``audit.stream_channel`` take them.

        A numeric server reference means the server id, any other its name.
        """
        server_id = server_name = None
        if self.server is not None:
            server_id = as_server_id(self.server)
            if server_id is None:
                server_name = self.server
        return {
            "server_id": server_id,
            "server_name": server_name,
            "user": self.user,
            "action": self.action,
            "outcome": self.outcome,
            "since": self.since,
            "until": self.until,
        }

    def describe(self) -> str:
        """The filters as ``name=value`` words, times in UTC (``…T09:30Z``).

        For audit details and export comments, which everyone reads alike.
        """
        parts = [
            f"{name}={value.astimezone(UTC):%Y-%m-%dT%H:%MZ}"
            if isinstance(value, datetime)
            else f"{name}={value}"
            for name, value in vars(self).items()
            if value is not None
        ]
        return " ".join(parts)


@dataclass(frozen=True)
class AuditPage:
    """Entries shown together, and where the next (older) page starts.

    ``older_than`` is the ``seq`` of the oldest entry shown when older ones
    match too, else ``None``.
    """

    entries: list[AuditEntry]
    older_than: int | None = None


@dataclass
class AuditExport:
    """A channel's matching entries as a CSV file on disk, ready to upload.

    Use it as a context manager: leaving it closes (and so deletes) the file.

    Attributes:
        file: the CSV, UTF-8, rewound to its start.
        size: the file's length in bytes.
        count: entries in it (rows after the header).
        filename: a name for it, with the channel and the time (UTC).
        filters: what the entries were narrowed to.
    """

    file: IO[bytes]
    size: int
    count: int
    filename: str
    filters: AuditFilters

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> AuditExport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AuditOperations:
    """``/vps audit``: this channel's entries, newest first."""

    def __init__(self, *, guard: Guard, sessions: sessionmaker[Session]) -> None:
        self._guard = guard
        self._sessions = sessions

    def recent(
        self, actor: Actor, filters: AuditFilters, *, limit: int = 20
    ) -> list[AuditEntry]:
        """Entries of the asker's channel that match the filters.

        Raises:
            UserError: refused by policy.
            StoreUnavailableError: the database did not answer.
        """
        return self.page(actor, filters, limit=limit).entries

    def page(
        self,
        actor: Actor,
        filters: AuditFilters,
        *,
        before_seq: int | None = None,
        limit: int = PAGE_SIZE,
    ) -> AuditPage:
        """One page of the matching entries, newest first.

        Args:
            before_seq: start below this entry (the oldest of the page before);
                ``None`` for the newest entries.

        Raises:
            UserError: refused by policy.
            StoreUnavailableError: the database did not answer.
        """
        target = Target.from_ref(filters.server)
        self._guard.authorize(actor, "audit", target)
        with session_scope(self._sessions) as session:
            entries = audit.query(
                session,
                team=actor.team_id,
                channel=actor.channel_id,
                **filters.query_terms(),
                # One more than shown, to know whether older entries exist.
                limit=limit + 1,
                before_seq=before_seq,
            )
        older = len(entries) > limit
        entries = entries[:limit]
        shown = f"{len(entries)} {'entry' if len(entries) == 1 else 'entries'}"
        if before_seq is not None:
            shown += f" before #{before_seq}"
        self._guard.record(
            actor,
            "audit",
            "succeeded",
            target,
            shown + (f" ({filters.describe()})" if filters.describe() else ""),
        )
        return AuditPage(
            entries, older_than=entries[-1].seq if older and entries else None
        )

    def export(
        self,
        actor: Actor,
        filters: AuditFilters,
        *,
        batch_size: int = EXPORT_BATCH_SIZE,
        now: datetime | None = None,
    ) -> AuditExport:
        """Every entry of the asker's channel that matches, as a CSV file.

        Checked against the channel's ``audit`` rule as it stands; the attempt
        is audited, refused or not, with how many entries went out. Entries
        are streamed from the database into a temporary file, oldest first,
        so memory stays flat however many match. Only ``allow`` lets an export
        through: an export cannot wait for an approval.

        Raises:
            PermissionDeniedError: the rule is not ``allow``.
            StoreUnavailableError: the database did not answer.
        """
        target = Target.from_ref(filters.server)
        decision = self._guard.decision(actor, "audit")
        if not decision.allowed:
            self._guard.record(
                actor,
                "audit",
                "denied",
                target,
                f"export refused: policy: audit={decision.rule}",
            )
            if decision.rule == "approve":
                raise PermissionDeniedError(
                    "`audit` needs a second person's approval in this channel, "
                    "and an export cannot wait for one; an admin can allow it "
                    "with `/vps policy audit=allow`."
                )
            raise PermissionDeniedError(decision.reason)

        # The file outlives this call: the AuditExport returned closes it.
        spool = tempfile.TemporaryFile(  # noqa: SIM115
            prefix="vpsbot-audit-", suffix=".csv"
        )
        try:
            text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
            with session_scope(self._sessions) as session:
                entries = audit.stream_channel(
                    session,
                    team=actor.team_id,
                    channel=actor.channel_id,
                    **filters.query_terms(),
                    batch_size=batch_size,
                )
                count = audit_csv.write_entries(entries, text)
            text.flush()
            text.detach()
            size = spool.seek(0, io.SEEK_END)
            spool.seek(0)

            self._guard.record(
                actor, "audit", "succeeded", target, _export_detail(count, filters)
            )
        except BaseException:
            spool.close()
            raise
        filename = export_filename(actor.channel_id, now or datetime.now(UTC))
        logger.info(
            "audit export of %d entries (%d bytes) in %s [%s]",
            count,
            size,
            actor.channel_id,
            actor.request_id,
        )
        return AuditExport(spool, size, count, filename, filters)

    def record_undelivered(self, actor: Actor, export: AuditExport, why: str) -> None:
        """Audit that an export was made but could not be handed over.

        ``why`` is a short reason without secrets, such as Slack's error code.

        Raises:
            StoreUnavailableError: the entry could not be written.
        """
        self._guard.record(
            actor,
            "audit",
            "failed",
            Target.from_ref(export.filters.server),
            f"export of {_entries(export.count)} not delivered: {why}",
        )


def _entries(count: int) -> str:
    return f"{count} {'entry' if count == 1 else 'entries'}"


def _export_detail(count: int, filters: AuditFilters) -> str:
    described = filters.describe()
    return f"export: {_entries(count)}" + (f" ({described})" if described else "")


def export_filename(channel_id: str, moment: datetime) -> str:
    """``vpsbot-audit-<channel>-<yyyymmdd-hhmmss>.csv``, the time in UTC."""
    return f"vpsbot-audit-{channel_id}-{moment.astimezone(UTC):%Y%m%d-%H%M%S}.csv"
