from __future__ import annotations

import csv
import io
import json
import threading
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from vpsbot import audit
from vpsbot.store import session_scope
from vpsbot.store.models import AuditEntry

T0 = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
HOURS_5 = timedelta(hours=5)
EXPORT_KEYS = [
    "at",
    "team",
    "channel",
    "user",
    "action",
    "server_id",
    "server_name",
    "outcome",
    "detail",
    "request_id",
]


def _record(factory: sessionmaker[Session], **fields: object) -> AuditEntry:
    values: dict[str, object] = {
        "team": "T1",
        "channel": "C1",
        "user": "U0ALICE",
        "action": "reboot",
        "outcome": "succeeded",
        "request_id": "req-1",
        "server_id": 42,
        "server_name": "web-1",
        "at": T0,
    }
    values.update(fields)
    with session_scope(factory) as session:
        return audit.record(session, **values)  # type: ignore[arg-type]


def _fill(factory: sessionmaker[Session], count: int) -> None:
    for number in range(1, count + 1):
        _record(
            factory,
            at=T0 + timedelta(minutes=number),
            request_id=f"req-{number}",
            detail=f"step {number}",
        )


def _verify(factory: sessionmaker[Session]) -> audit.VerifyResult:
    with session_scope(factory) as session:
        return audit.verify(session)


class _CallOnFirstWrite(io.StringIO):
    """A text buffer that runs a function just before its first write."""

    def __init__(self, hook: Callable[[], object]) -> None:
        super().__init__()
        self._hook: Callable[[], object] | None = hook

    def write(self, text: str, /) -> int:
        if self._hook is not None:
            hook, self._hook = self._hook, None
            hook()
        return super().write(text)


def _export(factory: sessionmaker[Session], fmt: str, **filters: object) -> str:
    out = io.StringIO()
    with session_scope(factory) as session:
        audit.export(session, out, fmt=fmt, **filters)  # type: ignore[arg-type]
    return out.getvalue()


# Recording


def test_record_appends_the_first_link_of_the_chain(
    session_factory: sessionmaker[Session],
) -> None:
    entry = _record(session_factory, detail="reason: stuck")

    with session_scope(session_factory) as session:
        stored = session.scalars(select(AuditEntry)).one()
    assert stored.seq == 1
    assert stored.prev_hash == "0" * 64
    assert stored.hash == audit.entry_hash(stored) == entry.hash
    assert len(stored.hash) == 64
    assert (stored.at, stored.at.tzinfo) == (T0, UTC)
    assert (stored.team, stored.channel, stored.user) == ("T1", "C1", "U0ALICE")
    assert (stored.action, stored.outcome) == ("reboot", "succeeded")
    assert (stored.server_id, stored.server_name) == (42, "web-1")
    assert (stored.detail, stored.request_id) == ("reason: stuck", "req-1")


def test_each_entry_links_to_the_previous_one(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 3)

    with session_scope(session_factory) as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert [entry.seq for entry in entries] == [1, 2, 3]
    assert entries[1].prev_hash == entries[0].hash
    assert entries[2].prev_hash == entries[1].hash
    assert len({entry.hash for entry in entries}) == 3


def test_record_defaults_to_now_and_an_empty_detail(
    session_factory: sessionmaker[Session],
) -> None:
    before = datetime.now(UTC)
    entry = _record(session_factory, at=None, server_id=None, server_name=None)

    assert entry.at >= before
    assert entry.at.tzinfo is UTC
    assert (entry.detail, entry.server_id, entry.server_name) == ("", None, None)


def test_record_converts_times_to_utc(session_factory: sessionmaker[Session]) -> None:
    new_york = datetime(2026, 3, 1, 4, 30, 0, 123456, tzinfo=timezone(-HOURS_5))
    entry = _record(session_factory, at=new_york)

    assert entry.at == datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
    assert _verify(session_factory).ok is True


