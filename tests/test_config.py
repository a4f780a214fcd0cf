"""Settings: defaults, parsing, one clear error per bad variable, masked secrets."""

from __future__ import annotations

import pytest

from vpsbot.config import Secret, Settings
from vpsbot.errors import ConfigError


def test_defaults_match_the_contract():
    settings = Settings.from_env({})

    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.vps_api_url == "https://admin.vps.org/api/v1/"
    assert settings.database_url == "sqlite:///vpsbot.db"
    assert settings.approval_ttl == 3600
    assert settings.log_format == "text"
    assert settings.port == 3000
    assert settings.admins == ()
    assert settings.audit_retention_days is None
    assert settings.follow_timeout == 900


def test_values_are_parsed():
    settings = Settings.from_env(
        {
            "VPSBOT_ADMINS": "U012AB3CD, W0ABCDEF",
            "DATABASE_URL": "postgres://u@db:5432/vpsbot",
            "VPS_API_URL": "http://127.0.0.1:8080/api/v1",
            "PORT": "8000",
            "VPSBOT_LOG_FORMAT": "JSON",
            "VPS_API_TOKEN": "tok-123",
            "VPSBOT_FOLLOW_TIMEOUT": "1800",
        }
    )

    assert settings.admins == ("U012AB3CD", "W0ABCDEF")
    assert settings.database_url == "postgresql+psycopg://u@db:5432/vpsbot"
    assert settings.vps_api_url == "http://127.0.0.1:8080/api/v1/"
    assert settings.port == 8000
    assert settings.log_format == "json"
    assert settings.vps_api_token.value == "tok-123"
    assert settings.follow_timeout == 1800


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "eighty"}, "PORT must be a whole number, got 'eighty'"),
        ({"PORT": "70000"}, "PORT must be at most 65535"),
        ({"VPSBOT_ADMINS": "alice"}, "VPSBOT_ADMINS must list Slack user ids"),
        ({"SLACK_BOT_TOKEN": "abc"}, "SLACK_BOT_TOKEN should start with 'xox'"),
        ({"SLACK_APP_TOKEN": "xoxb-1"}, "SLACK_APP_TOKEN should start with 'xapp-'"),
        ({"VPS_API_URL": "ftp://x"}, "VPS_API_URL must be an http(s) URL"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must be a sqlite:// or"),
        ({"VPSBOT_LOG_FORMAT": "xml"}, "VPSBOT_LOG_FORMAT must be one of text, json"),
        ({"VPSBOT_CATALOG": "/nonexistent/catalog.json"}, "VPSBOT_CATALOG names"),
        ({"VPSBOT_APPROVAL_TTL": "5"}, "VPSBOT_APPROVAL_TTL must be at least 60"),
        (
            {"VPSBOT_FOLLOW_TIMEOUT": "15m"},
            "VPSBOT_FOLLOW_TIMEOUT must be a whole number, got '15m'",
        ),
        ({"VPSBOT_FOLLOW_TIMEOUT": "10"}, "VPSBOT_FOLLOW_TIMEOUT must be at least 30"),
        (
            {"VPSBOT_FOLLOW_TIMEOUT": "300000000000"},
            "VPSBOT_FOLLOW_TIMEOUT must be at most 86400",
        ),
        (
            {"VPSBOT_FOLLOW_TIMEOUT": "٣٠"},
            "VPSBOT_FOLLOW_TIMEOUT must be a whole number, got '٣٠'",
        ),
        ({"PORT": "3_000"}, "PORT must be a whole number, got '3_000'"),
        ({"VPSBOT_APPROVAL_TTL": "9999999"}, "VPSBOT_APPROVAL_TTL must be at most"),
        ({"VPSBOT_WORKER_THREADS": "100000"}, "VPSBOT_WORKER_THREADS must be at most"),
        ({"VPSBOT_WEB_WORKERS": "0"}, "VPSBOT_WEB_WORKERS must be at least 1, got 0"),
        ({"VPSBOT_WEB_WORKERS": "65"}, "VPSBOT_WEB_WORKERS must be at most 64, got 65"),
        (
            {"VPSBOT_WEB_WORKERS": "two"},
            "VPSBOT_WEB_WORKERS must be a whole number, got 'two'",
        ),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError) as excinfo:
        Settings.from_env(env)

    assert message in str(excinfo.value)


def test_secrets_never_show_in_repr():
    settings = Settings.from_env(
        {
            "SLACK_SIGNING_SECRET": "sign-me-secret",
            "SLACK_BOT_TOKEN": "xoxb-very-secret",
            "VPS_API_TOKEN": "provider-secret",
        }
    )

    text = repr(settings) + str(settings)
    for secret in ("sign-me-secret", "xoxb-very-secret", "provider-secret"):
        assert secret not in text
    assert "Secret('****')" in text


def test_require_names_the_missing_setting():
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET is required"):
        Settings.from_env({}).require("slack_signing_secret")


def test_secret_keys_must_be_fernet_keys_and_are_not_echoed():
    good = "dGhpcnR5LXR3by1ieXRlcy1vZi1rZXktbWF0ZXJpYWw="  # 32 bytes

    settings = Settings.from_env({"VPSBOT_SECRET_KEY": f"{good}, {good}"})
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"VPSBOT_SECRET_KEY": f"{good},notfernet"})

    assert [key.value for key in settings.secret_keys] == [good, good]
    assert str(refused.value) == (
        "VPSBOT_SECRET_KEY: key 2 is not a Fernet key (32 bytes in URL-safe "
        "base64, as Fernet.generate_key() makes)"
    )


def test_oauth_client_id_and_secret_go_together():
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"SLACK_CLIENT_ID": "123.456"})

    assert str(refused.value) == (
        "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET go together; set both or neither"
    )


def test_multi_workspace_mode_needs_a_secret_key_not_a_bot_token():
    settings = Settings.from_env(
        {"SLACK_CLIENT_ID": "123.456", "SLACK_CLIENT_SECRET": "shh"}
    )

    assert settings.multi_workspace is True
    with pytest.raises(ConfigError) as refused:
        settings.require_slack_credentials()

    assert str(refused.value) == (
        "VPSBOT_SECRET_KEY is required with SLACK_CLIENT_ID and SLACK_CLIENT_SECRET "
        "(the multi-workspace install), to encrypt each workspace's VPS.org token"
    )
    settings.replace(secret_keys=(Secret("x"),)).require_slack_credentials()


def test_single_workspace_mode_needs_a_bot_token():
    settings = Settings.from_env({})

    assert settings.multi_workspace is False
    with pytest.raises(ConfigError, match="^SLACK_BOT_TOKEN is required"):
        settings.require_slack_credentials()
    Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1"}).require_slack_credentials()


def test_web_workers_default_to_one_and_are_read():
    assert Settings.from_env({}).web_workers == 1
    assert Settings.from_env({"VPSBOT_WEB_WORKERS": " 4 "}).web_workers == 4
