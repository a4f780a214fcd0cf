"""The audit log: append, query, export, verify and retention.

Every attempt at an action becomes one entry. Entries are only appended, in
the caller's transaction, and form a hash chain: each one's ``hash`` covers its
content, its position ``seq`` and the previous entry's hash. Only retention
(``prune``) removes entries, from the oldest end, leaving a checkpoint that
``verify`` starts from. ``verify`` walks
the chain and names the first entry that was changed, removed or inserted
behind the program's back.

The chain has no secret key, so someone who can write to the database and
knows this module can rewrite it consistently; it catches edits made by hand
or by other tools, not a determined forger. What closes that gap is an anchor
kept outside the database: ``verify`` reports the head (last position and
hash), and given heads recorded earlier it checks that each is still in the
chain. Since each hash covers every entry before it, an anchor that still
matches proves nothing up to it was rewritten, and one that is gone shows the
log was cut back.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from sqlalchemy import Row
from sqlalchemy.orm import Session, sessionmaker

from vpsbot.errors import VpsbotError
from vpsbot.store.models import AuditCheckpoint, AuditEntry, AuditHead
from vpsbot.store.repositories import (
    AUDIT_BATCH_SIZE,
    AuditRepository,
    ClaimRepository,
)
from vpsbot.store.session import begin_read_only, session_scope

logger = logging.getLogger(__name__)

ACTIONS = frozenset(
    {
        "list",
        "show",
        "create",
        "update",
        "rename",
        "backups",
        "start",
        "stop",
        "reboot",
        "delete",
        "audit",
        "policy",
    }
)
OUTCOMES = frozenset(
    {
        "succeeded",
        "failed",
        "denied",
        "requested",
        "approved",
        "rejected",
        "expired",
        "cancelled",
    }
)

# The export columns, in order; also the keys of ``to_dict``.
FIELDS = (
    "at",
    "team",
    "channel",
    "user",
    "action",
    "server_id",
    "server_name",
    "outcome",
    "detail",
    "request_id",
)
EXPORT_FORMATS = ("jsonl", "csv")

# The previous hash of the first entry.
GENESIS_HASH = "0" * 64
DETAIL_MAX_CHARS = 2000
# Entries one pruning transaction removes at most: walking and deleting this
# many takes well under a second, so appends barely wait.
PRUNE_MAX_ENTRIES = 10_000
SERVER_NAME_MAX_CHARS = 255


@dataclass(frozen=True)
class VerifyResult:
    """What ``verify`` found.

    Attributes:
        ok: the chain is whole.
        checked: how many entries were read.
        first_bad_seq: position of the first entry found wrong, if any.
        problem: a sentence saying what is wrong; empty when ``ok``.
        head_seq: position of the last entry (0 for an empty log).
        head_hash: its hash; keep it, with ``head_seq``, as an anchor.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""
    # Where the walk ended, not what it found: left out of comparisons.
    head_seq: int = field(default=0, compare=False)
    head_hash: str = field(default=GENESIS_HASH, compare=False)


