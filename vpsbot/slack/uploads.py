"""Uploading a file to a conversation through Slack's external-upload API.

Three steps: ``files.getUploadURLExternal`` hands out a one-off URL for the
file's length, the bytes are POSTed there, and ``files.completeUploadExternal``
shares the file in the conversation with a title and a comment. slack_sdk's
``files_upload_v2`` runs the same steps but reads the whole file into memory
first; here the bytes are streamed from the file, so a large export costs no
more memory than a small one.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from typing import IO

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

logger = logging.getLogger(__name__)

# The code for "Slack could not be reached or did not answer properly".
NETWORK_ERROR = "network"


class UploadError(Exception):
    """An upload step failed; ``error`` is Slack's error code or ``network``."""

    def __init__(self, step: str, error: str) -> None:
        self.step = step
        self.error = error
        super().__init__(f"{step} failed: {error}")


def upload_file(
    client: WebClient,
    *,
    channel_id: str,
    file: IO[bytes],
    size: int,
    filename: str,
    title: str,
    initial_comment: str,
) -> str:
    """Share ``file`` (``size`` bytes, read from its current position) in a channel.

    Returns:
        Slack's id of the shared file.

    Raises:
        UploadError: a step failed; nothing more was sent after it.
    """
    try:
        started = client.files_getUploadURLExternal(filename=filename, length=size)
    except (SlackApiError, SlackClientError, OSError) as exc:
        raise UploadError("files.getUploadURLExternal", _error_code(exc)) from exc
    upload_url = str(started.get("upload_url") or "")
    file_id = str(started.get("file_id") or "")
    if not upload_url.startswith(("https://", "http://")) or not file_id:
        raise UploadError("files.getUploadURLExternal", "no_upload_url")

    _post_bytes(client, upload_url, file, size)

    try:
        client.files_completeUploadExternal(
            files=[{"id": file_id, "title": title}],
            channel_id=channel_id,
            initial_comment=initial_comment,
        )
    except (SlackApiError, SlackClientError, OSError) as exc:
        raise UploadError("files.completeUploadExternal", _error_code(exc)) from exc
    return file_id


def _post_bytes(client: WebClient, url: str, file: IO[bytes], size: int) -> None:
    """POST the file's bytes to the upload URL, in blocks, not all at once."""
    # The URL carries its own credentials; the bot token is not sent with it.
    request = urllib.request.Request(
        url,
        data=file,
        method="POST",
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
        },
    )
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.HTTPSHandler(context=client.ssl)
    ]
    if client.proxy:
        handlers.append(
            urllib.request.ProxyHandler({"http": client.proxy, "https": client.proxy})
        )
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=client.timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise UploadError("upload", f"http_{exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise UploadError("upload", NETWORK_ERROR) from exc


def _error_code(exc: Exception) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error") or NETWORK_ERROR)
    return NETWORK_ERROR
