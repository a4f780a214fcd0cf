"""Showing and changing a channel's policy; changes are for admins only."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session, sessionmaker

from vpsbot.errors import PermissionDeniedError
from vpsbot.ops.context import Actor
from vpsbot.ops.guard import Guard, Target
from vpsbot.policy import ChannelRules, admin_mentions, parse_rule_changes
from vpsbot.store import PolicyRepository, session_scope

logger = logging.getLogger(__name__)


class PolicyOperations:
    """``/vps policy`` and ``/vps help``: what this channel allows, and changes."""

    def __init__(self, *, guard: Guard, sessions: sessionmaker[Session]) -> None:
        self._guard = guard
        self._sessions = sessions

    def current(self, actor: Actor) -> ChannelRules:
        """The channel's rules now (anyone may look).

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        return self._guard.rules(actor)

    @property
    def admins(self) -> tuple[str, ...]:
        """The admins of every workspace (``VPSBOT_ADMINS``)."""
        return self._guard.admins

    def admins_for(self, team_id: str) -> tuple[str, ...]:
        """The admins of one workspace: ``admins`` and, with the
        multi-workspace install, whoever installed vpsbot there."""
        return self._guard.admins_for(team_id)

    def is_admin(self, user_id: str, team_id: str = "") -> bool:
        return user_id in self._guard.admins_for(team_id)

    def change_rules(self, actor: Actor, pairs: Mapping[str, str]) -> ChannelRules:
        """Change the named rules and keep the others.

        Raises:
            PermissionDeniedError: the asker is not an admin (audited).
            ValueError: an unknown action or rule (nothing recorded).
            StoreUnavailableError: the database did not answer.
        """
        changes = parse_rule_changes(pairs)
        detail = " ".join(f"{action}={rule}" for action, rule in changes.items())
        self._require_admin(actor, detail)
        with session_scope(self._sessions) as session:
            PolicyRepository(session).set_rules(
                team_id=actor.team_id,
                channel_id=actor.channel_id,
                rules=changes,
                updated_by=actor.user_id,
            )
            self._guard.record_in(
                session, actor, "policy", "succeeded", Target(), detail
            )
        return self._guard.rules(actor)

    def set_approvers(self, actor: Actor, approvers: Sequence[str]) -> ChannelRules:
        """Replace who may approve requests in this channel.

        Raises:
            PermissionDeniedError: the asker is not an admin (audited).
            StoreUnavailableError: the database did not answer.
        """
        detail = "approvers: " + (" ".join(approvers) or "none (admins approve)")
        self._require_admin(actor, detail)
        with session_scope(self._sessions) as session:
            PolicyRepository(session).set_approvers(
                team_id=actor.team_id,
                channel_id=actor.channel_id,
                approvers=list(approvers),
                updated_by=actor.user_id,
            )
            self._guard.record_in(
                session, actor, "policy", "succeeded", Target(), detail
            )
        return self._guard.rules(actor)

    def _require_admin(self, actor: Actor, detail: str) -> None:
        if self.is_admin(actor.user_id, actor.team_id):
            return
        self._guard.record(
            actor, "policy", "denied", Target(), f"not an admin; asked for {detail}"
        )
        raise PermissionDeniedError(
            f"Only admins can change the policy. "
            f"Admins: {admin_mentions(self.admins_for(actor.team_id))}."
        )
