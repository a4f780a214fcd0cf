"""Processes that start together on one new PostgreSQL database migrate it once."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.conftest import POSTGRES_SKIP_REASON, TEST_DATABASE_VARIABLE, _server_url

UPGRADE = (
    "import sys; from vpsbot.store import upgrade_database; "
    "upgrade_database(sys.argv[1])"
)


@pytest.mark.postgres
def test_four_processes_upgrading_a_new_database_at_once_all_succeed():
    raw = os.environ.get(TEST_DATABASE_VARIABLE, "").strip()
    if not raw:
        pytest.skip(POSTGRES_SKIP_REASON)
    server = create_engine(
        _server_url(raw), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    name = f"vpsbot_test_{secrets.token_hex(4)}"
    url = _server_url(raw).set(database=name).render_as_string(hide_password=False)
    with server.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", UPGRADE, url],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [process.communicate(timeout=120)[0] for process in processes]

        assert [process.returncode for process in processes] == [0, 0, 0, 0], outputs
        assert not any("Traceback" in output for output in outputs)
        database = create_engine(url, poolclass=NullPool)
        with database.connect() as connection:
            versions = connection.scalars(
                text("SELECT version_num FROM alembic_version")
            ).all()
        database.dispose()
        assert versions == ["0007"]
    finally:
        with server.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.dispose()
