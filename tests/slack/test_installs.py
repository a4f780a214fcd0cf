"""The OAuth stores on vpsbot's database: states used once, tokens encrypted."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml
from cryptography.fernet import Fernet
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import select

from vpsbot.config import Secret
from vpsbot.credentials import TokenCipher
from vpsbot.slack.installs import (
    BOT_SCOPES,
    EncryptedInstallationStore,
    OnceOAuthStateStore,
)
from vpsbot.store.slack_oauth import bots, installations, oauth_states

KEY = Fernet.generate_key().decode()
BOT_TOKEN = "xoxb-111111111111-2222222222222-abcdefghijklmnopqrstuvwx"


def test_a_state_is_consumed_once_however_many_threads_try(engine):
    store = OnceOAuthStateStore(expiration_seconds=600, engine=engine)
    state = store.issue()
    results: list[bool] = []
    start = threading.Barrier(8)

    def consume() -> None:
        start.wait()
        results.append(store.consume(state))

    threads = [threading.Thread(target=consume) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(results) == [False] * 7 + [True]
    assert store.consume("never-issued") is False


def test_an_expired_state_is_refused(engine):
    store = OnceOAuthStateStore(expiration_seconds=1, engine=engine)
    state = store.issue()

    time.sleep(1.2)

    assert store.consume(state) is False


def test_installation_tokens_are_stored_encrypted_and_found_in_clear(engine):
    store = EncryptedInstallationStore(
        cipher=TokenCipher((Secret(KEY),)), client_id="1111.2222", engine=engine
    )
    store.save(
        Installation(
            app_id="A0VPSBOT",
            team_id="T0ALPHA",
            user_id="U0ANNA",
            bot_token=BOT_TOKEN,
            bot_id="B0VPSBOT",
            bot_user_id="U0VPSBOT",
            bot_scopes="commands,chat:write,usergroups:read",
            installed_at=datetime.now(UTC).timestamp(),
        )
    )

    with engine.connect() as connection:
        stored = [
            row.bot_token
            for table in (installations, bots)
            for row in connection.execute(select(table.c.bot_token))
        ]
    assert len(stored) == 2
    for value in stored:
        assert BOT_TOKEN not in value
        assert len(value) <= 200
        assert Fernet(KEY.encode()).decrypt(value.encode()).decode() == BOT_TOKEN
    bot = store.find_bot(enterprise_id=None, team_id="T0ALPHA")
    installation = store.find_installation(enterprise_id=None, team_id="T0ALPHA")
    assert bot is not None and bot.bot_token == BOT_TOKEN
    assert installation is not None and installation.bot_token == BOT_TOKEN
    assert installation.user_id == "U0ANNA"
    assert BOT_TOKEN not in repr(store)


def test_the_install_asks_slack_for_every_scope_of_the_manifest():
    manifest = yaml.safe_load(
        (Path(__file__).parents[2] / "app-manifest.yml").read_text(encoding="utf-8")
    )

    assert list(BOT_SCOPES) == manifest["oauth_config"]["scopes"]["bot"]


def test_expired_states_are_deleted_when_a_new_one_is_issued(engine):
    store = OnceOAuthStateStore(expiration_seconds=1, engine=engine)
    for _ in range(3):
        store.issue()
    time.sleep(1.2)

    fresh = store.issue()

    with engine.connect() as connection:
        left = connection.execute(select(oauth_states.c.state)).scalars().all()
    assert left == [fresh]
