"""Server use cases, free of Slack: list, show, power, rename, backups, delete.

Each one follows the same path: policy check, then the provider, with every
attempt written to the audit log. A change first claims its server in the
database, so a second click or a second process cannot send it twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from vpsbot.errors import (
    ActionStateError,
    RepeatedSubmissionError,
    ServerLookupError,
    StoreUnavailableError,
    UserError,
)
from vpsbot.ops import fields
from vpsbot.ops.accounts import AccountScoped
from vpsbot.ops.context import Actor, as_server_id, with_reason
from vpsbot.ops.fields import FieldErrors
from vpsbot.ops.guard import ApprovalRequiredError, Target
from vpsbot.vps import (
    InvalidInputError,
    NotFoundError,
    OutcomeUnknownError,
    Server,
    VpsApiError,
)

logger = logging.getLogger(__name__)

PowerVerb = str  # "start" | "stop" | "reboot"

_POWER_PROGRESS = {"start": "starting", "stop": "stopping", "reboot": "rebooting"}


@dataclass(frozen=True)
class ChangeResult:
    """What a change did, for the announcement in the channel."""

    verb: str
    server: Server
    summary: str
    audit_recorded: bool = True
    # False when the server already was as asked and nothing was sent.
    changed: bool = True


@dataclass(frozen=True)
class Edit:
    """The three fields the edit dialog shows and a PUT replaces together."""

    name: str
    hostname: str
    backups: bool

    @classmethod
    def of(cls, server: Server) -> Edit:
        return cls(server.name, server.hostname or "", bool(server.backups_enabled))

    def problems(self) -> dict[str, str]:
        """What is wrong with these values, by field."""
        found: dict[str, str] = {}
        name_problem = fields.name_problem(self.name)
        if name_problem:
            found["name"] = name_problem
        if not self.hostname:
            found["hostname"] = "VPS.org needs a hostname when a server is edited"
        else:
            hostname_problem = fields.hostname_problem(self.hostname)
            if hostname_problem:
                found["hostname"] = hostname_problem
        return found

    def differences(self, wanted: Edit) -> str:
        """What changes from these values to ``wanted``, for people to read."""
        parts = []
        if wanted.name != self.name:
            parts.append(f"name {self.name} → {wanted.name}")
        if wanted.hostname != self.hostname:
            parts.append(f"hostname {self.hostname or '(none)'} → {wanted.hostname}")
        if wanted.backups != self.backups:
            parts.append(
                f"backups {'on' if self.backups else 'off'} → "
                f"{'on' if wanted.backups else 'off'}"
            )
        return "; ".join(parts)


class StaleEditError(UserError):
    """The server changed after the edit dialog opened; nothing was sent.

    ``server`` is the server as it stands now, so the dialog can show it.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        super().__init__(
            f"{server.name} changed after this dialog was opened, so nothing was "
            f"sent and nothing was overwritten. Check its values and submit again."
        )


