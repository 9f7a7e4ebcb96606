"""Plain CSV payout exports straight into columns, without the csv module when no quote is seen.

Raises ``_NotPlainCsv`` for anything unusual; :func:`~streampay_incident.io.payouts.read_payouts`
then reads the file with the reference row reader.
"""

from __future__ import annotations

import csv
import io
import itertools
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..model import Payout
from .payout_fields import CHUNK_ROWS, FIELDS, Progress
from .payout_parser import _PayoutParser
from .rows import Row, contains_seed, csv_field_limit


class _NotPlainCsv(Exception):
    """The fast CSV reader met something the reference reader must judge."""


# A cheap superset of rows.SEED_PATTERN (no look-arounds); hits are then checked at their edges.
_SEED_HINT = re.compile(r"S[A-Z2-7]{55}")
_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_BLOCK_CHARS = 1 << 16
_SPLIT_FIELDS = operator.methodcaller("split", ",")


def _may_hold_seed(text: str) -> bool:
    """True when ``text`` may hold a value shaped like a secret seed (rows.SEED_PATTERN).

    A hint counts when no base32 character touches it on either side, as
    SEED_PATTERN's look-arounds say; a hint that is part of a longer base32
    run counts when :func:`~.rows.contains_seed` finds a seed glued into the
    run (``"X" + seed``; a muxed address is no seed). Text made of cells
    joined by commas and newlines answers exactly as cell by cell would.
    """
    size = len(text)
    for hit in _SEED_HINT.finditer(text):
        start, end = hit.span()
        if (start == 0 or text[start - 1] not in _BASE32) and (
            end == size or text[end] not in _BASE32
        ):
            return True
        # Part of a longer base32 run: a muxed address, or a seed glued to text ("X" + seed).
        while start > 0 and text[start - 1] in _BASE32:
            start -= 1
        while end < size and text[end] in _BASE32:
            end += 1
        if contains_seed(text[start:end]):
            return True
    return False


def _line_breaks(cell: str) -> int:
    """Line breaks inside a quoted cell, counted as the csv module counts lines."""
    return cell.count("\n") + cell.count("\r") - cell.count("\r\n")


def _record_lines(records: list[list[str]], first: int, last: int) -> Sequence[int]:
    """The line each record starts on, given the records span lines ``first``..``last``."""
    if last - first + 1 == len(records):
        return range(first, last + 1)  # one line per record: the usual case
    lines = []
    line = first
    for cells in records:
        lines.append(line)
        line += 1 + sum(_line_breaks(cell) for cell in cells if "\n" in cell or "\r" in cell)
    if line != last + 1:  # pragma: no cover - the csv module counted otherwise; let it judge
        raise _NotPlainCsv
    return lines


def _record_chunks(
    handle: io.TextIOBase, first_line: int
) -> Iterator[tuple[Sequence[int], list[list[str]]]]:
    """``(lines, records)`` chunks of the CSV body; raises :class:`_NotPlainCsv` on a doubt.

    Text without quotes or lone carriage returns is what the csv module
    would make of it split on newlines and commas, which is several times
    faster; from the first block that has any of those on, the csv module
    reads the rest. A possible secret seed anywhere sends the whole file to
    the reference reader, which refuses it with the exact message.
    """
    line = first_line
    while block := handle.read(_BLOCK_CHARS):
        if not block.endswith("\n"):
            block += handle.readline()  # end on a line end (also mends a split CRLF)
        crlf = "\r" in block
        lone_cr = crlf and block.count("\r") != block.count("\r\n")
        if '"' in block or lone_cr:
            rest = itertools.chain(io.StringIO(block, newline=""), handle)
            yield from _csv_module_chunks(rest, line)
            return
        if _may_hold_seed(block):
            raise _NotPlainCsv
        text_lines = block.split("\r\n" if crlf else "\n")
        if not text_lines[-1]:
            text_lines.pop()
        yield range(line, line + len(text_lines)), list(map(_SPLIT_FIELDS, text_lines))
        line += len(text_lines)


def _csv_module_chunks(
    text_lines: Iterator[str], first_line: int
) -> Iterator[tuple[Sequence[int], list[list[str]]]]:
    reader = csv.reader(text_lines)
    line = first_line - 1  # the last line read so far
    while True:
        try:
            with csv_field_limit():
                records = list(itertools.islice(reader, CHUNK_ROWS))
        except csv.Error:
            raise _NotPlainCsv from None
        if not records:
            return
        last = first_line - 1 + reader.line_num
        lines = _record_lines(records, line + 1, last)
        line = last
        if _may_hold_seed("\n".join(map(",".join, records))):
            raise _NotPlainCsv
        yield lines, records


def _read_plain_csv(
    open_text: Callable[[], io.TextIOBase], source: str, progress: Progress | None
) -> list[Payout]:
    """CSV straight into columns; raises :class:`_NotPlainCsv` for anything unusual.

    Follows ``rows._iter_csv``: header names stripped (and a BOM dropped),
    blank lines skipped, empty cells absent, lines are file lines.
    ``open_text`` opens the text (with ``newline=""``).
    """
    with open_text() as handle:
        try:
            header_line = handle.readline()
            if not header_line:
                return []
            if '"' in header_line or _may_hold_seed(header_line):
                raise _NotPlainCsv
            names = header_line.rstrip("\r\n").split(",")
            header = [name.strip().lstrip("\ufeff") for name in names]
            width = len(header)
            if width < 2 or len(set(header)) != width:
                raise _NotPlainCsv
            parser = _PayoutParser(source)
            for lines, records in _record_chunks(handle, 2):
                _add_records(parser, header, lines, records)
                if progress is not None and lines:
                    progress(lines[-1])
        except UnicodeDecodeError:
            raise _NotPlainCsv from None
    return parser.finish()


def _add_records(
    parser: _PayoutParser, header: list[str], lines: Sequence[int], records: list[list[str]]
) -> None:
    width = len(header)
    if set(map(len, records)) != {width}:
        lines, records = _drop_blank(lines, records, width)
        if not records:
            return
    position = {name: i for i, name in enumerate(header)}
    by_column = list(zip(*records, strict=True))
    columns: list[Sequence[Any]] = []
    for field in FIELDS:
        index = position.get(field)
        if index is None:
            columns.append([None] * len(records))
        elif "" in by_column[index]:
            columns.append([cell or None for cell in by_column[index]])
        else:
            columns.append(by_column[index])
    if not parser.add_columns(lines, columns):
        for line, cells in zip(lines, records, strict=True):
            parser.add(Row(line, {k: v for k, v in zip(header, cells, strict=True) if v}))


def _drop_blank(
    lines: Sequence[int], records: list[list[str]], width: int
) -> tuple[list[int], list[list[str]]]:
    """Skip blank lines; any other record of the wrong width is the reference reader's to report."""
    kept_lines, kept = [], []
    for line, cells in zip(lines, records, strict=True):
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        if len(cells) != width:
            raise _NotPlainCsv
        kept_lines.append(line)
        kept.append(cells)
    return kept_lines, kept