def test_record_caps_detail_at_2000_characters(
    session_factory: sessionmaker[Session],
) -> None:
    entry = _record(session_factory, detail="x" * 5000)

    with session_scope(session_factory) as session:
        stored = session.scalars(select(AuditEntry)).one()
    assert len(stored.detail) == 2000
    assert stored.detail == "x" * 1999 + "…"
    assert entry.hash == audit.entry_hash(stored)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "explode"}, "unknown audit action 'explode'"),
        ({"outcome": "maybe"}, "unknown audit outcome 'maybe'"),
        ({"at": datetime(2026, 3, 1, 9, 30)}, "at must be timezone-aware"),
    ],
)
def test_record_refuses_bad_values_and_writes_nothing(
    session_factory: sessionmaker[Session], fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _record(session_factory, **fields)

    with session_scope(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


@pytest.mark.parametrize("action", sorted(audit.ACTIONS))
def test_record_accepts_every_action(
    session_factory: sessionmaker[Session], action: str
) -> None:
    assert _record(session_factory, action=action).action == action


def test_record_writes_in_the_callers_transaction(
    session_factory: sessionmaker[Session],
) -> None:
    with pytest.raises(RuntimeError), session_scope(session_factory) as session:
        audit.record(
            session,
            team="T1",
            channel="C1",
            user="U1",
            action="delete",
            outcome="requested",
            request_id="req-1",
        )
        raise RuntimeError("the provider call was never made")

    with session_scope(session_factory) as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_twenty_concurrent_appends_make_a_gapless_valid_chain(
    session_factory: sessionmaker[Session],
) -> None:
    writers = 20
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def append(number: int) -> None:
        try:
            start.wait()
            _record(session_factory, at=None, request_id=f"req-{number}")
        except BaseException as exc:  # collected and checked below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with session_scope(session_factory) as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert [entry.seq for entry in entries] == list(range(1, writers + 1))
    assert sorted(entry.request_id for entry in entries) == sorted(
        f"req-{n}" for n in range(writers)
    )
    assert _verify(session_factory) == audit.VerifyResult(ok=True, checked=writers)


# Querying


def test_query_returns_only_the_channels_entries_newest_first(
    session_factory: sessionmaker[Session],
) -> None:
    _record(session_factory, at=T0, request_id="a")
    _record(session_factory, at=T0 + timedelta(minutes=2), request_id="b")
    _record(session_factory, at=T0 + timedelta(minutes=1), request_id="c")
    _record(session_factory, channel="C2", request_id="other-channel")
    _record(session_factory, team="T2", request_id="other-team")

    with session_scope(session_factory) as session:
        entries = audit.query(session, team="T1", channel="C1")

    assert [entry.request_id for entry in entries] == ["b", "c", "a"]


def test_query_limit_and_paging_before_a_seq(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 5)

    with session_scope(session_factory) as session:
        first_page = audit.query(session, team="T1", channel="C1", limit=2)
        second_page = audit.query(
            session, team="T1", channel="C1", limit=2, before_seq=first_page[-1].seq
        )

    assert [entry.seq for entry in first_page] == [5, 4]
    assert [entry.seq for entry in second_page] == [3, 2]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"server_id": 7}, ["stop-7"]),
        ({"server_name": "db-1"}, ["stop-7"]),
        ({"user": "U0BOB"}, ["bob-denied"]),
        ({"action": "stop"}, ["stop-7"]),
        ({"outcome": "denied"}, ["bob-denied"]),
        ({"since": T0 + timedelta(minutes=1)}, ["bob-denied", "stop-7"]),
        ({"until": T0 + timedelta(minutes=1)}, ["reboot-42"]),
        (
            {"since": T0 + timedelta(minutes=1), "until": T0 + timedelta(minutes=2)},
            ["stop-7"],
        ),
        ({"action": "reboot", "outcome": "succeeded"}, ["reboot-42"]),
        ({"action": "stop", "user": "U0BOB"}, []),
    ],
    ids=[
        "server_id",
        "server_name",
        "user",
        "action",
        "outcome",
        "since",
        "until",
        "since_and_until",
        "action_and_outcome",
        "nothing_matches",
    ],
)
def test_query_filters(
    session_factory: sessionmaker[Session],
    filters: dict[str, object],
    expected: list[str],
) -> None:
    _record(session_factory, at=T0, request_id="reboot-42")
    _record(
        session_factory,
        at=T0 + timedelta(minutes=1),
        action="stop",
        server_id=7,
        server_name="db-1",
        request_id="stop-7",
    )
    _record(
        session_factory,
        at=T0 + timedelta(minutes=2),
        user="U0BOB",
        outcome="denied",
        request_id="bob-denied",
    )

    with session_scope(session_factory) as session:
        entries = audit.query(
            session,
            team="T1",
            channel="C1",
            **filters,  # type: ignore[arg-type]
        )

    assert [entry.request_id for entry in entries] == expected


def test_query_refuses_a_limit_below_one(
    session_factory: sessionmaker[Session],
) -> None:
    with (
        session_scope(session_factory) as session,
        pytest.raises(ValueError, match="limit must be at least 1"),
    ):
        audit.query(session, team="T1", channel="C1", limit=0)


# Exporting


