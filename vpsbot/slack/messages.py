"""User-facing text, in one place so that wording is reviewed together."""

from __future__ import annotations

from vpsbot.ops import Actor, ChangeResult


def escape(text: object) -> str:
    """Text from users or the provider, made safe to put inside mrkdwn.

    Slack reads ``<…>`` as a mention, a broadcast (``<!channel>``) or a link,
    and decodes ``&amp;`` and the like; escaping these three characters shows
    the text as typed instead of letting it ping a channel or hide a link.
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def one_line(text: object) -> str:
    """Text from users or the provider with every run of whitespace (newlines,
    tabs) made one space, so that it cannot draw extra lines that look like
    entries of their own. Escape the result as usual."""
    return " ".join(str(text).split())


# Failures


def incident(request_id: str) -> str:
    return (
        f"Something went wrong inside vpsbot (incident {request_id}); nothing more "
        f"was done. An operator can find the details in the log under that id."
    )


def not_available_yet(verb: str) -> str:
    return (
        f"`/vps {verb}` is not available in this version of vpsbot yet. "
        f"Try `/vps help` to see what you can do here."
    )


def stopped_before_starting() -> str:
    return (
        "vpsbot was restarting and could not start this; nothing was done. "
        "Run the command again in a minute."
    )


def typed_times_in_utc() -> str:
    return (
        "The dates and times you typed were read in UTC: Slack did not tell "
        "vpsbot your time zone."
    )


def connect_single_workspace() -> str:
    return (
        "This vpsbot serves one workspace with the VPS.org token its operator set "
        "in VPS_API_TOKEN, so there is nothing to connect here."
    )


def channel_unknown() -> str:
    return "vpsbot could not tell which conversation this came from; nothing was done."


def button_without_server() -> str:
    return (
        "This button does not name a server vpsbot knows how to find; nothing "
        "was done. `/vps list` shows the servers."
    )


def damaged_button() -> str:
    return "This button's data is damaged; nothing was done. Run the command again."


def audit_not_recorded() -> str:
    return (
        "Note: vpsbot could not write this to its audit log (the database stopped "
        "answering); the details are in the server log."
    )


# Progress and announcements

VERB_PAST = {
    "create": "ordered",
    "update": "edited",
    "start": "started",
    "stop": "stopped",
    "reboot": "rebooted",
    "rename": "renamed",
    "backups": "changed backups of",
    "delete": "deleted",
}

VERB_EMOJI = {
    "create": ":new:",
    "update": ":memo:",
    "start": ":arrow_forward:",
    "stop": ":stop_button:",
    "reboot": ":arrows_counterclockwise:",
    "rename": ":pencil2:",
    "backups": ":floppy_disk:",
    "delete": ":wastebasket:",
}


def announcement(actor: Actor, result: ChangeResult, reason: str | None) -> str:
    """The in-channel line that says who changed what, and how it ended."""
    server = result.server
    line = (
        f"{VERB_EMOJI.get(result.verb, '')} <@{actor.user_id}> "
        f"{VERB_PAST.get(result.verb, result.verb)} *{escape(server.name)}* "
        f"(id {server.id}): {escape(result.summary)}."
    )
    if reason:
        line += f" Reason: {escape(reason)}"
    return line.strip()


def loading(title: str) -> str:
    return f"Looking up {title}…"


def delete_prompt(name: str) -> str:
    return (
        f"Deleting *{escape(name)}* destroys the server and its disks. "
        f"It cannot be undone. Type the server's name to confirm."
    )


def delete_wrong_name(name: str) -> str:
    return (
        f"That is not this server's name. Type {escape(name)} exactly; "
        f"nothing was deleted."
    )


def confirm_power(verb: str, name: str) -> str:
    if verb == "stop":
        return (
            f"{escape(name)} shuts down gracefully and stays off until someone "
            f"starts it."
        )
    return f"{escape(name)} restarts gracefully and is unreachable for a short while."


# Audit exports


def export_empty(filters: str) -> str:
    # Escaped, and kept inside its code span: a backtick would end it.
    shown = escape(filters).replace("`", "'")
    where = f" match `{shown}`" if filters else " are recorded"
    return f"No audit entries of this channel{where}; nothing was uploaded."


def export_comment(count: int, filters: str, user_id: str) -> str:
    noun = "entry" if count == 1 else "entries"
    shown = f" ({escape(filters)})" if filters else ""
    return f"Audit export: {count} {noun}{shown}, asked for by <@{user_id}>."


def export_title(channel_id: str) -> str:
    return f"vpsbot audit export, {channel_id}"


def export_failed(error: str) -> str:
    if error in ("not_in_channel", "channel_not_found"):
        return (
            "The export could not be posted here: vpsbot is not a member of this "
            "conversation. Invite it (`/invite @vpsbot`) and try again."
        )
    if error == "ratelimited":
        return "Slack is limiting uploads right now; try the export again in a minute."
    if error == "missing_scope":
        return (
            "vpsbot may not upload files in this workspace (it lacks the "
            "`files:write` scope); an admin can reinstall the app to grant it."
        )
    if error == "network":
        return "Slack could not be reached to upload the export; try again later."
    return f"Slack refused the export upload ({escape(error)}); try again later."
