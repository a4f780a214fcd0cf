"""Exporting a channel's audit entries: order, isolation, paging and memory."""

from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from vpsbot import audit
from vpsbot.errors import PermissionDeniedError
from vpsbot.ops import Actor, AuditFilters
from vpsbot.ops.auditing import AuditOperations
from vpsbot.ops.guard import Guard
from vpsbot.store import PolicyRepository, session_scope
from vpsbot.store.models import AuditEntry

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
ALLOWED = {"read": "allow", "audit": "allow"}


def _operations(session_factory: sessionmaker[Session]) -> AuditOperations:
    return AuditOperations(
        guard=Guard(session_factory, admins=("U0ADMIN",)), sessions=session_factory
    )


def _allow(session_factory: sessionmaker[Session], channel: str = "C1") -> None:
    with session_scope(session_factory) as session:
        PolicyRepository(session).set_rules(
            team_id="T1", channel_id=channel, rules=ALLOWED, updated_by="U0ADMIN"
        )


def _actor(channel: str = "C1") -> Actor:
    return Actor("T1", channel, "U0ALICE", "req-export")


def _record(session: Session, number: int, *, channel: str = "C1", **fields) -> None:
    values = {
        "team": "T1",
        "channel": channel,
        "user": "U0ALICE",
        "action": "list",
        "outcome": "succeeded",
        "request_id": f"req-{number}",
        "detail": f"entry {number}",
        **fields,
    }
    audit.record(session, **values)


def _request_ids(data: bytes) -> list[str]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    return [row[-1] for row in rows[1:]]


def test_export_pages_in_time_order_across_equal_times(session_factory):
    # Batches of two over entries sharing times, one written with an earlier
    # time after the others, and another channel's entries in between.
    _allow(session_factory)
    with session_scope(session_factory) as session:
        for number in range(1, 6):
            _record(session, number, at=T0 + timedelta(minutes=(number + 1) // 2))
            _record(session, 100 + number, channel="C2", at=T0)
        _record(session, 6, at=T0 - timedelta(hours=1))

    with _operations(session_factory).export(
        _actor(), AuditFilters(), batch_size=2
    ) as made:
        data = made.file.read()

    assert made.count == 6
    assert made.size == len(data)
    assert _request_ids(data) == [f"req-{n}" for n in (6, 1, 2, 3, 4, 5)]


def test_export_names_its_file_after_the_channel_and_utc_time(session_factory):
    _allow(session_factory)
    moment = datetime(2026, 3, 1, 10, 5, 9, tzinfo=UTC)

    with _operations(session_factory).export(
        _actor(), AuditFilters(), now=moment
    ) as made:
        assert made.filename == "vpsbot-audit-C1-20260301-100509.csv"
        assert made.count == 0
        assert made.file.read().startswith(b"at,team,channel,")


def test_a_refused_export_reads_nothing_and_is_audited(session_factory):
    with pytest.raises(PermissionDeniedError, match="no vpsbot policy yet"):
        _operations(session_factory).export(_actor(), AuditFilters(server="web-01"))

    with session_scope(session_factory) as session:
        entry = session.scalars(select(AuditEntry)).one()
        assert (entry.action, entry.outcome, entry.server_name, entry.detail) == (
            "audit",
            "denied",
            "web-01",
            "export refused: policy: audit=deny",
        )


def test_export_memory_does_not_grow_with_the_entries(session_factory):
    # Peak Python allocations while exporting 300 and 1,200 entries in
    # batches of 50: the CSV goes to a file on disk, so both peaks stay under
    # one bound, where holding every row would grow about fourfold.
    _allow(session_factory)
    operations = _operations(session_factory)

    def peak_exporting(total: int) -> int:
        with session_scope(session_factory) as session:
            before = session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "list")
            )
            for number in range(before + 1, total + 1):
                _record(session, number, detail="x" * 500)
        tracemalloc.start()
        try:
            made = operations.export(
                _actor(), AuditFilters(action="list"), batch_size=50
            )
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        with made:
            assert made.count == total
            assert made.size > total * 500
        return peak

    small = peak_exporting(300)
    large = peak_exporting(1200)

    assert large < 600_000
    assert large < small * 2
