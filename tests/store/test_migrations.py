from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

import vpsbot
from vpsbot.errors import StoreUnavailableError, VpsbotError
from vpsbot.store import make_engine, migrations_current, upgrade_database
from vpsbot.store.migrate import alembic_config, migrations_path
from vpsbot.store.models import Base

REPO_ROOT = Path(vpsbot.__file__).resolve().parent.parent
STORE_TABLES = {
    "alembic_version",
    "approval_requests",
    "audit_checkpoints",
    "audit_entries",
    "audit_head",
    "channel_policies",
    "claims",
    "followed_operations",
    "slack_bots",
    "slack_installations",
    "slack_oauth_states",
    "workspace_credentials",
}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_have_a_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()

    assert heads == ["0007"]


def test_migrations_path_is_inside_the_package() -> None:
    assert migrations_path() == REPO_ROOT / "vpsbot" / "migrations"


def test_upgrade_empty_sqlite_to_head_and_back_to_base(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"

    upgrade_database(url)
    assert _tables(url) == STORE_TABLES
    engine = make_engine(url)
    assert migrations_current(engine) is True

    command.downgrade(alembic_config(url), "base")
    assert _tables(url) == {"alembic_version"}
    assert migrations_current(engine) is False

    upgrade_database(url)
    assert _tables(url) == STORE_TABLES
    engine.dispose()


def test_upgrade_is_a_no_op_when_current(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'twice.db'}"

    upgrade_database(url)
    upgrade_database(url)

    engine = make_engine(url)
    assert migrations_current(engine) is True
    engine.dispose()


def test_migrations_current_is_false_on_an_empty_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")

    assert migrations_current(engine) is False
    engine.dispose()


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = compare_metadata(context, Base.metadata)

    assert differences == []


def test_migrations_current_on_each_database(engine: Engine) -> None:
    assert migrations_current(engine) is True


def test_missing_migrations_folder_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(vpsbot, "__file__", str(tmp_path / "vpsbot" / "__init__.py"))

    with pytest.raises(VpsbotError, match="database migrations were not found"):
        upgrade_database(f"sqlite:///{tmp_path / 'x.db'}")


def test_upgrade_reports_an_unreachable_database(unused_port: int) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{unused_port}/vpsbot"

    with pytest.raises(StoreUnavailableError):
        upgrade_database(url)


def test_alembic_command_takes_the_url_from_database_url(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": f"sqlite:///{path}"}

    completed = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "alembic.ini", "upgrade", "head"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert "Running upgrade  -> 0001" in completed.stderr
    assert "Running upgrade 0001 -> 0002" in completed.stderr
    assert "Running upgrade 0002 -> 0003" in completed.stderr
    assert "Running upgrade 0003 -> 0004" in completed.stderr
    assert "Running upgrade 0004 -> 0005" in completed.stderr
    assert "Running upgrade 0005 -> 0006" in completed.stderr
    assert "Running upgrade 0006 -> 0007" in completed.stderr
    assert _tables(f"sqlite:///{path}") == STORE_TABLES
