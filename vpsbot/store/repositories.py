"""Queries and writes per table. Each takes the caller's session and never
creates, commits or closes one: the caller owns the transaction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from vpsbot.errors import VpsbotError
from vpsbot.store.models import (
    POLICY_ACTIONS,
    POLICY_RULES,
    ApprovalRequest,
    AuditCheckpoint,
    AuditEntry,
    AuditHead,
    ChannelPolicy,
    Claim,
    FollowedOperation,
    WorkspaceCredential,
)

logger = logging.getLogger(__name__)

# Slack user ids (U…, W… on enterprise grid) and user-group ids (S…).
_APPROVER_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")

# Key of the PostgreSQL advisory lock that serializes audit appends: the bytes
# of "vpsbot:a" read as a signed 64-bit integer.
AUDIT_APPEND_LOCK = 0x7670_7362_6F74_3A61
# Entries fetched per query when walking the whole audit log.
AUDIT_BATCH_SIZE = 2000
_AUDIT_COLUMNS = tuple(
    getattr(AuditEntry, column.key) for column in AuditEntry.__table__.columns
)


def _channel_filters(
    *,
    team: str,
    channel: str,
    server_id: int | None,
    server_name: str | None,
    user: str | None,
    action: str | None,
    outcome: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[ColumnElement[bool]]:
    """The conditions of a ``/vps audit`` filter, one channel's entries only.

    ``since`` is inclusive and ``until`` exclusive.
    """
    conditions = [AuditEntry.team == team, AuditEntry.channel == channel]
    if server_id is not None:
        conditions.append(AuditEntry.server_id == server_id)
    if server_name is not None:
        conditions.append(AuditEntry.server_name == server_name)
    if user is not None:
        conditions.append(AuditEntry.user == user)
    if action is not None:
        conditions.append(AuditEntry.action == action)
    if outcome is not None:
        conditions.append(AuditEntry.outcome == outcome)
    if since is not None:
        conditions.append(AuditEntry.at >= since)
    if until is not None:
        conditions.append(AuditEntry.at < until)
    return conditions


def _upsert_insert(session: Session, model: type[Any]) -> Insert:
    """An INSERT that supports ``on_conflict_do_nothing`` on this database."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise VpsbotError(f"unsupported database {dialect!r}")


