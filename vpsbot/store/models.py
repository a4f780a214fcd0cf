"""The tables: channel policies, the audit log and its head, once-only claims,
followed operations, approval requests and workspaces' VPS.org credentials."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, MappedColumn, mapped_column

from vpsbot.store.base import Base, UTCDateTime

logger = logging.getLogger(__name__)

# The policy actions (one column each) and the rules a column may hold.
POLICY_ACTIONS = ("read", "power", "create", "modify", "delete", "audit")
POLICY_RULES = ("allow", "approve", "deny")

# Slack ids are short (U0123ABCD); this leaves room for enterprise-grid ids.
SLACK_ID_LENGTH = 64


def _rule_check(action: str) -> CheckConstraint:
    allowed = ", ".join(f"'{rule}'" for rule in POLICY_RULES)
    # Quoted: ``create`` and ``delete`` are reserved words in SQL.
    return CheckConstraint(f'"{action}" IN ({allowed})', name=action)


def _rule_column() -> MappedColumn[str]:
    return mapped_column(String(8), default="deny", server_default=text("'deny'"))


class ChannelPolicy(Base):
    """One channel's rule for each action, and who may approve there."""

    __tablename__ = "channel_policies"
    __table_args__ = tuple(_rule_check(action) for action in POLICY_ACTIONS)

    team_id: Mapped[str] = mapped_column(String(SLACK_ID_LENGTH), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(SLACK_ID_LENGTH), primary_key=True)
    read: Mapped[str] = _rule_column()
    power: Mapped[str] = _rule_column()
    create: Mapped[str] = _rule_column()
    modify: Mapped[str] = _rule_column()
    delete: Mapped[str] = _rule_column()
    audit: Mapped[str] = _rule_column()
    approvers: Mapped[list[str]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    updated_by: Mapped[str] = mapped_column(String(SLACK_ID_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def rules(self) -> dict[str, str]:
        """The rule of every action, keyed by action name."""
        return {action: getattr(self, action) for action in POLICY_ACTIONS}

    def __repr__(self) -> str:
        return (
            f"ChannelPolicy(team_id={self.team_id!r}, "
            f"channel_id={self.channel_id!r}, rules={self.rules()!r})"
        )


class AuditEntry(Base):
    """One attempt at an action, as one link of the audit hash chain.

    Rows are only inserted, and deleted only by retention (``audit.prune``),
    oldest first, behind a checkpoint. ``seq`` numbers them without gaps, and
    ``hash`` covers the content plus ``prev_hash``, the previous row's hash.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        UniqueConstraint("seq"),
        # ``/vps audit`` filters one channel's entries and shows the newest
        # first (at, then seq): each index ends in that order, so a filtered
        # page is read straight off the index, however long the log is.
        Index("ix_audit_entries_team_channel_at_seq", "team", "channel", "at", "seq"),
        Index(
            "ix_audit_entries_team_channel_server_id_at_seq",
            "team",
            "channel",
            "server_id",
            "at",
            "seq",
        ),
        Index(
            "ix_audit_entries_team_channel_server_name_at_seq",
            "team",
            "channel",
            "server_name",
            "at",
            "seq",
        ),
        Index(
            "ix_audit_entries_team_channel_user_at_seq",
            "team",
            "channel",
            "user",
            "at",
            "seq",
        ),
        # A person's own newest entries in any channel (the App Home).
        Index("ix_audit_entries_team_user_at_seq", "team", "user", "at", "seq"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    team: Mapped[str] = mapped_column(String(SLACK_ID_LENGTH))
    channel: Mapped[str] = mapped_column(String(SLACK_ID_LENGTH))
    user: Mapped[str] = mapped_column(String(SLACK_ID_LENGTH))
    action: Mapped[str] = mapped_column(String(16))
    server_id: Mapped[int | None] = mapped_column(BigInteger)
    server_name: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return (
            f"AuditEntry(seq={self.seq!r}, action={self.action!r}, "
            f"outcome={self.outcome!r}, user={self.user!r})"
        )


class AuditHead(Base):
    """The last entry appended to the audit log, in a row of its own.

    Updated with every append, under the same lock. A log whose newest
    entries were deleted behind the program's back no longer ends where the
    head says, which ``vpsbot audit verify`` reports.
    """

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditCheckpoint(Base):
    """Where the audit log starts after retention removed its oldest entries.

    One row per pruning pass: the last entry it removed (``seq`` and ``hash``),
    how many, and when. ``verify`` starts from the newest checkpoint, so the
    entries that remain still prove whole. Rows are only inserted.
    """

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    hash: Mapped[str] = mapped_column(String(64))
    removed: Mapped[int] = mapped_column(BigInteger)
    # Entries written before this moment were due for removal.
    cutoff: Mapped[datetime] = mapped_column(UTCDateTime())
    pruned_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return (
            f"AuditCheckpoint(seq={self.seq!r}, removed={self.removed!r}, "
            f"pruned_at={self.pruned_at!r})"
        )


class Claim(Base):
    """A key held by one request, so that something happens only once.

    ``expires_at`` of ``None`` means the claim is held for good.
    """

    __tablename__ = "claims"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return (
            f"Claim(key={self.key!r}, request_id={self.request_id!r}, "
            f"expires_at={self.expires_at!r})"
        )


class FollowedOperation(Base):
    """A long operation (create, start, stop, reboot) whose server is watched.

    One process at a time follows a row: ``owner`` names it and ``lease_until``
    says until when the claim holds unless renewed. Rows are kept after they
    finish (``finished_at``) for a while, then pruned.
    """

    __tablename__ = "followed_operations"
    __table_args__ = (
        # The due-work queries only look at open rows; finished ones pile up
        # until pruned and would otherwise bloat these indexes.
        Index(
            "ix_followed_operations_open_next_poll_at",
            "next_poll_at",
            postgresql_where=text("finished_at IS NULL"),
            sqlite_where=text("finished_at IS NULL"),
        ),
        Index(
            "ix_followed_operations_open_owner",
            "owner",
            "next_poll_at",
            postgresql_where=text("finished_at IS NULL"),
            sqlite_where=text("finished_at IS NULL"),
        ),
        Index("ix_followed_operations_finished_at", "finished_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    team_id: Mapped[str] = mapped_column(String(SLACK_ID_LENGTH))
    channel_id: Mapped[str] = mapped_column(String(SLACK_ID_LENGTH))
    message_ts: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(SLACK_ID_LENGTH))
    request_id: Mapped[str] = mapped_column(String(64))
    verb: Mapped[str] = mapped_column(String(16))
    server_id: Mapped[int] = mapped_column(BigInteger)
    server_name: Mapped[str] = mapped_column(String(255))
    # The announcement as posted (mrkdwn, already escaped), redrawn on update.
    headline: Mapped[str] = mapped_column(Text)
    expected_status: Mapped[str] = mapped_column(String(32))
    last_status: Mapped[str] = mapped_column(String(32))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    # Why the last poll got no status ("unreachable", "rate_limited", …).
    last_error: Mapped[str | None] = mapped_column(String(32))
    polls: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When the row is next looked at: a poll, or a retry of its last message.
    next_poll_at: Mapped[datetime] = mapped_column(UTCDateTime())
    owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notified_status: Mapped[str | None] = mapped_column(String(32))
    # Slack asked to wait (429) until then before the next update.
    notify_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # settled, gave_up, gone or undeliverable; set when the end is known.
    result: Mapped[str | None] = mapped_column(String(16))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set once the last message is delivered (or cannot be): nothing more to do.
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return (
            f"FollowedOperation(id={self.id!r}, verb={self.verb!r}, "
            f"server_id={self.server_id!r}, last_status={self.last_status!r}, "
            f"owner={self.owner!r}, result={self.result!r})"
        )


# The states of an approval request; see ``vpsbot.ops.approvals``.
APPROVAL_STATES = (
    "pending",
    "approved",
    "rejected",
    "expired",
    "cancelled",
    "stale",
    "executed",
    "failed",
)


def _approval_state_check() -> CheckConstraint:
    allowed = ", ".join(f"'{state}'" for state in APPROVAL_STATES)
    return CheckConstraint(f"status IN ({allowed})", name="status")


class ApprovalRequest(Base):
    """An action waiting for (or past) a second person's decision.

    ``request_id`` is the id of the Slack request that asked for the action;
    every audit entry of the request's steps carries it, and it is the public
    id the request message's buttons hold. ``server_id``, ``server_name`` and
    ``server_status`` bind the request to the server as it was when asked
    (a create has no server id yet; ``server_name`` is then the new name).
    ``params`` is JSON text with what the action needs to run as asked.
    ``status`` only moves forward, each step by a conditional UPDATE.
    """

    __tablename__ = "approval_requests"
    __table_args__ = (
        UniqueConstraint("request_id"),
        _approval_state_check(),
        Index(
            "ix_approval_requests_team_id_channel_id_status",
            "team_id",
            "channel_id",
            "status",
        ),
        Index("ix_approval_requests_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    request_id: Mapped[str] = mapped_column(String(64))
    team_id: Mapped[str] = mapped_column(String(SLACK_ID_LENGTH))
    channel_id: Mapped[str] = mapped_column(String(SLACK_ID_LENGTH))
    requester: Mapped[str] = mapped_column(String(SLACK_ID_LENGTH))
    verb: Mapped[str] = mapped_column(String(16))
    server_id: Mapped[int | None] = mapped_column(BigInteger)
    server_name: Mapped[str] = mapped_column(String(255))
    server_status: Mapped[str | None] = mapped_column(String(32))
    params: Mapped[str] = mapped_column(Text, default="{}", server_default=text("'{}'"))
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(SLACK_ID_LENGTH))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # How the request ended, in a sentence (shown on the request message).
    outcome: Mapped[str | None] = mapped_column(Text)
    # The request message in the channel, when it could be posted as one.
    message_ts: Mapped[str | None] = mapped_column(String(32))
    # The requester's response_url, to tell them how it went; never logged.
    response_url: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return (
            f"ApprovalRequest(id={self.id!r}, request_id={self.request_id!r}, "
            f"verb={self.verb!r}, server_id={self.server_id!r}, "
            f"status={self.status!r})"
        )


class WorkspaceCredential(Base):
    """One workspace's VPS.org API token, encrypted (multi-workspace mode).

    ``ciphertext`` is a Fernet token made with the first ``VPSBOT_SECRET_KEY``
    of its time; any configured key decrypts it, so no key version is kept.
    """

    __tablename__ = "workspace_credentials"

    team_id: Mapped[str] = mapped_column(String(SLACK_ID_LENGTH), primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    connected_by: Mapped[str] = mapped_column(String(SLACK_ID_LENGTH))
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return (
            f"WorkspaceCredential(team_id={self.team_id!r}, "
            f"connected_by={self.connected_by!r}, ciphertext='****')"
        )


# slack_sdk's OAuth tables join the metadata, so migrations and the schema
# check see them. Imported last: the module needs ``Base`` only.
from vpsbot.store import slack_oauth  # noqa: E402, F401
