"""Alembic environment for vpsbot.

The database URL comes from the ``database_url`` attribute of the Alembic
config when vpsbot migrates from code (``upgrade_database``), and otherwise
from ``DATABASE_URL`` through vpsbot's settings, as when a developer runs the
``alembic`` command. No URL is kept in ``alembic.ini``.
"""

from __future__ import annotations

import logging
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import make_url

from vpsbot.config import Settings
from vpsbot.store.migrate import DATABASE_URL_ATTRIBUTE
from vpsbot.store.models import Base
from vpsbot.store.session import make_engine

logger = logging.getLogger(__name__)

# An arbitrary 64-bit number naming vpsbot's migration lock in PostgreSQL.
MIGRATION_LOCK_KEY = 7_220_191_813_004_001

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get(DATABASE_URL_ATTRIBUTE)
    if url:
        return str(url)
    return Settings.from_env(os.environ).database_url


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def run_migrations_offline() -> None:
    """Write the migration SQL to standard output instead of running it."""
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=_is_sqlite(url),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations against the database, in one transaction."""
    url = _database_url()
    sqlite = _is_sqlite(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                # vpsbot's SQLite engine emits BEGIN itself, and SQLite DDL is
                # transactional, so all pending migrations apply or none do.
                transactional_ddl=True if sqlite else None,
            )
            with context.begin_transaction():
                if not sqlite:
                    # Processes starting together on one database take turns:
                    # the second finds the work done instead of redoing it.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"),
                        {"key": MIGRATION_LOCK_KEY},
                    )
                context.run_migrations()
    finally:
        engine.dispose()


# Only the alembic command names an ini file; vpsbot's own logging setup is
# left alone when migrating from code.
if config.config_file_name is not None and not config.attributes.get(
    DATABASE_URL_ATTRIBUTE
):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