class PolicyRepository:
    """Channel policies: one row per channel, deny-all until changed."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, *, team_id: str, channel_id: str) -> ChannelPolicy | None:
        """The channel's policy, or ``None`` when it has never been set."""
        return self._session.get(ChannelPolicy, (team_id, channel_id))

    def set_rules(
        self,
        *,
        team_id: str,
        channel_id: str,
        rules: Mapping[str, str],
        updated_by: str,
    ) -> ChannelPolicy:
        """Change the named actions' rules and keep the others.

        Args:
            team_id: the workspace.
            channel_id: the channel.
            rules: action name (``read``, ``power``, …) to rule (``allow``,
                ``approve`` or ``deny``).
            updated_by: Slack user id of the person making the change.

        Returns:
            The policy as it now stands (flushed, not committed).

        Raises:
            ValueError: an unknown action or rule.
        """
        for action, rule in rules.items():
            if action not in POLICY_ACTIONS:
                raise ValueError(
                    f"unknown action {action!r}; expected one of "
                    f"{', '.join(POLICY_ACTIONS)}"
                )
            if rule not in POLICY_RULES:
                raise ValueError(
                    f"unknown rule {rule!r} for {action}; expected one of "
                    f"{', '.join(POLICY_RULES)}"
                )

        policy = self._lock_or_create(team_id=team_id, channel_id=channel_id)
        for action, rule in rules.items():
            setattr(policy, action, rule)
        policy.updated_by = updated_by
        policy.updated_at = datetime.now(UTC)
        self._session.flush()
        return policy

    def set_approvers(
        self,
        *,
        team_id: str,
        channel_id: str,
        approvers: Sequence[str],
        updated_by: str,
    ) -> ChannelPolicy:
        """Replace the list of people and user groups who may approve.

        Args:
            team_id: the workspace.
            channel_id: the channel.
            approvers: Slack user ids (``U…``, ``W…``) and user-group ids
                (``S…``); duplicates are dropped, order is kept.
            updated_by: Slack user id of the person making the change.

        Returns:
            The policy as it now stands (flushed, not committed).

        Raises:
            ValueError: an entry is not a Slack user or user-group id.
        """
        if isinstance(approvers, str):
            raise ValueError("approvers must be a list of ids, not one string")
        for approver in approvers:
            if not _APPROVER_ID.match(approver):
                raise ValueError(
                    f"{approver!r} is not a Slack user id (U…, W…) or "
                    f"user-group id (S…)"
                )

        policy = self._lock_or_create(team_id=team_id, channel_id=channel_id)
        policy.approvers = list(dict.fromkeys(approvers))
        policy.updated_by = updated_by
        policy.updated_at = datetime.now(UTC)
        self._session.flush()
        return policy

    def _lock_or_create(self, *, team_id: str, channel_id: str) -> ChannelPolicy:
        # Insert-if-missing, then lock the row: two admins changing different
        # rules of a new channel at once each keep the other's change.
        insert = _upsert_insert(self._session, ChannelPolicy).values(
            team_id=team_id,
            channel_id=channel_id,
            approvers=[],
            updated_by="",
            updated_at=datetime.now(UTC),
        )
        self._session.execute(
            insert.on_conflict_do_nothing(index_elements=["team_id", "channel_id"])
        )
        query = (
            select(ChannelPolicy)
            .where(
                ChannelPolicy.team_id == team_id,
                ChannelPolicy.channel_id == channel_id,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return self._session.scalars(query).one()


class ClaimRepository:
    """Keys held by one request at a time, with an optional expiry."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def try_claim(
        self,
        *,
        key: str,
        request_id: str,
        ttl_seconds: float | None,
        now: datetime,
    ) -> bool:
        """Take ``key`` for ``request_id`` unless someone else holds it.

        Atomic on both databases: of any number of concurrent callers, one
        wins. An expired claim is taken over by exactly one caller.

        Args:
            key: what is being claimed, e.g. ``delete:<team>:<server id>``.
            request_id: the request that will hold it.
            ttl_seconds: how long the claim lasts; ``None`` holds it for good.
            now: the current time (timezone-aware).

        Returns:
            Whether this caller now holds the key. It is held once the
            caller's transaction commits.

        Raises:
            ValueError: a negative ``ttl_seconds`` or a naive ``now``.
        """
        if ttl_seconds is not None and ttl_seconds < 0:
            raise ValueError(f"ttl_seconds must not be negative, got {ttl_seconds}")
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        expires_at = (
            None if ttl_seconds is None else now + timedelta(seconds=ttl_seconds)
        )

        insert = _upsert_insert(self._session, Claim).values(
            key=key, request_id=request_id, created_at=now, expires_at=expires_at
        )
        # RETURNING rather than rowcount: drivers do not all count INSERTs.
        inserted = self._session.scalars(
            insert.on_conflict_do_nothing(index_elements=["key"]).returning(Claim.key)
        ).first()
        if inserted is not None:
            return True

        # The WHERE clause is re-checked against the latest row on PostgreSQL
        # when another takeover commits first, so only one caller matches.
        takeover = (
            update(Claim)
            .where(
                Claim.key == key,
                Claim.expires_at.is_not(None),
                Claim.expires_at < now,
            )
            .values(request_id=request_id, created_at=now, expires_at=expires_at)
            .returning(Claim.key)
            .execution_options(synchronize_session=False)
        )
        return self._session.scalars(takeover).first() is not None

    def prune_expired(self, *, now: datetime) -> int:
        """Delete claims whose expiry has passed; how many went.

        Claims held for good (no expiry) stay.
        """
        result = self._session.execute(
            delete(Claim)
            .where(Claim.expires_at.is_not(None), Claim.expires_at < now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)

    def release(self, *, key: str, request_id: str) -> None:
        """Let go of ``key``, but only if ``request_id`` still holds it."""
        self._session.execute(
            delete(Claim)
            .where(Claim.key == key, Claim.request_id == request_id)
            .execution_options(synchronize_session=False)
        )


class AuditRepository:
    """Reads and appends on the audit log; used by ``vpsbot.audit``."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def lock_for_append(self) -> None:
        """Serialize appends until the caller's transaction ends.

        PostgreSQL takes a transaction-scoped advisory lock. SQLite needs
        nothing: every transaction there already begins with the write lock.
        """
        if self._session.get_bind().dialect.name == "postgresql":
            self._session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"),
                {"key": AUDIT_APPEND_LOCK},
            )

    def find_last(self) -> AuditEntry | None:
        """The entry with the highest ``seq``, or ``None`` for an empty log."""
        query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)
        return self._session.scalars(query).first()

    def add(self, entry: AuditEntry) -> None:
        """Insert ``entry`` and flush, so constraint errors surface here."""
        self._session.add(entry)
        self._session.flush()

    def head(self) -> AuditHead | None:
        """Where the log should end, or ``None`` before the first append."""
        return self._session.get(AuditHead, 1)

    def move_head(self, entry: AuditEntry) -> None:
        """Record ``entry`` as the last one appended."""
        head = self.head()
        if head is None:
            head = AuditHead(id=1)
            self._session.add(head)
        head.seq = entry.seq
        head.hash = entry.hash
        head.updated_at = entry.at
        self._session.flush()

    def list_for_channel(
        self,
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
        before_seq: int | None = None,
        limit: int = 20,
    ) -> list[AuditEntry]:
        """One channel's entries matching every given filter, newest first.

        ``since`` is inclusive and ``until`` exclusive; ``before_seq`` keeps
        the entries shown after that one in this order (for paging).
        """
        query = select(AuditEntry).where(
            *_channel_filters(
                team=team,
                channel=channel,
                server_id=server_id,
                server_name=server_name,
                user=user,
                action=action,
                outcome=outcome,
                since=since,
                until=until,
            )
        )
        if before_seq is not None:
            # Keyset on the order shown (time, then position), so a page goes
            # on exactly where the last one ended even when times and positions
            # disagree (an entry recorded with an earlier time).
            anchor = (
                select(AuditEntry.at)
                .where(AuditEntry.seq == before_seq)
                .scalar_subquery()
            )
            query = query.where(
                or_(
                    AuditEntry.at < anchor,
                    and_(AuditEntry.at == anchor, AuditEntry.seq < before_seq),
                )
            )

        query = query.order_by(AuditEntry.at.desc(), AuditEntry.seq.desc())
        return list(self._session.scalars(query.limit(limit)))

    def iter_all(
        self,
        *,
        after_seq: int = 0,
        through_seq: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_size: int = AUDIT_BATCH_SIZE,
    ) -> Iterator[Row[Any]]:
        """Every entry after ``after_seq`` in append order, as plain rows.

        With ``through_seq``, stops after the entry at that position.

        Pages by ``seq`` (keyset paging): each batch of ``batch_size`` rows is
        one query that starts after the last ``seq`` of the batch before, so
        only one batch is held in memory however long the log is, and no
        server-side cursor stays open between batches. Rows carry the
        entry's columns as attributes, like ``AuditEntry``, without the cost
        of ORM objects. Consume it inside one transaction that reads a
        snapshot (``begin_read_only``), or appends made meanwhile show up.

        Raises:
            ValueError: a ``batch_size`` below 1.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        base = select(*_AUDIT_COLUMNS).order_by(AuditEntry.seq).limit(batch_size)
        if since is not None:
            base = base.where(AuditEntry.at >= since)
        if until is not None:
            base = base.where(AuditEntry.at < until)
        if through_seq is not None:
            base = base.where(AuditEntry.seq <= through_seq)
        last_seq = after_seq
        while True:
            rows = self._session.execute(base.where(AuditEntry.seq > last_seq)).all()
            yield from rows
            if len(rows) < batch_size:
                return
            last_seq = rows[-1].seq

    def iter_for_channel(
        self,
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
        """One channel's entries matching every given filter, oldest first.

        The order is time, then position (the order ``list_for_channel``
        shows, reversed). Keyset paging as in ``iter_all``, on that order:
        each batch starts after the last (time, position) of the batch
        before, so one batch is held in memory however many match. Consume
        it inside one snapshot transaction (``begin_read_only``).

        Raises:
            ValueError: a ``batch_size`` below 1.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        base = select(*_AUDIT_COLUMNS).where(
            *_channel_filters(
                team=team,
                channel=channel,
                server_id=server_id,
                server_name=server_name,
                user=user,
                action=action,
                outcome=outcome,
                since=since,
                until=until,
            )
        )
        base = base.order_by(AuditEntry.at, AuditEntry.seq).limit(batch_size)

        query = base
        while True:
            rows = self._session.execute(query).all()
            yield from rows
            if len(rows) < batch_size:
                return
            last = rows[-1]
            query = base.where(
                or_(
                    AuditEntry.at > last.at,
                    and_(AuditEntry.at == last.at, AuditEntry.seq > last.seq),
                )
            )

    def latest_checkpoint(self) -> AuditCheckpoint | None:
        """Where retention last cut the log, or ``None`` if it never did."""
        query = select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)
        return self._session.scalars(query).first()

    def first_seq_through(self, seq: int) -> int | None:
        """The lowest ``seq`` at or before ``seq``, or ``None`` if none is left."""
        return self._session.scalar(
            select(func.min(AuditEntry.seq)).where(AuditEntry.seq <= seq)
        )

    def first_seq_since(self, moment: datetime, *, after_seq: int) -> int | None:
        """The lowest ``seq`` after ``after_seq`` of an entry at or after ``moment``."""
        return self._session.scalar(
            select(func.min(AuditEntry.seq)).where(
                AuditEntry.at >= moment, AuditEntry.seq > after_seq
            )
        )

    def last_seq(self) -> int | None:
        """The highest ``seq`` in the table, or ``None`` when it is empty."""
        return self._session.scalar(select(func.max(AuditEntry.seq)))

    def hash_at(self, seq: int) -> str | None:
        """The stored hash of the entry at ``seq``, if there is one."""
        return self._session.scalar(
            select(AuditEntry.hash).where(AuditEntry.seq == seq)
        )

    def delete_through(self, seq: int) -> int:
        """Delete every entry at or before ``seq``; how many went.

        Only retention calls this, with a checkpoint in the same transaction.
        """
        result = self._session.execute(
            delete(AuditEntry)
            .where(AuditEntry.seq <= seq)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)

    def add_checkpoint(self, checkpoint: AuditCheckpoint) -> None:
        """Insert ``checkpoint`` and flush."""
        self._session.add(checkpoint)
        self._session.flush()


