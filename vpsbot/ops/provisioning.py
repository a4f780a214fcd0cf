"""Creating a server: checked, audited, and sent to the provider at most once.

A create costs money, so it is never resent. A dialog's submission is claimed
for good before anything else, so a double click or a second delivery finds it
taken; the new name is claimed while the create is under way and checked
against the account's servers, so two creates of one name cannot both go out.
A create whose answer was lost is reported as unknown, not tried again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from vpsbot.catalog import Catalog
from vpsbot.errors import ActionStateError, RepeatedSubmissionError, UserError
from vpsbot.ops import fields
from vpsbot.ops.accounts import AccountScoped, ProviderAccounts
from vpsbot.ops.context import Actor, with_reason
from vpsbot.ops.fields import FieldErrors
from vpsbot.ops.guard import Guard, Target
from vpsbot.ops.servers import ChangeResult
from vpsbot.vps import (
    InvalidInputError,
    OutcomeUnknownError,
    PaymentRequiredError,
    ProviderError,
    Server,
    VpsApiError,
    VpsClient,
)

logger = logging.getLogger(__name__)

# Choices named in a refusal; the dialog lists them all.
MAX_LISTED = 8


@dataclass(frozen=True)
class CreateRequest:
    """A server as asked for: plan and system by id or name, location by code."""

    name: str
    plan: str
    os: str
    location: str
    hostname: str | None = None
    backups: bool = False

    def problems(self) -> dict[str, str]:
        """What is wrong with the fields that need no lookup."""
        found: dict[str, str] = {}
        name_problem = fields.name_problem(self.name)
        if name_problem:
            found["name"] = name_problem
        for field, value in (
            ("plan", self.plan),
            ("os", self.os),
            ("location", self.location),
        ):
            if not value.strip():
                found[field] = "choose one"
        if self.hostname:
            hostname_problem = fields.hostname_problem(self.hostname)
            if hostname_problem:
                found["hostname"] = hostname_problem
        return found


class CreateOperations(AccountScoped):
    """``/vps create`` and its dialog."""

    def __init__(
        self,
        *,
        guard: Guard,
        vps: VpsClient | ProviderAccounts,
        catalog: Catalog,
    ) -> None:
        super().__init__(guard=guard, vps=vps)
        self.catalog = catalog

    def choices(self, actor: Actor) -> Catalog:
        """Check the policy for a create and gather what may be chosen.

        Used before opening the dialog, so not audited: opening a dialog is not
        an attempt.

        Raises:
            UserError: refused by policy.
            VpsApiError: the provider failed.
        """
        self._authorize(actor, "create", Target(), audited=False)
        servers = self._vps_for(actor).get_all(request_id=actor.request_id)
        return self.catalog.with_servers(servers)

    def create(
        self,
        actor: Actor,
        request: CreateRequest,
        *,
        reason: str | None = None,
        submission: str | None = None,
    ) -> ChangeResult:
        """Order a new server.

        Args:
            submission: names a dialog submission (view id and hash); the same
                one sent twice creates once.

        Raises:
            FieldErrors: a field is wrong, by vpsbot's checks or the provider's.
            UserError: refused by policy, a repeated submission, busy, not
                enough credit, or the answer was lost.
            VpsApiError: the provider failed before the create was sent.
            StoreUnavailableError: the database did not answer.
        """
        if submission is not None and not self._guard.claim_forever(
            actor, f"create-dialog:{submission}"
        ):
            logger.info("repeated create submission %s ignored", submission)
            raise RepeatedSubmissionError(
                f"This create of {request.name} was already submitted; it is not "
                f"sent twice."
            )
        target = Target(None, request.name)
        self._authorize(actor, "create", target)
        problems = request.problems()
        if problems:
            self._refuse(actor, target, FieldErrors(problems), reason)
        busy = f"another create or rename to {request.name} is under way"
        name_key = f"server-name:{actor.team_id}:{request.name.lower()}"
        try:
            with self._guard.claim(actor, name_key, busy):
                server = self._create_under_claim(actor, request, target, reason)
        except ActionStateError as exc:
            if str(exc) != busy:
                raise
            # Told on the name field, so a dialog keeps what was typed.
            self._refuse(actor, target, FieldErrors({"name": busy}), reason)
        recorded = self._guard.record_after_change(
            actor,
            "create",
            "succeeded",
            Target(server.id, server.name),
            with_reason(_ordered(server, request), reason),
        )
        return ChangeResult("create", server, _summary(server, request), recorded)

    def _create_under_claim(
        self, actor: Actor, request: CreateRequest, target: Target, reason: str | None
    ) -> Server:
        try:
            servers = self._vps_for(actor).get_all(request_id=actor.request_id)
        except VpsApiError as exc:
            self._guard.record(actor, "create", "failed", target, exc.user_message)
            raise
        catalog = self.catalog.with_servers(servers)
        plan = catalog.plan(request.plan)
        system = catalog.system(request.os)
        location = catalog.location(request.location)
        problems: dict[str, str] = {}
        if plan is None:
            problems["plan"] = _unknown(
                request.plan, [f"{p.id} ({p.name})" for p in catalog.plans]
            )
        if system is None:
            problems["os"] = _unknown(
                request.os, [f"{s.id} ({s.name})" for s in catalog.systems]
            )
        if location is None:
            problems["location"] = _unknown(request.location, list(catalog.locations))
        holder = fields.holder_of(servers, request.name, besides=None)
        if holder is not None:
            problems["name"] = f"{request.name} is already the name of server {holder}"
        if problems:
            self._refuse(actor, target, FieldErrors(problems), reason)
        assert plan is not None and system is not None and location is not None
        # The list took time; the policy may have changed meanwhile.
        self._authorize(actor, "create", target)
        try:
            return self._vps_for(actor).create(
                name=request.name,
                plan_id=plan.id,
                os_id=system.id,
                location=location,
                hostname=request.hostname or None,
                backups_enabled=request.backups,
                request_id=actor.request_id,
            )
        except InvalidInputError as exc:
            self._refuse(actor, target, fields.from_provider(exc), reason, after=True)
        except PaymentRequiredError as exc:
            self._refuse(
                actor,
                target,
                UserError(
                    "Not enough credit on the VPS.org account to create this "
                    "server; nothing was created."
                ),
                reason,
                after=True,
                cause=exc,
            )
        except (OutcomeUnknownError, ProviderError) as exc:
            # A 5xx may come after the server was ordered; for something that
            # costs money, "probably nothing happened" is not good enough.
            self._refuse(
                actor,
                target,
                UserError(
                    f"The create of {request.name} was sent, but VPS.org's answer "
                    f"was lost, so whether it exists is unknown — check `/vps list` "
                    f"before trying again. vpsbot did not send it twice."
                ),
                reason,
                after=True,
                cause=exc,
                detail="outcome unknown: the answer was lost; not resent",
            )
        except VpsApiError as exc:
            self._guard.record_after_change(
                actor, "create", "failed", target, with_reason(exc.user_message, reason)
            )
            raise

    def _refuse(
        self,
        actor: Actor,
        target: Target,
        error: UserError,
        reason: str | None,
        *,
        after: bool = False,
        cause: Exception | None = None,
        detail: str | None = None,
    ) -> None:
        """Audit a create that did not happen, then raise ``error``."""
        text = with_reason(detail or str(error), reason)
        if after:
            self._guard.record_after_change(actor, "create", "failed", target, text)
        else:
            self._guard.record(actor, "create", "failed", target, text)
        raise error from cause


def _unknown(typed: str, known: list[str]) -> str:
    shown = typed if len(typed) <= 40 else typed[:39] + "…"
    if not known:
        return f"{shown!r} is not offered here (none are configured)"
    choices = ", ".join(known[:MAX_LISTED])
    if len(known) > MAX_LISTED:
        choices += f", and {len(known) - MAX_LISTED} more in the `/vps create` dialog"
    return f"{shown!r} is not offered here (choose from {choices})"


def _summary(server: Server, request: CreateRequest) -> str:
    """The announcement's account of a create: what was ordered, and its state."""
    return f"{_choices(server, request)}; it is {server.status}"


def _ordered(server: Server, request: CreateRequest) -> str:
    """The audit entry's account of a create."""
    return f"ordered {server.name} (id {server.id}): {_choices(server, request)}"


def _choices(server: Server, request: CreateRequest) -> str:
    plan = server.plan.name if server.plan else request.plan
    system = server.os.name if server.os else request.os
    backups = "on" if request.backups else "off"
    location = server.location or request.location
    return f"{plan}, {system}, {location}, backups {backups}"
