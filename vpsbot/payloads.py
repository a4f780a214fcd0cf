"""Requests shaped like Slack's, signed like Slack's.

The local shell hands these to the same Bolt app that ``serve`` runs, and the
tests post them over HTTP. Field names follow Slack's slash command,
``block_actions``, ``view_submission`` and Events API payloads.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

APP_ID = "A0VPSBOT"
_trigger_counter = itertools.count(1)


def new_trigger_id() -> str:
    return f"{int(time.time())}.{next(_trigger_counter)}.local"


def signed_headers(
    signing_secret: str,
    body: str,
    *,
    timestamp: int | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, str]:
    """The headers Slack adds: timestamp, v0 signature, content type.

    Events come as ``application/json``; everything else is form-encoded.
    """
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(
        timestamp=stamp, body=body
    )
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": stamp,
        "x-slack-signature": signature,
    }


def slash_command(
    text: str,
    *,
    team_id: str,
    channel_id: str,
    user_id: str,
    response_url: str,
    trigger_id: str | None = None,
    channel_name: str = "ops",
    user_name: str = "user",
) -> str:
    """A form-encoded ``/vps`` command body."""
    return urlencode(
        {
            "token": "local-verification-token",
            "team_id": team_id,
            "team_domain": "local",
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": "/vps",
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or new_trigger_id(),
        }
    )


def block_action(
    action: dict[str, Any],
    *,
    team_id: str,
    channel_id: str,
    user_id: str,
    response_url: str,
    message: dict[str, Any] | None = None,
    message_ts: str = "1700000000.000100",
    is_ephemeral: bool = True,
    trigger_id: str | None = None,
) -> str:
    """A form-encoded ``block_actions`` body for one pressed button."""
    pressed = {
        "type": "button",
        "block_id": action.get("block_id", "b"),
        "action_id": action["action_id"],
        "value": action.get("value"),
        "text": {"type": "plain_text", "text": action.get("text", "")},
        "action_ts": f"{time.time():.6f}",
    }
    payload = {
        "type": "block_actions",
        "api_app_id": APP_ID,
        "token": "local-verification-token",
        "trigger_id": trigger_id or new_trigger_id(),
        "response_url": response_url,
        "team": {"id": team_id, "domain": "local"},
        "user": {"id": user_id, "username": "user", "name": "user", "team_id": team_id},
        "channel": {"id": channel_id, "name": "ops"},
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        },
        "message": message or {"type": "message", "ts": message_ts, "blocks": []},
        "actions": [pressed],
        "state": {"values": {}},
    }
    return urlencode({"payload": json.dumps(payload)})


def view_submission(
    view: dict[str, Any],
    values: dict[str, dict[str, Any]],
    *,
    team_id: str,
    user_id: str,
    trigger_id: str | None = None,
) -> str:
    """A form-encoded ``view_submission`` body for a modal the app opened.

    Args:
        view: the view as the app last sent it (with Slack's ``id`` and ``hash``).
        values: ``{block_id: {action_id: typed text}}``; for a select or radio
            buttons, the text is the chosen option's value or its label.
    """
    elements = {
        block.get("block_id"): block.get("element") or {}
        for block in view.get("blocks") or []
        if block.get("type") == "input"
    }
    state = {
        block_id: {
            action_id: _element_state(elements.get(block_id) or {}, text)
            for action_id, text in actions.items()
        }
        for block_id, actions in values.items()
    }
    submitted = {
        **view,
        "team_id": team_id,
        "type": "modal",
        "state": {"values": state},
        "app_id": APP_ID,
    }
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "local"},
        "user": {"id": user_id, "username": "user", "name": "user", "team_id": team_id},
        "api_app_id": APP_ID,
        "token": "local-verification-token",
        "trigger_id": trigger_id or new_trigger_id(),
        "view": submitted,
        "response_urls": [],
    }
    return urlencode({"payload": json.dumps(payload)})


def _element_state(element: dict[str, Any], text: str) -> dict[str, Any]:
    """How Slack reports an input's value: typed text, or the chosen option."""
    kind = element.get("type") or "plain_text_input"
    if kind not in ("static_select", "radio_buttons"):
        return {"type": kind, "value": text}
    chosen = next(
        (
            option
            for option in element.get("options") or []
            if text in (option.get("value"), (option.get("text") or {}).get("text"))
        ),
        None,
    )
    if chosen is None and text:
        chosen = {"text": {"type": "plain_text", "text": text}, "value": text}
    return {"type": kind, "selected_option": chosen}


def app_home_opened(
    *, team_id: str, user_id: str, tab: str = "home", event_id: str | None = None
) -> str:
    """A JSON ``event_callback`` body: someone opened a tab of the app."""
    now = int(time.time())
    payload = {
        "token": "local-verification-token",
        "team_id": team_id,
        "api_app_id": APP_ID,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_trigger_counter):08d}",
        "event_time": now,
        "event": {
            "type": "app_home_opened",
            "user": user_id,
            "channel": "D0VPSBOT",
            "tab": tab,
            "event_ts": f"{now}.000100",
        },
        "authorizations": [
            {
                "team_id": team_id,
                "user_id": "U0VPSBOT",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
    }
    return json.dumps(payload)


def home_block_action(
    action: dict[str, Any],
    *,
    team_id: str,
    user_id: str,
    view: dict[str, Any] | None = None,
    trigger_id: str | None = None,
) -> str:
    """A form-encoded ``block_actions`` body for a button in the App Home.

    Like Slack's, it names the view the button is in and carries neither a
    channel nor a response_url.
    """
    shown = {"id": "V0HOME", "type": "home", "blocks": [], **(view or {})}
    payload = {
        "type": "block_actions",
        "api_app_id": APP_ID,
        "token": "local-verification-token",
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": "local"},
        "user": {"id": user_id, "username": "user", "name": "user", "team_id": team_id},
        "container": {"type": "view", "view_id": shown["id"]},
        "view": shown,
        "actions": [
            {
                "type": "button",
                "block_id": action.get("block_id", "b"),
                "action_id": action["action_id"],
                "value": action.get("value"),
                "text": {"type": "plain_text", "text": action.get("text", "")},
                "action_ts": f"{time.time():.6f}",
            }
        ],
        "state": {"values": {}},
    }
    return urlencode({"payload": json.dumps(payload)})
