"""Where answers go: to the asker alone, or announced in the channel.

Answers to the asker go through the request's ``response_url``, which works in
DMs and in private channels the bot has not joined. Announcements use
``chat.postMessage`` (its ``ts`` lets a later change update the message) and
fall back to an in-channel ``response_url`` reply where the bot is not a member.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from vpsbot.ops import Actor

logger = logging.getLogger(__name__)

# chat.postMessage errors that mean "the bot cannot post there", not a fault.
_NOT_A_MEMBER = {"not_in_channel", "channel_not_found", "is_archived", "access_denied"}


class Replies:
    """The ways of answering one request."""

    def __init__(
        self,
        *,
        client: WebClient,
        channel_id: str | None,
        user_id: str,
        response_url: str | None,
        request_id: str,
    ) -> None:
        self._client = client
        self._channel_id = channel_id
        self._user_id = user_id
        self._response_url = response_url
        self._request_id = request_id

    @classmethod
    def to_click(
        cls, client: WebClient, body: dict[str, Any], actor: Actor | None
    ) -> Replies:
        """Answers to a button press by ``actor`` (``None``: it names nobody,
        so only its ``response_url`` can be answered)."""
        return cls(
            client=client,
            channel_id=actor.channel_id if actor else None,
            user_id=actor.user_id if actor else "",
            response_url=body.get("response_url"),
            request_id=actor.request_id if actor else "-",
        )

    @property
    def response_url(self) -> str | None:
        return self._response_url

    @property
    def client(self) -> WebClient:
        return self._client

    def ephemeral(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """Answer the asker only."""
        if self._response_url:
            self._send(
                {
                    "text": text,
                    "blocks": blocks,
                    "response_type": "ephemeral",
                    "replace_original": False,
                }
            )
            return
        if self._channel_id:
            self._client.chat_postEphemeral(
                channel=self._channel_id, user=self._user_id, text=text, blocks=blocks
            )

    def replace_original(self, text: str, blocks: list[dict[str, Any]]) -> None:
        """Redraw the message a button was pressed on (it may be ephemeral)."""
        if self._response_url:
            self._send({"text": text, "blocks": blocks, "replace_original": True})

    def announce(
        self, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> str | None:
        """Tell the whole channel what changed.

        Returns:
            The posted message's ``ts``, by which it can be updated later; or
            ``None`` when it went through the response_url (the bot is not in
            the channel), which leaves nothing to update.
        """
        if self._channel_id:
            try:
                response = self._client.chat_postMessage(
                    channel=self._channel_id, text=text, blocks=blocks
                )
                ts = response.get("ts")
                return ts if isinstance(ts, str) else None
            except SlackApiError as exc:
                error = exc.response.get("error") if exc.response else None
                if error not in _NOT_A_MEMBER:
                    raise
                logger.info(
                    "cannot post in %s (%s); answering in channel through the "
                    "response_url [%s]",
                    self._channel_id,
                    error,
                    self._request_id,
                )
        self._send(
            {
                "text": text,
                "blocks": blocks,
                "response_type": "in_channel",
                "replace_original": False,
            }
        )
        return None

    def _send(self, payload: dict[str, Any]) -> None:
        if not self._response_url:
            logger.warning("no response_url to answer request %s", self._request_id)
            return
        body = {key: value for key, value in payload.items() if value is not None}
        response = WebhookClient(self._response_url, timeout=10).send_dict(body)
        if response.status_code != 200:
            logger.warning(
                "response_url answered %s for request %s",
                response.status_code,
                self._request_id,
            )