@dataclass(frozen=True)
class Anchor:
    """A head recorded earlier, outside the database: position and hash."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """``1234:9f86d0…`` (position from 1, colon, 64 hex digits).

        Raises:
            ValueError: not that form.
        """
        seq_text, _, hash_text = text.strip().partition(":")
        hash_text = hash_text.lower()
        if not (
            seq_text.isascii()
            and seq_text.isdigit()
            and len(seq_text) <= 18
            and int(seq_text) >= 1
            and len(hash_text) == 64
            and all(char in "0123456789abcdef" for char in hash_text)
        ):
            raise ValueError(
                f"{text[:100]!r} is not an anchor; it looks like 1234:<64 hex digits>"
            )
        return cls(int(seq_text), hash_text)

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


def record(
    session: Session,
    *,
    team: str,
    channel: str,
    user: str,
    action: str,
    outcome: str,
    request_id: str,
    server_id: int | None = None,
    server_name: str | None = None,
    detail: str = "",
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry to the log in the caller's transaction.

    Appends are serialized: on PostgreSQL by an advisory lock held until the
    caller's transaction ends (keep that transaction short), on SQLite by the
    write lock every transaction takes.

    Args:
        session: the caller's session; it is flushed, not committed.
        team: Slack workspace id.
        channel: Slack channel id.
        user: Slack user id of the person who made the attempt.
        action: the operation, one of ``ACTIONS``.
        outcome: how it ended, one of ``OUTCOMES``.
        request_id: ties the entry to the request's log lines and provider calls.
        server_id: the provider's server id, when known.
        server_name: the server's name, when known (cut to 255 characters).
        detail: free text without secrets (cut to 2,000 characters).
        at: when it happened (timezone-aware); now by default.

    Returns:
        The new entry.

    Raises:
        ValueError: an unknown action or outcome, or a naive ``at``.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    if at is not None and (at.tzinfo is None or at.utcoffset() is None):
        raise ValueError("at must be timezone-aware")
    if server_name is not None:
        server_name = server_name[:SERVER_NAME_MAX_CHARS]
    if len(detail) > DETAIL_MAX_CHARS:
        detail = detail[: DETAIL_MAX_CHARS - 1] + "…"

    repository = AuditRepository(session)
    repository.lock_for_append()
    # Taken under the append lock, so times rise with positions as appends do.
    at = (at or datetime.now(UTC)).astimezone(UTC)
    # The head, not the newest row, says what comes next: if rows were deleted
    # from the end, the next entry still links to the last one written, and
    # the gap shows.
    head = repository.head()
    last = head if head is not None else repository.find_last()
    entry = AuditEntry(
        seq=1 if last is None else last.seq + 1,
        at=at,
        team=team,
        channel=channel,
        user=user,
        action=action,
        server_id=server_id,
        server_name=server_name,
        outcome=outcome,
        detail=detail,
        request_id=request_id,
        prev_hash=GENESIS_HASH if last is None else last.hash,
    )
    entry.hash = entry_hash(entry)
    repository.add(entry)
    repository.move_head(entry)
    logger.debug("audit entry %d appended [%s]", entry.seq, request_id)
    return entry


def query(
    session: Session,
    *,
    team: str,
    channel: str,
    server_id: int | None = None,
    server_name: str | None = None,
    user: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 20,
    before_seq: int | None = None,
) -> list[AuditEntry]:
    """One channel's entries that match every given filter, newest first.

    Args:
        session: the caller's session.
        team: Slack workspace id.
        channel: Slack channel id; other channels' entries are never returned.
        server_id: only entries about this server id.
        server_name: only entries about a server of this name.
        user: only entries by this Slack user id.
        action: only this action.
        outcome: only this outcome.
        since: only entries at or after this time.
        until: only entries before this time.
        limit: at most this many entries.
        before_seq: only entries appended before the entry at this position,
            to page back from the oldest entry shown.

    Raises:
        ValueError: a ``limit`` below 1.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return AuditRepository(session).list_for_channel(
        team=team,
        channel=channel,
        server_id=server_id,
        server_name=server_name,
        user=user,
        action=action,
        outcome=outcome,
        since=since,
        until=until,
        before_seq=before_seq,
        limit=limit,
    )


def to_dict(entry: AuditEntry | Row[Any]) -> dict[str, Any]:
    """The export shape of one entry: the keys of ``FIELDS``, in order.

    ``entry`` is an ``AuditEntry`` or a row with the same column names.
    """
    return {
        "at": format_time(entry.at),
        "team": entry.team,
        "channel": entry.channel,
        "user": entry.user,
        "action": entry.action,
        "server_id": entry.server_id,
        "server_name": entry.server_name,
        "outcome": entry.outcome,
        "detail": entry.detail,
        "request_id": entry.request_id,
    }


