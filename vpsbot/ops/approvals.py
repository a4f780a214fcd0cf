"""Approval requests: asked, decided once, run as asked, or closed. Free of Slack.

An action under an ``approve`` rule is not run; the guard raises
``ApprovalRequiredError`` and the caller turns what it knew of the action (a
``PendingAction``) into a request with ``ApprovalOperations.request``. The
request is a row of ``approval_requests`` bound to the server as it was then
(id, name, status), and every step of it is an audit entry carrying the id of
the request that asked (``request_id``), which is also the request's public id.

States, and the steps between them (each one conditional UPDATE that names
the state it leaves, so a step happens once however many clicks or processes
race for it):

``pending``
    waiting for a decision, until ``expires_at``.
``approved``
    an approver said yes; the action is about to run (a row left here means
    the process stopped while running it; the audit log tells how far it got).
``executed`` / ``failed``
    the action ran as the requester asked and succeeded, or failed; the
    operation audits its own ``succeeded`` or ``failed``.
``stale``
    approved, but the server changed in a way that matters (renamed, gone, its
    status moved, or a state in which the action makes no sense): nothing ran,
    audited ``failed`` with a ``stale:`` detail.
``rejected``
    an approver said no (audited ``rejected``), or the channel's policy came to
    deny the action before anyone decided (audited ``denied``).
``cancelled``
    the requester withdrew it (their own Deny, or Cancel); audited ``cancelled``.
``expired``
    nobody decided in time; audited ``expired`` by whoever noticed first (a
    click or the expiry loop).

Refused clicks change nothing and are audited ``denied``: the requester's own
Approve, and anyone who is not an approver.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from vpsbot.errors import (
    ActionStateError,
    ServerLookupError,
    StoreUnavailableError,
    UserError,
    VpsbotError,
)
from vpsbot.ops.context import Actor, with_reason
from vpsbot.ops.guard import Guard, Target
from vpsbot.ops.provisioning import CreateOperations, CreateRequest
from vpsbot.ops.servers import ChangeResult, Edit, ServerOperations, StaleEditError
from vpsbot.policy import OPERATION_ACTIONS, approvers, decide, may_approve
from vpsbot.store import ApprovalRepository, session_scope
from vpsbot.store.models import ApprovalRequest
from vpsbot.vps import Server, VpsApiError
from vpsbot.vps.servers import parse_timestamp

__all__ = [
    "VERBS",
    "Approval",
    "ApprovalExpiry",
    "ApprovalOperations",
    "ExpiryNotifier",
    "PendingAction",
    "Verdict",
]

logger = logging.getLogger(__name__)

#: The operations a request can ask for.
VERBS = ("start", "stop", "reboot", "create", "update", "rename", "backups", "delete")
#: Most requests listed by ``/vps approvals``.
MAX_PENDING_LISTED = 20

MembersOf = Callable[[str], set[str]]


class GroupUnreadableError(VpsbotError):
    """A user group's members could not be read just now (try again later).

    Raised by a ``MembersOf`` for a passing failure, such as a rate limit; a
    group that cannot be read for good should count as empty instead.
    """


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PendingAction:
    """An action as asked, with what it needs to run exactly so later.

    Attributes:
        verb: one of ``VERBS``.
        server: the server as given (id or name); ``None`` for a create.
        params: by verb: ``new_name`` (rename); ``enabled`` (backups); the
            create's fields (create); ``edit``, ``opened`` and ``opened_at``
            (update: the values wanted, those the dialog showed, and the
            server's ``updated_at`` then); ``expected_name`` (delete).
        reason: the requester's reason, if any.
    """

    verb: str
    server: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None

    @classmethod
    def of_create(cls, request: CreateRequest, reason: str | None) -> PendingAction:
        params = {
            "name": request.name,
            "plan": request.plan,
            "os": request.os,
            "location": request.location,
            "hostname": request.hostname,
            "backups": request.backups,
        }
        return cls("create", None, params, reason)

    @classmethod
    def of_update(
        cls,
        server_id: int,
        edit: Edit,
        *,
        opened: Edit,
        opened_at: datetime | None,
        reason: str | None,
    ) -> PendingAction:
        params = {
            "edit": _edit_dict(edit),
            "opened": _edit_dict(opened),
            "opened_at": opened_at.isoformat() if opened_at else None,
        }
        return cls("update", str(server_id), params, reason)


@dataclass(frozen=True)
class Approval:
    """An approval request as read from the database."""

    id: int
    request_id: str
    team_id: str
    channel_id: str
    requester: str
    verb: str
    server_id: int | None
    server_name: str
    server_status: str | None
    params: Mapping[str, Any]
    reason: str | None
    status: str
    created_at: datetime
    expires_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    outcome: str | None = None
    message_ts: str | None = None
    response_url: str | None = None

    @classmethod
    def from_row(cls, row: ApprovalRequest) -> Approval:
        try:
            params = json.loads(row.params or "{}")
        except ValueError:
            params = {}
        return cls(
            id=row.id,
            request_id=row.request_id,
            team_id=row.team_id,
            channel_id=row.channel_id,
            requester=row.requester,
            verb=row.verb,
            server_id=row.server_id,
            server_name=row.server_name,
            server_status=row.server_status,
            params=params if isinstance(params, dict) else {},
            reason=row.reason,
            status=row.status,
            created_at=row.created_at,
            expires_at=row.expires_at,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            outcome=row.outcome,
            message_ts=row.message_ts,
            response_url=row.response_url,
        )

    @property
    def pending(self) -> bool:
        return self.status == "pending"

    @property
    def target(self) -> Target:
        return Target(self.server_id, self.server_name)

    def actor(self, user_id: str) -> Actor:
        """``user_id`` acting on this request, under its request id."""
        return Actor(self.team_id, self.channel_id, user_id, self.request_id)

    def describe(self) -> str:
        """What is asked, in words (plain text: escape it before showing)."""
        return describe(self.verb, self.server_name, self.params)


@dataclass(frozen=True)
class Verdict:
    """What a click on a request did.

    Attributes:
        kind: ``executed``, ``failed`` or ``stale`` (approved, and how the run
            ended); ``rejected``; ``cancelled``; ``expired``; ``closed`` (the
            policy now denies the action); or, with nothing changed: ``self``
            (the requester's own Approve), ``not_approver``, ``not_requester``
            (someone else's Cancel), ``unchecked`` (an approver group could not
            be read just now) and ``decided`` (it was decided before).
        approval: the request as it stands afterwards.
        result: the change, when the approved action ran.
        approvers: who may approve here, for a ``not_approver`` answer.
    """

    kind: str
    approval: Approval
    result: ChangeResult | None = None
    approvers: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether this click moved the request (its message needs redrawing)."""
        return self.kind not in (
            "self",
            "not_approver",
            "not_requester",
            "unchecked",
            "decided",
        )


class ExpiryNotifier(Protocol):
    """Shows people that a request expired (e.g. redraws its message)."""

    def expired(self, approval: Approval) -> None: ...


class ApprovalOperations:
    """Asking for approval, deciding, cancelling, expiring and running.

    Args:
        guard: policy and audit.
        sessions: the database.
        servers: the server operations an approved action runs through.
        create: the create operation an approved create runs through.
        ttl_seconds: how long a request stays open.
        clock: the current time, timezone-aware (tests pass a fake).
    """

    def __init__(
        self,
        *,
        guard: Guard,
        sessions: sessionmaker[Session],
        servers: ServerOperations,
        create: CreateOperations,
        ttl_seconds: float = 3600.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._guard = guard
        self._sessions = sessions
        self._servers = servers
        self._create = create
        self.ttl_seconds = float(ttl_seconds)
        self._clock = clock

    # Asking

    def request(
        self, actor: Actor, action: PendingAction, *, response_url: str | None
    ) -> Approval:
        """Record a request for ``action``, bound to its server as it is now.

        Args:
            actor: the requester, with the id of the request that asked.
            action: what to run once approved.
            response_url: where to tell the requester later (never logged).

        Raises:
            NoProviderAccountError: the workspace has no VPS.org account.
            PermissionDeniedError: the policy now denies the action (audited).
            ActionStateError: the policy no longer asks for approval, or the
                server's state makes the action pointless (audited).
            ServerLookupError: no such server (audited).
            VpsApiError: the provider failed while the server was looked up.
            StoreUnavailableError: the database did not answer.
        """
        if action.verb not in VERBS:
            raise ValueError(f"{action.verb!r} cannot be asked for approval")
        self._servers.require_account(actor)
        decision = self._guard.decision(actor, action.verb)
        if decision.rule == "deny":
            self._guard.authorize(actor, action.verb, Target.from_ref(action.server))
        if decision.rule == "allow":
            raise ActionStateError(
                f"This channel's policy now allows `{decision.action}` without "
                f"approval; nothing was asked. Run it again."
            )
        server = self._bind(actor, action)
        if action.verb == "create":
            action = self._with_names(action)
        if server is None:
            target = Target(None, str(action.params.get("name", "")))
        else:
            target = Target(server.id, server.name)
            problem = _unfit(action.verb, server, action.params)
            if problem:
                self._guard.record(actor, action.verb, "failed", target, problem)
                raise ActionStateError(f"{problem}; nothing was asked.")
        now = self._clock()
        row = ApprovalRequest(
            request_id=actor.request_id,
            team_id=actor.team_id,
            channel_id=actor.channel_id,
            requester=actor.user_id,
            verb=action.verb,
            server_id=target.server_id,
            server_name=(target.server_name or "")[:255],
            server_status=server.status[:32] if server else None,
            params=json.dumps(dict(action.params), sort_keys=True),
            reason=action.reason,
            status="pending",
            created_at=now,
            expires_at=now + timedelta(seconds=self.ttl_seconds),
            response_url=response_url,
        )
        detail = "approval requested: " + describe(
            action.verb, target.server_name or "", action.params
        )
        with session_scope(self._sessions) as session:
            ApprovalRepository(session).add(row)
            self._guard.record_in(
                session,
                actor,
                action.verb,
                "requested",
                target,
                with_reason(detail, action.reason),
            )
            approval = Approval.from_row(row)
        logger.info(
            "approval request %s: %s by %s [%s]",
            approval.id,
            action.verb,
            actor.user_id,
            actor.request_id,
        )
        return approval

    def set_message(self, approval: Approval, message_ts: str) -> None:
        """Remember where the request message is, so it can be redrawn.

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        with session_scope(self._sessions) as session:
            ApprovalRepository(session).set_message(approval.id, message_ts)

    # Reading

    def find(self, team_id: str, request_id: str) -> Approval | None:
        """A request of this workspace by its public id."""
        with session_scope(self._sessions) as session:
            row = ApprovalRepository(session).find(request_id)
            if row is None or row.team_id != team_id:
                return None
            return Approval.from_row(row)

    def pending(self, actor: Actor) -> list[Approval]:
        """``/vps approvals``: this channel's open requests, oldest first.

        Checked and audited as a read (action ``list``).

        Raises:
            PermissionDeniedError: the policy does not allow ``read``.
            StoreUnavailableError: the database did not answer.
        """
        self._guard.authorize(actor, "list", Target())
        with session_scope(self._sessions) as session:
            rows = ApprovalRepository(session).pending_in(
                team_id=actor.team_id,
                channel_id=actor.channel_id,
                now=self._clock(),
                # One more than is shown, so the list can say there are more.
                limit=MAX_PENDING_LISTED + 1,
            )
            found = [Approval.from_row(row) for row in rows]
        count = len(found)
        shown = (
            f"more than {MAX_PENDING_LISTED}"
            if count > MAX_PENDING_LISTED
            else str(count)
        )
        self._guard.record(
            actor,
            "list",
            "succeeded",
            Target(),
            f"{shown} pending approval request{'' if count == 1 else 's'}",
        )
        return found

    def approvers_here(self, actor: Actor) -> tuple[str, ...]:
        """Who approves in the actor's channel (user and group ids)."""
        return approvers(
            self._guard.rules(actor), admins=self._guard.admins_for(actor.team_id)
        )

    # Deciding

    def decide(
        self, actor: Actor, request_id: str, *, approve: bool, members_of: MembersOf
    ) -> Verdict:
        """Approve or deny a request on behalf of ``actor`` (who clicked).

        The requester's own Deny cancels the request; their own Approve is
        refused. Approval runs the action at once, as the requester.

        Args:
            members_of: the user ids in a user group. It returns an empty set
                for a group that cannot be read for good, and raises
                ``GroupUnreadableError`` when Slack only asks to wait (the click
                then decides nothing).

        Raises:
            ServerLookupError: no such request in this workspace.
            StoreUnavailableError: the database did not answer.
        """
        approval = self._load(actor, request_id)
        now = self._clock()
        if not approval.pending:
            return Verdict("decided", approval)
        if approval.expires_at <= now:
            return self._expire(approval, now) or Verdict(
                "decided", self._reload(approval)
            )
        if actor.user_id == approval.requester:
            if not approve:
                return self._cancel(approval, now)
            self._refused(
                approval,
                actor.user_id,
                "self-approval refused: the requester cannot approve their own request",
            )
            return Verdict("self", approval)
        rules = self._guard.rules(approval.actor(actor.user_id))
        unreadable: list[str] = []
        if not may_approve(
            actor.user_id,
            requester=approval.requester,
            rules=rules,
            admins=self._guard.admins_for(actor.team_id),
            members_of=_safe(members_of, unreadable),
        ):
            if unreadable:
                # Not a refusal: whether they may decide is not known yet.
                return Verdict("unchecked", approval)
            self._refused(
                approval,
                actor.user_id,
                f"not an approver here; tried to {'approve' if approve else 'deny'}",
            )
            return Verdict(
                "not_approver",
                approval,
                approvers=approvers(
                    rules, admins=self._guard.admins_for(actor.team_id)
                ),
            )
        policy = decide(
            rules,
            OPERATION_ACTIONS[approval.verb],
            admins=self._guard.admins_for(actor.team_id),
        )
        if policy.rule == "deny":
            return self._close_denied(approval, actor.user_id, policy.action, now)
        if not approve:
            return self._reject(approval, actor.user_id, now)
        return self._approve(approval, actor.user_id, now)

    def cancel(self, actor: Actor, request_id: str) -> Verdict:
        """The requester withdraws a pending request.

        Raises:
            ServerLookupError: no such request in this workspace.
            StoreUnavailableError: the database did not answer.
        """
        approval = self._load(actor, request_id)
        now = self._clock()
        if not approval.pending:
            return Verdict("decided", approval)
        if actor.user_id != approval.requester:
            self._refused(
                approval, actor.user_id, "tried to cancel someone else's request"
            )
            return Verdict("not_requester", approval)
        if approval.expires_at <= now:
            return self._expire(approval, now) or Verdict(
                "decided", self._reload(approval)
            )
        return self._cancel(approval, now)

    def withdraw(self, approval: Approval, why: str) -> bool:
        """Close a pending request nobody could see (its message was not posted).

        Audited as ``cancelled`` with ``why``. Returns whether this call closed it.

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        now = self._clock()
        moved = self._step(
            approval,
            leaving="pending",
            open_at=None,
            values={
                "status": "cancelled",
                "decided_by": approval.requester,
                "decided_at": now,
                "outcome": f"Withdrawn: {why}",
            },
            audit=(approval.requester, "cancelled", f"withdrawn: {why}"),
        )
        return moved is not None

    # Expiring

    def expire_due(self, *, limit: int = 50) -> list[Approval]:
        """Expire pending requests whose time ran out.

        Returns:
            The requests this caller expired (another process may have taken
            some); only these should be shown as expired.

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        now = self._clock()
        with session_scope(self._sessions) as session:
            overdue = ApprovalRepository(session).overdue(now=now, limit=limit)
        expired = []
        for approval_id in overdue:
            with session_scope(self._sessions) as session:
                row = ApprovalRepository(session).get(approval_id)
                approval = Approval.from_row(row) if row is not None else None
            if approval is None or not approval.pending:
                continue
            verdict = self._expire(approval, now)
            if verdict is not None:
                expired.append(verdict.approval)
        return expired

    # Steps

    def _refused(self, approval: Approval, user: str, detail: str) -> None:
        """Audit a click refused without touching the request, as ``denied``."""
        self._guard.record(
            approval.actor(user), approval.verb, "denied", approval.target, detail
        )

    def _load(self, actor: Actor, request_id: str) -> Approval:
        approval = self.find(actor.team_id, request_id)
        if approval is None:
            raise ServerLookupError(
                "vpsbot has no such approval request (it may belong to another "
                "workspace); nothing was done."
            )
        return approval

    def _reload(self, approval: Approval) -> Approval:
        with session_scope(self._sessions) as session:
            row = ApprovalRepository(session).get(approval.id)
            assert row is not None
            return Approval.from_row(row)

    def _step(
        self,
        approval: Approval,
        *,
        leaving: str,
        values: Mapping[str, Any],
        audit: tuple[str, str, str] | None,
        open_at: datetime | None = None,
    ) -> Approval | None:
        """Move the request out of ``leaving`` and audit the step, together.

        ``audit`` is (user, outcome, detail). Returns the request as moved, or
        ``None`` when someone else moved it first (nothing is audited then).
        """
        with session_scope(self._sessions) as session:
            repository = ApprovalRepository(session)
            if not repository.move(
                approval.id, leaving=leaving, values=values, open_at=open_at
            ):
                return None
            if audit is not None:
                user, outcome, detail = audit
                self._guard.record_in(
                    session,
                    approval.actor(user),
                    approval.verb,
                    outcome,
                    approval.target,
                    detail,
                )
            row = repository.get(approval.id)
            assert row is not None
            moved = Approval.from_row(row)
        logger.info(
            "approval request %s: %s -> %s [%s]",
            approval.id,
            leaving,
            moved.status,
            approval.request_id,
        )
        return moved

    def _expire(self, approval: Approval, now: datetime) -> Verdict | None:
        moved = self._step(
            approval,
            leaving="pending",
            values={
                "status": "expired",
                "decided_at": now,
                "outcome": f"Expired: nobody decided within "
                f"{_duration(self.ttl_seconds)}",
            },
            audit=(
                approval.requester,
                "expired",
                f"expired without a decision after {_duration(self.ttl_seconds)}",
            ),
        )
        return Verdict("expired", moved) if moved is not None else None

    def _cancel(self, approval: Approval, now: datetime) -> Verdict:
        moved = self._step(
            approval,
            leaving="pending",
            open_at=now,
            values={
                "status": "cancelled",
                "decided_by": approval.requester,
                "decided_at": now,
                "outcome": "Cancelled by the requester",
            },
            audit=(approval.requester, "cancelled", "cancelled by the requester"),
        )
        return self._moved_or_decided(approval, moved, "cancelled")

    def _reject(self, approval: Approval, decider: str, now: datetime) -> Verdict:
        moved = self._step(
            approval,
            leaving="pending",
            open_at=now,
            values={
                "status": "rejected",
                "decided_by": decider,
                "decided_at": now,
                "outcome": "Denied",
            },
            audit=(decider, "rejected", f"denied {approval.requester}'s request"),
        )
        return self._moved_or_decided(approval, moved, "rejected")

    def _close_denied(
        self, approval: Approval, decider: str, action: str, now: datetime
    ) -> Verdict:
        moved = self._step(
            approval,
            leaving="pending",
            open_at=now,
            values={
                "status": "rejected",
                "decided_by": decider,
                "decided_at": now,
                "outcome": f"Closed: this channel's policy now denies `{action}`",
            },
            audit=(
                decider,
                "denied",
                f"policy: {action}=deny at the decision; request closed, nothing done",
            ),
        )
        return self._moved_or_decided(approval, moved, "closed")

    def _approve(self, approval: Approval, decider: str, now: datetime) -> Verdict:
        moved = self._step(
            approval,
            leaving="pending",
            open_at=now,
            values={"status": "approved", "decided_by": decider, "decided_at": now},
            audit=(decider, "approved", f"approved {approval.requester}'s request"),
        )
        if moved is None:
            return self._moved_or_decided(approval, None, "approved")
        return self._execute(moved)

    def _moved_or_decided(
        self, approval: Approval, moved: Approval | None, kind: str
    ) -> Verdict:
        if moved is not None:
            return Verdict(kind, moved)
        current = self._reload(approval)
        if current.pending and current.expires_at <= self._clock():
            expired = self._expire(current, self._clock())
            if expired is not None:
                return expired
            current = self._reload(approval)
        return Verdict("decided", current)

    # Running what was approved

    def _execute(self, approval: Approval) -> Verdict:
        """Run an approved request as the requester, unless it went stale."""
        requester = Actor(
            approval.team_id,
            approval.channel_id,
            approval.requester,
            approval.request_id,
            approval_id=approval.id,
            approved_verb=approval.verb,
        )
        try:
            problem = self._staleness(requester, approval)
        except VpsApiError as exc:
            self._guard.record_after_change(
                requester,
                approval.verb,
                "failed",
                approval.target,
                f"could not read the server before running: {exc.user_message}",
            )
            return self._finish(
                approval,
                "failed",
                f"Not run: VPS.org did not answer ({exc.user_message})",
            )
        if problem:
            self._guard.record_after_change(
                requester,
                approval.verb,
                "failed",
                approval.target,
                f"stale: {problem}; nothing done",
            )
            return self._finish(
                approval, "stale", f"Stale: {problem}; nothing was done"
            )
        try:
            result = self._run(requester, approval)
        except StaleEditError as exc:
            return self._finish(approval, "stale", f"Stale: {exc}")
        except UserError as exc:
            return self._finish(approval, "failed", f"Failed: {exc}")
        except VpsApiError as exc:
            return self._finish(approval, "failed", f"Failed: {exc.user_message}")
        except StoreUnavailableError as exc:
            return self._finish(approval, "failed", f"Failed: {exc}")
        except Exception:
            logger.exception(
                "approved request %s failed to run [%s]",
                approval.id,
                approval.request_id,
            )
            return self._finish(
                approval,
                "failed",
                f"Failed inside vpsbot (incident {approval.request_id})",
            )
        summary = result.summary + ("" if result.changed else "; nothing was sent")
        return self._finish(approval, "executed", summary, result)

    def _finish(
        self,
        approval: Approval,
        status: str,
        outcome: str,
        result: ChangeResult | None = None,
    ) -> Verdict:
        kind = status
        try:
            moved = self._step(
                approval,
                leaving="approved",
                values={"status": status, "outcome": outcome[:2000]},
                audit=None,
            )
        except StoreUnavailableError:
            logger.error(
                "approval request %s ran (%s) but its state could not be saved [%s]",
                approval.id,
                status,
                approval.request_id,
            )
            moved = None
        shown = moved or dataclasses.replace(approval, status=status, outcome=outcome)
        return Verdict(kind, shown, result)

    def _staleness(self, actor: Actor, approval: Approval) -> str | None:
        """Why the bound server no longer fits the request, or ``None``.

        Raises:
            VpsApiError: the provider failed.
        """
        if approval.server_id is None:
            return None
        try:
            server = self._servers.find(actor, str(approval.server_id))
        except ServerLookupError:
            return f"{approval.server_name} no longer exists"
        if server.name != approval.server_name:
            return f"{approval.server_name} was renamed to {server.name}"
        if (
            approval.verb in _STATUS_BOUND
            and approval.server_status is not None
            and server.status.lower() != approval.server_status.lower()
        ):
            return (
                f"{server.name} is now {server.status}, not {approval.server_status} "
                f"as when it was asked"
            )
        return _unfit(approval.verb, server, approval.params)

    def _run(self, actor: Actor, approval: Approval) -> ChangeResult:
        verb, params, reason = approval.verb, approval.params, approval.reason
        ref = str(approval.server_id)
        if verb in ("start", "stop", "reboot"):
            return self._servers.power(actor, verb, ref, reason=reason)
        if verb == "rename":
            return self._servers.rename(
                actor, ref, str(params["new_name"]), reason=reason
            )
        if verb == "backups":
            return self._servers.set_backups(
                actor, ref, bool(params["enabled"]), reason=reason
            )
        if verb == "update":
            assert approval.server_id is not None
            return self._servers.update(
                actor,
                approval.server_id,
                _edit_of(params["edit"]),
                opened=_edit_of(params["opened"]),
                opened_at=parse_timestamp(params.get("opened_at")),
                reason=reason,
            )
        if verb == "delete":
            assert approval.server_id is not None
            return self._servers.delete(
                actor,
                server_id=approval.server_id,
                expected_name=str(params["expected_name"]),
                submission_id=f"approval:{approval.id}",
                reason=reason,
            )
        if verb == "create":
            request = CreateRequest(
                name=str(params["name"]),
                plan=str(params["plan"]),
                os=str(params["os"]),
                location=str(params["location"]),
                hostname=params.get("hostname") or None,
                backups=bool(params.get("backups")),
            )
            return self._create.create(actor, request, reason=reason)
        raise ValueError(f"{verb!r} cannot be run from an approval")

    def _with_names(self, action: PendingAction) -> PendingAction:
        """A create with the names of its plan and system, for people to read.

        The dialog submits ids; the request shows "Standard VPS", not "plan 1".
        Only the configured catalog is consulted (no provider call): a choice
        it does not know is shown as given.
        """
        params = dict(action.params)
        plan = self._create.catalog.plan(str(params.get("plan", "")))
        system = self._create.catalog.system(str(params.get("os", "")))
        if plan is not None:
            params["plan_name"] = plan.name
        if system is not None:
            params["os_name"] = system.name
        return dataclasses.replace(action, params=params)

    def _bind(self, actor: Actor, action: PendingAction) -> Server | None:
        """The server the request is about, read now (``None`` for a create)."""
        if action.verb == "create":
            return None
        ref = action.server or ""
        target = Target.from_ref(ref)
        try:
            return self._servers.find(actor, ref)
        except ServerLookupError as exc:
            self._guard.record(actor, action.verb, "failed", target, str(exc))
            raise
        except VpsApiError as exc:
            self._guard.record(actor, action.verb, "failed", target, exc.user_message)
            raise


class ApprovalExpiry:
    """Expires overdue requests in the background, one thread per process.

    Each round expires what ran out with a conditional UPDATE per request;
    only the process that moved a request audits it and tells ``notifier``,
    so several processes expire each request once.

    Args:
        approvals: the use cases.
        notifier: shows an expired request (redraws its message).
        interval: seconds between two rounds.
    """

    def __init__(
        self,
        approvals: ApprovalOperations,
        notifier: ExpiryNotifier,
        *,
        interval: float = 15.0,
    ) -> None:
        self._approvals = approvals
        self._notifier = notifier
        self._interval = interval
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        """Start the loop's thread (once)."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._loop, name="vpsbot-approval-expiry", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop; a round under way finishes first."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def run_once(self) -> int:
        """Expire what is overdue now and show it; how many this round expired.

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        expired = self._approvals.expire_due()
        for approval in expired:
            try:
                self._notifier.expired(approval)
            except Exception:
                logger.exception(
                    "could not show that approval request %s expired [%s]",
                    approval.id,
                    approval.request_id,
                )
        return len(expired)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
            except StoreUnavailableError:
                logger.warning("approval expiry paused: the database did not answer")
            except Exception:
                logger.exception("approval expiry: one round failed")
            self._stopping.wait(self._interval)


# Verbs whose request is bound to the server's status as well as its name:
# an approver who agreed to reboot an active server, or delete a stopped one,
# did not agree to act on it in another state.
_STATUS_BOUND = frozenset({"start", "stop", "reboot", "delete"})


def _unfit(verb: str, server: Server, params: Mapping[str, Any]) -> str | None:
    """Why ``verb`` makes no sense on ``server`` as it stands, or ``None``."""
    if verb == "start" and not server.can_start:
        if server.status.lower() == "active":
            return f"{server.name} is already running"
        return f"{server.name} is {server.status}, so it cannot start now"
    if verb in ("stop", "reboot") and not getattr(server, f"can_{verb}"):
        if verb == "stop" and server.status.lower() == "stopped":
            return f"{server.name} is already stopped"
        return f"{server.name} is {server.status}, so it cannot {verb} now"
    if verb == "delete":
        expected = params.get("expected_name")
        if expected is not None and expected != server.name:
            return f"server {server.id} is now called {server.name}, not {expected}"
        if not server.can_delete:
            return (
                f"{server.name} is {server.status}; it can be deleted once it settles"
            )
    return None


def describe(verb: str, name: str, params: Mapping[str, Any]) -> str:
    """An action in words, e.g. ``rename web-01 to web-09`` (plain text)."""
    if verb == "rename":
        return f"rename {name} to {params.get('new_name')}"
    if verb == "backups":
        return f"turn backups {'on' if params.get('enabled') else 'off'} for {name}"
    if verb == "create":
        parts = [
            str(params.get("plan_name") or f"plan {params.get('plan')}"),
            str(params.get("os_name") or f"OS {params.get('os')}"),
            str(params.get("location")),
            f"backups {'on' if params.get('backups') else 'off'}",
        ]
        if params.get("hostname"):
            parts.append(f"hostname {params.get('hostname')}")
        return f"create {name} ({', '.join(parts)})"
    if verb == "update":
        try:
            changes = _edit_of(params["opened"]).differences(_edit_of(params["edit"]))
        except (KeyError, TypeError):
            changes = ""
        return f"edit {name}: {changes or 'no change'}"
    return f"{verb} {name}"


def _edit_dict(edit: Edit) -> dict[str, Any]:
    return {"name": edit.name, "hostname": edit.hostname, "backups": edit.backups}


def _edit_of(data: Mapping[str, Any]) -> Edit:
    return Edit(
        name=str(data["name"]),
        hostname=str(data.get("hostname") or ""),
        backups=bool(data.get("backups")),
    )


def _safe(members_of: MembersOf, unreadable: list[str]) -> MembersOf:
    """``members_of`` that treats a group it cannot read as empty.

    Groups that could not be read only for now are added to ``unreadable``.
    """

    def members(group_id: str) -> set[str]:
        try:
            return set(members_of(group_id))
        except GroupUnreadableError:
            unreadable.append(group_id)
            return set()
        except Exception:
            logger.warning("could not read the members of user group %s", group_id)
            return set()

    return members


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'' if hours == 1 else 's'}"
    return f"{minutes} minute{'' if minutes == 1 else 's'}"