def test_export_jsonl_has_exactly_the_contract_keys_and_values(
    session_factory: sessionmaker[Session],
) -> None:
    _record(session_factory, detail='reason="disk full"')
    _record(
        session_factory,
        at=T0 + timedelta(seconds=1),
        action="list",
        server_id=None,
        server_name=None,
        outcome="denied",
        request_id="req-2",
    )

    lines = _export(session_factory, "jsonl").splitlines()

    assert [json.loads(line) for line in lines] == [
        {
            "at": "2026-03-01T09:30:00.123456Z",
            "team": "T1",
            "channel": "C1",
            "user": "U0ALICE",
            "action": "reboot",
            "server_id": 42,
            "server_name": "web-1",
            "outcome": "succeeded",
            "detail": 'reason="disk full"',
            "request_id": "req-1",
        },
        {
            "at": "2026-03-01T09:30:01.123456Z",
            "team": "T1",
            "channel": "C1",
            "user": "U0ALICE",
            "action": "list",
            "server_id": None,
            "server_name": None,
            "outcome": "denied",
            "detail": "",
            "request_id": "req-2",
        },
    ]
    assert list(json.loads(lines[0])) == EXPORT_KEYS


def test_export_returns_the_number_written(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 3)
    out = io.StringIO()

    with session_scope(session_factory) as session:
        count = audit.export(session, out)

    assert count == 3
    assert len(out.getvalue().splitlines()) == 3


def test_export_of_an_empty_log(session_factory: sessionmaker[Session]) -> None:
    assert _export(session_factory, "jsonl") == ""
    assert _export(session_factory, "csv") == ",".join(EXPORT_KEYS) + "\n"


def test_export_csv_has_a_header_and_one_row_per_entry(
    session_factory: sessionmaker[Session],
) -> None:
    _record(session_factory, detail="two\nlines, and a comma")
    _record(
        session_factory,
        at=T0 + timedelta(seconds=1),
        server_id=None,
        server_name=None,
        request_id="req-2",
    )

    text_out = _export(session_factory, "csv")
    rows = list(csv.reader(io.StringIO(text_out)))

    assert text_out.splitlines()[0] == ",".join(EXPORT_KEYS)
    assert rows[1:] == [
        [
            "2026-03-01T09:30:00.123456Z",
            "T1",
            "C1",
            "U0ALICE",
            "reboot",
            "42",
            "web-1",
            "succeeded",
            "two\nlines, and a comma",
            "req-1",
        ],
        [
            "2026-03-01T09:30:01.123456Z",
            "T1",
            "C1",
            "U0ALICE",
            "reboot",
            "",
            "",
            "succeeded",
            "",
            "req-2",
        ],
    ]


def test_export_is_oldest_first_and_filters_by_time(
    session_factory: sessionmaker[Session],
) -> None:
    _fill(session_factory, 4)

    lines = _export(
        session_factory,
        "jsonl",
        since=T0 + timedelta(minutes=2),
        until=T0 + timedelta(minutes=4),
    ).splitlines()

    assert [json.loads(line)["request_id"] for line in lines] == ["req-2", "req-3"]


def test_export_refuses_an_unknown_format(
    session_factory: sessionmaker[Session],
) -> None:
    with pytest.raises(ValueError, match="unknown export format 'xml'"):
        _export(session_factory, "xml")


def test_to_dict_matches_the_export_shape(
    session_factory: sessionmaker[Session],
) -> None:
    entry = _record(session_factory)

    assert audit.to_dict(entry) == {
        "at": "2026-03-01T09:30:00.123456Z",
        "team": "T1",
        "channel": "C1",
        "user": "U0ALICE",
        "action": "reboot",
        "server_id": 42,
        "server_name": "web-1",
        "outcome": "succeeded",
        "detail": "",
        "request_id": "req-1",
    }


def test_export_reads_a_snapshot_while_others_append(
    session_factory: sessionmaker[Session],
) -> None:
    # On SQLite this also shows the export holds no write lock: the append in
    # the middle of it would otherwise wait and fail.
    _fill(session_factory, 3)
    out = _CallOnFirstWrite(
        lambda: _record(session_factory, request_id="written-meanwhile")
    )

    with session_scope(session_factory) as session:
        count = audit.export(session, out)

    assert count == 3
    assert [json.loads(line)["request_id"] for line in out.getvalue().splitlines()] == [
        "req-1",
        "req-2",
        "req-3",
    ]
    assert _verify(session_factory) == audit.VerifyResult(ok=True, checked=4)