def export(
    session: Session,
    out: TextIO,
    *,
    fmt: str = "jsonl",
    since: datetime | None = None,
    until: datetime | None = None,
    batch_size: int = AUDIT_BATCH_SIZE,
) -> int:
    """Write every entry, oldest first, streaming from the database.

    Entries are read ``batch_size`` at a time and written as they come, so
    memory stays flat however many there are.

    Args:
        session: a session that has not run anything yet, so that the export
            reads one snapshot (without blocking writers on SQLite).
        out: where to write text.
        fmt: ``jsonl`` (one JSON object per line) or ``csv`` (a header row,
            then one row per entry; an absent value is an empty cell).
        since: only entries at or after this time.
        until: only entries before this time.
        batch_size: entries read per query.

    Returns:
        How many entries were written.

    Raises:
        ValueError: an unknown format.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use jsonl or csv")

    begin_read_only(session)
    entries = AuditRepository(session).iter_all(
        since=since, until=until, batch_size=batch_size
    )
    if fmt == "jsonl":
        return _write_jsonl(entries, out)
    return _write_csv(entries, out)


def stream_channel(
    session: Session,
    *,
    team: str,
    channel: str,
    server_id: int | None = None,
    server_name: str | None = None,
    user: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_size: int = AUDIT_BATCH_SIZE,
) -> Iterator[Row[Any]]:
    """One channel's entries that match every given filter, oldest first.

    The filters mean what they mean in ``query``. Entries are read
    ``batch_size`` at a time from one snapshot, so memory stays flat however
    many match; consume the iterator before the session's transaction ends.

    Args:
        session: a session that has not run anything yet (see ``export``).
    """
    begin_read_only(session)
    return AuditRepository(session).iter_for_channel(
        team=team,
        channel=channel,
        server_id=server_id,
        server_name=server_name,
        user=user,
        action=action,
        outcome=outcome,
        since=since,
        until=until,
        batch_size=batch_size,
    )


def _write_jsonl(entries: Iterator[Row[Any]], out: TextIO) -> int:
    count = 0
    for entry in entries:
        out.write(json.dumps(to_dict(entry), ensure_ascii=False) + "\n")
        count += 1
    return count


def _write_csv(entries: Iterator[Row[Any]], out: TextIO) -> int:
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for entry in entries:
        writer.writerow(to_dict(entry))
        count += 1
    return count


def verify(
    session: Session,
    *,
    batch_size: int = AUDIT_BATCH_SIZE,
    anchors: Sequence[Anchor] = (),
) -> VerifyResult:
    """Walk the chain and report the first entry that does not fit.

    Starts from the newest retention checkpoint when there is one (the
    entries before it were removed on purpose), else from the first entry.
    Reads in append order, ``batch_size`` entries per query, and keeps only
    one batch in memory. Then each of ``anchors`` must still be in the chain,
    after the retention checkpoint.

    Args:
        session: a session that has not run anything yet, so that the walk
            reads one snapshot (without blocking writers on SQLite).
        batch_size: entries read per query.
        anchors: heads recorded earlier, outside the database.
    """
    begin_read_only(session)
    repository = AuditRepository(session)
    head = repository.head()
    checkpoint = repository.latest_checkpoint()
    if checkpoint is None:
        start_seq, start_hash = 0, GENESIS_HASH
    else:
        start_seq, start_hash = checkpoint.seq, checkpoint.hash
        stray = repository.first_seq_through(checkpoint.seq)
        if stray is not None:
            return _failed(
                0,
                stray,
                f"entry {stray} was inserted before the retention checkpoint "
                f"(entries up to {checkpoint.seq} were removed)",
            )

    walk = _walk(repository, start_seq, start_hash, batch_size=batch_size)
    if walk.problem:
        return _failed(walk.checked, walk.bad_seq, walk.problem)
    end = _end_problem(head, last_seq=walk.last_seq, last_hash=walk.last_hash)
    if end is not None:
        problem, bad_seq = end
        return _failed(walk.checked, bad_seq, problem)
    for anchor in anchors:
        problem = _anchor_problem(repository, anchor, walk.last_seq, start_seq)
        if problem is not None:
            return _failed(walk.checked, min(anchor.seq, walk.last_seq + 1), problem)
    logger.info(
        "audit log verified: %d entries; head %d:%s",
        walk.checked,
        walk.last_seq,
        walk.last_hash,
    )
    return VerifyResult(
        ok=True,
        checked=walk.checked,
        head_seq=walk.last_seq,
        head_hash=walk.last_hash,
    )


def _anchor_problem(
    repository: AuditRepository, anchor: Anchor, last_seq: int, start_seq: int
) -> str | None:
    """Whether a recorded head is no longer in the (already walked) chain.

    An anchor at or before the retention checkpoint fails too: the checkpoint
    is a row anyone with write access can forge, with the hash copied from
    the entry before deleting it, so it cannot vouch for the anchor.
    """
    if anchor.seq > last_seq:
        return (
            f"entry {anchor.seq}, recorded as an anchor, is gone: the log now ends "
            f"at {last_seq}, so entries were removed from its end"
        )
    if anchor.seq <= start_seq:
        return (
            f"entry {anchor.seq}, recorded as an anchor, is no longer in the log: "
            f"a retention checkpoint at entry {start_seq} says it was removed, "
            f"which cannot be told from a forged checkpoint; if retention really "
            f"removed it, check with a newer anchor"
        )
    if repository.hash_at(anchor.seq) != anchor.hash:
        return (
            f"entry {anchor.seq} no longer has the hash recorded as an anchor: "
            f"the log was rewritten up to there"
        )
    return None


def _failed(checked: int, bad_seq: int | None, problem: str) -> VerifyResult:
    logger.warning("audit log verification failed: %s", problem)
    return VerifyResult(
        ok=False, checked=checked, first_bad_seq=bad_seq, problem=problem
    )


@dataclass(frozen=True)
class _Walk:
    """How far a walk along the chain got, and what stopped it, if anything."""

    checked: int
    last_seq: int
    last_hash: str
    problem: str = ""
    bad_seq: int | None = None


def _walk(
    repository: AuditRepository,
    after_seq: int,
    prev_hash: str,
    *,
    through_seq: int | None = None,
    batch_size: int = AUDIT_BATCH_SIZE,
) -> _Walk:
    """Check each link after ``after_seq`` (whose hash is ``prev_hash``)."""
    expected_seq = after_seq + 1
    checked = 0
    entries = repository.iter_all(
        after_seq=after_seq, through_seq=through_seq, batch_size=batch_size
    )
    for entry in entries:
        checked += 1
        problem = _chain_problem(entry, expected_seq, prev_hash)
        if problem is not None:
            return _Walk(
                checked,
                expected_seq - 1,
                prev_hash,
                problem=problem,
                bad_seq=min(entry.seq, expected_seq),
            )
        expected_seq = entry.seq + 1
        prev_hash = entry.hash
    return _Walk(checked, expected_seq - 1, prev_hash)


class AuditLogDamagedError(VpsbotError):
    """The part of the audit log retention would remove is not whole."""


@dataclass(frozen=True)
class PruneResult:
    """What ``prune`` did.

    Attributes:
        removed: audit entries deleted.
        checkpoint_seq: position of the last entry removed, now the
            checkpoint ``verify`` starts from; ``None`` when none was removed.
        claims_removed: expired claims deleted.
        more: ``max_entries`` stopped it and older entries remain.
    """

    removed: int
    checkpoint_seq: int | None
    claims_removed: int
    more: bool = False


def prune(
    session: Session,
    *,
    older_than_days: int,
    now: datetime | None = None,
    max_entries: int = PRUNE_MAX_ENTRIES,
    batch_size: int = AUDIT_BATCH_SIZE,
) -> PruneResult:
    """Retention: remove entries older than ``older_than_days``, leaving a checkpoint.

    This is the only way the program deletes audit entries. It removes the
    oldest run of the chain: every entry up to (not including) the first one
    written at or after the cut-off, so the log stays one unbroken chain; an
    older entry written after a newer one waits until everything before it
    goes. The removed part is walked first, and nothing is removed if it is
    not whole: the evidence stays for ``vpsbot audit verify``. A checkpoint
    row records the last removed entry's seq and hash, how many went and
    when. Expired claims are deleted in the same pass.

    Pruning is logged (INFO), not appended to the log itself: it has no
    Slack user or channel, and the checkpoint row is its record.

    Runs in the caller's transaction, serialized with appends, and removes
    at most ``max_entries`` so that appends never wait long for it; ``more``
    in the result says to call it again in a new transaction (``prune_all``).

    Args:
        session: the caller's session; it is flushed, not committed.
        older_than_days: entries at least this many days old go (at least 1).
        now: the current time (timezone-aware); now by default.
        max_entries: remove at most this many entries (at least 1).
        batch_size: entries read per query while walking the removed part.

    Raises:
        ValueError: ``older_than_days`` below 1 or a naive ``now``.
        AuditLogDamagedError: the part to remove is not whole.
    """
    if older_than_days < 1:
        raise ValueError(f"older_than_days must be at least 1, got {older_than_days}")
    if max_entries < 1:
        raise ValueError(f"max_entries must be at least 1, got {max_entries}")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    cutoff = now - timedelta(days=older_than_days)

    claims_removed = ClaimRepository(session).prune_expired(now=now)
    repository = AuditRepository(session)
    repository.lock_for_append()
    checkpoint = repository.latest_checkpoint()
    after_seq = 0 if checkpoint is None else checkpoint.seq
    first_kept = repository.first_seq_since(cutoff, after_seq=after_seq)
    through_seq = repository.last_seq() if first_kept is None else first_kept - 1
    more = through_seq is not None and through_seq > after_seq + max_entries
    if more:
        through_seq = after_seq + max_entries
    if through_seq is None or through_seq <= after_seq:
        logger.info(
            "audit retention: nothing older than %d days; %d expired claims removed",
            older_than_days,
            claims_removed,
        )
        return PruneResult(
            removed=0, checkpoint_seq=None, claims_removed=claims_removed
        )

    prev_hash = GENESIS_HASH if checkpoint is None else checkpoint.hash
    walk = _walk(
        repository,
        after_seq,
        prev_hash,
        through_seq=through_seq,
        batch_size=batch_size,
    )
    if not walk.problem and walk.last_seq != through_seq:
        walk = _Walk(
            walk.checked,
            walk.last_seq,
            walk.last_hash,
            problem=_gap_problem(walk.last_seq + 1, through_seq + 1),
            bad_seq=walk.last_seq + 1,
        )
    if walk.problem:
        raise AuditLogDamagedError(
            f"audit retention removed nothing: {walk.problem}; "
            f"run `vpsbot audit verify`"
        )

    removed = repository.delete_through(through_seq)
    repository.add_checkpoint(
        AuditCheckpoint(
            seq=through_seq,
            hash=walk.last_hash,
            removed=removed,
            cutoff=cutoff,
            pruned_at=now,
        )
    )
    logger.info(
        "audit retention: removed %d entries older than %d days (through entry %d); "
        "%d expired claims removed",
        removed,
        older_than_days,
        through_seq,
        claims_removed,
    )
    return PruneResult(
        removed=removed,
        checkpoint_seq=through_seq,
        claims_removed=claims_removed,
        more=more,
    )


def prune_all(
    sessions: sessionmaker[Session],
    *,
    older_than_days: int,
    now: datetime | None = None,
    max_entries: int = PRUNE_MAX_ENTRIES,
) -> PruneResult:
    """Run ``prune`` in one transaction after another until nothing old is left.

    Each pass removes at most ``max_entries`` and leaves its own checkpoint.

    Returns:
        The totals: entries and claims removed, and the last checkpoint
        written (``None`` when nothing was removed).

    Raises:
        AuditLogDamagedError: a part to remove is not whole; earlier passes
            stay done.
    """
    if now is None:
        now = datetime.now(UTC)
    removed = claims_removed = 0
    checkpoint_seq: int | None = None
    while True:
        with session_scope(sessions) as session:
            result = prune(
                session,
                older_than_days=older_than_days,
                now=now,
                max_entries=max_entries,
            )
        removed += result.removed
        claims_removed += result.claims_removed
        if result.checkpoint_seq is not None:
            checkpoint_seq = result.checkpoint_seq
        if not result.more:
            return PruneResult(
                removed=removed,
                checkpoint_seq=checkpoint_seq,
                claims_removed=claims_removed,
            )


def _end_problem(
    head: AuditHead | None, *, last_seq: int, last_hash: str
) -> tuple[str, int] | None:
    """Whether the log ends where its head record says: a problem and its seq."""
    if head is None:
        if last_seq == 0:
            return None
        return "the audit log's head record is missing", last_seq
    if head.seq > last_seq:
        first_missing = last_seq + 1
        if head.seq == first_missing:
            return f"entry {head.seq}, the last one written, is missing", head.seq
        return (
            f"entries {first_missing} to {head.seq} are missing (the log ends at "
            f"{last_seq}; the last one written was {head.seq})",
            first_missing,
        )
    if head.seq < last_seq:
        return (
            f"entries after {head.seq} were inserted (the log ends at {last_seq})",
            head.seq + 1,
        )
    if head.hash != last_hash:
        return f"entry {last_seq} was replaced", last_seq
    return None


def _chain_problem(
    entry: AuditEntry | Row[Any], expected_seq: int, prev_hash: str
) -> str | None:
    if entry.seq > expected_seq:
        return _gap_problem(expected_seq, entry.seq)
    if entry.seq < expected_seq:
        return f"entry {entry.seq} was inserted (expected entry {expected_seq} next)"
    content_ok = entry.hash == entry_hash(entry)
    link_ok = entry.prev_hash == prev_hash
    if content_ok and link_ok:
        return None
    if link_ok:
        return f"entry {entry.seq} was changed"
    if content_ok:
        return f"entry {entry.seq} was inserted or its predecessor altered"
    return f"entry {entry.seq} was inserted or changed"


def _gap_problem(expected_seq: int, found_seq: int) -> str:
    last_good = expected_seq - 1
    if found_seq == expected_seq + 1:
        missing = f"entry {expected_seq} is missing"
    else:
        missing = f"entries {expected_seq} to {found_seq - 1} are missing"
    if last_good == 0:
        return f"{missing} (the chain starts at {found_seq})"
    return f"{missing} (the chain jumps from {last_good} to {found_seq})"


def entry_hash(entry: AuditEntry | Row[Any]) -> str:
    """The hex SHA-256 an entry should carry, from its content and ``prev_hash``.

    ``entry`` is an ``AuditEntry`` or a row with the same column names.
    """
    content = {
        "at": format_time(entry.at),
        "team": entry.team,
        "channel": entry.channel,
        "user": entry.user,
        "action": entry.action,
        "server_id": entry.server_id,
        "server_name": entry.server_name,
        "outcome": entry.outcome,
        "detail": entry.detail,
        "request_id": entry.request_id,
        "seq": entry.seq,
        "prev_hash": entry.prev_hash,
    }
    canonical = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``.

    For example ``2024-05-01T09:30:00.000000Z``.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