class ServerOperations(AccountScoped):
    """The server commands of the contract, checked and audited."""

    # Reads

    def list_servers(
        self, actor: Actor, *, status: str | None = None, location: str | None = None
    ) -> list[Server]:
        """Servers of the account, filtered by status and location.

        Raises:
            UserError: refused by policy.
            VpsApiError: the provider failed.
        """
        self._authorize(actor, "list", Target())
        filters = " ".join(
            f"{key}={value}"
            for key, value in (("status", status), ("location", location))
            if value
        )
        with self._audited_failure(actor, "list", Target()):
            servers = self._vps_for(actor).get_all(
                status=status, location=location, request_id=actor.request_id
            )
        detail = _count(len(servers), "server") + (f" ({filters})" if filters else "")
        self._guard.record(actor, "list", "succeeded", Target(), detail)
        return servers

    def show_server(self, actor: Actor, ref: str) -> Server:
        """One server in detail.

        Raises:
            UserError: refused by policy, or no such server.
            VpsApiError: the provider failed.
        """
        self._authorize(actor, "show", Target.from_ref(ref))
        server = self._resolve(actor, "show", ref, detailed=True)
        self._guard.record(actor, "show", "succeeded", _target(server))
        return server

    def resolve_for(self, actor: Actor, verb: str, ref: str) -> Server:
        """Check the policy for ``verb`` and find the server, without auditing.

        Used before opening a dialog: opening one is not an attempt, its
        submission is.

        Raises:
            UserError: refused by policy, no such server, or the state forbids it.
            VpsApiError: the provider failed.
        """
        self._authorize(actor, verb, Target.from_ref(ref), audited=False)
        server = self._find(actor, ref, detailed=True)
        if verb == "delete" and not server.can_delete:
            raise ActionStateError(
                f"{server.name} is {server.status}; it can be deleted once it settles."
            )
        return server

    def find(self, actor: Actor, ref: str) -> Server:
        """A server by id or exact name, read now; no policy check, no audit.

        Raises:
            ServerLookupError: no such server, or a name several servers have.
            VpsApiError: the provider failed.
        """
        return self._find(actor, ref, detailed=False)

    def refuse_delete(
        self, actor: Actor, *, server_id: int, expected_name: str, typed: str
    ) -> None:
        """Audit a delete dialog submitted with the wrong name; nothing is deleted.

        Raises:
            StoreUnavailableError: the database did not answer.
        """
        shown = typed if len(typed) <= 80 else typed[:79] + "…"
        self._guard.record(
            actor,
            "delete",
            "failed",
            Target(server_id, expected_name),
            f"typed name {shown!r} did not match; nothing deleted",
        )

    # Power

    def power(
        self,
        actor: Actor,
        verb: PowerVerb,
        ref: str,
        *,
        reason: str | None = None,
        delivery: str | None = None,
    ) -> ChangeResult:
        """Start, stop or reboot a server after reading its current state.

        Args:
            delivery: names this request as sent (a click's trigger_id); a
                second delivery of the same one is refused, not run again.

        Raises:
            UserError: refused by policy, no such server, wrong state, busy,
                or delivered before.
            VpsApiError: the provider failed or its answer was lost.
        """
        if delivery is not None and not self._guard.first_delivery(
            actor, f"delivery:{actor.team_id}:{delivery}"
        ):
            logger.info("second delivery of %s ignored", delivery)
            raise RepeatedSubmissionError(
                "This click was already received and handled; it is not run twice."
            )
        with self._change(actor, verb, ref) as server:
            self._check_power_state(actor, verb, server)
            target = _target(server)
            with self._audited_failure(actor, verb, target, reason):
                result = getattr(self._vps_for(actor), verb)(
                    server.id, request_id=actor.request_id
                )
        after = dataclasses.replace(
            server, status=result.server_status or _POWER_PROGRESS[verb]
        )
        recorded = self._guard.record_after_change(
            actor, verb, "succeeded", target, with_reason(result.message, reason)
        )
        return ChangeResult(verb, after, f"{server.name} is {after.status}", recorded)

    # Edits

    def rename(
        self, actor: Actor, ref: str, new_name: str, *, reason: str | None = None
    ) -> ChangeResult:
        """Rename a server with a PATCH of its name only.

        Raises:
            UserError: refused by policy, no such server, or busy.
            VpsApiError: the provider refused the name or failed.
        """
        name_key = f"server-name:{actor.team_id}:{new_name.lower()}"
        name_busy = f"Another rename to {new_name} is under way; try again shortly."
        with self._change(actor, "rename", ref) as server:
            target = _target(server)
            if server.name == new_name:
                self._guard.record(
                    actor,
                    "rename",
                    "succeeded",
                    target,
                    with_reason("name unchanged; nothing sent", reason),
                )
                return ChangeResult(
                    "rename",
                    server,
                    f"{server.name} already has that name",
                    changed=False,
                )
            # The new name is claimed too, so two renames to one name cannot
            # both pass the check below.
            with (
                self._busy_audited(actor, "rename", server, name_busy),
                self._guard.claim(actor, name_key, name_busy),
            ):
                self._refuse_taken_name(actor, "rename", server, new_name)
                # That read took time; the policy may have changed meanwhile.
                self._authorize(actor, "rename", target)
                with self._audited_failure(actor, "rename", target, reason):
                    after = self._vps_for(actor).patch(
                        server.id, name=new_name, request_id=actor.request_id
                    )
        recorded = self._guard.record_after_change(
            actor,
            "rename",
            "succeeded",
            target,
            with_reason(f"renamed {server.name} to {after.name}", reason),
        )
        summary = f"{server.name} is now called {after.name}"
        return ChangeResult("rename", after, summary, recorded)

    def set_backups(
        self, actor: Actor, ref: str, enabled: bool, *, reason: str | None = None
    ) -> ChangeResult:
        """Turn backups on or off with a PATCH of that field only.

        Raises:
            UserError: refused by policy, no such server, or busy.
            VpsApiError: the provider failed.
        """
        word = "on" if enabled else "off"
        with self._change(actor, "backups", ref) as server:
            target = _target(server)
            if server.backups_enabled is enabled:
                self._guard.record(
                    actor,
                    "backups",
                    "succeeded",
                    target,
                    with_reason(f"already {word}; nothing sent", reason),
                )
                return ChangeResult(
                    "backups",
                    server,
                    f"backups were already {word} for {server.name}",
                    changed=False,
                )
            with self._audited_failure(actor, "backups", target, reason):
                after = self._vps_for(actor).patch(
                    server.id, backups_enabled=enabled, request_id=actor.request_id
                )
        recorded = self._guard.record_after_change(
            actor,
            "backups",
            "succeeded",
            target,
            with_reason(f"backups {word}", reason),
        )
        return ChangeResult(
            "backups", after, f"backups are now {word} for {after.name}", recorded
        )

    def update(
        self,
        actor: Actor,
        server_id: int,
        edit: Edit,
        *,
        opened: Edit,
        opened_at: datetime | None,
        reason: str | None = None,
        submission: str | None = None,
    ) -> ChangeResult:
        """Replace name, hostname and backups together with one PUT.

        Args:
            edit: the values submitted.
            opened: the values the dialog showed, and ``opened_at`` the server's
                ``updated_at`` then; if the server moved on since, nothing is sent.
            submission: names a dialog submission; the same one sent twice is
                carried out once.

        Raises:
            StaleEditError: the server changed since the dialog opened.
            FieldErrors: a field is wrong, by vpsbot's checks or the provider's.
            UserError: refused by policy, no such server, busy, or repeated.
            VpsApiError: the provider failed or its answer was lost.
        """
        if submission is not None and not self._guard.claim_forever(
            actor, f"update-dialog:{submission}"
        ):
            logger.info("repeated update submission %s ignored", submission)
            raise RepeatedSubmissionError(
                f"This edit of {opened.name} was already submitted; it is not sent "
                f"twice."
            )
        target = Target(server_id, opened.name)
        with self._change(actor, "update", str(server_id), target=target) as server:
            target = _target(server)
            current = Edit.of(server)
            if current != opened or (
                opened_at is not None and server.updated_at != opened_at
            ):
                self._guard.record(
                    actor,
                    "update",
                    "failed",
                    target,
                    with_reason(
                        "changed since the dialog opened; nothing sent", reason
                    ),
                )
                raise StaleEditError(server)
            problems = edit.problems()
            if problems:
                error = FieldErrors(problems)
                self._guard.record(
                    actor, "update", "failed", target, with_reason(str(error), reason)
                )
                raise error
            changes = current.differences(edit)
            if not changes:
                self._guard.record(
                    actor,
                    "update",
                    "succeeded",
                    target,
                    with_reason("no change; nothing sent", reason),
                )
                return ChangeResult(
                    "update",
                    server,
                    f"{server.name} already is as asked",
                    changed=False,
                )
            renaming = edit.name.lower() != server.name.lower()
            name_busy = f"Another create or rename to {edit.name} is under way."
            with contextlib.ExitStack() as names:
                if renaming:
                    names.enter_context(
                        self._busy_audited(actor, "update", server, name_busy)
                    )
                    names.enter_context(
                        self._guard.claim(
                            actor,
                            f"server-name:{actor.team_id}:{edit.name.lower()}",
                            name_busy,
                        )
                    )
                    self._refuse_taken_name(actor, "update", server, edit.name)
                    # That read took time; the policy may have changed meanwhile.
                    self._authorize(actor, "update", target)
                try:
                    with self._audited_failure(actor, "update", target, reason):
                        after = self._vps_for(actor).update(
                            server.id,
                            name=edit.name,
                            hostname=edit.hostname,
                            backups_enabled=edit.backups,
                            request_id=actor.request_id,
                        )
                except InvalidInputError as exc:
                    raise fields.from_provider(exc) from exc
        recorded = self._guard.record_after_change(
            actor, "update", "succeeded", target, with_reason(changes, reason)
        )
        return ChangeResult("update", after, changes, recorded)

    # Delete

    def delete(
        self,
        actor: Actor,
        *,
        server_id: int,
        expected_name: str,
        submission_id: str,
        reason: str | None = None,
    ) -> ChangeResult:
        """Delete a server whose name the user typed in the confirmation dialog.

        The dialog's submission is claimed for good first, so submitting it
        twice deletes once. The server is read again: if it was renamed or is
        gone since the dialog opened, nothing is deleted.

        Raises:
            UserError: a repeated submission, refused by policy, a changed or
                missing server, or busy.
            VpsApiError: the provider failed or its answer was lost.
        """
        submission_key = f"delete-dialog:{submission_id}"
        if not self._guard.claim_forever(actor, submission_key):
            logger.info("repeated delete submission %s ignored", submission_id)
            raise RepeatedSubmissionError(
                f"This delete of {expected_name} was already submitted; "
                f"it is not sent twice."
            )
        target = Target(server_id, expected_name)
        sent = False
        try:
            with self._change(actor, "delete", str(server_id), target=target) as server:
                if server.name != expected_name:
                    detail = (
                        f"renamed to {server.name} since the dialog opened; not deleted"
                    )
                    self._guard.record(actor, "delete", "failed", target, detail)
                    raise ActionStateError(
                        f"Server {server_id} is now called {server.name}, not "
                        f"{expected_name}, so nothing was deleted. Open the dialog "
                        f"again."
                    )
                if not server.can_delete:
                    self._fail_state(
                        actor, "delete", server, f"{server.name} is {server.status}"
                    )
                with self._audited_failure(actor, "delete", target, reason):
                    sent = True
                    self._vps_for(actor).delete(server.id, request_id=actor.request_id)
        except ApprovalRequiredError:
            # The submission becomes an approval request; sent again, it must
            # not become a second one.
            raise
        except (UserError, StoreUnavailableError, VpsApiError):
            if not sent:
                # Nothing reached the provider: the same dialog may be sent again.
                self._guard.release(actor, submission_key)
            raise
        recorded = self._guard.record_after_change(
            actor, "delete", "succeeded", target, with_reason("deleted", reason)
        )
        gone = dataclasses.replace(server, status="deleted")
        return ChangeResult("delete", gone, f"{server.name} was deleted", recorded)

    # Helpers

    def _resolve(
        self,
        actor: Actor,
        verb: str,
        ref: str,
        *,
        detailed: bool = False,
        target: Target | None = None,
    ) -> Server:
        """Find the server for an attempt, auditing a failed lookup."""
        with self._audited_failure(actor, verb, target or Target.from_ref(ref)):
            return self._find(actor, ref, detailed=detailed)

    def _find(self, actor: Actor, ref: str, *, detailed: bool) -> Server:
        """A server by numeric id, else by exact name.

        Raises:
            ServerLookupError: no server, or several with that name.
        """
        server_id = as_server_id(ref)
        if server_id is not None:
            try:
                return self._vps_for(actor).get_by_id(
                    server_id, request_id=actor.request_id
                )
            except NotFoundError:
                logger.debug("no server with id %s; trying it as a name", ref)

        servers = self._vps_for(actor).get_all(request_id=actor.request_id)
        matches = [server for server in servers if server.name == ref]
        if len(matches) > 1:
            ids = ", ".join(str(server.id) for server in matches)
            raise ServerLookupError(
                f"{len(matches)} servers are named {ref} (ids {ids}); "
                f"use the id instead, e.g. `/vps show {matches[0].id}`."
            )
        if not matches:
            if server_id is not None:
                raise ServerLookupError(
                    f"There is no server with id {ref} (it may have been deleted). "
                    f"`/vps list` shows the servers."
                )
            names = [server.name for server in servers]
            same = [name for name in names if name.lower() == ref.lower()]
            close = same or difflib.get_close_matches(ref, names, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ServerLookupError(
                f"There is no server called {ref}.{hint} `/vps list` shows the servers."
            )
        if detailed:
            return self._vps_for(actor).get_by_id(
                matches[0].id, request_id=actor.request_id
            )
        return matches[0]

    def _check_power_state(self, actor: Actor, verb: str, server: Server) -> None:
        """Refuse a power action that the server's state makes pointless."""
        allowed = {
            "start": server.can_start,
            "stop": server.can_stop,
            "reboot": server.can_reboot,
        }[verb]
        if allowed:
            return
        if verb == "start" and server.status == "active":
            sentence = f"{server.name} is already running"
        elif verb == "stop" and server.status == "stopped":
            sentence = f"{server.name} is already stopped"
        else:
            sentence = f"{server.name} is {server.status}, so it cannot {verb} now"
        self._fail_state(actor, verb, server, sentence)

    def _fail_state(self, actor: Actor, verb: str, server: Server, why: str) -> None:
        self._guard.record(actor, verb, "failed", _target(server), why)
        raise ActionStateError(f"{why}; nothing was done.")

    @contextmanager
    def _change(
        self, actor: Actor, verb: str, ref: str, *, target: Target | None = None
    ) -> Iterator[Server]:
        """Hold the server for one change and yield it as it stands now.

        The policy is checked first (a refusal costs no provider call), the
        server found, and then claimed in the database. Under the claim it is
        read again and the policy checked again, so the state checks and the
        change that follow see what no other request can alter meanwhile.

        Raises:
            UserError: refused by policy, no such server, or busy.
            VpsApiError: the provider failed.
        """
        self._authorize(actor, verb, target or Target.from_ref(ref))
        found = self._resolve(actor, verb, ref, target=target)
        busy = (
            f"Another change to {found.name} is under way; try again when it has "
            f"finished (a change cut short by an outage holds the server for five "
            f"minutes at most)."
        )
        key = f"server:{actor.team_id}:{found.id}"
        with (
            self._busy_audited(actor, verb, found, busy),
            self._guard.claim(actor, key, busy),
        ):
            server = self._resolve(actor, verb, str(found.id))
            self._authorize(actor, verb, target or _target(server))
            yield server

    @contextmanager
    def _busy_audited(
        self, actor: Actor, verb: str, server: Server, busy: str
    ) -> Iterator[None]:
        """Audit a claim refused as busy, as a failed attempt."""
        try:
            yield
        except ActionStateError as exc:
            if str(exc) == busy:
                self._guard.record(actor, verb, "failed", _target(server), "busy")
            raise

    def _refuse_taken_name(
        self, actor: Actor, verb: str, server: Server, new_name: str
    ) -> None:
        """Refuse a name another server has: `/vps` finds servers by name."""
        with self._audited_failure(actor, verb, _target(server)):
            servers = self._vps_for(actor).get_all(request_id=actor.request_id)
        holder = fields.holder_of(servers, new_name, besides=server.id)
        if holder is None:
            return
        why = f"{new_name} is already the name of server {holder}"
        if verb == "update":
            self._guard.record(actor, verb, "failed", _target(server), why)
            raise FieldErrors({"name": why})
        self._fail_state(
            actor, verb, server, f"{why}, and `/vps` finds servers by name"
        )

    @contextmanager
    def _audited_failure(
        self, actor: Actor, verb: str, target: Target, reason: str | None = None
    ) -> Iterator[None]:
        """Audit a provider or lookup failure as ``failed`` and let it propagate.

        A change whose answer was lost is never resent: the server is read
        again and the user is told how it stands now.
        """
        try:
            yield
        except OutcomeUnknownError as exc:
            now = self._look_after_lost_answer(actor, verb, target)
            detail = f"outcome unknown: the answer was lost; a fresh look showed {now}"
            self._guard.record_after_change(
                actor, verb, "failed", target, with_reason(detail, reason)
            )
            raise UserError(
                f"VPS.org's answer to the {verb} of {target.server_name} was lost, "
                f"so vpsbot did not send it again. A fresh look shows {now}."
            ) from exc
        except VpsApiError as exc:
            self._guard.record_after_change(
                actor, verb, "failed", target, with_reason(exc.user_message, reason)
            )
            raise
        except ServerLookupError as exc:
            self._guard.record(actor, verb, "failed", target, str(exc))
            raise

    def _look_after_lost_answer(self, actor: Actor, verb: str, target: Target) -> str:
        """How the server stands after a change whose answer was lost.

        After an edit, the fields it may have changed are named, so the reader
        can tell whether it happened.
        """
        if target.server_id is None:
            return "nothing more (the server is not known)"
        try:
            server = self._vps_for(actor).get_by_id(
                target.server_id, request_id=actor.request_id
            )
        except NotFoundError:
            return f"that {target.server_name} no longer exists"
        except VpsApiError as exc:
            logger.warning(
                "could not read server %s after a lost answer: %s [%s]",
                target.server_id,
                type(exc).__name__,
                actor.request_id,
            )
            return "nothing, because VPS.org did not answer; check `/vps list`"
        if verb in ("update", "rename", "backups"):
            return (
                f"that it is called {server.name}, with hostname "
                f"{server.hostname or '(none)'} and backups "
                f"{'on' if server.backups_enabled else 'off'}"
            )
        return f"that {server.name} is `{server.status}`"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _target(server: Server) -> Target:
    return Target(server.id, server.name)
