"""``vpsbot shell``: a local chat with the real app, no accounts needed.

The shell starts the sandbox provider and a stand-in for Slack on 127.0.0.1,
a SQLite database of its own, and the same Bolt app that ``serve`` runs. What
you type becomes the payload Slack would send, signed as Slack would sign it;
what the app sends back to "Slack" is printed as text. Buttons become numbered
choices, confirm dialogs become yes/no questions and modals become prompts.
Standard input that is not a terminal is read as a script, one line at a time.
A file the app uploads (an audit export) is saved in the export directory, the
current one unless told otherwise, and its path is printed.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from slack_bolt import BoltRequest
from slack_sdk import WebClient

from vpsbot import payloads
from vpsbot.app import VpsBot, create_app
from vpsbot.config import Secret, Settings
from vpsbot.localslack import LocalSlack, SlackCall, Upload
from vpsbot.ops.tracking import Backoff
from vpsbot.slack.messages import escape
from vpsbot.store import (
    PolicyRepository,
    make_engine,
    make_session_factory,
    session_scope,
    upgrade_database,
)
from vpsbot.vps import VpsClient
from vpsbot.vps.sandbox import Sandbox, SandboxServer

logger = logging.getLogger(__name__)

TEAM = "T0SHELL"
CHANNEL = "C0SHELL"
CHANNEL_NAME = "ops"
USERS = {"alice": "U0ALICE", "bob": "U0BOB"}
SIGNING_SECRET = "shell-signing-secret"
SANDBOX_TOKEN = "sandbox-token"
# The sandbox's servers settle within seconds, so look at them often.
SHELL_BACKOFF = Backoff(first=1.0, factor=1.5, cap=2.0)
# Longest ``:wait``, in seconds.
WAIT_LIMIT = 120.0
# The channel's rules at start, as the contract's demo describes them.
DEMO_RULES = {
    "read": "allow",
    "power": "allow",
    "audit": "allow",
    "create": "approve",
    "modify": "approve",
    "delete": "approve",
}

BANNER = """\
vpsbot shell — a local chat with vpsbot, its sandbox VPS.org and channel #ops.
You are {user} (an admin). Switch with `:as bob` (not an admin) or `:as alice`.
Type Slack commands such as `/vps help`, `/vps list`, `/vps show web-01`.
Press a button by typing its number. `:help` lists shell commands, `:quit` leaves.
In #ops, read, power and audit are allowed; create, modify and delete need
approval: ask as alice, then `:as bob` and press Approve (alice and bob approve
each other's requests; `/vps approvals` lists what waits).
`/vps policy modify=allow delete=allow` lets alice try them directly.
"""

SHELL_HELP = """\
:as NAME     act as another user (alice is an admin, bob is not)
:users       list the users
:home        open your App Home (recent actions, approvals to decide, activity)
:wait        wait until the operations being followed have settled
:quit        leave (also Ctrl-D)
N            press button N of the messages above
:cancel      (in a dialog) close it without submitting; Enter keeps [the value]
/vps …       a slash command (the leading slash is optional)
"""


@dataclass
class Button:
    """A button shown to the user, remembered so that its number can be pressed."""

    action: dict[str, Any]
    message: dict[str, Any]
    confirm: dict[str, Any] | None


class Shell:
    """The local chat loop around one in-process vpsbot."""

    def __init__(
        self,
        *,
        stdin: TextIO,
        stdout: TextIO,
        interactive: bool,
        transition_delay: float = 5.0,
        export_dir: Path | None = None,
    ) -> None:
        self._in = stdin
        self._export_dir = export_dir if export_dir is not None else Path.cwd()
        self._out = stdout
        self._interactive = interactive
        self._transition_delay = transition_delay
        self._user = "alice"
        self._seen = 0
        self._buttons: dict[int, Button] = {}
        self._next_button = 1
        self._next_response = 1
        self._views = 0
        self._tmp = tempfile.TemporaryDirectory(prefix="vpsbot-shell-")
        self._sandbox_server: SandboxServer | None = None
        self._slack: LocalSlack | None = None
        self._bot: VpsBot | None = None
        # Updates of followed operations arrive on their own; the watcher
        # prints them while the prompt waits, and the lock keeps its output
        # and the loop's apart.
        self._render_lock = threading.RLock()
        self._prompt: str | None = None
        self._watching = threading.Event()
        self._watcher: threading.Thread | None = None

    # Set-up

    def start(self) -> None:
        self._sandbox_server = SandboxServer(
            Sandbox(token=SANDBOX_TOKEN, transition_delay=self._transition_delay)
        )
        self._sandbox_server.start()
        self._slack = LocalSlack(
            team_id=TEAM, time_zones={user_id: "UTC" for user_id in USERS.values()}
        ).start()
        # Both users are in #ops, as users.conversations will say.
        self._slack.memberships.update({user: [CHANNEL] for user in USERS.values()})

        database_url = f"sqlite:///{Path(self._tmp.name) / 'shell.db'}"
        upgrade_database(database_url)
        sessions = make_session_factory(make_engine(database_url))
        with session_scope(sessions) as session:
            policies = PolicyRepository(session)
            policies.set_rules(
                team_id=TEAM, channel_id=CHANNEL, rules=DEMO_RULES, updated_by="shell"
            )
            # Each of the two users can approve what the other asks for.
            policies.set_approvers(
                team_id=TEAM,
                channel_id=CHANNEL,
                approvers=list(USERS.values()),
                updated_by="shell",
            )

        settings = Settings(
            slack_signing_secret=Secret(SIGNING_SECRET),
            slack_api_url=self._slack.api_url,
            database_url=database_url,
            admins=(USERS["alice"],),
            worker_threads=4,
        )
        self._bot = create_app(
            settings,
            vps=VpsClient(self._sandbox_server.url, SANDBOX_TOKEN),
            sessions=sessions,
            slack_client=WebClient(
                token="xoxb-local-shell", base_url=self._slack.api_url
            ),
            follow_vps=VpsClient(
                self._sandbox_server.url, SANDBOX_TOKEN, max_retries=0
            ),
        )
        self._bot.follower.backoff = SHELL_BACKOFF
        self._bot.start_background()
        if self._interactive:
            # Imported for its effect: input() then edits lines with readline,
            # whose buffer the watcher draws again after printing an update.
            import contextlib

            with contextlib.suppress(ImportError):
                import readline  # noqa: F401
            self._watching.set()
            self._watcher = threading.Thread(
                target=self._watch, name="shell-updates", daemon=True
            )
            self._watcher.start()

    def close(self) -> None:
        self._watching.clear()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        if self._bot is not None:
            self._bot.close()
        if self._slack is not None:
            self._slack.stop()
        if self._sandbox_server is not None:
            self._sandbox_server.stop()
        self._tmp.cleanup()

    # The loop

    def run(self) -> int:
        self._print(BANNER.format(user=self._user))
        for line in self._lines(lambda: f"{self._user}@#{CHANNEL_NAME}> "):
            if line in (":quit", ":exit", ":q"):
                break
            self._handle(line)
        return 0

    def _handle(self, line: str) -> None:
        if line.startswith(":"):
            self._shell_command(line)
        elif line.isdigit():
            self._press(int(line))
        elif re.match(r"/?vps(\s|$)", line, flags=re.IGNORECASE):
            words = line.split(maxsplit=1)
            self._slash(words[1] if len(words) > 1 else "")
        else:
            self._print("Type a /vps command, a button number, or :help.")

    def _shell_command(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        if word == ":as":
            name = rest.strip()
            if name in USERS:
                self._user = name
                self._print(f"You are now {self._user}.")
            else:
                self._print(f"There is no user {name!r} here; try alice or bob.")
        elif word == ":users":
            for name, user_id in USERS.items():
                admin = " (admin)" if name == "alice" else ""
                self._print(f"{name}  {user_id}{admin}")
        elif word == ":wait":
            self._wait_for_followed()
        elif word == ":home":
            self._open_home()
        elif word == ":help":
            self._print(SHELL_HELP)
        else:
            self._print("Unknown shell command.")
            self._print(SHELL_HELP)

    # Sending what Slack would send

    def _slash(self, text: str) -> None:
        body = payloads.slash_command(
            _as_slack_sends(text),
            team_id=TEAM,
            channel_id=CHANNEL,
            channel_name=CHANNEL_NAME,
            user_id=USERS[self._user],
            user_name=self._user,
            response_url=self._new_response_url(),
        )
        self._dispatch(body)

    def _open_home(self) -> None:
        """Open the App Home tab as the current user, as Slack reports it."""
        assert self._bot is not None and self._slack is not None
        published = len(self._slack.api_calls("views.publish"))
        body = payloads.app_home_opened(team_id=TEAM, user_id=USERS[self._user])
        headers = payloads.signed_headers(
            SIGNING_SECRET, body, content_type="application/json"
        )
        self._bot.bolt.dispatch(BoltRequest(body=body, headers=headers))
        # Bolt acknowledges an event before its listener runs: wait for the Home.
        self._slack.wait_for(
            lambda calls: (
                sum(call.name == "views.publish" for call in calls) > published
            ),
            timeout=30,
        )
        self._bot.background.wait_idle(timeout=60)
        self._render_new_calls()

    def _press(self, number: int) -> None:
        button = self._buttons.get(number)
        if button is None:
            self._print(f"There is no button {number}.")
            return
        if button.confirm and not self._confirm(button.confirm):
            self._print("Cancelled.")
            return
        if button.message.get("type") == "home":
            self._dispatch(
                payloads.home_block_action(
                    button.action, team_id=TEAM, user_id=USERS[self._user]
                )
            )
            return
        body = payloads.block_action(
            button.action,
            team_id=TEAM,
            channel_id=CHANNEL,
            user_id=USERS[self._user],
            response_url=self._new_response_url(),
            message=button.message,
        )
        self._dispatch(body)

    def _submit_view(self, view: dict[str, Any]) -> None:
        """Ask for each input of a modal, then submit it (again on errors).

        An empty answer keeps the value shown in brackets, skips an optional
        input, and otherwise closes the dialog without submitting it, as
        ``:cancel`` does.
        """
        while True:
            values: dict[str, dict[str, Any]] = {}
            for block in view.get("blocks", []):
                if block.get("type") != "input":
                    continue
                answer = self._ask_input(block)
                if answer is None:
                    self._print("Dialog closed; nothing was submitted.")
                    return
                if answer:
                    action_id = block["element"]["action_id"]
                    values[block["block_id"]] = {action_id: answer}
            body = payloads.view_submission(
                view, values, team_id=TEAM, user_id=USERS[self._user]
            )
            response = self._dispatch(body, render_ack=False, before=self._ack_view)
            errors = _view_errors(response)
            if not errors:
                return
            for message in errors.values():
                self._print(f"  ! {message}")
            # As in Slack, the dialog stays open with what was typed.
            view = _with_answers(view, values)

    def _ask_input(self, block: dict[str, Any]) -> str | None:
        """One input of a dialog: typed text, or an option by number or name.

        Returns the answer, ``""`` for an optional input left empty, or None
        when the dialog is closed.
        """
        element = block.get("element") or {}
        label = _plain(block.get("label"))
        hint = _plain(block.get("hint")) if block.get("hint") else ""
        if hint:
            self._print(f"  {hint}" if hint.startswith("⚠") else f"  ({hint})")
        options = element.get("options") or []
        if options:
            for number, option in enumerate(options, start=1):
                self._print(f"  {number}) {_plain(option.get('text'))}")
            initial = element.get("initial_option") or {}
            current = _plain(initial.get("text")) if initial else ""
        else:
            current = element.get("initial_value") or ""
        shown = (
            f" [{current}]"
            if current
            else (" (optional)" if block.get("optional") else "")
        )
        typed = self._ask(f"{label}{shown}: ")
        if typed is None or typed.strip() == ":cancel":
            return None
        answer = typed.strip()
        if not answer:
            if current:
                return (element.get("initial_option") or {}).get("value") or current
            return "" if block.get("optional") else None
        if options and answer.isdigit() and 1 <= int(answer) <= len(options):
            return str(options[int(answer) - 1].get("value", ""))
        return answer

    def _ack_view(self, answer: dict[str, Any]) -> None:
        """Show the view a submission's acknowledgement put in the dialog's place."""
        if answer.get("response_action") == "update" and answer.get("view"):
            self._render_view(answer["view"])

    def _dispatch(
        self,
        body: str,
        *,
        render_ack: bool = True,
        before: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        assert self._bot is not None
        headers = payloads.signed_headers(SIGNING_SECRET, body)
        response = self._bot.bolt.dispatch(BoltRequest(body=body, headers=headers))
        answer = _json(response.body)
        if render_ack and answer.get("text"):
            self._print(f"[only you] {self._humanise(answer['text'])}")
        if before is not None:
            before(answer)
        self._bot.background.wait_idle(timeout=60)
        self._render_new_calls()
        return answer

    def _wait_for_followed(self) -> None:
        """Show updates until nothing is followed any more (or a limit passes)."""
        assert self._bot is not None
        deadline = time.monotonic() + WAIT_LIMIT
        while self._bot.follower.open_count() and time.monotonic() < deadline:
            time.sleep(0.2)
            self._render_new_calls()
        self._render_new_calls()
        if self._bot.follower.open_count():
            self._print("Still following; the messages will update later.")

    def _watch(self) -> None:
        """Print announcements updated while the prompt is waiting for input."""
        assert self._slack is not None
        while self._watching.is_set():
            self._slack.wait_for(lambda calls: len(calls) > self._seen, timeout=0.5)
            with self._render_lock:
                if self._prompt is None or len(self._slack.calls) <= self._seen:
                    continue
                # Clear the half-typed line, print, then draw it again.
                self._out.write("\r\x1b[K")
                self._render_new_calls()
                self._out.write(self._prompt + _line_buffer())
                self._out.flush()

    def _new_response_url(self) -> str:
        assert self._slack is not None
        name = f"r{self._next_response}"
        self._next_response += 1
        return self._slack.response_url(name)

    # Showing what the app sent to Slack

    def _render_new_calls(self) -> None:
        assert self._slack is not None
        with self._render_lock:
            calls = self._slack.calls[self._seen :]
            self._seen += len(calls)
        pending_view: dict[str, Any] | None = None
        for call in calls:
            view = self._render_call(call)
            if view is not None:
                pending_view = view
        if pending_view is not None and pending_view.get("submit"):
            self._submit_view(pending_view)

    def _render_call(self, call: SlackCall) -> dict[str, Any] | None:
        body = call.body
        if call.kind == "response":
            if body.get("replace_original") in (True, "true"):
                where = "[updated message]"
            elif body.get("response_type") == "in_channel":
                where = f"[#{CHANNEL_NAME}]"
            else:
                where = "[only you]"
            self._render_message(where, body)
        elif call.name == "chat.postMessage":
            self._render_message(f"[#{CHANNEL_NAME}] vpsbot:", body)
        elif call.name == "chat.update":
            self._render_message(f"(updated) [#{CHANNEL_NAME}] vpsbot:", body)
        elif call.name == "chat.postEphemeral":
            self._render_message("[only you]", body)
        elif call.name == "files.completeUploadExternal":
            self._render_uploads(body)
        elif call.name == "views.publish":
            names = {user_id: name for name, user_id in USERS.items()}
            owner = names.get(str(body.get("user_id")), str(body.get("user_id")))
            self._print(f"┌─ Home of {owner}")
            view = body.get("view") or {}
            for line in self._render_blocks(view.get("blocks", []), {"type": "home"}):
                self._print(f"│ {line}")
            self._print("└─")
        elif call.name in ("views.open", "views.update"):
            view = body.get("view") or {}
            if call.name == "views.update" or not view.get("submit"):
                self._render_view(view)
            self._views += 1
            view_id = body.get("view_id") or f"V-local-{self._views}"
            return {**view, "id": view_id, "hash": f"h{self._views}"}
        return None

    def _render_uploads(self, body: dict[str, Any]) -> None:
        assert self._slack is not None
        for file_id in _file_ids(body):
            upload = self._slack.uploads.get(file_id)
            if upload is None or not upload.completed or upload.data is None:
                continue
            records = _csv_records(upload.data)
            uploaded = (
                f"[#{CHANNEL_NAME}] vpsbot uploaded {upload.filename} "
                f"({records} {'entry' if records == 1 else 'entries'})"
            )
            try:
                path = self._save(upload)
            except OSError as exc:
                self._print(
                    f"{uploaded}; it could not be saved in {self._export_dir} "
                    f"({exc.strerror or type(exc).__name__})"
                )
            else:
                self._print(f"{uploaded}, saved as {path}")
            if upload.initial_comment:
                self._print(f"  {self._humanise(upload.initial_comment)}")

    def _save(self, upload: Upload) -> Path:
        """Write an uploaded file into the export directory; its path.

        A file of that name already there is kept: the new one gets ``-2``,
        ``-3``… before its extension.

        Raises:
            OSError: the directory cannot be written.
        """
        assert upload.data is not None
        self._export_dir.mkdir(parents=True, exist_ok=True)
        name = Path(upload.filename).name
        path = self._export_dir / name
        number = 1
        while True:
            try:
                with path.open("xb") as file:
                    file.write(upload.data)
                return path
            except FileExistsError:
                number += 1
                path = (
                    self._export_dir / f"{Path(name).stem}-{number}{Path(name).suffix}"
                )

    def _render_message(self, where: str, message: dict[str, Any]) -> None:
        blocks = message.get("blocks")
        if not blocks:
            self._print(f"{where} {self._humanise(message.get('text', ''))}")
            return
        self._print(where)
        for line in self._render_blocks(blocks, message):
            self._print(f"  {line}")

    def _render_view(self, view: dict[str, Any]) -> None:
        self._print(f"┌─ dialog: {_plain(view.get('title'))}")
        for line in self._render_blocks(view.get("blocks", []), {}):
            self._print(f"│ {line}")
        self._print("└─")

    def _render_blocks(
        self, blocks: list[dict[str, Any]], message: dict[str, Any]
    ) -> Iterator[str]:
        for block in blocks:
            kind = block.get("type")
            if kind in ("section", "header"):
                text = block.get("text")
                if text:
                    yield from self._humanise(_plain(text)).splitlines()
                for field in block.get("fields", []):
                    yield "  " + self._humanise(_plain(field)).replace("\n", ": ", 1)
                accessory = block.get("accessory")
                if accessory and accessory.get("type") == "button":
                    yield "  " + self._remember(accessory, message)
            elif kind == "actions":
                yield "  ".join(
                    self._remember(element, message)
                    for element in block.get("elements", [])
                    if element.get("type") == "button"
                )
            elif kind == "context":
                for element in block.get("elements", []):
                    yield "  (" + self._humanise(_plain(element)) + ")"
            elif kind == "divider":
                yield "—" * 20

    def _remember(self, button: dict[str, Any], message: dict[str, Any]) -> str:
        number = self._next_button
        self._next_button += 1
        self._buttons[number] = Button(
            action={
                "action_id": button["action_id"],
                "value": button.get("value"),
                "text": _plain(button.get("text")),
            },
            message={
                "type": "home" if message.get("type") == "home" else "message",
                "blocks": message.get("blocks", []),
            },
            confirm=button.get("confirm"),
        )
        return f"[{number}] {_plain(button.get('text'))}"

    def _confirm(self, confirm: dict[str, Any]) -> bool:
        self._print(f"{_plain(confirm.get('title'))} {_plain(confirm.get('text'))}")
        answer = self._ask(f"{_plain(confirm.get('confirm'))}? [y/N] ")
        return (answer or "").strip().lower() in ("y", "yes")

    def _humanise(self, text: str) -> str:
        names = {user_id: name for name, user_id in USERS.items()}

        def mention(match: re.Match[str]) -> str:
            return "@" + (match.group(2) or names.get(match.group(1), match.group(1)))

        def channel(match: re.Match[str]) -> str:
            known = CHANNEL_NAME if match.group(1) == CHANNEL else match.group(1)
            return "#" + (match.group(2) or known)

        text = re.sub(r"<@([A-Z0-9]+)(?:\|([^>]+))?>", mention, text)
        text = re.sub(r"<!subteam\^([A-Z0-9]+)(?:\|([^>]+))?>", r"@\1", text)
        text = re.sub(r"<!date\^(\d+)\^[^|>]*(?:\|[^>]*)?>", _local_time, text)
        text = re.sub(r"<#([A-Z0-9]+)(?:\|([^>]+))?>", channel, text)
        # Shown as Slack shows it: escaped characters come out as typed.
        return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

    # Input and output

    def _lines(self, prompt: Callable[[], str]) -> Iterator[str]:
        while True:
            line = self._ask(prompt())
            if line is None:
                return
            if line.strip():
                yield line.strip()

    def _ask(self, prompt: str) -> str | None:
        if self._interactive:
            self._prompt = prompt
            try:
                return input(prompt)
            except EOFError:
                self._print("")
                return None
            finally:
                self._prompt = None
        line = self._in.readline()
        if not line:
            return None
        self._print(prompt + line.rstrip("\n"))
        return line.rstrip("\n")

    def _print(self, text: str) -> None:
        with self._render_lock:
            self._out.write(text + "\n")
            self._out.flush()


def _line_buffer() -> str:
    """What the user has typed at the prompt so far, when readline knows it."""
    try:
        import readline
    except ImportError:
        return ""
    return readline.get_line_buffer()


def _local_time(match: re.Match[str]) -> str:
    """A Slack date token as the shell's users see it: they all live in UTC."""
    moment = datetime.fromtimestamp(int(match.group(1)), UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("text", ""))
    return "" if value is None else str(value)


def _json(body: str | None) -> dict[str, Any]:
    import json

    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {"text": body}
    return parsed if isinstance(parsed, dict) else {}


def _with_answers(
    view: dict[str, Any], values: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """A copy of ``view`` whose inputs hold the answers given to it."""
    blocks = []
    for block in view.get("blocks", []):
        answer = next(iter((values.get(block.get("block_id")) or {}).values()), None)
        if block.get("type") == "input" and answer is not None:
            element = dict(block.get("element") or {})
            chosen = [
                option
                for option in element.get("options") or []
                if option.get("value") == answer
            ]
            if chosen:
                element["initial_option"] = chosen[0]
            elif not element.get("options"):
                element["initial_value"] = answer
            block = {**block, "element": element}
        blocks.append(block)
    return {**view, "blocks": blocks}


def _file_ids(body: dict[str, Any]) -> list[str]:
    """The ids in a files.completeUploadExternal call (``files`` is JSON text)."""
    import json

    try:
        items = json.loads(str(body.get("files") or "[]"))
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    return [str(item.get("id")) for item in items if isinstance(item, dict)]


def _csv_records(data: bytes) -> int:
    """Rows after the header of a CSV file."""
    reader = csv.reader(io.StringIO(data.decode("utf-8", "replace"), newline=""))
    return max(sum(1 for _ in reader) - 1, 0)


def _view_errors(answer: dict[str, Any]) -> dict[str, str]:
    if answer.get("response_action") == "errors":
        return dict(answer.get("errors") or {})
    return {}


def run_shell(stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Run the shell until the user leaves; the exit status."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    shell = Shell(stdin=stdin, stdout=stdout, interactive=stdin.isatty())
    try:
        shell.start()
        return shell.run()
    finally:
        shell.close()


def _as_slack_sends(text: str) -> str:
    """The command text as Slack sends it: ``@alice`` becomes ``<@U0ALICE|alice>``.

    With escaping on (as the manifest asks), Slack turns a typed mention into
    the user's id and escapes ``&``, ``<`` and ``>``; the shell does the same.
    """
    escaped = escape(text)

    def mention(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        return f"<@{USERS[name]}|{name}>" if name in USERS else match.group(0)

    return re.sub(r"(?<![\w<])@(\w+)", mention, escaped)
