"""The CSV writer for audit exports: columns, times, and defused formulas."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from vpsbot.audit_csv import neutralise, write_entries
from vpsbot.slack import messages
from vpsbot.store.models import AuditEntry


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-5", "'-5"),
        ("@cmd", "'@cmd"),
        ("\tindented", "'\tindented"),
        ("\rreturn", "'\rreturn"),
        ("web-01", "web-01"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (12345, "12345"),
    ],
)
def test_neutralise(value, cell):
    assert neutralise(value) == cell


def test_write_entries_writes_the_export_columns_in_order():
    entry = AuditEntry(
        seq=1,
        at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        team="T1",
        channel="C1",
        user="U1",
        action="rename",
        server_id=None,
        server_name='=cmd|" /C calc"!A0',
        outcome="succeeded",
        detail='renamed to "a, b"\nsecond line',
        request_id="req-1",
    )
    out = io.StringIO(newline="")

    count = write_entries(iter([entry, entry]), out)

    assert count == 2
    text = out.getvalue()
    assert text.startswith(
        "at,team,channel,user,action,server_id,server_name,outcome,detail,"
        "request_id\r\n"
    )
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[1] == [
        "2026-03-01T09:30:00.000000Z",
        "T1",
        "C1",
        "U1",
        "rename",
        "",
        '\'=cmd|" /C calc"!A0',
        "succeeded",
        'renamed to "a, b"\nsecond line',
        "req-1",
    ]
    assert rows[2] == rows[1]
    assert len(rows) == 3


def test_write_entries_of_nothing_is_the_header_alone():
    out = io.StringIO(newline="")

    assert write_entries(iter([]), out) == 0
    assert out.getvalue() == (
        "at,team,channel,user,action,server_id,server_name,outcome,detail,"
        "request_id\r\n"
    )


def test_the_nothing_matched_sentence_keeps_typed_text_inert():
    assert messages.export_empty("server=<!channel> `x`") == (
        "No audit entries of this channel match `server=&lt;!channel&gt; 'x'`; "
        "nothing was uploaded."
    )
