"""Audit entries as CSV for spreadsheets, with formulas defused.

The columns are the JSONL export's keys, in the same order; times are UTC
with a ``Z``. A cell that a spreadsheet would run as a formula (one starting
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading
``'``, so opening an export never runs what someone typed into a server
name or a reason. Rows are written as they come: nothing is collected.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from typing import Any, TextIO

from sqlalchemy import Row

from vpsbot.audit import FIELDS, to_dict
from vpsbot.store.models import AuditEntry

logger = logging.getLogger(__name__)

# What a spreadsheet may read as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> str:
    """One cell's text: empty for ``None``, quoted with ``'`` if formula-like."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def write_entries(entries: Iterable[AuditEntry | Row[Any]], out: TextIO) -> int:
    """Write a header row, then one row per entry, as they come.

    Args:
        entries: audit entries, or rows with the same column names.
        out: a text file opened with ``newline=""``.

    Returns:
        How many entries were written.
    """
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELDS)
    count = 0
    for entry in entries:
        shape = to_dict(entry)
        writer.writerow([neutralise(shape[name]) for name in FIELDS])
        count += 1
    return count
