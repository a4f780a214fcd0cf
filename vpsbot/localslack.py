"""A stand-in for Slack's side of the conversation, on 127.0.0.1.

The local shell and the tests point the app's Web API client here
(``SLACK_API_URL``) and hand it ``response_url``s that lead here too. Every
call is recorded in order, so the shell can show what the app said and tests
can assert on it. Failures can be scripted per method (``not_in_channel``, a
429 with Retry-After, ``expired_trigger_id``). ``groups``, ``memberships`` and
``time_zones`` answer ``usergroups.users.list``, ``users.conversations`` and
``users.info``.

File uploads follow Slack's external-upload steps: ``files.getUploadURLExternal``
hands out a URL on this server, the bytes POSTed there are kept, and
``files.completeUploadExternal`` shares them (``uploads`` holds each file).
A failure of the POST itself is scripted under the name ``upload``.

For the multi-workspace install it also plays Slack's side of OAuth: a code
handed out with ``grant_install`` is exchanged once by ``oauth.v2.access``
for a bot token of that workspace, which ``auth.test`` then recognises.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlackCall:
    """One request the app made: a Web API method, a response_url or upload post."""

    kind: str  # "api", "response" or "upload"
    name: str  # the API method, the response_url's id, or the file id
    body: dict[str, Any]
    token: str | None = None


@dataclass
class Upload:
    """A file the app uploaded, from the URL it asked for to where it was shared."""

    file_id: str
    filename: str
    length: int
    data: bytes | None = None
    channel_id: str | None = None
    title: str | None = None
    initial_comment: str | None = None

    @property
    def completed(self) -> bool:
        return self.channel_id is not None


# The name under which a failure of the upload POST is scripted.
UPLOAD = "upload"


@dataclass
class _Failure:
    error: str
    status: int = 200
    retry_after: int | None = None
    times: int = 1


@dataclass
class LocalSlack:
    """Records what the app sends to Slack and answers like Slack would."""

    team_id: str = "T0SHELL"
    bot_user_id: str = "U0VPSBOT"
    calls: list[SlackCall] = field(default_factory=list)
    # User groups by id, with their members, for ``usergroups.users.list``.
    groups: dict[str, list[str]] = field(default_factory=dict)
    # Users' time zones (IANA names) for ``users.info``; a user not listed has
    # none in their profile.
    time_zones: dict[str, str] = field(default_factory=dict)
    # Files by id, in the order their upload URLs were asked for.
    uploads: dict[str, Upload] = field(default_factory=dict)
    # Channel ids each user is a member of, for ``users.conversations``.
    memberships: dict[str, list[str]] = field(default_factory=dict)
    # OAuth: codes not yet exchanged (code -> team id, installing user), and
    # the bot tokens handed out (token -> team id).
    install_codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    bot_tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._ts = itertools.count(1)
        self._files = itertools.count(1)
        self._views = itertools.count(1)
        self._failures: dict[str, deque[_Failure]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Control

    def start(self) -> LocalSlack:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-slack", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "LocalSlack is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def api_url(self) -> str:
        """What ``SLACK_API_URL`` should be to reach this stand-in."""
        return self.base_url + "api/"

    def response_url(self, name: str) -> str:
        """A response_url that records its posts under ``name``."""
        return f"{self.base_url}response/{name}"

    def fail(
        self,
        method: str,
        error: str,
        *,
        status: int = 200,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an error."""
        with self._lock:
            self._failures.setdefault(method, deque()).append(
                _Failure(error, status, retry_after, times)
            )

    def grant_install(self, code: str, *, team_id: str, user_id: str) -> None:
        """Let ``code`` install the app in ``team_id``, as ``user_id``."""
        with self._lock:
            self.install_codes[code] = (team_id, user_id)

    # Reading what was sent

    def api_calls(self, method: str) -> list[SlackCall]:
        with self._lock:
            return [c for c in self.calls if c.kind == "api" and c.name == method]

    def responses(self, name: str | None = None) -> list[SlackCall]:
        with self._lock:
            return [
                c
                for c in self.calls
                if c.kind == "response" and (name is None or c.name == name)
            ]

    def completed_uploads(self) -> list[Upload]:
        """Files shared in a conversation, in the order they were started."""
        with self._lock:
            return [upload for upload in self.uploads.values() if upload.completed]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        """Wait until ``predicate(calls)`` is true; ``False`` on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: predicate(list(self.calls)), timeout)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    # Answering

    def _record(self, call: SlackCall) -> None:
        with self._lock:
            self.calls.append(call)
            self._lock.notify_all()

    def _next_failure(self, method: str) -> _Failure | None:
        with self._lock:
            queue = self._failures.get(method)
            if not queue:
                return None
            failure = queue[0]
            failure.times -= 1
            if failure.times <= 0:
                queue.popleft()
            return failure

    def answer(
        self, method: str, body: dict[str, Any], token: str | None = None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        failure = self._next_failure(method)
        if failure is not None:
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(failure.retry_after)
            return failure.status, {"ok": False, "error": failure.error}, headers
        return 200, self._success(method, body, token), {}

    def _exchange(self, code: str) -> dict[str, Any]:
        """``oauth.v2.access``: a granted code, once, becomes a bot token."""
        with self._lock:
            granted = self.install_codes.pop(code, None)
            if granted is None:
                return {"ok": False, "error": "invalid_code"}
            team_id, user_id = granted
            token = f"xoxb-{team_id}-{next(self._ts)}"
            self.bot_tokens[token] = team_id
        return {
            "ok": True,
            "app_id": "A0VPSBOT",
            "authed_user": {"id": user_id},
            "scope": "commands,chat:write,usergroups:read",
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": self.bot_user_id,
            "team": {"id": team_id, "name": f"Workspace {team_id}"},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _success(
        self, method: str, body: dict[str, Any], token: str | None = None
    ) -> dict[str, Any]:
        if method == "oauth.v2.access":
            return self._exchange(str(body.get("code", "")))
        if method == "auth.test":
            return {
                "ok": True,
                "team_id": self.bot_tokens.get(token or "", self.team_id),
                "user_id": self.bot_user_id,
                "bot_id": "B0VPSBOT",
                "url": "https://local.invalid/",
            }
        if method in ("chat.postMessage", "chat.update"):
            ts = body.get("ts") or f"{1_700_000_000 + next(self._ts)}.000100"
            return {"ok": True, "channel": body.get("channel"), "ts": ts}
        if method == "chat.postEphemeral":
            return {
                "ok": True,
                "message_ts": f"{1_700_000_000 + next(self._ts)}.000200",
            }
        if method == "usergroups.users.list":
            members = self.groups.get(str(body.get("usergroup")))
            if members is None:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": list(members)}
        if method == "users.info":
            user_id = str(body.get("user"))
            user: dict[str, Any] = {"id": user_id, "team_id": self.team_id}
            if user_id in self.time_zones:
                user["tz"] = self.time_zones[user_id]
            return {"ok": True, "user": user}
        if method == "files.getUploadURLExternal":
            return self._start_upload(body)
        if method == "files.completeUploadExternal":
            return self._complete_upload(body)
        if method == "users.conversations":
            return self._conversations(body)
        if method == "views.publish":
            view = _as_dict(body.get("view"))
            view.update({"id": f"V{next(self._views):08d}", "type": "home"})
            return {"ok": True, "view": view}
        if method in ("views.open", "views.update", "views.push"):
            view = _as_dict(body.get("view"))
            view_id = body.get("view_id") or f"V{next(self._views):08d}"
            view.update({"id": view_id, "hash": f"h{next(self._views)}"})
            return {"ok": True, "view": view}
        return {"ok": True}

    def _start_upload(self, body: dict[str, Any]) -> dict[str, Any]:
        filename = str(body.get("filename") or "")
        try:
            length = int(body.get("length") or "")
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not filename or length < 1:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._files):08d}"
        with self._lock:
            self.uploads[file_id] = Upload(file_id, filename, length)
        return {
            "ok": True,
            "upload_url": f"{self.base_url}upload/{file_id}",
            "file_id": file_id,
        }

    def _receive_upload(self, file_id: str, data: bytes) -> int:
        """Keep the bytes POSTed to an upload URL; the HTTP status to answer."""
        failure = self._next_failure(UPLOAD)
        if failure is not None:
            return failure.status if failure.status != 200 else 500
        with self._lock:
            upload = self.uploads.get(file_id)
            if upload is None:
                return 404
            upload.data = data
        return 200

    def _complete_upload(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            files = json.loads(str(body.get("files") or ""))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            for item in files:
                upload = self.uploads.get(str((item or {}).get("id")))
                if upload is None or upload.data is None:
                    return {"ok": False, "error": "file_not_found"}
            shared = []
            for item in files:
                upload = self.uploads[item["id"]]
                upload.channel_id = str(body.get("channel_id") or "")
                upload.title = item.get("title") or upload.filename
                upload.initial_comment = body.get("initial_comment")
                shared.append({"id": upload.file_id, "title": upload.title})
        return {"ok": True, "files": shared}

    def _conversations(self, body: dict[str, Any]) -> dict[str, Any]:
        """A page of ``memberships[user]``; the cursor is the offset as text."""
        channels = self.memberships.get(str(body.get("user")), [])
        try:
            limit = max(1, min(999, int(body.get("limit") or 100)))
            offset = int(body.get("cursor") or 0)
        except ValueError:
            return {"ok": False, "error": "invalid_cursor"}
        page = channels[offset : offset + limit]
        more = offset + limit < len(channels)
        return {
            "ok": True,
            "channels": [{"id": channel} for channel in page],
            "response_metadata": {"next_cursor": str(offset + limit) if more else ""},
        }


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return dict(value) if isinstance(value, dict) else {}


def _decode(content_type: str, raw: bytes) -> dict[str, Any]:
    if "json" in content_type:
        try:
            parsed = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    fields: dict[str, Any] = dict(parse_qsl(raw.decode("utf-8", "replace")))
    for key in ("blocks", "view", "attachments"):
        if isinstance(fields.get(key), str):
            with contextlib.suppress(ValueError):
                fields[key] = json.loads(fields[key])
    return fields


def _handler_for(slack: LocalSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.startswith("/upload/"):
                file_id = self.path.removeprefix("/upload/")
                slack._record(SlackCall("upload", file_id, {"bytes": len(raw)}))
                status = slack._receive_upload(file_id, raw)
                self._send(status, None, {})
                return
            body = _decode(self.headers.get("Content-Type", ""), raw)
            if self.path.startswith("/api/"):
                method = self.path.removeprefix("/api/").split("?")[0]
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ") if auth else body.get("token")
                slack._record(SlackCall("api", method, body, token))
                status, answer, headers = slack.answer(method, body, token)
                self._send(status, answer, headers)
            elif self.path.startswith("/response/"):
                name = self.path.removeprefix("/response/")
                slack._record(SlackCall("response", name, body))
                self._send(200, None, {})
            else:
                self._send(404, {"ok": False, "error": "unknown_path"}, {})

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            """Web API methods the SDK sends as GET (``users.conversations``)."""
            path, _, query = self.path.partition("?")
            if not path.startswith("/api/"):
                self._send(404, {"ok": False, "error": "unknown_path"}, {})
                return
            method = path.removeprefix("/api/")
            body: dict[str, Any] = dict(parse_qsl(query))
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ") if auth else body.get("token")
            slack._record(SlackCall("api", method, body, token))
            status, answer, headers = slack.answer(method, body, token)
            self._send(status, answer, headers)

        def _send(
            self, status: int, answer: dict[str, Any] | None, headers: dict[str, str]
        ) -> None:
            payload = b"ok" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            ctype = "text/plain" if answer is None else "application/json"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            logger.debug("local slack: %s", format % args)

    return Handler