def _count_entry_selects(engine: Engine) -> list[str]:
    """Record every SELECT that reads ``audit_entries`` rows on ``engine``."""
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and (
            "FROM audit_entries" in statement
        ):
            statements.append(statement)

    return statements


@pytest.mark.parametrize(
    ("entries", "batch_size", "queries"),
    [(25, 10, 3), (20, 10, 3), (7, 100, 1), (0, 10, 1)],
)
def test_export_reads_in_batches_of_the_given_size(
    engine: Engine,
    session_factory: sessionmaker[Session],
    entries: int,
    batch_size: int,
    queries: int,
) -> None:
    # A full last batch needs one more query to learn nothing follows.
    _fill(session_factory, entries)
    statements = _count_entry_selects(engine)
    out = io.StringIO()

    with session_scope(session_factory) as session:
        count = audit.export(session, out, batch_size=batch_size)

    assert count == entries
    assert len(statements) == queries
    assert all("LIMIT" in statement.upper() for statement in statements)
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == [
        f"req-{number}" for number in range(1, entries + 1)
    ]


def test_verify_reads_in_batches_of_the_given_size(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    _fill(session_factory, 25)
    statements = _count_entry_selects(engine)

    with session_scope(session_factory) as session:
        result = audit.verify(session, batch_size=4)

    assert result == audit.VerifyResult(ok=True, checked=25)
    # ceil(25 / 4) = 7 pages, and no query without a LIMIT.
    assert len(statements) == 7
    assert all("LIMIT" in statement.upper() for statement in statements)


def test_verify_finds_a_change_on_a_later_page(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    _fill(session_factory, 12)
    with engine.begin() as connection:
        connection.execute(
            update(AuditEntry).where(AuditEntry.seq == 10).values(detail="edited")
        )

    with session_scope(session_factory) as session:
        result = audit.verify(session, batch_size=3)

    assert result == audit.VerifyResult(
        ok=False, checked=10, first_bad_seq=10, problem="entry 10 was changed"
    )


def test_export_memory_does_not_grow_with_the_log(
    session_factory: sessionmaker[Session],
) -> None:
    # Peak Python allocations while exporting 300 and 1,200 entries to a
    # sink that keeps nothing: with batches of 50 both peaks stay under one
    # bound, where loading the whole log would grow about fourfold.
    def peak_exporting(total: int) -> int:
        with session_scope(session_factory) as session:
            before = session.scalar(select(func.count()).select_from(AuditEntry))
            for number in range(before + 1, total + 1):
                audit.record(
                    session,
                    team="T1",
                    channel="C1",
                    user="U0ALICE",
                    action="list",
                    outcome="succeeded",
                    request_id=f"req-{number}",
                    detail="x" * 500,
                    at=T0 + timedelta(seconds=number),
                )
        sink = _Discard()
        tracemalloc.start()
        try:
            with session_scope(session_factory) as session:
                count = audit.export(session, sink, batch_size=50)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert count == total
        return peak

    small = peak_exporting(300)
    large = peak_exporting(1200)

    assert large < 600_000
    assert large < small * 2


class _Discard(io.TextIOBase):
    """A text sink that counts characters and keeps none."""

    def __init__(self) -> None:
        super().__init__()
        self.chars = 0

    def write(self, text: str, /) -> int:
        self.chars += len(text)
        return len(text)


def test_a_paged_export_reads_one_snapshot_across_its_pages(
    session_factory: sessionmaker[Session],
) -> None:
    # One entry per query: the append made after the first page must not
    # appear on a later one (REPEATABLE READ on PostgreSQL, WAL on SQLite).
    _fill(session_factory, 3)
    out = _CallOnFirstWrite(
        lambda: _record(session_factory, request_id="written-meanwhile")
    )

    with session_scope(session_factory) as session:
        count = audit.export(session, out, batch_size=1)

    assert count == 3
    assert [json.loads(line)["request_id"] for line in out.getvalue().splitlines()] == [
        "req-1",
        "req-2",
        "req-3",
    ]


# Verifying


def test_verify_an_intact_chain(session_factory: sessionmaker[Session]) -> None:
    _fill(session_factory, 5)

    assert _verify(session_factory) == audit.VerifyResult(
        ok=True, checked=5, first_bad_seq=None, problem=""
    )


def test_verify_an_empty_log(session_factory: sessionmaker[Session]) -> None:
    assert _verify(session_factory) == audit.VerifyResult(ok=True, checked=0)


def test_verify_names_an_entry_changed_behind_its_back(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    _fill(session_factory, 5)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_entries SET detail = 'nothing to see' WHERE seq = 3")
        )

    assert _verify(session_factory) == audit.VerifyResult(
        ok=False, checked=3, first_bad_seq=3, problem="entry 3 was changed"
    )


def test_verify_names_an_entry_deleted_from_the_middle(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    _fill(session_factory, 5)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_entries WHERE seq = 3"))

    assert _verify(session_factory) == audit.VerifyResult(
        ok=False,
        checked=3,
        first_bad_seq=3,
        problem="entry 3 is missing (the chain jumps from 2 to 4)",
    )


def test_verify_names_the_first_of_several_deleted_entries(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    _fill(session_factory, 5)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_entries WHERE seq IN (1, 2)"))

    assert _verify(session_factory) == audit.VerifyResult(
        ok=False,
        checked=1,
        first_bad_seq=1,
        problem="entries 1 to 2 are missing (the chain starts at 3)",
    )


def test_verify_names_entries_deleted_from_the_end(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    _fill(session_factory, 5)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_entries WHERE seq >= 4"))

    assert _verify(session_factory) == audit.VerifyResult(
        ok=False,
        checked=3,
        first_bad_seq=4,
        problem=(
            "entries 4 to 5 are missing (the log ends at 3; the last one written was 5)"
        ),
    )


def test_verify_notices_a_wiped_log(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    _fill(session_factory, 3)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_entries"))

    assert _verify(session_factory) == audit.VerifyResult(
        ok=False,
        checked=0,
        first_bad_seq=1,
        problem="entries 1 to 3 are missing (the log ends at 0; the last one "
        "written was 3)",
    )


def test_an_entry_after_a_cut_off_end_keeps_the_gap_visible(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    _fill(session_factory, 4)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_entries WHERE seq = 4"))

    later = _record(session_factory, request_id="req-later")

    assert later.seq == 5
    assert _verify(session_factory) == audit.VerifyResult(
        ok=False,
        checked=4,
        first_bad_seq=4,
        problem="entry 4 is missing (the chain jumps from 3 to 5)",
    )


def test_verify_notices_a_missing_head_record(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    _fill(session_factory, 2)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_head"))

    assert _verify(session_factory) == audit.VerifyResult(
        ok=False,
        checked=2,
        first_bad_seq=2,
        problem="the audit log's head record is missing",
    )


def test_verify_names_a_forged_entry_appended_at_the_end(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    _fill(session_factory, 5)
    with session_scope(session_factory) as session:
        fourth = session.scalars(select(AuditEntry).where(AuditEntry.seq == 4)).one()
        stolen_link = fourth.prev_hash
    forged = AuditEntry(
        seq=6,
        at=T0 + timedelta(minutes=10),
        team="T1",
        channel="C1",
        user="U0MALLORY",
        action="delete",
        server_id=42,
        server_name="web-1",
        outcome="approved",
        detail="",
        request_id="req-forged",
        prev_hash=stolen_link,
    )
    # A well-formed hash, but over a link to the wrong predecessor.
    forged.hash = audit.entry_hash(forged)
    with engine.begin() as connection:
        connection.execute(insert(AuditEntry.__table__), [_row(forged)])

    assert _verify(session_factory) == audit.VerifyResult(
        ok=False,
        checked=6,
        first_bad_seq=6,
        problem="entry 6 was inserted or its predecessor altered",
    )


def test_verify_names_a_forged_entry_inserted_in_the_middle(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    _fill(session_factory, 5)
    forged = AuditEntry(
        seq=3,
        at=T0 + timedelta(minutes=2, seconds=30),
        team="T1",
        channel="C1",
        user="U0MALLORY",
        action="policy",
        outcome="succeeded",
        detail="delete=allow",
        request_id="req-forged",
        prev_hash="f" * 64,
        hash="e" * 64,
    )
    with engine.begin() as connection:
        # Make room at position 3 in two steps, as UNIQUE(seq) is checked per row.
        connection.execute(
            text("UPDATE audit_entries SET seq = seq + 1000 WHERE seq >= 3")
        )
        connection.execute(
            text("UPDATE audit_entries SET seq = seq - 999 WHERE seq >= 1000")
        )
        connection.execute(insert(AuditEntry.__table__), [_row(forged)])

    assert _verify(session_factory) == audit.VerifyResult(
        ok=False,
        checked=3,
        first_bad_seq=3,
        problem="entry 3 was inserted or changed",
    )


def _row(entry: AuditEntry) -> dict[str, object]:
    return {
        column.key: getattr(entry, column.key)
        for column in AuditEntry.__table__.columns
        if column.key != "id"
    }
