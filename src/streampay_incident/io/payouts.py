"""Payout exports (CSV, JSON Lines or a JSON array) -> :class:`~streampay_incident.model.Payout`.

The record format is pinned (see the README); this module is the one place
it is validated. Every bad record gets its own
:class:`~streampay_incident.errors.InputProblem` naming the source, the line
and the field; all of them are collected and raised once, so on-call fixes
the export in one go and the checks never run on a partial input.

Exports run to millions of rows, so records are validated a chunk at a time,
column by column, with the per-value work done by C-level ``map`` calls and
caches: each distinct destination, asset, timestamp and ledger string is
validated once and every row holding it shares one object. A chunk holding
anything unusual (a bad value, a JSON number where text is expected, a
duplicate payout_id) is re-read record by record by the careful path, which
is the reference: it names every problem, and on valid input it builds
exactly what the fast path builds (tests hold the two to that).

CSV, the usual export, is read in 64 KiB blocks split on newlines and commas
while a block holds no quote (what the csv module would make of it), by the
csv module from the first quoted block on, and by the reference row reader
(:func:`~streampay_incident.io.rows.iter_rows`) whenever something is off: a
possible secret seed, a wrong column count, bad UTF-8. Other formats always
go through the row reader.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import InputError, InputProblem
from ..model import Payout
from .payout_csv import _NotPlainCsv, _read_plain_csv
from .payout_fields import (
    CHUNK_ROWS,
    FIELDS,
    MEMO_TYPES,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    STATUSES,
    FieldError,
    Progress,
    json_integer,
    parse_amount,
    parse_asset,
    parse_memo,
    parse_time,
)
from .payout_parser import _PayoutParser
from .rows import Row, input_name, is_stream, iter_rows, iter_text_rows, read_text, sniff_format


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def payouts_from_rows(
    rows: Iterable[Row], *, source: str, progress: Progress | None = None
) -> list[Payout]:
    """Validate payout records: the payouts in input order, or one InputError naming every problem.

    ``source`` names the input in the problems (a file name, or ``request
    body``). Problems from the row reader itself (bad JSON, secret seeds)
    raise from the reader. ``progress``, when given, is called with the line
    reached after each chunk.
    """
    parser = _PayoutParser(source)
    for chunk in _chunks(rows, CHUNK_ROWS):
        lines = [row.line for row in chunk]
        values = [row.values for row in chunk]
        columns = [[record.get(field) for record in values] for field in FIELDS]
        if not parser.add_columns(lines, columns):
            for row in chunk:
                parser.add(row)
        if progress is not None:
            progress(lines[-1])
    return parser.finish()


def _careful_payouts_from_rows(rows: Iterable[Row], *, source: str) -> list[Payout]:
    """The record-by-record reference path alone (tests hold the fast path to it)."""
    parser = _PayoutParser(source)
    for row in rows:
        parser.add(row)
    return parser.finish()


def read_payouts(
    path: Path | str, *, source: str | None = None, progress: Progress | None = None
) -> list[Payout]:
    """Read and validate a payout export: CSV, JSON Lines or a JSON array (by name or content).

    A plain CSV file (the usual multi-million-row export) is read straight
    into columns; anything else, and any CSV the fast reader is not sure
    about (a secret seed, a malformed line, a wrong column count), goes
    through :func:`~streampay_incident.io.rows.iter_rows`, whose rules and
    messages are the reference. ``progress`` is called with the line reached.
    A stream (``-``, a FIFO, ``<(...)``) is read once into memory, never reopened.
    """
    name = source or input_name(path)
    if is_stream(path):
        return payouts_from_text(read_text(path, source=name), source=name, progress=progress)
    path = Path(path)
    try:
        with path.open("r", encoding="utf-8", newline="") as handle:
            head = handle.read(64)
    except FileNotFoundError:
        raise InputError(InputProblem(name, None, None, "file not found")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(InputProblem(name, None, None, f"cannot read file ({exc})")) from None
    if sniff_format(head, path.name) == "csv":
        try:
            return _read_plain_csv(
                lambda: path.open("r", encoding="utf-8", newline=""), name, progress
            )
        except _NotPlainCsv:
            pass
    return payouts_from_rows(iter_rows(path, source=name), source=name, progress=progress)


def payouts_from_text(text: str, *, source: str, progress: Progress | None = None) -> list[Payout]:
    """:func:`read_payouts` for an export already read whole (a stream read once)."""
    if sniff_format(text[:64], source) == "csv":
        try:
            return _read_plain_csv(lambda: io.StringIO(text, newline=""), source, progress)
        except _NotPlainCsv:
            pass
    rows = iter_text_rows(text, source=source, fmt=sniff_format(text[:64], source))
    return payouts_from_rows(rows, source=source, progress=progress)


__all__ = [
    "FIELDS",
    "MEMO_TYPES",
    "OPTIONAL_FIELDS",
    "REQUIRED_FIELDS",
    "STATUSES",
    "FieldError",
    "Progress",
    "json_integer",
    "parse_amount",
    "parse_asset",
    "parse_memo",
    "parse_time",
    "payouts_from_rows",
    "read_payouts",
]
