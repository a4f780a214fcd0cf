"""The vpsbot command line: clear configuration errors, db and audit commands."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner
from sqlalchemy import delete, select, text, update

from vpsbot import audit
from vpsbot.cli import main
from vpsbot.store import make_engine, make_session_factory, session_scope
from vpsbot.store.models import AuditEntry, AuditHead


def test_serve_without_settings_names_the_missing_variable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(main, ["serve"], env={})

    assert result.exit_code == 2
    assert result.output.strip() == (
        "vpsbot: configuration error: SLACK_SIGNING_SECRET is required for this command"
    )


def test_malformed_setting_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(main, ["db", "upgrade"], env={"PORT": "http"})

    assert result.exit_code == 2
    assert "PORT must be a whole number, got 'http'" in result.output
    assert "Traceback" not in result.output


def test_dotenv_file_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("VPSBOT_LOG_FORMAT=yaml\n")

    result = CliRunner().invoke(main, ["db", "upgrade"], env={})

    assert result.exit_code == 2
    assert "VPSBOT_LOG_FORMAT must be one of text, json" in result.output


def test_db_upgrade_then_export_and_verify(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    env = {"DATABASE_URL": url}
    runner = CliRunner()

    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    sessions = make_session_factory(make_engine(url))
    with session_scope(sessions) as session:
        audit.record(
            session,
            team="T1",
            channel="C1",
            user="U1",
            action="reboot",
            outcome="succeeded",
            request_id="r-1",
            server_id=7,
            server_name="web-01",
            detail="Server is rebooting",
        )
    exported = runner.invoke(main, ["audit", "export"], env=env)
    csv_out = runner.invoke(main, ["audit", "export", "--format", "csv"], env=env)
    verified = runner.invoke(main, ["audit", "verify"], env=env)

    [line] = exported.output.splitlines()
    entry = json.loads(line)
    assert list(entry) == [
        "at",
        "team",
        "channel",
        "user",
        "action",
        "server_id",
        "server_name",
        "outcome",
        "detail",
        "request_id",
    ]
    assert entry["server_id"] == 7 and entry["at"].endswith("Z")
    assert csv_out.output.splitlines()[0] == (
        "at,team,channel,user,action,server_id,server_name,outcome,detail,request_id"
    )
    assert verified.exit_code == 0
    assert "1 entries verified" in verified.output


def test_audit_verify_exits_1_when_an_entry_was_altered(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    env = {"DATABASE_URL": url}
    runner = CliRunner()
    runner.invoke(main, ["db", "upgrade"], env=env)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        for n in range(3):
            audit.record(
                session,
                team="T1",
                channel="C1",
                user="U1",
                action="list",
                outcome="succeeded",
                request_id=f"r-{n}",
            )
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE audit_entries SET user = 'U666' WHERE seq = 2"
        )

    result = runner.invoke(main, ["audit", "verify"], env=env)

    assert result.exit_code == 1
    assert "entry 2" in result.output


def test_serve_checks_the_provider_token_before_touching_the_database(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    env = {"SLACK_SIGNING_SECRET": "s", "SLACK_BOT_TOKEN": "xoxb-1"}

    result = CliRunner().invoke(main, ["serve"], env=env)

    assert result.exit_code == 2
    assert result.output.strip() == (
        "vpsbot: configuration error: VPS_API_TOKEN is required for this command"
    )
    assert list(tmp_path.iterdir()) == []


def test_export_of_a_database_that_does_not_exist_creates_nothing(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "nowhere.db"

    result = CliRunner().invoke(
        main, ["audit", "export"], env={"DATABASE_URL": f"sqlite:///{missing}"}
    )

    assert result.exit_code == 1
    assert result.output.strip() == (
        f"vpsbot: there is no database at {missing} (DATABASE_URL); nothing to read"
    )
    assert not missing.exists()


def test_verify_of_a_database_without_migrations_says_to_upgrade(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "empty.db"
    empty.touch()

    result = CliRunner().invoke(
        main, ["audit", "verify"], env={"DATABASE_URL": f"sqlite:///{empty}"}
    )

    assert result.exit_code == 1
    assert result.output.strip() == (
        "vpsbot: the database named by DATABASE_URL is not at vpsbot's current "
        "migration; run `vpsbot db upgrade` first"
    )


def test_unreachable_database_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"

    result = CliRunner().invoke(main, ["audit", "verify"], env={"DATABASE_URL": url})

    assert result.exit_code == 1
    assert result.output.strip() == (
        "vpsbot: cannot reach the database named by DATABASE_URL "
        "(OperationalError); nothing was done."
    )


def test_export_since_takes_an_age_like_the_slack_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    runner = CliRunner()
    assert (
        runner.invoke(main, ["db", "upgrade"], env={"DATABASE_URL": url}).exit_code == 0
    )

    result = runner.invoke(
        main, ["audit", "export", "--since", "2h"], env={"DATABASE_URL": url}
    )
    refused = runner.invoke(
        main, ["audit", "export", "--since", "soon"], env={"DATABASE_URL": url}
    )

    assert (result.exit_code, result.output) == (0, "")
    assert refused.exit_code == 2
    assert "'soon' is not a time" in refused.output


def test_a_malformed_catalog_stops_serve_before_touching_the_database(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plans.toml").write_text("[[plans]]\nid = 1\n")
    env = {
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "VPS_API_TOKEN": "t",
        "VPSBOT_CATALOG": "plans.toml",
    }

    result = CliRunner().invoke(main, ["serve"], env=env)

    assert result.exit_code == 2
    assert result.output.strip() == (
        "vpsbot: configuration error: VPSBOT_CATALOG: plans.toml: plans entry 1: "
        "name must be a non-empty text"
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["plans.toml"]


def test_serve_stops_cleanly_on_sigterm(tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'v.db'}",
        "PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "vpsbot", "serve", "--sandbox", "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for _ in range(100):
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 0
    assert "Handling signal: term" in output
    assert (
        "stopping: finishing acknowledged work, releasing followed operations" in output
    )
    assert "Traceback" not in output


def _log_with_entries(tmp_path, count, *, at):
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgraded = CliRunner().invoke(main, ["db", "upgrade"], env={"DATABASE_URL": url})
    assert upgraded.exit_code == 0
    sessions = make_session_factory(make_engine(url))
    for number in range(1, count + 1):
        with session_scope(sessions) as session:
            audit.record(
                session,
                team="T1",
                channel="C1",
                user="U1",
                action="reboot",
                outcome="succeeded",
                request_id=f"req-{number}",
                at=at + timedelta(minutes=number),
            )
    return url


def test_audit_prune_removes_old_entries_and_verify_still_passes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    long_ago = datetime.now(UTC) - timedelta(days=40)
    url = _log_with_entries(tmp_path, 3, at=long_ago)
    runner = CliRunner()
    env = {"DATABASE_URL": url, "VPSBOT_AUDIT_RETENTION_DAYS": "30"}

    pruned = runner.invoke(main, ["audit", "prune"], env=env)
    again = runner.invoke(main, ["audit", "prune"], env=env)
    verified = runner.invoke(main, ["audit", "verify"], env=env)

    assert pruned.exit_code == 0, pruned.output
    assert pruned.output == (
        "Removed 3 audit entries older than 30 days (checkpoint at entry 3) "
        "and 0 expired claims.\n"
    )
    assert again.output == "Nothing older than 30 days; 0 expired claims removed.\n"
    assert verified.exit_code == 0
    assert re.fullmatch(
        r"Audit log is whole: 0 entries verified\.\nHead: 3:[0-9a-f]{64}\n",
        verified.output,
    )


def test_audit_prune_option_overrides_the_setting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = _log_with_entries(tmp_path, 2, at=datetime.now(UTC) - timedelta(days=5))

    result = CliRunner().invoke(
        main,
        ["audit", "prune", "--older-than-days", "2"],
        env={"DATABASE_URL": url, "VPSBOT_AUDIT_RETENTION_DAYS": "365"},
    )

    assert result.exit_code == 0
    assert result.output.startswith("Removed 2 audit entries older than 2 days")


def test_audit_prune_without_retention_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = _log_with_entries(tmp_path, 1, at=datetime.now(UTC) - timedelta(days=5))

    result = CliRunner().invoke(main, ["audit", "prune"], env={"DATABASE_URL": url})

    assert result.exit_code == 2
    assert "VPSBOT_AUDIT_RETENTION_DAYS is not set" in result.output


def test_audit_prune_of_a_damaged_log_exits_1_and_removes_nothing(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    url = _log_with_entries(tmp_path, 3, at=datetime.now(UTC) - timedelta(days=40))
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_entries WHERE seq = 2"))

    result = CliRunner().invoke(
        main, ["audit", "prune", "--older-than-days", "30"], env={"DATABASE_URL": url}
    )

    assert result.exit_code == 1
    assert result.output == (
        "vpsbot: audit retention removed nothing: entry 2 is missing (the chain "
        "jumps from 1 to 3); run `vpsbot audit verify`\n"
    )
    with engine.connect() as connection:
        count = connection.scalar(text("SELECT count(*) FROM audit_entries"))
    engine.dispose()
    assert count == 2


def test_serve_warns_at_start_when_the_audit_log_is_not_whole(tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import requests

    url = _log_with_entries(tmp_path, 3, at=datetime.now(UTC))
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_entries SET detail = 'edited' WHERE seq = 2")
        )
    engine.dispose()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "DATABASE_URL": url,
        "PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "vpsbot", "serve", "--sandbox", "--host", "127.0.0.1"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ready = False
        for _ in range(100):
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).ok:
                    ready = True
                    break
            except requests.RequestException:
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()

    # Serving went ahead, and stopping waited for the check to finish.
    assert ready
    assert process.returncode == 0
    assert (
        "WARNING vpsbot.audit_upkeep: audit log is NOT whole, first bad entry 2: "
        "entry 2 was changed (run `vpsbot audit verify`; vpsbot keeps running)"
    ) in output


def test_audit_verify_prints_the_head_and_checks_anchors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = _log_with_entries(tmp_path, 4, at=datetime.now(UTC))
    runner = CliRunner()
    env = {"DATABASE_URL": url}

    first = runner.invoke(main, ["audit", "verify"], env=env)
    head = first.output.splitlines()[1].removeprefix("Head: ")
    again = runner.invoke(main, ["audit", "verify", "--anchor", head], env=env)
    sessions = make_session_factory(make_engine(url))
    with session_scope(sessions) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 4))
        kept = session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == 3))
        session.execute(update(AuditHead).values(seq=3, hash=kept))
    plain = runner.invoke(main, ["audit", "verify"], env=env)
    anchored = runner.invoke(main, ["audit", "verify", "--anchor", head], env=env)
    malformed = runner.invoke(main, ["audit", "verify", "--anchor", "4:xyz"], env=env)

    assert first.exit_code == 0
    assert re.fullmatch(r"4:[0-9a-f]{64}", head)
    assert again.exit_code == 0
    assert again.output == first.output
    assert plain.exit_code == 0
    assert anchored.exit_code == 1
    assert anchored.output.splitlines()[-1] == (
        "Audit log is NOT whole: entry 4, recorded as an anchor, is gone: the log "
        "now ends at 3, so entries were removed from its end"
    )
    assert malformed.exit_code == 2
    assert "'4:xyz' is not an anchor; it looks like 1234:<64 hex digits>" in (
        malformed.output
    )


def test_audit_export_refuses_a_since_out_of_range(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = _log_with_entries(tmp_path, 1, at=datetime.now(UTC))

    result = CliRunner().invoke(
        main, ["audit", "export", "--since", "999999w"], env={"DATABASE_URL": url}
    )

    assert result.exit_code == 2
    assert "'999999w' is not a time; times from 1970 to 8999 are accepted" in (
        result.output
    )
    assert "Traceback" not in result.output
