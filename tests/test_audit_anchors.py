"""Anchors: heads kept outside the database catch a log rewritten or cut back
consistently, which the chain alone cannot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from vpsbot import audit
from vpsbot.store import session_scope
from vpsbot.store.models import AuditCheckpoint, AuditEntry, AuditHead

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _fill(factory: sessionmaker[Session], first: int, last: int) -> None:
    for number in range(first, last + 1):
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
                server_name="db-01",
                detail=f"step {number}",
                at=T0 + timedelta(minutes=number),
            )


def _verify(factory: sessionmaker[Session], *anchors: str) -> audit.VerifyResult:
    with session_scope(factory) as session:
        return audit.verify(
            session, anchors=[audit.Anchor.parse(text) for text in anchors]
        )


def _head(factory: sessionmaker[Session]) -> str:
    result = _verify(factory)
    assert result.ok
    return f"{result.head_seq}:{result.head_hash}"


def _cut_back_to(factory: sessionmaker[Session], seq: int) -> None:
    """What a forger with database access does: drop the newest entries and
    move the head back so that the chain still ends where the head says."""
    with session_scope(factory) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq > seq))
        kept = session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == seq))
        session.execute(update(AuditHead).values(seq=seq, hash=kept))


def _rewrite_detail(factory: sessionmaker[Session], seq: int, detail: str) -> None:
    """Change one entry and recompute every hash after it, as a forger would."""
    with session_scope(factory) as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.seq >= seq).order_by(AuditEntry.seq)
        ).all()
        prev_hash = session.scalar(
            select(AuditEntry.hash).where(AuditEntry.seq == seq - 1)
        )
        for entry in entries:
            if entry.seq == seq:
                entry.detail = detail
            entry.prev_hash = prev_hash
            entry.hash = audit.entry_hash(entry)
            prev_hash = entry.hash
        session.execute(update(AuditHead).values(seq=entries[-1].seq, hash=prev_hash))


def test_verify_reports_the_head_and_an_old_head_stays_in_the_chain(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 1, 3)
    first_head = _head(session_factory)
    _fill(session_factory, 4, 6)

    result = _verify(session_factory, first_head)

    assert first_head.startswith("3:")
    assert result.ok
    assert result.checked == 6
    assert result.head_seq == 6
    assert len(result.head_hash) == 64


def test_an_anchor_catches_a_log_cut_back_that_the_chain_misses(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 1, 5)
    anchor = _head(session_factory)
    _cut_back_to(session_factory, 3)

    assert _verify(session_factory).ok
    result = _verify(session_factory, anchor)
    assert not result.ok
    assert result.first_bad_seq == 4
    assert result.problem == (
        "entry 5, recorded as an anchor, is gone: the log now ends at 3, so "
        "entries were removed from its end"
    )


def test_an_anchor_catches_a_consistent_rewrite_that_the_chain_misses(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 1, 5)
    anchor = _head(session_factory)
    _rewrite_detail(session_factory, 2, "nothing to see here")

    assert _verify(session_factory).ok
    result = _verify(session_factory, anchor)
    assert not result.ok
    assert result.first_bad_seq == 5
    assert result.problem == (
        "entry 5 no longer has the hash recorded as an anchor: the log was "
        "rewritten up to there"
    )


def test_an_anchor_before_a_rewrite_still_holds(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 1, 2)
    before = _head(session_factory)
    _fill(session_factory, 3, 5)
    _rewrite_detail(session_factory, 4, "changed")

    assert _verify(session_factory, before).ok


def test_an_anchor_retention_removed_fails_as_a_forged_checkpoint_would(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 1, 2)
    old = _head(session_factory)
    _fill(session_factory, 3, 4)
    at_cut = _head(session_factory)
    _fill(session_factory, 5, 6)
    newest = _head(session_factory)
    with session_scope(session_factory) as session:
        audit.prune(
            session,
            older_than_days=1,
            now=T0 + timedelta(days=1, minutes=4, seconds=30),
        )

    assert _verify(session_factory, newest).ok
    for anchor, seq in ((old, 2), (at_cut, 4)):
        result = _verify(session_factory, newest, anchor)
        assert not result.ok
        assert result.problem == (
            f"entry {seq}, recorded as an anchor, is no longer in the log: a "
            f"retention checkpoint at entry 4 says it was removed, which cannot be "
            f"told from a forged checkpoint; if retention really removed it, check "
            f"with a newer anchor"
        )


def test_a_forged_checkpoint_over_an_emptied_log_fails_the_anchor(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 1, 5)
    anchor = _head(session_factory)
    seq, hash_text = anchor.split(":")
    with session_scope(session_factory) as session:
        session.execute(delete(AuditEntry))
        session.add(
            AuditCheckpoint(
                seq=int(seq),
                hash=hash_text,
                removed=5,
                cutoff=T0 + timedelta(days=1),
                pruned_at=T0 + timedelta(days=1),
            )
        )

    assert _verify(session_factory).ok
    result = _verify(session_factory, anchor)
    assert not result.ok
    assert result.problem.startswith(
        "entry 5, recorded as an anchor, is no longer in the log: a retention "
        "checkpoint at entry 5 says it was removed"
    )


def test_an_anchor_must_look_like_one() -> None:
    assert audit.Anchor.parse(" 12:" + "AB" * 32) == audit.Anchor(12, "ab" * 32)
    for text in (
        "12",
        "12:abc",
        "x:" + "a" * 64,
        "١٢:" + "a" * 64,
        "12:" + "g" * 64,
        "0:" + "0" * 64,
    ):
        with pytest.raises(ValueError, match="is not an anchor"):
            audit.Anchor.parse(text)
