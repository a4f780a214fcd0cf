"""Applying the Alembic migrations from code, and checking they are current.

The migration scripts live in ``vpsbot/migrations/`` and are installed with
the package, so an installed vpsbot (``pip install .``, a wheel, the Docker
image) migrates its database as a source checkout does.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

import vpsbot
from vpsbot.errors import StoreUnavailableError, VpsbotError
from vpsbot.store.session import is_unavailable, make_engine

logger = logging.getLogger(__name__)

# Key of ``Config.attributes`` through which ``migrations/env.py`` receives the
# database URL when run from code rather than by the alembic command.
DATABASE_URL_ATTRIBUTE = "database_url"


def migrations_path() -> Path:
    """The folder holding ``env.py`` and ``versions/``.

    Raises:
        VpsbotError: the folder is not there (a damaged installation).
    """
    path = Path(vpsbot.__file__).resolve().parent / "migrations"
    if not (path / "env.py").is_file():
        raise VpsbotError(
            f"the database migrations were not found in {path}; reinstall vpsbot"
        )
    return path


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration built in code, pointing at ``migrations/``.

    Args:
        url: the database to migrate; ``None`` when only the scripts are needed.

    Raises:
        VpsbotError: the migrations folder is missing.
    """
    config = Config()
    # The ini parser treats "%" as interpolation; a path may contain one.
    config.set_main_option("script_location", str(migrations_path()).replace("%", "%%"))
    if url is not None:
        config.attributes[DATABASE_URL_ATTRIBUTE] = url
    return config


def upgrade_database(url: str) -> None:
    """Apply every pending migration.

    Args:
        url: a SQLAlchemy URL of a SQLite or PostgreSQL database.

    Raises:
        StoreUnavailableError: the database could not be reached.
        VpsbotError: the migrations folder is missing.
    """
    config = alembic_config(url)
    _check_reachable(url)
    command.upgrade(config, "head")
    logger.info(
        "database %s is at migration %s",
        make_url(url).render_as_string(hide_password=True),
        ", ".join(ScriptDirectory.from_config(config).get_heads()),
    )


@functools.cache
def _script_heads() -> frozenset[str]:
    """The latest revisions among the migration scripts, read once per process."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def migrations_current(engine: Engine) -> bool:
    """Whether the database stands at the latest migration.

    Raises:
        StoreUnavailableError: the database could not be reached.
        VpsbotError: the migrations folder is missing.
    """
    heads = _script_heads()
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        if is_unavailable(exc):
            raise StoreUnavailableError() from exc
        raise
    return current == heads


def _check_reachable(url: str) -> None:
    # Only a failure to connect is reported as "unavailable"; an error inside
    # a migration keeps its own type and message.
    engine = make_engine(url)
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        if is_unavailable(exc):
            raise StoreUnavailableError() from exc
        raise
    finally:
        engine.dispose()
