"""Uploading a file through Slack's external-upload steps, streamed."""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from vpsbot.localslack import LocalSlack
from vpsbot.slack.uploads import UploadError, upload_file

MEGABYTE = 1024 * 1024


class _CountingSlack(BaseHTTPRequestHandler):
    """Answers the two API steps and counts the uploaded bytes, keeping none."""

    protocol_version = "HTTP/1.1"
    received: list[int] = []
    completed: list[dict[str, str]] = []
    upload_url = ""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        if self.path.startswith("/upload/"):
            seen = 0
            while seen < length:
                seen += len(self.rfile.read(min(65536, length - seen)))
            self.received.append(seen)
            self._answer(b"OK", "text/plain")
            return
        body = self.rfile.read(length).decode()
        if self.path.endswith("files.getUploadURLExternal"):
            answer = {"ok": True, "upload_url": self.upload_url, "file_id": "F1"}
        else:
            self.completed.append({"body": body})
            answer = {"ok": True}
        self._answer(json.dumps(answer).encode(), "application/json")

    def _answer(self, payload: bytes, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


@pytest.fixture
def counting_slack() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CountingSlack)
    host, port = server.server_address[:2]
    _CountingSlack.received = []
    _CountingSlack.completed = []
    _CountingSlack.upload_url = f"http://{host}:{port}/upload/F1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{host}:{port}/api/"
    server.shutdown()
    server.server_close()


def _upload(client: WebClient, file, size: int) -> str:
    return upload_file(
        client,
        channel_id="C1",
        file=file,
        size=size,
        filename="export.csv",
        title="export",
        initial_comment="Audit export",
    )


def test_the_bytes_are_streamed_not_read_into_memory(counting_slack):
    size = 16 * MEGABYTE
    client = WebClient(token="xoxb-test", base_url=counting_slack)
    with tempfile.TemporaryFile() as file:
        block = b"x" * MEGABYTE
        for _ in range(16):
            file.write(block)
        del block
        file.seek(0)

        tracemalloc.start()
        try:
            assert _upload(client, file, size) == "F1"
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert _CountingSlack.received == [size]
    [completed] = _CountingSlack.completed
    assert "channel_id=C1" in completed["body"]
    # Reading the file whole (as files_upload_v2 does) would peak above 16 MiB.
    assert peak < 2 * MEGABYTE


def test_slack_unreachable_is_a_network_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = WebClient(token="xoxb-test", base_url=f"http://127.0.0.1:{port}/api/")

    with tempfile.TemporaryFile() as file, pytest.raises(UploadError) as raised:
        file.write(b"a,b\r\n")
        file.seek(0)
        _upload(client, file, 5)

    assert (raised.value.step, raised.value.error) == (
        "files.getUploadURLExternal",
        "network",
    )


def test_an_unreachable_upload_url_is_a_network_error(counting_slack):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _CountingSlack.upload_url = f"http://127.0.0.1:{port}/upload/F1"
    client = WebClient(token="xoxb-test", base_url=counting_slack)

    with tempfile.TemporaryFile() as file, pytest.raises(UploadError) as raised:
        file.write(b"a,b\r\n")
        file.seek(0)
        _upload(client, file, 5)

    assert (raised.value.step, raised.value.error) == ("upload", "network")
    assert _CountingSlack.completed == []


def test_local_slack_completes_only_files_it_received():
    with LocalSlack() as slack:
        client = WebClient(token="xoxb-test", base_url=slack.api_url)
        started = client.files_getUploadURLExternal(filename="a.csv", length=3)

        for file_id in ("F99999999", started["file_id"]):
            with pytest.raises(SlackApiError) as raised:
                client.files_completeUploadExternal(
                    files=[{"id": file_id}], channel_id="C1"
                )
            assert raised.value.response["error"] == "file_not_found"

        with tempfile.TemporaryFile() as file:
            file.write(b"a,b")
            file.seek(0)
            assert _upload(client, file, 3).startswith("F")

        [upload] = slack.completed_uploads()
        assert (upload.data, upload.channel_id, upload.title) == (
            b"a,b",
            "C1",
            "export",
        )
        assert upload.initial_comment == "Audit export"
        assert [call.name for call in slack.calls if call.kind == "upload"] == [
            upload.file_id
        ]


def test_an_answer_without_an_upload_url_stops_before_sending(counting_slack):
    _CountingSlack.upload_url = ""
    client = WebClient(token="xoxb-test", base_url=counting_slack)

    with tempfile.TemporaryFile() as file, pytest.raises(UploadError) as raised:
        _upload(client, file, 5)

    assert (raised.value.step, raised.value.error) == (
        "files.getUploadURLExternal",
        "no_upload_url",
    )
    assert _CountingSlack.received == []
    assert _CountingSlack.completed == []
