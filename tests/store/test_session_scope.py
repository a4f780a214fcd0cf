from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from vpsbot.errors import StoreUnavailableError, VpsbotError
from vpsbot.store import make_engine, make_session_factory, session_scope
from vpsbot.store.models import ChannelPolicy, Claim

NOW = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _policy(channel_id: str = "C1") -> ChannelPolicy:
    return ChannelPolicy(
        team_id="T1", channel_id=channel_id, updated_by="U1", updated_at=NOW
    )


def test_session_scope_commits_on_success(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        session.add(_policy())

    with session_scope(session_factory) as session:
        stored = session.scalars(select(ChannelPolicy)).one()
        assert (stored.team_id, stored.channel_id, stored.read) == ("T1", "C1", "deny")
        assert stored.approvers == []


def test_session_scope_rolls_back_on_error(
    session_factory: sessionmaker[Session],
) -> None:
    with (
        pytest.raises(RuntimeError, match="boom"),
        session_scope(session_factory) as session,
    ):
        session.add(_policy())
        session.flush()
        raise RuntimeError("boom")

    with session_scope(session_factory) as session:
        assert session.scalars(select(ChannelPolicy)).all() == []


def test_objects_stay_readable_after_the_scope(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        policy = _policy()
        session.add(policy)

    assert policy.channel_id == "C1"
    assert policy.updated_at == NOW


def test_integrity_errors_are_not_converted(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        session.add(_policy())

    with pytest.raises(IntegrityError), session_scope(session_factory) as session:
        session.add(_policy())


def test_check_constraint_rejects_an_unknown_rule(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO channel_policies "
                "(team_id, channel_id, read, updated_by, updated_at) "
                "VALUES ('T1', 'C1', 'maybe', 'U1', :at)"
            ),
            {"at": NOW.replace(tzinfo=None)},
        )


def test_unreachable_postgresql_becomes_store_unavailable(unused_port: int) -> None:
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{unused_port}/x")
    factory = make_session_factory(engine)

    with (
        pytest.raises(StoreUnavailableError) as caught,
        session_scope(factory) as session,
    ):
        session.execute(text("SELECT 1"))

    assert isinstance(caught.value.__cause__, OperationalError)
    assert "cannot reach its database" in str(caught.value)
    engine.dispose()


def test_unopenable_sqlite_file_becomes_store_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "vpsbot.db"
    engine = make_engine(f"sqlite:///{missing}")
    factory = make_session_factory(engine)

    with (
        pytest.raises(StoreUnavailableError) as caught,
        session_scope(factory) as session,
    ):
        session.execute(text("SELECT 1"))

    assert isinstance(caught.value.__cause__, OperationalError)
    engine.dispose()


@pytest.mark.postgres
def test_connection_killed_mid_transaction_becomes_store_unavailable(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    with (
        pytest.raises(StoreUnavailableError) as caught,
        session_scope(session_factory) as session,
    ):
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            other.commit()
        session.execute(text("SELECT 1"))

    assert isinstance(caught.value.__cause__, OperationalError)
    # The pool recovers: the next scope gets a fresh connection.
    with session_scope(session_factory) as session:
        assert session.execute(text("SELECT 2")).scalar_one() == 2


def test_sqlite_engine_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")

    with engine.connect() as connection:
        journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()
        busy = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()

    assert (journal, busy) == ("wal", 5000)
    engine.dispose()


def test_sqlite_transactions_take_the_write_lock_at_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locks.db"
    engine = make_engine(f"sqlite:///{path}")
    factory = make_session_factory(engine)
    outsider = sqlite3.connect(path, timeout=0, isolation_level=None)

    with session_scope(factory) as session:
        session.execute(text("SELECT 1"))
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            outsider.execute("BEGIN IMMEDIATE")

    outsider.execute("BEGIN IMMEDIATE")
    outsider.execute("ROLLBACK")
    outsider.close()
    engine.dispose()


def test_postgresql_engine_settings() -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/x")

    assert engine.pool.size() == 10  # type: ignore[attr-defined]
    assert engine.pool._pre_ping is True  # type: ignore[attr-defined]
    engine.dispose()


def test_make_engine_refuses_other_databases() -> None:
    with pytest.raises(VpsbotError, match="unsupported database 'mysql'"):
        make_engine("mysql://root@localhost/x")


def test_times_read_back_as_aware_utc(session_factory: sessionmaker[Session]) -> None:
    paris_winter = timezone(timedelta(hours=1))
    local = datetime(2026, 3, 1, 13, 0, 0, 5, tzinfo=paris_winter)

    with session_scope(session_factory) as session:
        session.add(Claim(key="k", request_id="r", created_at=local, expires_at=None))

    with session_scope(session_factory) as session:
        claim = session.get(Claim, "k", populate_existing=True)
        assert claim is not None
        assert claim.created_at == datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=UTC)
        assert claim.created_at.tzinfo is UTC
        assert claim.expires_at is None


def test_naive_times_are_refused(session_factory: sessionmaker[Session]) -> None:
    with (
        pytest.raises(StatementError, match="naive datetime"),
        session_scope(session_factory) as session,
    ):
        session.add(Claim(key="k", request_id="r", created_at=datetime(2026, 3, 1)))
