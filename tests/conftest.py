"""Fixtures shared by the whole suite: a clean environment and test databases.

Environment
    ``clean_environ`` (autouse) removes every ``SLACK_*``, ``VPS_*``,
    ``VPSBOT_*`` and ``DATABASE_URL`` variable for the length of each test, so
    a developer's shell cannot leak settings into a test. The two variables
    below that steer the test run itself are kept.

Databases
    A test that asks for ``database_url``, ``engine`` or ``session_factory``
    runs once per database, with ids ``[sqlite]`` and ``[postgresql]``:

    - ``sqlite``: a fresh file under the test's ``tmp_path``, already migrated
      to head (a copy of one file migrated with ``upgrade_database`` at the
      start of the session).
    - ``postgresql``: runs only when ``VPSBOT_TEST_DATABASE_URL`` names a
      server, e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``. One
      database ``vpsbot_test_<random>`` is created on that server per test
      session, migrated once, and dropped at the end; before each test every
      table in it (except ``alembic_version``) is emptied. If the server cannot
      be reached the PostgreSQL tests are skipped, or fail when
      ``VPSBOT_REQUIRE_POSTGRES=1`` (set it in CI).

    Mark a test ``@pytest.mark.postgres`` to run it on PostgreSQL only; select
    or leave out the PostgreSQL runs with ``-m postgres`` / ``-m "not postgres"``.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from vpsbot.store import make_engine, make_session_factory, upgrade_database

logger = logging.getLogger(__name__)

TEST_DATABASE_VARIABLE = "VPSBOT_TEST_DATABASE_URL"
REQUIRE_POSTGRES_VARIABLE = "VPSBOT_REQUIRE_POSTGRES"
POSTGRES_SKIP_REASON = "set VPSBOT_TEST_DATABASE_URL to run the PostgreSQL tests"

_KEPT_VARIABLES = frozenset({TEST_DATABASE_VARIABLE, REQUIRE_POSTGRES_VARIABLE})
_CLEARED_PREFIXES = ("SLACK_", "VPS_", "VPSBOT_")


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    # A test marked ``postgres`` itself keeps only the PostgreSQL run of
    # database_url; its SQLite run is deselected.
    sqlite_runs = [
        item
        for item in items
        if isinstance(item, pytest.Function)
        and item.get_closest_marker("postgres") is not None
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("database_url") == "sqlite"
    ]
    if sqlite_runs:
        config.hook.pytest_deselected(items=sqlite_runs)
        items[:] = [item for item in items if item not in sqlite_runs]


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove vpsbot's and Slack's variables from the environment for one test."""
    for name in list(os.environ):
        if name in _KEPT_VARIABLES:
            continue
        if name == "DATABASE_URL" or name.startswith(_CLEARED_PREFIXES):
            monkeypatch.delenv(name)


class PostgresTestDatabase:
    """The one PostgreSQL database of a test session, created and dropped here."""

    def __init__(self, server: URL) -> None:
        self.name = f"vpsbot_test_{secrets.token_hex(4)}"
        self.url = server.set(database=self.name).render_as_string(hide_password=False)
        self._server = create_engine(
            server,
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
            connect_args={"connect_timeout": 5},
        )
        self._database = create_engine(
            self.url, poolclass=NullPool, connect_args={"connect_timeout": 5}
        )

    def create(self) -> None:
        """Create the database and migrate it to head."""
        with self._server.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
        upgrade_database(self.url)

    def reset(self) -> None:
        """Empty every table except Alembic's, and restart their id sequences."""
        with self._database.begin() as connection:
            # A test that leaked an open transaction would block TRUNCATE forever.
            connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
            tables = connection.scalars(
                text(
                    "SELECT tablename FROM pg_tables "
                    "WHERE schemaname = current_schema() "
                    "AND tablename <> 'alembic_version'"
                )
            ).all()
            if tables:
                names = ", ".join(f'"{table}"' for table in tables)
                connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")

    def drop(self) -> None:
        """Drop the database, closing any connection still open to it."""
        self._database.dispose()
        with self._server.connect() as connection:
            connection.exec_driver_sql(
                f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'
            )
        self._server.dispose()


def _server_url(raw: str) -> URL:
    url = make_url(raw)
    # Same rule as DATABASE_URL: plain postgresql:// means the psycopg 3 driver.
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    return url


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[PostgresTestDatabase]:
    """This session's PostgreSQL database, migrated; skipped when not configured."""
    raw = os.environ.get(TEST_DATABASE_VARIABLE, "").strip()
    if not raw:
        pytest.skip(POSTGRES_SKIP_REASON)
    server = _server_url(raw)
    database = PostgresTestDatabase(server)
    try:
        database.create()
    except OperationalError as exc:
        shown = server.render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        message = f"PostgreSQL at {shown} cannot be reached: {reason}"
        if os.environ.get(REQUIRE_POSTGRES_VARIABLE) == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session; tests get copies."""
    path = tmp_path_factory.mktemp("sqlite-template") / "vpsbot.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty database at the latest migration, one per test.

    Parametrized: ``[sqlite]`` always, ``[postgresql]`` when configured.
    """
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "vpsbot.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"

    database: PostgresTestDatabase = request.getfixturevalue("postgres_database")
    database.reset()
    return database.url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine built by ``make_engine`` on ``database_url``; disposed after."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """The session factory vpsbot itself would build on ``engine``."""
    return make_session_factory(engine)


# Make every insert into audit_entries fail, as a full disk or a broken
# permission would, while the rest of the database keeps working.
_REFUSE_AUDIT = {
    "sqlite": [
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries "
        "BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries "
        "FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
    ],
}
_ALLOW_AUDIT = {
    "sqlite": ["DROP TRIGGER refuse_audit"],
    "postgresql": [
        "DROP TRIGGER refuse_audit ON audit_entries",
        "DROP FUNCTION refuse_audit()",
    ],
}


@pytest.fixture
def audit_refused(engine: Engine) -> Iterator[None]:
    """Every insert into ``audit_entries`` fails for the length of a test."""
    dialect = engine.dialect.name
    with engine.begin() as connection:
        for statement in _REFUSE_AUDIT[dialect]:
            connection.execute(text(statement))
    yield
    with engine.begin() as connection:
        for statement in _ALLOW_AUDIT[dialect]:
            connection.execute(text(statement))
