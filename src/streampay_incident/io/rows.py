"""Reading exports row by row, with the line each row came from.

Formats: JSON Lines (one object per line), CSV with a header row, or a JSON
document holding an array of objects. Empty CSV cells and JSON ``null`` are
absent (the key is dropped). JSON numbers keep their exact text
(:class:`JsonNumber`), so an amount like ``25.1000001`` never goes through a
float. Anything shaped like a Stellar secret seed is refused without being
echoed, whatever field it sits in.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import attrs

from ..errors import InputError, InputProblem, SecretSeedError
from ..stellar.strkey import is_muxed_account, is_secret_seed
from .strict_json import JsonProblem, loads

Format = Literal["jsonl", "csv", "json"]

# A secret seed is a StrKey with version byte 18 << 3: 56 base32 characters starting with S.
SEED_PATTERN = re.compile(r"(?<![A-Z2-7])S[A-Z2-7]{55}(?![A-Z2-7])")
# Every seed, alone or glued to other text, holds this: a cheap first look (C-speed, no
# look-arounds), then the maximal base32 runs of 56+ characters are judged. A run of exactly 56
# starting with S is SEED_PATTERN; a longer run hides a seed ("X" + seed) only when a window
# of it has a seed's checksum (muxed M... addresses are such runs too, and are not seeds).
_SEED_HINT = re.compile(r"S[A-Z2-7]{55}")
_BASE32_RUN = re.compile(r"[A-Z2-7]{56,}")
_RECORD_PATH = re.compile(r"\[([0-9]+)\]\.?(.*)\Z", re.DOTALL)

#: The largest CSV field the readers take (the csv module's default, 128 KiB, is too small
#: for some exports' last_error); set only around each read, never for the whole process.
CSV_FIELD_LIMIT = 16 * 1024 * 1024


@contextlib.contextmanager
def csv_field_limit() -> Iterator[None]:
    """Raise the csv module's field size limit to :data:`CSV_FIELD_LIMIT` inside the block.

    The limit is process-wide state: it is restored on the way out, so code
    outside our readers (a host that mounts the web app) keeps its own.
    """
    previous = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


class JsonNumber(str):
    """A JSON number as the exact text it was written with."""

    __slots__ = ()


@attrs.frozen
class Row:
    """One record and the line it starts on (1-based; for a JSON array, its index)."""

    line: int
    values: dict[str, Any]


def contains_seed(text: str) -> bool:
    """True when ``text`` holds something shaped like a Stellar secret seed.

    That is :data:`SEED_PATTERN` standing alone, or a checksum-valid seed inside
    a longer run of base32 characters (``"X" + seed``) that is not a muxed address.
    """
    if _SEED_HINT.search(text) is None:
        return False
    return any(map(_is_or_hides_seed, _BASE32_RUN.findall(text)))


def may_hold_seed(text: str) -> bool:
    """False only when no string inside ``text`` can hold a seed (:func:`contains_seed`'s
    first look). ``text`` may be JSON: an escape never splits a run of base32 characters,
    so one look at a rendered document answers for every string in it."""
    return _SEED_HINT.search(text) is not None


def hide_seeds(text: str) -> str:
    """``text`` with every base32 run holding a seed replaced by ``S...(hidden)``."""
    if not contains_seed(text):
        return text
    return _BASE32_RUN.sub(
        lambda run: "S...(hidden)" if _is_or_hides_seed(run.group(0)) else run.group(0), text
    )


def _is_or_hides_seed(run: str) -> bool:
    if len(run) == 56:
        return run[0] == "S"  # SEED_PATTERN: the shape alone, checksum or not
    if is_muxed_account(run):
        return False
    start = run.find("S")
    while 0 <= start <= len(run) - 56:
        if is_secret_seed(run[start : start + 56]):
            return True
        start = run.find("S", start + 1)
    return False


def seed_paths(doc: Any) -> list[str]:
    """Where ``doc`` (parsed JSON) holds a seed: ``endpoints[0].url``, ``$`` for ``doc`` itself.

    A key holding one is named ``<key>`` (its text is the secret). Never the value.
    """
    found: list[str] = []
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                name = "<key>" if contains_seed(str(key)) else str(key)
                if name == "<key>":
                    found.append(f"{path}.<key>" if path else "<key>")
                stack.append((f"{path}.{name}" if path else name, value))
        elif isinstance(node, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(node))
        elif isinstance(node, str) and contains_seed(node):
            found.append(path or "$")
    return sorted(set(found))


def seed_problem(source: str, line: int | None, field: str | None) -> InputProblem:
    return InputProblem(
        source,
        line,
        field,
        "value looks like a Stellar secret seed (S...); refusing the input "
        "(the value is not shown; this tool never needs a secret)",
    )


def _seed_fields(values: dict[str, Any]) -> list[str]:
    fields = []
    for key, value in values.items():
        if contains_seed(str(key)) or contains_seed(
            value if isinstance(value, str) else json.dumps(value, default=str)
        ):
            fields.append("<column name>" if contains_seed(str(key)) else str(key))
    return fields


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != ""}


def _json_loads(text: str) -> Any:
    """Strict JSON (:func:`.strict_json.loads`) with every number kept as its exact text."""
    return loads(text, parse_float=JsonNumber, parse_int=JsonNumber)


def sniff_format(head: str, name: str = "") -> Format:
    """Guess the format from the file name, else from the first non-blank character."""
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith(".csv"):
        return "csv"
    stripped = head.lstrip("\ufeff \t\r\n")
    if stripped.startswith("["):
        return "json"
    if stripped.startswith("{"):
        return "jsonl"
    return "csv"


def _iter_jsonl(lines: Iterable[str], source: str) -> Iterator[Row]:
    problems: list[InputProblem] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        seed_in_line = contains_seed(line)
        try:
            obj = _json_loads(line)
        except JsonProblem as exc:
            if seed_in_line:
                problems.append(seed_problem(source, number, None))
            else:
                problems.append(InputProblem(source, number, exc.key, exc.message))
            continue
        if not isinstance(obj, dict):
            problems.append(InputProblem(source, number, None, "expected a JSON object"))
            continue
        if seed_in_line:
            for field in _seed_fields(obj) or [None]:  # type: ignore[list-item]
                problems.append(seed_problem(source, number, field))
            continue
        if problems:
            continue  # keep scanning for problems, stop yielding rows
        yield Row(number, _clean(obj))
    _raise(problems)


def _iter_csv(text_stream: Iterable[str], source: str) -> Iterator[Row]:
    reader = csv.reader(text_stream)
    problems: list[InputProblem] = []
    try:
        with csv_field_limit():
            header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise InputError(InputProblem(source, 1, None, f"not valid CSV ({exc})")) from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    if any(contains_seed(h) for h in header):
        raise SecretSeedError(seed_problem(source, 1, "<column name>"))
    if len(set(header)) != len(header):
        raise InputError(InputProblem(source, 1, None, "duplicate column names in the header"))
    width = len(header)
    last_line = reader.line_num
    while True:
        start = last_line + 1
        try:
            with csv_field_limit():
                cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(InputProblem(source, start, None, f"not valid CSV ({exc})"))
            break
        last_line = reader.line_num
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        if len(cells) != width:
            problems.append(
                InputProblem(source, start, None, f"expected {width} columns, found {len(cells)}")
            )
            continue
        values = dict(zip(header, cells, strict=True))
        for field, value in values.items():
            if contains_seed(value):
                problems.append(seed_problem(source, start, field))
        if problems:
            continue
        yield Row(start, {k: v for k, v in values.items() if v != ""})
    _raise(problems)


def _iter_json_array(text: str, source: str) -> Iterator[Row]:
    try:
        doc = _json_loads(text)
    except JsonProblem as exc:
        if contains_seed(text):
            raise SecretSeedError(seed_problem(source, None, None)) from None
        # "[3].ledger" is record 3's field ledger: name them as every other row problem does.
        record = _RECORD_PATH.match(exc.key or "")
        if record is not None:
            index, field = int(record.group(1)), record.group(2) or None
            raise InputError(InputProblem(source, index, field, exc.message)) from None
        raise InputError(InputProblem(source, exc.lineno, exc.key, exc.message)) from None
    yield from rows_from_json_document(doc, source=source)


def rows_from_json_document(doc: Any, *, source: str, key: str | None = None) -> Iterator[Row]:
    """Rows from a parsed JSON array (or ``{key: [...]}``); ``line`` is the 0-based index."""
    if key is not None and isinstance(doc, dict) and key in doc:
        doc = doc[key]
    if not isinstance(doc, list):
        raise InputError(InputProblem(source, None, None, "expected a JSON array of objects"))
    problems: list[InputProblem] = []
    rows = []
    for index, obj in enumerate(doc):
        if not isinstance(obj, dict):
            problems.append(InputProblem(source, index, None, "expected a JSON object"))
            continue
        fields = _seed_fields(obj)
        if fields:
            problems.extend(seed_problem(source, index, f) for f in fields)
            continue
        rows.append(Row(index, _clean(obj)))
    _raise(problems)
    yield from rows


def _raise(problems: list[InputProblem]) -> None:
    if not problems:
        return
    if any("secret seed" in p.message for p in problems):
        raise SecretSeedError(problems)
    raise InputError(problems)


def iter_text_rows(text: str, *, source: str, fmt: Format | None = None) -> Iterator[Row]:
    """Rows from a whole document held in memory (web bodies, tests)."""
    fmt = fmt or sniff_format(text[:64], source)
    if fmt == "json":
        return _iter_json_array(text, source)
    if fmt == "jsonl":
        return _iter_jsonl(io.StringIO(text), source)
    return _iter_csv(io.StringIO(text, newline=""), source)


STDIN = "-"


def input_name(path: Path | str) -> str:
    """How messages name an input: its path, or ``<stdin>`` for ``-``."""
    return "<stdin>" if str(path) == STDIN else str(path)


def is_stream(path: Path | str) -> bool:
    """True for ``-`` and for anything but a regular file: a FIFO, ``/dev/stdin``, ``<(...)``.

    A stream can be read once, from its start to its end, and never seeked or reopened.
    """
    if str(path) == STDIN:
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False  # opening it reports the problem


def read_text(path: Path | str, *, source: str | None = None) -> str:
    """The whole input at ``path`` (``-``: standard input) as text, read once, never seeked.

    Raises :class:`InputError` naming the input when it cannot be read or is not UTF-8.
    """
    name = source or input_name(path)
    try:
        if str(path) == STDIN:
            raw = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as handle:
                raw = handle.read()
    except FileNotFoundError:
        raise InputError(InputProblem(name, None, None, "file not found")) from None
    except OSError as exc:
        raise InputError(InputProblem(name, None, None, f"cannot read file ({exc})")) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(InputProblem(name, None, None, f"not UTF-8 text ({exc.reason})")) from None


def iter_rows(path: Path | str, *, source: str | None = None) -> Iterator[Row]:
    """Stream the rows of an export file, or of a stream (``-``, a FIFO) read once.

    Raises :class:`InputError` for an unreadable file or (after the stream is
    consumed) for every bad record found, so callers never act on a partial input.
    """
    name = source or input_name(path)
    if is_stream(path):
        text = read_text(path, source=name)
        return iter_text_rows(text, source=name, fmt=sniff_format(text[:64], str(path)))
    path = Path(path)
    try:
        handle = path.open("r", encoding="utf-8", newline="")
        head = handle.read(64)
        handle.seek(0)
    except FileNotFoundError:
        raise InputError(InputProblem(name, None, None, "file not found")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(InputProblem(name, None, None, f"cannot read file ({exc})")) from None
    fmt = sniff_format(head, path.name)
    return _guard_decode(_open_rows(handle, fmt, name), name)


def _open_rows(handle: io.TextIOBase, fmt: Format, name: str) -> Iterator[Row]:
    with handle:
        if fmt == "json":
            yield from _iter_json_array(handle.read(), name)
        elif fmt == "jsonl":
            yield from _iter_jsonl(handle, name)
        else:
            yield from _iter_csv(handle, name)


def _guard_decode(rows: Iterator[Row], name: str) -> Iterator[Row]:
    try:
        yield from rows
    except UnicodeDecodeError as exc:
        raise InputError(InputProblem(name, None, None, f"not UTF-8 text ({exc.reason})")) from None
