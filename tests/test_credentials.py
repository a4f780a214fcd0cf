"""Workspaces' VPS.org tokens: encrypted at rest, rotated, deleted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import insert, select

from vpsbot.cli import main
from vpsbot.config import Secret, Settings
from vpsbot.credentials import (
    StoredCredential,
    TokenCipher,
    UndecryptableCredentialError,
    WorkspaceCredentials,
)
from vpsbot.errors import ConfigError
from vpsbot.store import make_engine, make_session_factory, session_scope, slack_oauth
from vpsbot.store.models import WorkspaceCredential

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
TOKEN = "vps-org-token-0123456789abcdef"
AT = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)


def _credentials(sessions, *keys: str) -> WorkspaceCredentials:
    cipher = TokenCipher(tuple(Secret(key) for key in keys))
    return WorkspaceCredentials(sessions, cipher, clock=lambda: AT)


def _ciphertexts(sessions) -> dict[str, str]:
    with session_scope(sessions) as session:
        rows = session.execute(
            select(WorkspaceCredential.team_id, WorkspaceCredential.ciphertext)
        ).all()
    return dict(rows)


def test_round_trip_keeps_only_ciphertext_in_the_database(session_factory):
    credentials = _credentials(session_factory, OLD_KEY)

    credentials.store("T1", Secret(TOKEN), connected_by="U0ALICE")

    stored = _ciphertexts(session_factory)
    assert list(stored) == ["T1"]
    assert TOKEN not in stored["T1"]
    assert "vps-org-token" not in stored["T1"]
    assert Fernet(OLD_KEY.encode()).decrypt(stored["T1"].encode()) == TOKEN.encode()
    token = credentials.token_for("T1")
    assert token is not None and token.value == TOKEN
    assert credentials.token_for("T2") is None
    row = credentials.stored("T1")
    assert row is not None
    assert (row.connected_by, row.connected_at) == ("U0ALICE", AT)


def test_nothing_shows_the_token_or_the_ciphertext(session_factory):
    credentials = _credentials(session_factory, OLD_KEY)
    credentials.store("T1", Secret(TOKEN), connected_by="U0ALICE")
    row = credentials.stored("T1")
    assert row is not None

    shown = [
        repr(row),
        repr(credentials.token_for("T1")),
        repr(TokenCipher((Secret(OLD_KEY),))),
    ]
    with session_scope(session_factory) as session:
        shown.append(repr(session.get(WorkspaceCredential, "T1")))

    for text in shown:
        assert TOKEN not in text
        assert row.ciphertext not in text
        assert OLD_KEY not in text


def test_storing_again_replaces_the_token(session_factory):
    credentials = _credentials(session_factory, OLD_KEY)
    credentials.store("T1", Secret(TOKEN), connected_by="U0ALICE")

    credentials.store("T1", Secret("second-token"), connected_by="U0BOB")

    token = credentials.token_for("T1")
    assert token is not None and token.value == "second-token"
    row = credentials.stored("T1")
    assert row is not None and row.connected_by == "U0BOB"
    assert len(_ciphertexts(session_factory)) == 1


def test_delete_forgets_only_that_workspace(session_factory):
    credentials = _credentials(session_factory, OLD_KEY)
    credentials.store("T1", Secret(TOKEN), connected_by="U0ALICE")
    credentials.store("T2", Secret("other"), connected_by="U0BOB")

    assert credentials.delete("T1") is True
    assert credentials.delete("T1") is False

    assert list(_ciphertexts(session_factory)) == ["T2"]
    assert credentials.token_for("T1") is None


def test_rotation_reencrypts_with_the_first_key_and_old_key_can_go(session_factory):
    _credentials(session_factory, OLD_KEY).store(
        "T1", Secret(TOKEN), connected_by="U0ALICE"
    )
    _credentials(session_factory, OLD_KEY).store(
        "T2", Secret("other"), connected_by="U0BOB"
    )
    both = _credentials(session_factory, NEW_KEY, OLD_KEY)

    result = both.rotate_all()

    assert (result.rotated, result.skipped) == (2, 0)
    new_only = _credentials(session_factory, NEW_KEY)
    assert new_only.token_for("T1") == Secret(TOKEN)
    assert new_only.token_for("T2") == Secret("other")
    with pytest.raises(UndecryptableCredentialError):
        _credentials(session_factory, OLD_KEY).token_for("T1")


def test_rotation_with_a_missing_key_changes_nothing(session_factory):
    _credentials(session_factory, OLD_KEY).store(
        "T1", Secret(TOKEN), connected_by="U0ALICE"
    )
    _credentials(session_factory, NEW_KEY).store(
        "T2", Secret("other"), connected_by="U0BOB"
    )
    before = _ciphertexts(session_factory)

    with pytest.raises(UndecryptableCredentialError) as raised:
        _credentials(session_factory, NEW_KEY).rotate_all()

    assert str(raised.value) == (
        "a stored VPS.org token (workspace T1) cannot be decrypted with the keys of "
        "VPSBOT_SECRET_KEY; put the key it was stored with back in the list"
    )
    assert _ciphertexts(session_factory) == before


def test_wrong_key_is_a_clear_error_without_the_token(session_factory):
    _credentials(session_factory, OLD_KEY).store(
        "T1", Secret(TOKEN), connected_by="U0ALICE"
    )

    with pytest.raises(UndecryptableCredentialError) as raised:
        _credentials(session_factory, NEW_KEY).token_for("T1")

    assert "cannot be decrypted with the keys of VPSBOT_SECRET_KEY" in str(raised.value)
    assert TOKEN not in str(raised.value)
    assert raised.value.__cause__ is None


def test_a_cipher_needs_a_key():
    with pytest.raises(ConfigError, match="^VPSBOT_SECRET_KEY is required"):
        TokenCipher(())


def test_stored_credential_repr_is_masked():
    row = StoredCredential("T1", "gAAAA-secret", "U1", AT)

    assert "gAAAA" not in repr(row)


def test_keys_rotate_command_prints_how_many(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    runner = CliRunner()
    assert (
        runner.invoke(main, ["db", "upgrade"], env={"DATABASE_URL": url}).exit_code == 0
    )
    sessions = make_session_factory(make_engine(url))
    for team in ("T1", "T2", "T3"):
        _credentials(sessions, OLD_KEY).store(team, Secret(TOKEN), connected_by="U1")
    env = {"DATABASE_URL": url, "VPSBOT_SECRET_KEY": f"{NEW_KEY},{OLD_KEY}"}

    result = runner.invoke(main, ["keys", "rotate"], env=env)

    assert result.exit_code == 0, result.output
    assert result.output == (
        "Re-encrypted 3 workspace tokens and 0 Slack installations with the first "
        "key.\n"
    )
    assert _credentials(sessions, NEW_KEY).token_for("T3") == Secret(TOKEN)
    assert OLD_KEY not in result.output and NEW_KEY not in result.output


def test_keys_rotate_without_a_key_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'bot.db'}"

    result = CliRunner().invoke(main, ["keys", "rotate"], env={"DATABASE_URL": url})

    assert result.exit_code == 2
    assert result.output.startswith(
        "vpsbot: configuration error: VPSBOT_SECRET_KEY is required"
    )
    assert len(result.output.strip().splitlines()) == 1


def test_keys_rotate_with_a_lost_key_exits_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    runner = CliRunner()
    assert (
        runner.invoke(main, ["db", "upgrade"], env={"DATABASE_URL": url}).exit_code == 0
    )
    sessions = make_session_factory(make_engine(url))
    _credentials(sessions, OLD_KEY).store("T1", Secret(TOKEN), connected_by="U1")

    result = runner.invoke(
        main,
        ["keys", "rotate"],
        env={"DATABASE_URL": url, "VPSBOT_SECRET_KEY": NEW_KEY},
    )

    assert result.exit_code == 1
    assert "cannot be decrypted with the keys of VPSBOT_SECRET_KEY" in result.output


def test_settings_keep_keys_masked():
    settings = Settings.from_env({"VPSBOT_SECRET_KEY": f"{NEW_KEY},{OLD_KEY}"})

    assert len(settings.secret_keys) == 2
    assert NEW_KEY not in repr(settings) and OLD_KEY not in repr(settings)


def test_serve_in_multi_workspace_mode_without_a_key_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_CLIENT_ID": "1111.2222",
        "SLACK_CLIENT_SECRET": "oauth-secret",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
    }

    result = CliRunner().invoke(main, ["serve"], env=env)

    assert result.exit_code == 2
    assert result.output == (
        "vpsbot: configuration error: VPSBOT_SECRET_KEY is required with "
        "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (the multi-workspace install), to "
        "encrypt each workspace's VPS.org token\n"
    )
    assert not (tmp_path / "bot.db").exists()


def test_socket_mode_refuses_the_multi_workspace_install(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {
        "SLACK_APP_TOKEN": "xapp-1",
        "SLACK_CLIENT_ID": "1111.2222",
        "SLACK_CLIENT_SECRET": "oauth-secret",
        "VPSBOT_SECRET_KEY": NEW_KEY,
    }

    result = CliRunner().invoke(main, ["socket"], env=env)

    assert result.exit_code == 2
    assert "need `vpsbot serve`" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_keys_rotate_opens_every_token_before_it_rewrites_any(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    runner = CliRunner()
    assert (
        runner.invoke(main, ["db", "upgrade"], env={"DATABASE_URL": url}).exit_code == 0
    )
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    _credentials(sessions, OLD_KEY).store("T1", Secret(TOKEN), connected_by="U1")
    lost = TokenCipher((Secret(Fernet.generate_key().decode()),))
    with engine.begin() as connection:
        connection.execute(
            insert(slack_oauth.bots).values(
                client_id="1111.2222",
                app_id="A1",
                team_id="T1",
                bot_token=lost.encrypt("xoxb-under-a-lost-key"),
                bot_id="B1",
                bot_user_id="U0BOT",
                installed_at=AT,
            )
        )
    with session_scope(sessions) as session:
        before = session.scalars(select(WorkspaceCredential.ciphertext)).all()

    result = runner.invoke(
        main,
        ["keys", "rotate"],
        env={"DATABASE_URL": url, "VPSBOT_SECRET_KEY": f"{NEW_KEY},{OLD_KEY}"},
    )

    assert result.exit_code == 1
    assert (
        "a stored Slack token (slack_bots, row 1) cannot be decrypted with the keys "
        "of VPSBOT_SECRET_KEY; nothing was re-encrypted" in result.output
    )
    with session_scope(sessions) as session:
        assert session.scalars(select(WorkspaceCredential.ciphertext)).all() == before
