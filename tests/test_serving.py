"""``vpsbot serve`` as a real process: workers, graceful stop, JSON logs."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlencode

import pytest
import requests
from click.testing import CliRunner

from tests.serve_process import ServeProcess
from vpsbot import payloads
from vpsbot.cli import main
from vpsbot.localslack import LocalSlack

TEAM, CHANNEL, ADMIN = "T0SERVE", "C0SERVE", "U0ADMIN"
SIGNING_SECRET = "signing-SECRET-8f3a"
BOT_TOKEN = "xoxb-TOKEN-77c1"


@pytest.fixture
def local_slack():
    with LocalSlack(team_id=TEAM) as fake:
        yield fake


def _env(tmp_path, local_slack, **more):
    return {
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": local_slack.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'vpsbot.db'}",
        "VPSBOT_ADMINS": ADMIN,
        **more,
    }


def _command(text, response_url, **fields):
    return payloads.slash_command(
        text,
        team_id=TEAM,
        channel_id=CHANNEL,
        user_id=ADMIN,
        response_url=response_url,
        **fields,
    )


def _post(url, body):
    return requests.post(
        url + "/slack/events",
        data=body.encode(),
        headers=payloads.signed_headers(SIGNING_SECRET, body),
        timeout=10,
    )


def test_several_workers_on_sqlite_are_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "VPS_API_TOKEN": "t",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'v.db'}",
    }

    result = CliRunner().invoke(main, ["serve", "--workers", "2"], env=env)

    assert result.exit_code == 2
    assert result.output.strip() == (
        "vpsbot: configuration error: 2 web workers need PostgreSQL (SQLite lets "
        "one process write at a time); set DATABASE_URL to a postgresql:// URL or "
        "run one worker (VPSBOT_WEB_WORKERS=1)"
    )
    assert list(tmp_path.iterdir()) == []


def test_the_workers_setting_is_refused_on_sqlite_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "VPS_API_TOKEN": "t",
        "VPSBOT_WEB_WORKERS": "3",
    }

    result = CliRunner().invoke(main, ["serve"], env=env)

    assert result.exit_code == 2
    assert result.output.startswith("vpsbot: configuration error: 3 web workers")


def test_a_request_in_flight_at_sigterm_is_answered_and_its_work_finished(
    tmp_path, local_slack
):
    served = ServeProcess(
        _env(tmp_path, local_slack), tmp_path / "serve.log", "--sandbox"
    )
    served.start()
    try:
        served.wait_ready()
        opened = _post(served.url, _command("policy read=allow", "http://127.0.0.1:9/"))
        assert opened.status_code == 200
        body = _command("list", local_slack.response_url("in-flight")).encode()
        headers = payloads.signed_headers(SIGNING_SECRET, body.decode())
        head = (
            f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            + "\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
            # Half the request is in; the server is reading the rest.
            sock.sendall(head + body[:40])
            time.sleep(0.5)
            served.terminate()
            time.sleep(1.0)
            sock.sendall(body[40:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        code = served.wait(timeout=60)
    finally:
        served.stop()

    assert answer.startswith(b"HTTP/1.1 200 OK"), answer
    assert code == 0
    # The work acknowledged before the stop was finished: the answer was posted.
    [reply] = local_slack.responses("in-flight")
    assert "*4 servers*" in json.dumps(reply.body)
    output = served.output()
    # The request was answered after the signal, then the worker stopped.
    signal_at = output.index("Handling signal: term")
    assert signal_at < output.index(
        "action=list method=POST path=/slack/events status=200"
    )
    assert signal_at < output.index(
        "stopping: finishing acknowledged work, releasing followed operations"
    )
    assert "Traceback" not in output


def test_json_logs_are_one_object_a_line_and_never_carry_a_secret(
    tmp_path, local_slack
):
    served = ServeProcess(
        _env(tmp_path, local_slack, VPSBOT_LOG_FORMAT="json"),
        tmp_path / "serve.log",
        "--sandbox",
    )
    secrets = {
        SIGNING_SECRET,
        BOT_TOKEN,
        "verification-TOKEN-51d0",
        "resp-SECRET-2b7e",
        "trigger-SECRET-90aa",
        "button-SECRET-c4d2",
        "typed-SECRET-e1f3",
    }
    served.start()
    try:
        served.wait_ready()
        requests.get(served.url + "/healthz", timeout=5).raise_for_status()
        policy = _command("policy read=allow", local_slack.response_url("policy"))
        listing = urlencode(
            {
                "token": "verification-TOKEN-51d0",
                "team_id": TEAM,
                "channel_id": CHANNEL,
                "user_id": ADMIN,
                "command": "/vps",
                "text": "list",
                "response_url": local_slack.response_url("resp-SECRET-2b7e"),
                "trigger_id": "trigger-SECRET-90aa",
            }
        )
        press = payloads.block_action(
            {"action_id": "vps_reboot", "value": "button-SECRET-c4d2"},
            team_id=TEAM,
            channel_id=CHANNEL,
            user_id=ADMIN,
            response_url=local_slack.response_url("press"),
        )
        typed = _command("typed-SECRET-e1f3 web-01", local_slack.response_url("typed"))
        statuses = [_post(served.url, body).status_code for body in (policy, press)]
        statuses.append(_post(served.url, typed).status_code)
        statuses.append(_post(served.url, listing).status_code)
        assert local_slack.wait_for(
            lambda calls: any(c.name == "resp-SECRET-2b7e" for c in calls)
        )
    finally:
        code = served.stop()

    assert statuses == [200, 200, 200, 200]
    assert code == 0
    lines = served.output().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one object
    assert all({"at", "level", "logger", "message"} <= set(e) for e in entries)
    access = [e for e in entries if e["logger"] == "vpsbot.access"]
    assert [(e["action"], e["status"]) for e in access] == [
        ("policy", 200),
        ("vps_reboot", 200),
        ("other", 200),
        ("list", 200),
    ]
    for entry in access:
        assert (entry["team"], entry["channel"], entry["user"]) == (
            TEAM,
            CHANNEL,
            ADMIN,
        )
        assert entry["request_id"] and entry["latency_ms"] >= 0
        assert (entry["method"], entry["path"]) == ("POST", "/slack/events")
    # Health checks are logged at DEBUG, below the INFO the server runs at.
    assert not [e for e in entries if e.get("path") == "/healthz"]
    text = "\n".join(lines)
    assert [secret for secret in secrets if secret in text] == []
