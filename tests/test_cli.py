"""The vpsbot command line: clear configuration errors, db and audit commands."""

from __future__ import annotations

import json

from click.testing import CliRunner

from vpsbot import audit
from vpsbot.cli import main
from vpsbot.store import make_engine, make_session_factory, session_scope


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
