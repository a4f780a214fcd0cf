"""Engines, sessions and the transaction scope every caller goes through.

SQLite and PostgreSQL are supported. On SQLite each transaction starts with
``BEGIN IMMEDIATE``, which takes the write lock at once: a read followed by a
write in one transaction then cannot interleave with another writer. On
PostgreSQL the pool checks connections before use and gives up connecting
after a few seconds, so a database that is down is noticed quickly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import (
    DBAPIError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
    TimeoutError as PoolTimeoutError,
)
from sqlalchemy.orm import Session, sessionmaker

from vpsbot.errors import StoreUnavailableError, VpsbotError

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000
POSTGRES_CONNECT_TIMEOUT_S = 5
POSTGRES_POOL_SIZE = 10
POSTGRES_MAX_OVERFLOW = 20
# Waiting longer than this for a pooled connection counts as "unavailable".
POOL_TIMEOUT_S = 10

# Execution option read by the SQLite ``begin`` hook; see ``begin_read_only``.
_SQLITE_DEFERRED = "vpsbot_sqlite_deferred"


def make_engine(url: str) -> Engine:
    """Build an engine for a SQLite or PostgreSQL URL.

    Args:
        url: a SQLAlchemy URL such as ``sqlite:///vpsbot.db`` or
            ``postgresql+psycopg://user@host/db``.

    Raises:
        VpsbotError: the URL names another kind of database.
    """
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return _make_sqlite_engine(url)
    if backend == "postgresql":
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=POSTGRES_POOL_SIZE,
            max_overflow=POSTGRES_MAX_OVERFLOW,
            pool_timeout=POOL_TIMEOUT_S,
            connect_args={
                "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
                "application_name": "vpsbot",
            },
        )
    raise VpsbotError(f"unsupported database {backend!r}: use SQLite or PostgreSQL")


def _make_sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        pool_timeout=POOL_TIMEOUT_S,
        connect_args={
            "check_same_thread": False,
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
        },
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver must not issue its own BEGIN: the hook below does.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(_SQLITE_DEFERRED):
            connection.exec_driver_sql("BEGIN DEFERRED")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def begin_read_only(session: Session) -> None:
    """Start the session's transaction as one snapshot that takes no write lock.

    A long read (an export, a verification) runs many queries and must see
    the same rows in all of them while others append. On SQLite it would
    otherwise hold the write lock and make every writer wait; in WAL mode a
    deferred transaction reads a stable snapshot while others write. On
    PostgreSQL the transaction runs at REPEATABLE READ, which gives one
    snapshot for all its statements. It has effect only before the session
    has run anything; elsewhere it does nothing.
    """
    if session.in_transaction():
        return
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        session.connection(execution_options={_SQLITE_DEFERRED: True})
    elif dialect == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def is_unavailable(exc: BaseException) -> bool:
    """Whether an error means the database could not be reached or used."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error, always close.

    Args:
        factory: from ``make_session_factory``.

    Yields:
        A session whose transaction begins with its first statement.

    Raises:
        StoreUnavailableError: the database could not be reached or dropped
            the connection; the original error is chained.
    """
    session = factory()
    try:
        try:
            yield session
            session.commit()
        except BaseException:
            _rollback_quietly(session)
            raise
    except SQLAlchemyError as exc:
        if is_unavailable(exc):
            logger.warning("database unavailable: %s", _first_line(exc))
            raise StoreUnavailableError() from exc
        raise
    finally:
        session.close()


def _rollback_quietly(session: Session) -> None:
    # A dead connection can fail the rollback too; the first error is the one
    # worth reporting.
    try:
        session.rollback()
    except SQLAlchemyError as exc:
        logger.debug("rollback failed: %s", _first_line(exc))


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"
