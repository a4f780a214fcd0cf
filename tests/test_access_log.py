"""The access line: one per request, with names and ids only."""

from __future__ import annotations

import json
import logging

import pytest

from vpsbot import access_log
from vpsbot.access_log import AccessLog
from vpsbot.cli import _JsonFormatter, _OneLineFormatter
from vpsbot.slack.middleware import action_of


@pytest.mark.parametrize(
    ("body", "action"),
    [
        ({"command": "/vps", "text": "reboot web-01 reason=x"}, "reboot"),
        ({"command": "/vps", "text": "  LIST running"}, "list"),
        ({"command": "/vps", "text": ""}, "help"),
        # A first word that is not a verb could be anything a user typed.
        ({"command": "/vps", "text": "xoxb-typed-by-mistake"}, "other"),
        (
            {"type": "block_actions", "actions": [{"action_id": "approval_approve"}]},
            "approval_approve",
        ),
        ({"type": "view_submission", "view": {"callback_id": "delete"}}, "delete"),
        ({"type": "view_closed", "view": {"callback_id": "create"}}, "create"),
        ({"type": "event_callback", "event": {"type": "app_mention"}}, "app_mention"),
        ({"type": "block_actions", "actions": [{"action_id": "a b\nc"}]}, "other"),
        ({"type": "block_actions", "actions": []}, "other"),
        ({"type": "view_submission", "view": "not a dict"}, "other"),
        ({"type": "shortcut"}, "shortcut"),
        ({}, "other"),
    ],
)
def test_the_action_is_named_never_echoed(body, action):
    assert action_of(body) == action


def _ok(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _missing(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no"]


def _call(app, path, method="GET"):
    statuses = []
    body = app(
        {"PATH_INFO": path, "REQUEST_METHOD": method},
        lambda status, headers, *exc: statuses.append(status),
    )
    return statuses, b"".join(body)


def test_one_line_per_request_with_method_path_status_and_latency(caplog):
    caplog.set_level(logging.DEBUG, logger="vpsbot.access")

    statuses, body = _call(AccessLog(_missing), "/slack/events", "POST")

    assert (statuses, body) == (["404 Not Found"], b"no")
    [record] = caplog.records
    assert record.levelno == logging.INFO
    assert set(record.access) == {"method", "path", "status", "latency_ms"}
    assert record.access["method"] == "POST"
    assert record.access["path"] == "/slack/events"
    assert record.access["status"] == 404
    assert record.access["latency_ms"] >= 0
    assert record.getMessage().startswith(
        "request method=POST path=/slack/events status=404 latency_ms="
    )


def test_health_checks_are_logged_at_debug_unless_they_fail(caplog):
    caplog.set_level(logging.DEBUG, logger="vpsbot.access")

    _call(AccessLog(_ok), "/healthz")
    _call(AccessLog(_ok), "/readyz")
    _call(AccessLog(_missing), "/readyz")

    assert [(r.levelno, r.access["status"]) for r in caplog.records] == [
        (logging.DEBUG, 200),
        (logging.DEBUG, 200),
        (logging.INFO, 404),
    ]


def test_a_strangers_path_is_not_written_down(caplog):
    caplog.set_level(logging.INFO, logger="vpsbot.access")

    _call(AccessLog(_missing), "/xoxb-123-secret-looking")

    [record] = caplog.records
    assert record.access["path"] == "(other)"
    assert "xoxb" not in record.getMessage()


def test_the_json_format_spreads_the_fields_into_the_object(caplog):
    caplog.set_level(logging.INFO, logger="vpsbot.access")

    _call(AccessLog(_missing), "/slack/events", "POST")

    entry = json.loads(_JsonFormatter().format(caplog.records[0]))
    assert entry["logger"] == "vpsbot.access"
    assert entry["level"] == "info"
    assert (entry["method"], entry["path"], entry["status"]) == (
        "POST",
        "/slack/events",
        404,
    )
    assert isinstance(entry["latency_ms"], float)


def test_a_forged_value_cannot_make_a_line_of_its_own(caplog):
    caplog.set_level(logging.INFO, logger="vpsbot.access")

    access_log.write(
        {
            "request_id": "r-1",
            "user": "U1\n2026-12-04 INFO vpsbot.access: request request_id=r-FORGED",
            "team": "T1",
            "status": 200,
        }
    )

    [record] = caplog.records
    assert record.getMessage() == (
        'request request_id=r-1 team=T1 user="U1\\n2026-12-04 INFO vpsbot.access: '
        'request request_id=r-FORGED" status=200'
    )


def test_text_lines_keep_a_forged_newline_on_its_line():
    record = logging.LogRecord(
        "vpsbot.ops.guard",
        logging.INFO,
        __file__,
        1,
        "audit list succeeded by %s",
        ("U0EVIL\n2026-12-04 22:00:00,000 INFO vpsbot.access: request r-FAKE\x1b[2K",),
        None,
    )

    line = _OneLineFormatter("%(levelname)s %(name)s: %(message)s").format(record)

    assert line == (
        "INFO vpsbot.ops.guard: audit list succeeded by U0EVIL\\n2026-12-04 "
        "22:00:00,000 INFO vpsbot.access: request r-FAKE\\x1b[2K"
    )
