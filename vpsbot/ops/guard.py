"""The checks every operation goes through: policy, audit, once-only claims.

An operation asks the guard for the channel's decision, records each attempt
in the audit log, and claims a server before changing it so that two clicks
or two processes never run the same change twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from vpsbot import audit
from vpsbot.errors import (
    ActionStateError,
    PermissionDeniedError,
    StoreUnavailableError,
    UserError,
)
from vpsbot.ops.context import Actor, as_server_id
from vpsbot.policy import OPERATION_ACTIONS, ChannelRules, Decision, decide
from vpsbot.store import ClaimRepository, PolicyRepository, session_scope
from vpsbot.store.models import ChannelPolicy

logger = logging.getLogger(__name__)

# Policy actions that only read: an answer cannot wait for an approval.
READ_ACTIONS = ("read", "audit")

# A claim on a server outlasts the longest time a live request can hold it:
# two reads (each up to four attempts, waiting out a Retry-After of up to 20 s)
# and one change (30 s write timeout) stay well under five minutes. Only a
# request whose process died leaves a claim to expire.
SERVER_CLAIM_TTL = 300.0
# How long a delivered click is remembered, to drop a second delivery of it.
DELIVERY_MEMORY_SECONDS = 24 * 3600.0


class ApprovalRequiredError(UserError):
    """The channel's rule for this action is ``approve``: nothing was done.

    The Slack layer (and the shell, which drives the same app) turns it into an
    approval request; ``decision`` is the policy decision that asked for one.
    """

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__(
            f"{decision.reason} in this channel; ask for it where approval "
            f"requests can be posted."
        )


@dataclass(frozen=True)
class Target:
    """The server an attempt is about, as far as it is known."""

    server_id: int | None = None
    server_name: str | None = None

    @classmethod
    def from_ref(cls, ref: str | None) -> Target:
        if ref is None:
            return cls()
        return cls(as_server_id(ref), ref)


def rules_of(row: ChannelPolicy | None) -> ChannelRules:
    """A policy row as plain rules; no row means a channel without a policy."""
    if row is None:
        return ChannelRules.unconfigured()
    return ChannelRules(
        rules={
            "read": row.read,
            "power": row.power,
            "create": row.create,
            "modify": row.modify,
            "delete": row.delete,
            "audit": row.audit,
        },
        approvers=tuple(row.approvers or ()),
    )


class Guard:
    """Policy decisions, audit entries and claims, each in a short transaction."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        admins: tuple[str, ...],
        workspace_admins: Callable[[str], frozenset[str]] | None = None,
    ) -> None:
        """``admins`` administer every workspace (``VPSBOT_ADMINS``);
        ``workspace_admins`` names more for one workspace (in multi-workspace
        mode, the user who installed vpsbot there)."""
        self._sessions = sessions
        self.admins = admins
        self._workspace_admins = workspace_admins

    def admins_for(self, team_id: str) -> tuple[str, ...]:
        """Who administers the workspace: ``admins``, then its own, in order."""
        if self._workspace_admins is None:
            return self.admins
        extra = self._workspace_admins(team_id) - set(self.admins)
        return self.admins + tuple(sorted(extra))

    def rules(self, actor: Actor) -> ChannelRules:
        """The channel's rules as they stand now.

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        with session_scope(self._sessions) as session:
            row = PolicyRepository(session).get(
                team_id=actor.team_id, channel_id=actor.channel_id
            )
            return rules_of(row)

    def decision(self, actor: Actor, verb: str) -> Decision:
        """Decide ``verb`` for ``actor`` against the channel's current policy."""
        return decide(
            self.rules(actor),
            OPERATION_ACTIONS[verb],
            admins=self.admins_for(actor.team_id),
        )

    def authorize(
        self, actor: Actor, verb: str, target: Target, *, audited: bool = True
    ) -> None:
        """Let the attempt through, or (when ``audited``) audit the refusal and raise.

        An ``approve`` rule lets through an actor who carries an approval of
        this very verb (``actor.approval_id``), and a check made only to open a
        dialog (``audited=False``): its submission becomes the request. It
        raises ``ApprovalRequiredError`` otherwise, without an audit entry: the
        request that follows is recorded as ``requested``. Reads (``read``,
        ``audit``) cannot wait for an approval: under ``approve`` they are
        refused and audited like ``deny``. ``deny`` always refuses.

        Raises:
            PermissionDeniedError: the rule is ``deny``.
            ApprovalRequiredError: the rule is ``approve`` and nothing approves it.
            StoreUnavailableError: the database did not answer.
        """
        decision = self.decision(actor, verb)
        if decision.allowed:
            return
        if decision.rule == "approve" and decision.action in READ_ACTIONS:
            if audited:
                self.record(
                    actor,
                    verb,
                    "denied",
                    target,
                    f"policy: {decision.action}=approve (a read cannot wait for "
                    f"an approval)",
                )
            raise PermissionDeniedError(
                f"`{decision.action}` needs a second person's approval in this "
                f"channel, and reading cannot wait for one; an admin can allow it "
                f"with `/vps policy {decision.action}=allow`."
            )
        if decision.rule == "approve":
            if actor.approval_id is not None and actor.approved_verb == verb:
                logger.debug(
                    "%s under approval %s [%s]",
                    verb,
                    actor.approval_id,
                    actor.request_id,
                )
                return
            if not audited:
                return
            raise ApprovalRequiredError(decision)
        if audited:
            self.record(
                actor, verb, "denied", target, f"policy: {decision.action}=deny"
            )
        raise PermissionDeniedError(decision.reason)

    def record(
        self, actor: Actor, verb: str, outcome: str, target: Target, detail: str = ""
    ) -> None:
        """Append one audit entry in its own transaction.

        Raises:
            StoreUnavailableError: the entry could not be written.
        """
        with session_scope(self._sessions) as session:
            self.record_in(session, actor, verb, outcome, target, detail)

    def record_in(
        self,
        session: Session,
        actor: Actor,
        verb: str,
        outcome: str,
        target: Target,
        detail: str = "",
    ) -> None:
        """Append one audit entry in the caller's transaction.

        For changes kept in the database itself (a policy), so that the change
        and its entry are committed together or not at all.
        """
        audit.record(
            session,
            team=actor.team_id,
            channel=actor.channel_id,
            user=actor.user_id,
            action=verb,
            outcome=outcome,
            request_id=actor.request_id,
            server_id=target.server_id,
            server_name=target.server_name,
            detail=detail,
        )
        logger.info(
            "audit %s %s %s server=%s by %s in %s [%s]",
            verb,
            outcome,
            detail,
            target.server_name or target.server_id,
            actor.user_id,
            actor.channel_id,
            actor.request_id,
        )

    def record_after_change(
        self, actor: Actor, verb: str, outcome: str, target: Target, detail: str = ""
    ) -> bool:
        """Record the end of a change that already happened at the provider.

        The change cannot be undone, so a failed write is logged in full (the
        log then holds what the audit log should) and reported as ``False``.
        """
        try:
            self.record(actor, verb, outcome, target, detail)
        except (StoreUnavailableError, SQLAlchemyError):
            logger.error(
                "audit entry could not be written after a change: %s",
                json.dumps(
                    {
                        "team": actor.team_id,
                        "channel": actor.channel_id,
                        "user": actor.user_id,
                        "action": verb,
                        "outcome": outcome,
                        "server_id": target.server_id,
                        "server_name": target.server_name,
                        "detail": detail,
                        "request_id": actor.request_id,
                    }
                ),
            )
            return False
        return True

    @contextmanager
    def claim(self, actor: Actor, key: str, busy_message: str) -> Iterator[None]:
        """Hold ``key`` for the length of the block, or refuse if someone holds it.

        Raises:
            ActionStateError: another request holds the key.
            StoreUnavailableError: the database did not answer.
        """
        now = datetime.now(UTC)
        with session_scope(self._sessions) as session:
            held = ClaimRepository(session).try_claim(
                key=key,
                request_id=actor.request_id,
                ttl_seconds=SERVER_CLAIM_TTL,
                now=now,
            )
        if not held:
            raise ActionStateError(busy_message)
        try:
            yield
        finally:
            try:
                with session_scope(self._sessions) as session:
                    ClaimRepository(session).release(
                        key=key, request_id=actor.request_id
                    )
            except StoreUnavailableError:
                logger.warning("claim %s left to expire [%s]", key, actor.request_id)

    def release(self, actor: Actor, key: str) -> None:
        """Give up ``key`` if this request holds it; a database failure is logged."""
        try:
            with session_scope(self._sessions) as session:
                ClaimRepository(session).release(key=key, request_id=actor.request_id)
        except StoreUnavailableError:
            logger.warning("claim %s left in place [%s]", key, actor.request_id)

    def first_delivery(self, actor: Actor, key: str) -> bool:
        """Whether this is the first time a request named ``key`` arrives.

        Slack may deliver one click twice (a retry, two replicas); the key
        (e.g. the click's trigger_id) is remembered for a day.

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        return self._take(actor, key, ttl_seconds=DELIVERY_MEMORY_SECONDS)

    def claim_forever(self, actor: Actor, key: str) -> bool:
        """Take ``key`` for good; ``False`` when it was taken before.

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        return self._take(actor, key, ttl_seconds=None)

    def _take(self, actor: Actor, key: str, *, ttl_seconds: float | None) -> bool:
        with session_scope(self._sessions) as session:
            return ClaimRepository(session).try_claim(
                key=key,
                request_id=actor.request_id,
                ttl_seconds=ttl_seconds,
                now=datetime.now(UTC),
            )
