"""The Dockerfile and the compose example, read as an operator's tools would.

There is no container engine where the tests run, so the files are parsed
and their key lines checked; the image's health check command is run for
real against a served ``/healthz``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.serve_process import free_port
from vpsbot.serving import GRACEFUL_SECONDS
from vpsbot.web import BackgroundServer

ROOT = Path(__file__).resolve().parent.parent


def _instructions() -> dict[str, list[str]]:
    """Dockerfile instructions by keyword, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    found: dict[str, list[str]] = {}
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.setdefault(keyword.upper(), []).append(rest.strip())
    return found


def test_the_image_runs_serve_as_a_non_root_user_from_python_slim():
    steps = _instructions()

    assert steps["FROM"] == ["python:3.11-slim"]
    assert any("pip install ." in run for run in steps["RUN"])
    [user] = steps["USER"]
    assert user not in ("root", "0")
    assert any("--uid 10001 --home-dir /app" in run for run in steps["RUN"])
    assert json.loads(steps["ENTRYPOINT"][0]) == ["vpsbot", "serve"]
    env = " ".join(steps["ENV"])
    assert "PORT=3000" in env and "VPSBOT_WEB_WORKERS=1" in env
    # The installed package, migrations included, is what runs.
    assert "PYTHONPATH" not in env
    assert steps["WORKDIR"] == ["/app"]
    assert "vpsbot ./vpsbot" in steps["COPY"]
    assert "DATABASE_URL=sqlite:////data/vpsbot.db" in env
    assert any("chown vpsbot /data" in run for run in steps["RUN"])
    assert steps["STOPSIGNAL"] == ["SIGTERM"]


def _healthcheck_command() -> list[str]:
    [check] = _instructions()["HEALTHCHECK"]
    return json.loads(check.split(" CMD ", 1)[1])


def test_the_image_health_check_passes_on_healthz_and_fails_without_it():
    command = _healthcheck_command()
    assert command[:2] == ["python", "-c"]

    def healthz(environ, start_response):
        ok = environ["PATH_INFO"] == "/healthz"
        start_response("200 OK" if ok else "404 Not Found", [])
        return [b"{}"]

    with BackgroundServer(healthz) as server:
        port = server.url.rsplit(":", 1)[1]
        up = subprocess.run(
            [sys.executable, *command[1:]],
            env={**os.environ, "PORT": port},
            capture_output=True,
            timeout=30,
        )
    down = subprocess.run(
        [sys.executable, *command[1:]],
        env={**os.environ, "PORT": str(free_port())},
        capture_output=True,
        timeout=30,
    )

    assert up.returncode == 0, up.stderr
    assert down.returncode != 0


def test_compose_runs_vpsbot_on_a_healthy_postgres_with_secrets_in_env_files():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    db, bot = compose["services"]["db"], compose["services"]["vpsbot"]

    assert db["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert db["env_file"] == ["db.env"]
    assert bot["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert bot["env_file"] == ["vpsbot.env"]
    assert bot["environment"]["VPSBOT_WEB_WORKERS"] == "2"
    assert bot["environment"]["VPSBOT_LOG_FORMAT"] == "json"
    # No secret is written into the compose file itself.
    written = set(bot["environment"]) | set(db.get("environment", {}))
    assert not written & {
        "SLACK_SIGNING_SECRET",
        "SLACK_BOT_TOKEN",
        "VPS_API_TOKEN",
        "DATABASE_URL",
        "POSTGRES_PASSWORD",
    }
    # The container's stop timeout outlasts a worker's grace period.
    assert int(bot["stop_grace_period"].removesuffix("s")) > GRACEFUL_SECONDS


def test_the_env_file_examples_name_what_serve_needs():
    bot_env = (ROOT / "vpsbot.env.example").read_text()
    db_env = (ROOT / "db.env.example").read_text()

    for name in ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "VPS_API_TOKEN"):
        assert re.search(rf"^{name}=$", bot_env, re.M)
    assert re.search(
        r"^DATABASE_URL=postgresql://vpsbot:change-me@db:5432/vpsbot$", bot_env, re.M
    )
    assert re.search(r"^POSTGRES_PASSWORD=change-me$", db_env, re.M)
    ignored = (ROOT / ".gitignore").read_text().split()
    assert {"db.env", "vpsbot.env"} <= set(ignored)
