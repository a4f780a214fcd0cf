"""The ``/vps`` grammar: command text in, a ``Command`` or a ``ParseError`` out.

Pure: no Slack, database or provider. Slack escapes ``&``, ``<`` and ``>``,
phones turn straight quotes curly and ``--`` into dashes, and mentions arrive
as ``<@U123|name>``; the text is normalised before it is split.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from typing import NoReturn

from vpsbot import audit, moments
from vpsbot.moments import parse_moment
from vpsbot.ops import CreateRequest, fields
from vpsbot.slack.messages import escape

logger = logging.getLogger(__name__)

MAX_TEXT = 2000
MAX_REASON = 500

_SERVER_REF = re.compile(r"^[A-Za-z0-9-]{1,63}$")
_USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_GROUP_MENTION = re.compile(r"^<!subteam\^(S[A-Z0-9]+)(?:\|[^>]*)?>$")
_RAW_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})

STATUSES = frozenset(
    {
        "active",
        "stopped",
        "suspended",
        "provisioning",
        "starting",
        "stopping",
        "rebooting",
        "error",
        "failed",
    }
)
USAGE = {
    "help": "/vps help",
    "list": "/vps list [status] [location]",
    "show": "/vps show <server>",
    "start": '/vps start <server> [reason="…"]',
    "stop": '/vps stop <server> [reason="…"]',
    "reboot": '/vps reboot <server> [reason="…"]',
    "create": "/vps create <name> plan=<id or name> os=<id or name> "
    'location=<code> [hostname=<fqdn>] [backups=on|off] [reason="…"]',
    "update": "/vps update <server>",
    "rename": '/vps rename <server> <new-name> [reason="…"]',
    "backups": '/vps backups <server> on|off [reason="…"]',
    "delete": '/vps delete <server> [reason="…"]',
    "audit": "/vps audit [<server>] [<@user>] [action=…] [outcome=…] [since=…] "
    "[until=…]",
    "approvals": "/vps approvals",
    "connect": "/vps connect",
    "policy": "/vps policy [<action>=allow|approve|deny …] | "
    "/vps policy approvers <@user> …",
}


class ParseError(ValueError):
    """The text is not a valid command; the message says why and shows the form."""


@dataclass(frozen=True)
class Command:
    """A parsed ``/vps`` command. Fields not used by a verb stay empty."""

    verb: str
    server: str | None = None
    new_name: str | None = None
    enabled: bool | None = None
    status: str | None = None
    location: str | None = None
    reason: str | None = None
    user: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # ``since``/``until`` as typed when they name a wall-clock time (a date, a
    # time without offset): read in UTC here, again in the user's zone later.
    since_typed: str | None = None
    until_typed: str | None = None
    rules: dict[str, str] = field(default_factory=dict)
    # None: the approvers are not being changed; empty: admins approve.
    approvers: tuple[str, ...] | None = None
    export: bool = False
    # Set by the one-line create; None opens the create dialog.
    create: CreateRequest | None = None


def normalise(text: str) -> str:
    """Undo Slack's escaping and phones' typography; fold white space."""
    text = html.unescape(text).translate(_QUOTES)
    text = text.replace("—", "--").replace("–", "--")
    return " ".join(text.split())


def tokenize(text: str) -> list[str]:
    """Split on spaces, keeping quoted values (``reason="two words"``) whole.

    A quote opens a value only at the start of a word or right after ``=``,
    so an apostrophe inside a word is just a letter.

    Raises:
        ParseError: a quote is never closed.
    """
    tokens: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for char in text:
        if quote:
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif char in "\"'" and (not current or current[-1] == "="):
            quote = char
        elif char == " ":
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
    if quote:
        raise ParseError(f"A {quote} quote is not closed.")
    if current:
        tokens.append("".join(current))
    return tokens


def parse(text: str, *, now: datetime | None = None) -> Command:
    """Parse the text typed after ``/vps``.

    Raises:
        ParseError: unknown verb, missing or malformed argument.
    """
    if len(text) > MAX_TEXT:
        raise ParseError(
            f"That command is {len(text):,} characters long; vpsbot reads at most "
            f"{MAX_TEXT:,}. Try `/vps help`."
        )
    words = tokenize(normalise(text))
    if not words:
        return Command("help")
    verb, args = words[0].lower(), words[1:]
    parser = _PARSERS.get(verb)
    if parser is None:
        raise ParseError(
            f"`{_clip(words[0])}` is not a vpsbot command. "
            f"Try `/vps help` to see what you can do here."
        )
    return parser(verb, args, now or datetime.now(UTC))


def _parse_help(verb: str, args: list[str], now: datetime) -> Command:
    return Command("help")


def _parse_list(verb: str, args: list[str], now: datetime) -> Command:
    options, words = _split_options(verb, args, allowed={"status", "location"})
    status, location = options.get("status"), options.get("location")
    for word in words:
        if word.lower() in STATUSES and status is None:
            status = word.lower()
        elif location is None:
            location = word.lower()
        else:
            _fail(verb, f"`{_clip(word)}` is one word too many")
    if status is not None:
        status = status.lower()
    return Command("list", status=status, location=location)


def _parse_server_only(verb: str, args: list[str], now: datetime) -> Command:
    options, words = _split_options(verb, args, allowed={"reason"})
    server = _one_server(verb, words)
    return Command(verb, server=server, reason=_reason(options))


def _parse_rename(verb: str, args: list[str], now: datetime) -> Command:
    options, words = _split_options(verb, args, allowed={"reason"})
    if len(words) != 2:
        _fail(verb, "it needs the server and its new name")
    server = _server_ref(verb, words[0])
    new_name = words[1]
    _check_name(verb, new_name)
    return Command("rename", server=server, new_name=new_name, reason=_reason(options))


def _parse_backups(verb: str, args: list[str], now: datetime) -> Command:
    options, words = _split_options(verb, args, allowed={"reason"})
    if len(words) != 2 or words[1].lower() not in ("on", "off"):
        _fail(verb, "it needs the server and `on` or `off`")
    return Command(
        "backups",
        server=_server_ref(verb, words[0]),
        enabled=words[1].lower() == "on",
        reason=_reason(options),
    )


def _parse_create(verb: str, args: list[str], now: datetime) -> Command:
    options, words = _split_options(
        verb, args, allowed={"plan", "os", "location", "hostname", "backups", "reason"}
    )
    reason = _reason(options)
    if not words and set(options) <= {"reason"}:
        return Command("create", reason=reason)
    if len(words) != 1:
        _fail(verb, "it needs one name for the new server, then its options")
    name = words[0]
    _check_name(verb, name)
    missing = [key for key in ("plan", "os", "location") if key not in options]
    if missing:
        needed = " and ".join(f"`{key}=`" for key in missing)
        _fail(verb, f"it needs {needed} (or plain `/vps create` for the dialog)")
    hostname = options.get("hostname")
    if hostname is not None:
        problem = fields.hostname_problem(hostname)
        if problem:
            _fail(verb, f"`hostname={_clip(hostname)}` is not valid: {problem}")
    backups = options.get("backups", "off").lower()
    if backups not in ("on", "off"):
        _fail(verb, "`backups=` takes `on` or `off`")
    request = CreateRequest(
        name=name,
        plan=options["plan"],
        os=options["os"],
        location=options["location"],
        hostname=hostname,
        backups=backups == "on",
    )
    return Command("create", reason=reason, create=request)


def _parse_plain(verb: str, args: list[str], now: datetime) -> Command:
    if verb == "update":
        options, words = _split_options(verb, args, allowed={"reason"})
        return Command(verb, server=_one_server(verb, words), reason=_reason(options))
    return Command(verb)


def _parse_audit(verb: str, args: list[str], now: datetime) -> Command:
    export = bool(args) and args[0].lower() == "export"
    if export:
        args = args[1:]
    options, words = _split_options(
        verb, args, allowed={"action", "outcome", "since", "until"}
    )
    server = user = None
    for word in words:
        # Only a mention names a person here: a bare word like WEB01 is a
        # server name, however much it looks like a user id.
        match = _USER_MENTION.match(word)
        mention = match.group(1) if match else None
        if mention and user is None:
            user = mention
        elif not mention and server is None:
            server = _server_ref(verb, word)
        else:
            _fail(verb, f"`{_clip(word)}` is one word too many")
    action = options.get("action")
    if action is not None and action.lower() not in audit.ACTIONS:
        _fail(
            verb,
            f"`{_clip(action)}` is not an action; use one of "
            f"{', '.join(sorted(audit.ACTIONS))}",
        )
    outcome = options.get("outcome")
    if outcome is not None and outcome.lower() not in audit.OUTCOMES:
        _fail(
            verb,
            f"`{_clip(outcome)}` is not an outcome; use one of "
            f"{', '.join(sorted(audit.OUTCOMES))}",
        )
    since = _moment(verb, "since", options.get("since"), now)
    until = _moment(verb, "until", options.get("until"), now)
    since_typed = _wall_clock(options.get("since"))
    until_typed = _wall_clock(options.get("until"))
    # A wall-clock time and an absolute one may come in either order
    # depending on the user's zone; ``in_zone`` checks them then.
    if (
        since
        and until
        and since >= until
        and (since_typed is None) == (until_typed is None)
    ):
        _fail(verb, "`since` must come before `until`")
    return Command(
        "audit",
        server=server,
        user=user,
        action=action.lower() if action else None,
        outcome=outcome.lower() if outcome else None,
        since=since,
        until=until,
        since_typed=since_typed,
        until_typed=until_typed,
        export=export,
    )


def in_zone(command: Command, zone: tzinfo, now: datetime | None = None) -> Command:
    """``command`` with its typed dates and times read in ``zone``.

    Raises:
        ParseError: in that zone, ``since`` no longer comes before ``until``.
    """
    if command.since_typed is None and command.until_typed is None:
        return command
    now = now or datetime.now(UTC)
    since = _in_zone(command, "since", command.since, command.since_typed, now, zone)
    until = _in_zone(command, "until", command.until, command.until_typed, now, zone)
    if since and until and since >= until:
        _fail(command.verb, "`since` must come before `until`")
    return replace(command, since=since, until=until)


def _in_zone(
    command: Command,
    name: str,
    parsed: datetime | None,
    typed: str | None,
    now: datetime,
    zone: tzinfo,
) -> datetime | None:
    """One end of a range, read again in ``zone`` if it was typed wall-clock."""
    if typed is None:
        return parsed
    try:
        return parse_moment(typed, now, zone)
    except ValueError as exc:
        _fail(command.verb, _time_problem(name, typed, exc))


def _wall_clock(value: str | None) -> str | None:
    return value if value is not None and moments.names_wall_clock(value) else None


def _parse_policy(verb: str, args: list[str], now: datetime) -> Command:
    if not args:
        return Command("policy")
    if args[0].lower() == "approvers":
        approvers = []
        for word in args[1:]:
            approver = _user_id(word) or _group_id(word)
            if approver is None:
                _fail(verb, f"`{_clip(word)}` is not a user or user-group mention")
            approvers.append(approver)
        return Command("policy", approvers=tuple(dict.fromkeys(approvers)))
    rules: dict[str, str] = {}
    for word in args:
        key, sep, value = word.partition("=")
        if not sep or not key or not value:
            _fail(verb, f"`{_clip(word)}` is not `<action>=allow|approve|deny`")
        if key.lower() in rules:
            _fail(verb, f"`{_clip(key.lower())}` is given twice; give each action once")
        rules[key.lower()] = value.lower()
    return Command("policy", rules=rules)


_PARSERS = {
    "help": _parse_help,
    "list": _parse_list,
    "show": _parse_server_only,
    "start": _parse_server_only,
    "stop": _parse_server_only,
    "reboot": _parse_server_only,
    "delete": _parse_server_only,
    "rename": _parse_rename,
    "backups": _parse_backups,
    "create": _parse_create,
    "update": _parse_plain,
    "approvals": _parse_plain,
    "connect": _parse_plain,
    "audit": _parse_audit,
    "policy": _parse_policy,
}


def _split_options(
    verb: str, args: list[str], *, allowed: set[str]
) -> tuple[dict[str, str], list[str]]:
    """Separate ``key=value`` options from plain words, checking the keys."""
    options: dict[str, str] = {}
    words: list[str] = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            words.append(arg)
            continue
        key = key.lower()
        if key not in allowed:
            accepted = ", ".join(f"`{name}=`" for name in sorted(allowed)) or "none"
            _fail(verb, f"`{_clip(key)}=` is not an option here (accepted: {accepted})")
        if not value.strip():
            _fail(verb, f"`{key}=` needs a value")
        if key in options:
            _fail(verb, f"`{key}=` is given twice; give it once")
        options[key] = value.strip()
    return options, words


def _one_server(verb: str, words: list[str]) -> str:
    if not words:
        _fail(verb, "it needs a server id or name")
    if len(words) > 1:
        _fail(verb, f"it takes one server, got {len(words)} words")
    return _server_ref(verb, words[0])


def _check_name(verb: str, name: str) -> None:
    problem = fields.name_problem(name)
    if problem:
        _fail(verb, f"`{_clip(name)}` is not a valid server name: {problem}")


def _server_ref(verb: str, word: str) -> str:
    if not _SERVER_REF.match(word):
        _fail(verb, f"`{_clip(word)}` is not a server id or name")
    return word


def _reason(options: dict[str, str]) -> str | None:
    reason = options.get("reason")
    if reason is not None and len(reason) > MAX_REASON:
        raise ParseError(
            f"The reason is too long; keep it under {MAX_REASON} characters."
        )
    return reason


def _user_id(word: str) -> str | None:
    match = _USER_MENTION.match(word)
    if match:
        return match.group(1)
    return word if _RAW_USER.match(word) else None


def _group_id(word: str) -> str | None:
    match = _GROUP_MENTION.match(word)
    return match.group(1) if match else None


def _moment(verb: str, name: str, value: str | None, now: datetime) -> datetime | None:
    """``since=``/``until=`` as ``moments.parse_moment`` reads them."""
    if value is None:
        return None
    try:
        return parse_moment(value, now)
    except ValueError as exc:
        _fail(verb, _time_problem(name, value, exc))


def _time_problem(name: str, value: str, exc: ValueError) -> str:
    if str(exc) == moments.OUT_OF_RANGE:
        return f"`{name}={_clip(value)}` is out of range; {moments.OUT_OF_RANGE}"
    if str(exc) == moments.SKIPPED:
        return f"`{name}={_clip(value)}`: {moments.SKIPPED}"
    return f"`{name}={_clip(value)}` is not a time; use {moments.FORMS}"


def _fail(verb: str, problem: str) -> NoReturn:
    raise ParseError(
        f"That `{verb}` is not quite right: {problem}. "
        f"Usage: `{USAGE.get(verb, USAGE['help'])}`"
    )


def _clip(word: str, limit: int = 40) -> str:
    """A typed word, shortened and made safe to echo inside backticks.

    Slack reads ``<…>`` even in code spans, so ``&``, ``<`` and ``>`` are
    escaped as well.
    """
    word = word.replace("`", "'")
    word = word if len(word) <= limit else word[: limit - 1] + "…"
    return escape(word)