class FollowedOperationRepository:
    """Operations being followed, and the leases that say who follows each.

    A process owns an open row while ``lease_until`` lies ahead and renews it
    while it lives; an open row with no owner or an expired lease is free for
    any process to take. Every write the owner makes afterwards is conditional
    on still owning the row, so a process that lost it writes nothing.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, operation: FollowedOperation) -> int:
        """Insert a new operation (unowned) and return its id."""
        self._session.add(operation)
        self._session.flush()
        return operation.id

    def get(self, operation_id: int) -> FollowedOperation | None:
        """One operation by id, open or finished."""
        return self._session.get(FollowedOperation, operation_id)

    def renew(self, *, owner: str, now: datetime, ttl_seconds: float) -> int:
        """Extend ``owner``'s leases that have less than half their time left.

        Returns:
            How many leases were extended.
        """
        until = now + timedelta(seconds=ttl_seconds)
        halfway = now + timedelta(seconds=ttl_seconds / 2)
        result = self._session.execute(
            update(FollowedOperation)
            .where(
                FollowedOperation.owner == owner,
                FollowedOperation.finished_at.is_(None),
                FollowedOperation.lease_until < halfway,
            )
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def claim(
        self, *, owner: str, now: datetime, ttl_seconds: float, limit: int
    ) -> list[int]:
        """Take up to ``limit`` open operations that nobody holds.

        Of several processes claiming at once, each row goes to one: the rows
        are locked with ``SKIP LOCKED`` on PostgreSQL (SQLite's transactions
        already hold the write lock), and the UPDATE checks again that the row
        is free.

        Returns:
            The ids now owned by ``owner`` (once the transaction commits).
        """
        free = (FollowedOperation.owner.is_(None)) | (
            FollowedOperation.lease_until < now
        )
        candidates = list(
            self._session.scalars(
                select(FollowedOperation.id)
                .where(FollowedOperation.finished_at.is_(None), free)
                .order_by(FollowedOperation.next_poll_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not candidates:
            return []
        taken = self._session.scalars(
            update(FollowedOperation)
            .where(
                FollowedOperation.id.in_(candidates),
                FollowedOperation.finished_at.is_(None),
                free,
            )
            .values(owner=owner, lease_until=now + timedelta(seconds=ttl_seconds))
            .returning(FollowedOperation.id)
            .execution_options(synchronize_session=False)
        )
        return sorted(taken)

    def due(
        self,
        *,
        owner: str,
        now: datetime,
        limit: int,
        exclude: Collection[int] = (),
    ) -> list[FollowedOperation]:
        """``owner``'s open operations whose next look is due, earliest first."""
        query = select(FollowedOperation).where(
            FollowedOperation.owner == owner,
            FollowedOperation.finished_at.is_(None),
            FollowedOperation.next_poll_at <= now,
        )
        if exclude:
            query = query.where(FollowedOperation.id.not_in(list(exclude)))
        query = query.order_by(FollowedOperation.next_poll_at).limit(limit)
        return list(self._session.scalars(query))

    def update_owned(
        self, operation_id: int, *, owner: str, values: Mapping[str, Any]
    ) -> bool:
        """Write ``values`` if ``owner`` still holds the open operation.

        Returns:
            Whether the row was written; ``False`` means another process took
            it over (or it finished), and the caller should drop it.
        """
        written = self._session.scalars(
            update(FollowedOperation)
            .where(
                FollowedOperation.id == operation_id,
                FollowedOperation.owner == owner,
                FollowedOperation.finished_at.is_(None),
            )
            .values(**values)
            .returning(FollowedOperation.id)
            .execution_options(synchronize_session=False)
        ).first()
        return written is not None

    def release(self, *, owner: str) -> int:
        """Give up every open operation ``owner`` holds, for others to take now."""
        result = self._session.execute(
            update(FollowedOperation)
            .where(
                FollowedOperation.owner == owner,
                FollowedOperation.finished_at.is_(None),
            )
            .values(owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def count_open(self) -> int:
        """How many operations are still followed, by any process."""
        query = select(func.count()).where(FollowedOperation.finished_at.is_(None))
        return int(self._session.scalar(query) or 0)

    def prune(self, *, finished_before: datetime) -> int:
        """Delete operations that finished before the given time."""
        result = self._session.execute(
            delete(FollowedOperation)
            .where(FollowedOperation.finished_at < finished_before)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class ApprovalRepository:
    """Approval requests and the once-only moves between their states.

    Every change of ``status`` is one conditional UPDATE that names the state
    it leaves: of any number of callers racing to move a request (clicks in
    several processes, the expiry loop), one matches and the others find the
    row already moved. On PostgreSQL a second UPDATE waits for the first to
    commit and then checks its WHERE clause again against the new row.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, row: ApprovalRequest) -> int:
        """Insert a new request and return its id."""
        self._session.add(row)
        self._session.flush()
        return row.id

    def get(self, approval_id: int) -> ApprovalRequest | None:
        """One request by its row id, read afresh."""
        query = (
            select(ApprovalRequest)
            .where(ApprovalRequest.id == approval_id)
            .execution_options(populate_existing=True)
        )
        return self._session.scalars(query).first()

    def find(self, request_id: str) -> ApprovalRequest | None:
        """One request by its public id (the asking request's id), read afresh."""
        query = (
            select(ApprovalRequest)
            .where(ApprovalRequest.request_id == request_id)
            .execution_options(populate_existing=True)
        )
        return self._session.scalars(query).first()

    def move(
        self,
        approval_id: int,
        *,
        leaving: str,
        values: Mapping[str, Any],
        open_at: datetime | None = None,
    ) -> bool:
        """Write ``values`` (a new ``status`` among them) if the row is in ``leaving``.

        Args:
            approval_id: the row.
            leaving: the state the row must be in for the write to happen.
            values: the columns to set.
            open_at: when given, the row must also not have expired by then.

        Returns:
            Whether this caller moved the row.
        """
        statement = update(ApprovalRequest).where(
            ApprovalRequest.id == approval_id, ApprovalRequest.status == leaving
        )
        if open_at is not None:
            statement = statement.where(ApprovalRequest.expires_at > open_at)
        moved = self._session.scalars(
            statement.values(**values)
            .returning(ApprovalRequest.id)
            .execution_options(synchronize_session=False)
        ).first()
        return moved is not None

    def set_message(self, approval_id: int, message_ts: str) -> None:
        """Remember the request message's ``ts``, so it can be redrawn."""
        self._session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == approval_id)
            .values(message_ts=message_ts)
            .execution_options(synchronize_session=False)
        )

    def pending_in(
        self, *, team_id: str, channel_id: str, now: datetime, limit: int
    ) -> list[ApprovalRequest]:
        """A channel's requests still open at ``now``, oldest first."""
        query = (
            select(ApprovalRequest)
            .where(
                ApprovalRequest.team_id == team_id,
                ApprovalRequest.channel_id == channel_id,
                ApprovalRequest.status == "pending",
                ApprovalRequest.expires_at > now,
            )
            .order_by(ApprovalRequest.created_at, ApprovalRequest.id)
            .limit(limit)
        )
        return list(self._session.scalars(query))

    def overdue(self, *, now: datetime, limit: int) -> list[int]:
        """Ids of pending requests whose time ran out by ``now``, oldest first."""
        query = (
            select(ApprovalRequest.id)
            .where(
                ApprovalRequest.status == "pending",
                ApprovalRequest.expires_at <= now,
            )
            .order_by(ApprovalRequest.expires_at)
            .limit(limit)
        )
        return list(self._session.scalars(query))


class CredentialRepository:
    """Workspaces' encrypted VPS.org tokens: one row per workspace.

    Only ciphertext passes through here; encryption is the caller's.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, team_id: str) -> WorkspaceCredential | None:
        return self._session.get(WorkspaceCredential, team_id)

    def put(
        self,
        *,
        team_id: str,
        ciphertext: str,
        connected_by: str,
        connected_at: datetime,
    ) -> None:
        """Insert the workspace's row, or replace what it holds."""
        insert = _upsert_insert(self._session, WorkspaceCredential).values(
            team_id=team_id,
            ciphertext=ciphertext,
            connected_by=connected_by,
            connected_at=connected_at,
        )
        self._session.execute(
            insert.on_conflict_do_update(
                index_elements=["team_id"],
                set_={
                    key: insert.excluded[key]
                    for key in ("ciphertext", "connected_by", "connected_at")
                },
            )
        )

    def delete(self, team_id: str) -> bool:
        """Remove the workspace's row; ``True`` when there was one."""
        result = self._session.execute(
            delete(WorkspaceCredential).where(WorkspaceCredential.team_id == team_id)
        )
        return bool(getattr(result, "rowcount", 0))

    def ciphertexts(self) -> list[tuple[str, str]]:
        """``(team id, ciphertext)`` of every row."""
        rows = self._session.execute(
            select(WorkspaceCredential.team_id, WorkspaceCredential.ciphertext)
        ).all()
        return [(team_id, ciphertext) for team_id, ciphertext in rows]

    def replace_ciphertext(self, team_id: str, old: str, new: str) -> bool:
        """Swap ``old`` for ``new`` only if the row still holds ``old``."""
        result = self._session.execute(
            update(WorkspaceCredential)
            .where(
                WorkspaceCredential.team_id == team_id,
                WorkspaceCredential.ciphertext == old,
            )
            .values(ciphertext=new)
        )
        return bool(getattr(result, "rowcount", 0))
