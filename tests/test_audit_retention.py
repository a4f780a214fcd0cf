"""Retention: pruning old audit entries behind a checkpoint, and upkeep."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from vpsbot import audit
from vpsbot.audit_upkeep import AuditUpkeep
from vpsbot.store import session_scope
from vpsbot.store.models import AuditCheckpoint, AuditEntry, Claim

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
# One day after entry 5 (at T0 + 5 minutes) and before entry 6.
NOW = T0 + timedelta(days=1, minutes=5, seconds=30)


def _fill(factory: sessionmaker[Session], count: int, *, first: int = 1) -> None:
    for number in range(first, first + count):
        with session_scope(factory) as session:
            audit.record(
                session,
                team="T1",
                channel="C1",
                user="U0ALICE",
                action="reboot",
                outcome="succeeded",
                request_id=f"req-{number}",
                server_id=42,
                at=T0 + timedelta(minutes=number),
            )


def _prune(factory: sessionmaker[Session], **options: object) -> audit.PruneResult:
    values: dict[str, object] = {"older_than_days": 1, "now": NOW}
    values.update(options)
    with session_scope(factory) as session:
        return audit.prune(session, **values)  # type: ignore[arg-type]


def _verify(factory: sessionmaker[Session]) -> audit.VerifyResult:
    with session_scope(factory) as session:
        return audit.verify(session)


def _seqs(factory: sessionmaker[Session]) -> list[int]:
    with session_scope(factory) as session:
        return list(session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))


def _checkpoints(factory: sessionmaker[Session]) -> list[tuple[int, int]]:
    with session_scope(factory) as session:
        rows = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))
        return [(row.seq, row.removed) for row in rows]


def test_prune_removes_the_old_entries_and_leaves_a_checkpoint(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 10)
    with session_scope(session_factory) as session:
        hash_5 = session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == 5))

    result = _prune(session_factory)

    assert result == audit.PruneResult(removed=5, checkpoint_seq=5, claims_removed=0)
    assert _seqs(session_factory) == [6, 7, 8, 9, 10]
    with session_scope(session_factory) as session:
        checkpoint = session.scalars(select(AuditCheckpoint)).one()
        assert (checkpoint.seq, checkpoint.hash, checkpoint.removed) == (5, hash_5, 5)
        assert checkpoint.cutoff == T0 + timedelta(minutes=5, seconds=30)
        assert checkpoint.pruned_at == NOW
    assert _verify(session_factory) == audit.VerifyResult(ok=True, checked=5)


def test_appends_after_pruning_still_verify(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 10)
    _prune(session_factory)

    _fill(session_factory, 3, first=11)

    assert _seqs(session_factory) == [6, 7, 8, 9, 10, 11, 12, 13]
    assert _verify(session_factory) == audit.VerifyResult(ok=True, checked=8)


def test_nothing_old_enough_removes_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 3)

    result = _prune(session_factory, older_than_days=30)

    assert result == audit.PruneResult(removed=0, checkpoint_seq=None, claims_removed=0)
    assert _seqs(session_factory) == [1, 2, 3]
    assert _checkpoints(session_factory) == []


def test_pruning_an_empty_log_removes_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    assert _prune(session_factory) == audit.PruneResult(
        removed=0, checkpoint_seq=None, claims_removed=0
    )
    assert _verify(session_factory) == audit.VerifyResult(ok=True, checked=0)


def test_successive_prunings_each_leave_a_checkpoint(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 10)

    first = _prune(session_factory)
    second = _prune(session_factory, now=NOW + timedelta(minutes=3))

    assert first.checkpoint_seq == 5
    assert second == audit.PruneResult(removed=3, checkpoint_seq=8, claims_removed=0)
    assert _checkpoints(session_factory) == [(5, 5), (8, 3)]
    assert _verify(session_factory) == audit.VerifyResult(ok=True, checked=2)


def test_pruning_every_entry_still_verifies_and_the_chain_goes_on(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 4)

    result = _prune(session_factory, now=NOW + timedelta(days=30))

    assert result == audit.PruneResult(removed=4, checkpoint_seq=4, claims_removed=0)
    assert _verify(session_factory) == audit.VerifyResult(ok=True, checked=0)
    _fill(session_factory, 1, first=5)
    assert _seqs(session_factory) == [5]
    assert _verify(session_factory) == audit.VerifyResult(ok=True, checked=1)


def test_only_a_leading_run_is_removed(
    session_factory: sessionmaker[Session],
) -> None:
    # Entry 3 was written with a recent time: it and everything after it stay,
    # so the remaining log is still one unbroken chain.
    _fill(session_factory, 2)
    with session_scope(session_factory) as session:
        audit.record(
            session,
            team="T1",
            channel="C1",
            user="U0ALICE",
            action="list",
            outcome="succeeded",
            request_id="req-late",
            at=NOW,
        )
    _fill(session_factory, 2, first=4)

    result = _prune(session_factory)

    assert result == audit.PruneResult(removed=2, checkpoint_seq=2, claims_removed=0)
    assert _seqs(session_factory) == [3, 4, 5]
    assert _verify(session_factory) == audit.VerifyResult(ok=True, checked=3)


def test_one_pruning_removes_at_most_max_entries(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 10)

    result = _prune(session_factory, max_entries=3)

    assert result == audit.PruneResult(
        removed=3, checkpoint_seq=3, claims_removed=0, more=True
    )
    assert _seqs(session_factory) == [4, 5, 6, 7, 8, 9, 10]
    assert _verify(session_factory) == audit.VerifyResult(ok=True, checked=7)


def test_prune_all_runs_passes_until_nothing_old_is_left(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 10)

    result = audit.prune_all(session_factory, older_than_days=1, now=NOW, max_entries=2)

    assert result == audit.PruneResult(removed=5, checkpoint_seq=5, claims_removed=0)
    assert _checkpoints(session_factory) == [(2, 2), (4, 2), (5, 1)]
    assert _seqs(session_factory) == [6, 7, 8, 9, 10]
    assert _verify(session_factory) == audit.VerifyResult(ok=True, checked=5)


def test_prune_all_with_nothing_old_removes_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 2)

    result = audit.prune_all(session_factory, older_than_days=30, now=NOW)

    assert result == audit.PruneResult(removed=0, checkpoint_seq=None, claims_removed=0)
    assert _checkpoints(session_factory) == []


def test_a_change_after_pruning_is_still_caught(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    _fill(session_factory, 10)
    _prune(session_factory)
    with engine.begin() as connection:
        connection.execute(
            update(AuditEntry).where(AuditEntry.seq == 7).values(user="U0MALLORY")
        )

    assert _verify(session_factory) == audit.VerifyResult(
        ok=False, checked=2, first_bad_seq=7, problem="entry 7 was changed"
    )


def test_deleting_the_first_kept_entry_is_caught(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    _fill(session_factory, 10)
    _prune(session_factory)
    with engine.begin() as connection:
        connection.execute(delete(AuditEntry).where(AuditEntry.seq == 6))

    assert _verify(session_factory) == audit.VerifyResult(
        ok=False,
        checked=1,
        first_bad_seq=6,
        problem="entry 6 is missing (the chain jumps from 5 to 7)",
    )


def test_deleting_the_checkpoint_by_hand_is_caught(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    _fill(session_factory, 10)
    _prune(session_factory)
    with engine.begin() as connection:
        connection.execute(delete(AuditCheckpoint))

    assert _verify(session_factory) == audit.VerifyResult(
        ok=False,
        checked=1,
        first_bad_seq=1,
        problem="entries 1 to 5 are missing (the chain starts at 6)",
    )


def test_an_entry_put_back_before_the_checkpoint_is_caught(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    _fill(session_factory, 10)
    with session_scope(session_factory) as session:
        entry_2 = session.scalars(select(AuditEntry).where(AuditEntry.seq == 2)).one()
        row = {
            column.key: getattr(entry_2, column.key)
            for column in AuditEntry.__table__.columns
            if column.key != "id"
        }
    _prune(session_factory)
    with engine.begin() as connection:
        connection.execute(insert(AuditEntry.__table__), [row])

    assert _verify(session_factory) == audit.VerifyResult(
        ok=False,
        checked=0,
        first_bad_seq=2,
        problem="entry 2 was inserted before the retention checkpoint "
        "(entries up to 5 were removed)",
    )


def test_old_entries_deleted_by_hand_stop_pruning_and_are_reported(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    # Entries 2 and 3 were old enough to be pruned, but went behind the
    # program's back: retention refuses to remove the evidence.
    _fill(session_factory, 10)
    with engine.begin() as connection:
        connection.execute(delete(AuditEntry).where(AuditEntry.seq.in_([2, 3])))

    with pytest.raises(audit.AuditLogDamagedError) as raised:
        _prune(session_factory)

    assert str(raised.value) == (
        "audit retention removed nothing: entries 2 to 3 are missing "
        "(the chain jumps from 1 to 4); run `vpsbot audit verify`"
    )
    assert _seqs(session_factory) == [1, 4, 5, 6, 7, 8, 9, 10]
    assert _checkpoints(session_factory) == []
    assert _verify(session_factory).first_bad_seq == 2


def test_the_last_old_entry_deleted_by_hand_stops_pruning(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    _fill(session_factory, 10)
    with engine.begin() as connection:
        connection.execute(delete(AuditEntry).where(AuditEntry.seq == 5))

    with pytest.raises(audit.AuditLogDamagedError) as raised:
        _prune(session_factory)

    # Entry 6 is the first young one, so the part to remove ends at 5.
    assert "entry 5 is missing (the chain jumps from 4 to 6)" in str(raised.value)
    assert _seqs(session_factory) == [1, 2, 3, 4, 6, 7, 8, 9, 10]


def test_an_old_entry_changed_by_hand_stops_pruning(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    _fill(session_factory, 10)
    with engine.begin() as connection:
        connection.execute(
            update(AuditEntry).where(AuditEntry.seq == 3).values(outcome="failed")
        )

    with pytest.raises(audit.AuditLogDamagedError, match="entry 3 was changed"):
        _prune(session_factory)

    assert len(_seqs(session_factory)) == 10


def test_prune_removes_expired_claims_only(
    session_factory: sessionmaker[Session],
) -> None:
    with session_scope(session_factory) as session:
        session.add_all(
            [
                Claim(
                    key="expired",
                    request_id="r1",
                    created_at=T0,
                    expires_at=NOW - timedelta(seconds=1),
                ),
                Claim(
                    key="current",
                    request_id="r2",
                    created_at=T0,
                    expires_at=NOW + timedelta(minutes=1),
                ),
                Claim(key="forever", request_id="r3", created_at=T0, expires_at=None),
            ]
        )

    result = _prune(session_factory)

    assert result == audit.PruneResult(removed=0, checkpoint_seq=None, claims_removed=1)
    with session_scope(session_factory) as session:
        keys = sorted(session.scalars(select(Claim.key)))
    assert keys == ["current", "forever"]


def test_prune_refuses_bad_arguments(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="older_than_days must be at least 1, got 0"):
        _prune(session_factory, older_than_days=0)
    with pytest.raises(ValueError, match="max_entries must be at least 1, got 0"):
        _prune(session_factory, max_entries=0)
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        _prune(session_factory, now=datetime(2026, 3, 1))


def test_export_after_pruning_holds_the_remaining_entries(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 10)
    _prune(session_factory)
    out = io.StringIO()

    with session_scope(session_factory) as session:
        count = audit.export(session, out)

    assert count == 5
    assert [json.loads(line)["request_id"] for line in out.getvalue().splitlines()] == [
        "req-6",
        "req-7",
        "req-8",
        "req-9",
        "req-10",
    ]


# Upkeep: verification at start and periodic retention


def test_upkeep_warns_naming_the_first_bad_entry(
    session_factory: sessionmaker[Session],
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _fill(session_factory, 4)
    with engine.begin() as connection:
        connection.execute(
            update(AuditEntry).where(AuditEntry.seq == 3).values(detail="edited")
        )
    upkeep = AuditUpkeep(session_factory, retention_days=None)

    with caplog.at_level(logging.INFO, logger="vpsbot.audit_upkeep"):
        upkeep.start()
        assert upkeep.wait_first_pass(timeout=60)
        upkeep.stop()

    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.name == "vpsbot.audit_upkeep" and record.levelno == logging.WARNING
    ]
    assert warnings == [
        "audit log is NOT whole, first bad entry 3: entry 3 was changed "
        "(run `vpsbot audit verify`; vpsbot keeps running)"
    ]


def test_upkeep_reports_a_whole_log_at_info(
    session_factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    _fill(session_factory, 2)
    upkeep = AuditUpkeep(session_factory, retention_days=None)

    with caplog.at_level(logging.INFO, logger="vpsbot.audit_upkeep"):
        result = upkeep.verify_once()

    assert result == audit.VerifyResult(ok=True, checked=2)
    assert [
        r.getMessage() for r in caplog.records if r.name == "vpsbot.audit_upkeep"
    ] == ["audit log is whole: 2 entries verified"]
    assert upkeep.prune_once() is None


def test_upkeep_prunes_when_retention_is_on(
    session_factory: sessionmaker[Session],
) -> None:
    # Entries a year old, so the real clock's "now" prunes them all.
    _fill(session_factory, 3)
    upkeep = AuditUpkeep(session_factory, retention_days=1, interval_s=3600)

    upkeep.start()
    assert upkeep.wait_first_pass(timeout=60)
    upkeep.stop()

    assert _seqs(session_factory) == []
    assert _checkpoints(session_factory) == [(3, 3)]
    assert _verify(session_factory) == audit.VerifyResult(ok=True, checked=0)


def test_upkeep_logs_a_damaged_log_instead_of_pruning(
    session_factory: sessionmaker[Session],
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _fill(session_factory, 3)
    with engine.begin() as connection:
        connection.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    upkeep = AuditUpkeep(session_factory, retention_days=1)

    with caplog.at_level(logging.WARNING, logger="vpsbot.audit_upkeep"):
        assert upkeep.prune_once() is None

    assert [
        r.getMessage() for r in caplog.records if r.name == "vpsbot.audit_upkeep"
    ] == [
        "audit retention removed nothing: entry 2 is missing (the chain jumps "
        "from 1 to 3); run `vpsbot audit verify`"
    ]
    with session_scope(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 2
