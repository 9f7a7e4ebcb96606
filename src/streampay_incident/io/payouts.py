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

import base64
import binascii
import collections
import csv
import io
import itertools
import operator
import re
import types
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from ..amounts import MAX_INT64, AmountError, parse_stroops
from ..errors import InputError, InputProblem, shown
from ..model import NATIVE, NO_MEMO, Asset, Memo, MemoType, Payout, PayoutStatus
from ..stellar.strkey import account_problem, destination_problem
from ..timefmt import in_range, parse_rfc3339
from .rows import (
    Row,
    contains_seed,
    input_name,
    is_stream,
    iter_rows,
    iter_text_rows,
    read_text,
    sniff_format,
)

REQUIRED_FIELDS = (
    "payout_id",
    "settlement_id",
    "destination",
    "asset",
    "amount",
    "status",
    "created_at",
)
OPTIONAL_FIELDS = ("tx_hash", "memo_type", "memo", "idempotency_key", "ledger")
FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS

STATUSES: dict[str, PayoutStatus] = {
    "pending": "pending",
    "submitted": "submitted",
    "confirmed": "confirmed",
    "failed": "failed",
}
MEMO_TYPES: dict[str, MemoType] = {
    "none": "none",
    "text": "text",
    "id": "id",
    "hash": "hash",
    "return": "return",
}
MAX_MEMO_TEXT_BYTES = 28
MAX_UINT64 = 2**64 - 1
MAX_LEDGER = 2**32 - 1  # ledger sequence numbers are uint32 on Stellar

CHUNK_ROWS = 1024

_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")
_DIGITS = re.compile(r"[0-9]+\Z")
_SEVEN_DIGITS = re.compile(r"[0-9]+\.[0-9]{7}\Z")
_ASSET_CODE = re.compile(r"[A-Za-z0-9]{1,12}\Z")
# The shape almost every exporter writes; anything else goes through timefmt.parse_rfc3339.
_PLAIN_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})\Z"
)

# A memo_type given with an empty or absent memo is an empty memo of that type, not an error.
# (None: no memo_type either, so no memo at all.)
_EMPTY_MEMOS: dict[str | None, Memo] = {
    None: NO_MEMO,
    "none": NO_MEMO,
    "text": Memo("text", b""),
    "id": Memo("id", None),
    "hash": Memo("hash", None),
    "return": Memo("return", None),
}

Progress = Callable[[int], None]


class FieldError(ValueError):
    """One field of one record is wrong. ``field`` names it; the message never echoes secrets."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _short(value: Any) -> str:
    """A value for an error message, cut to 80 characters (:func:`~..errors.shown`)."""
    return shown(value)


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def json_integer(number: str) -> int | None:
    """The integer a JSON number's text denotes (``12``, ``12.0``, ``1.2e1``), or None."""
    try:
        value = Decimal(number)
    except InvalidOperation:
        return None
    # Bound the exponent before converting, so "1e999999999" cannot allocate a huge int.
    if not value.is_finite() or value.adjusted() > 40 or value != value.to_integral_value():
        return None
    return int(value)


def _integer(value: str | int) -> int | None:
    """An integral JSON number (or a Python int from a host) as an int; None for anything else."""
    return value if isinstance(value, int) else json_integer(value)


def _text(value: Any) -> str:
    """A text field: a string, or an integral number (database ids often are)."""
    if type(value) is str:
        return value
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        # A JsonNumber (a str subclass holding the number's text) or an int.
        integer = _integer(value)
        if integer is None:
            raise FieldError("expected a string or an integer")
        return str(integer)
    raise FieldError(f"expected a string, found {_json_kind(value)}")


def _identifier(value: Any) -> str:
    text = _text(value)
    if text.isspace():
        raise FieldError("is blank")
    return text


def _unsigned(value: Any, *, limit: int, what: str) -> int:
    """A non-negative integer: decimal digits (leading zeros allowed) or an integral JSON number."""
    if type(value) is str:
        if not _DIGITS.match(value):
            raise FieldError(f"expected an integer {what} (decimal digits only)")
        if len(value.lstrip("0")) > len(str(limit)):  # int() of 4,301+ digits raises
            raise FieldError(f"{what} is larger than {limit}")
        integer: int | None = int(value)
    elif isinstance(value, (str, int)) and not isinstance(value, bool):
        integer = _integer(value)
        if integer is None:
            if _DIGITS.match(str(value)):  # only digits: refused for its size
                raise FieldError(f"{what} is larger than {limit}")
            raise FieldError(f"expected an integer {what}")
    else:
        raise FieldError(f"expected an integer {what}, found {_json_kind(value)}")
    assert integer is not None
    if integer < 0:
        raise FieldError(f"{what} must not be negative")
    if integer > limit:
        raise FieldError(f"{what} is larger than {limit}")
    return integer


def parse_asset(text: str) -> Asset:
    """``native``/``XLM`` -> :data:`~streampay_incident.model.NATIVE`; ``CODE:ISSUER`` -> credit.

    The code is 1-12 ASCII letters or digits and the issuer a checksum-valid
    ``G...`` account ID. Raises ``ValueError``.
    """
    if text in ("native", "XLM"):
        return NATIVE
    code, colon, issuer = text.partition(":")
    if not colon:
        raise ValueError("expected native, XLM or CODE:ISSUER")
    if not _ASSET_CODE.match(code):
        raise ValueError("asset code must be 1-12 letters or digits")
    problem = account_problem(issuer)
    if problem is not None:
        raise ValueError(f"asset issuer: {problem}")
    return Asset(code, issuer)


def parse_amount(value: Any) -> int:
    """Stroops from a decimal string or an exact JSON number (never through a float)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):  # JsonNumber is a str: its exact text
        raise FieldError(f"expected a decimal string or number, found {_json_kind(value)}")
    try:
        return parse_stroops(value)
    except AmountError as exc:
        raise FieldError(f"{exc} (expected e.g. 25 or 25.1234567)") from None


def parse_time(text: str) -> datetime:
    """RFC 3339 with an offset -> aware UTC datetime, with a fast path for the common shape."""
    if _PLAIN_TIME.match(text):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:  # e.g. month 13: the shape was right, the date is not
            raise ValueError(f"not a valid date/time ({exc})") from None
        # fromisoformat gives the UTC singleton for Z and +00:00; convert any other offset.
        try:
            return in_range(moment if moment.tzinfo is UTC else moment.astimezone(UTC))
        except OverflowError:  # before year 1 or after 9999 in UTC: the reference says so
            pass
    return parse_rfc3339(text)


def _created_at(value: Any) -> datetime:
    if type(value) is not str:
        raise FieldError("expected an RFC 3339 timestamp string")
    return parse_time(value)


def _ledger(value: Any) -> int:
    return _unsigned(value, limit=MAX_LEDGER, what="ledger sequence")


def _status(value: Any) -> PayoutStatus:
    status = STATUSES.get(value) if type(value) is str else None
    if status is None:
        raise FieldError(f"{_short(value)} is not one of pending|submitted|confirmed|failed")
    return status


def _tx_hash(value: Any) -> str:
    if type(value) is not str or not _HEX64.match(value):
        raise FieldError("expected 64 hex digits (a transaction hash)")
    return value.lower()


def _memo_bytes(text: str) -> bytes:
    """A hash/return memo: 32 bytes written as 64 hex digits or as base64 (standard or URL-safe)."""
    if _HEX64.match(text):
        return bytes.fromhex(text)
    try:
        raw = base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raise FieldError("expected 32 bytes as 64 hex digits or base64") from None
    if len(raw) != 32:
        raise FieldError(f"expected 32 bytes, found {len(raw)} (hex or base64)")
    return raw


def parse_memo(memo_type: Any, memo: Any) -> Memo:
    """The memo of a record from its ``memo_type`` and ``memo`` values (None when absent).

    ``memo_type`` defaults to ``text`` when a memo is given, else ``none``; a
    type with an empty or absent memo is an empty memo. Text is at most 28
    bytes of UTF-8; id a uint64 (leading zeros allowed); hash and return 32
    bytes as hex or base64. Raises :class:`FieldError` naming the field.
    """
    if memo_type is None:
        kind: MemoType = "none" if memo is None else "text"
    else:
        found = MEMO_TYPES.get(memo_type) if type(memo_type) is str else None
        if found is None:
            raise FieldError(
                f"{_short(memo_type)} is not one of none|text|id|hash|return", "memo_type"
            )
        kind = found
    if memo is None or memo == "":
        return _EMPTY_MEMOS[kind]
    try:
        if kind == "none":
            raise FieldError("a memo is given but memo_type is none")
        if kind == "id":
            return Memo("id", _unsigned(memo, limit=MAX_UINT64, what="memo id (uint64)"))
        text = _text(memo)
        if kind == "text":
            raw = text.encode("utf-8")
            if len(raw) > MAX_MEMO_TEXT_BYTES:
                raise FieldError(
                    f"text memo is {len(raw)} bytes of UTF-8; Stellar allows at most "
                    f"{MAX_MEMO_TEXT_BYTES}"
                )
            return Memo("text", raw)
        return Memo(kind, _memo_bytes(text))
    except FieldError as exc:
        raise FieldError(str(exc), "memo") from None


_DROP_POINT = operator.methodcaller("replace", ".", "")


def _amounts(column: Sequence[Any]) -> list[int]:
    """Stroops of a column of amounts: ``amounts.parse_stroops`` of each value.

    Exports usually print amounts as Horizon does, with exactly 7 fraction
    digits; those are read in C (drop the point, ``int``). Any other shape, or
    a value parse_stroops would refuse (zero, beyond int64), goes through it.
    """
    shaped = list(map(_SEVEN_DIGITS.match, column))
    unshaped = map(operator.not_, shaped)
    others = [] if all(shaped) else list(itertools.compress(range(len(column)), unshaped))
    texts = list(column)
    for index in others:
        texts[index] = "0.0000001"  # a stand-in, replaced below
    stroops = list(map(int, map(_DROP_POINT, texts)))
    for index in others:
        stroops[index] = parse_stroops(column[index])
    if stroops and (min(stroops) <= 0 or max(stroops) > MAX_INT64):
        return list(map(parse_stroops, column))  # raises, naming what is wrong
    return stroops


def _memos(memo_types: Sequence[Any], memos: Sequence[Any]) -> list[Memo]:
    """The memo of each record (None where a column has no value)."""
    out = list(map(_EMPTY_MEMOS.__getitem__, memo_types))
    present = map(operator.is_not, memos, itertools.repeat(None))
    for index in itertools.compress(range(len(memos)), present):
        out[index] = parse_memo(memo_types[index], memos[index])
    return out


def _plain_payout_slots() -> tuple[Callable[[Payout, Any], None], ...] | None:
    """Setters of Payout's slots, when building one is nothing more than filling them.

    That holds while Payout is a plain attrs slotted class (no validators,
    converters or post-init); then a chunk of payouts is built column by column
    through the slot descriptors, in C, as its generated ``__init__`` would
    build each one field by field. Otherwise None, and ``Payout(...)`` is called.
    """
    fields = attrs.fields(Payout)
    slots = [Payout.__dict__.get(field.name) for field in fields]
    plain = (
        all(field.validator is None and field.converter is None for field in fields)
        and not hasattr(Payout, "__attrs_post_init__")
        and all(isinstance(slot, types.MemberDescriptorType) for slot in slots)
    )
    return tuple(slot.__set__ for slot in slots) if plain else None  # type: ignore[union-attr]


_PAYOUT_SLOTS = _plain_payout_slots()


def build_payouts(columns: Sequence[Sequence[Any]]) -> list[Payout]:
    """Payouts from one column per Payout field (in field order), all of equal length."""
    if _PAYOUT_SLOTS is None:
        return list(map(Payout, *columns))
    payouts = list(map(object.__new__, itertools.repeat(Payout, len(columns[0]))))
    for set_slot, column in zip(_PAYOUT_SLOTS, columns, strict=True):
        collections.deque(map(set_slot, payouts, column), maxlen=0)
    return payouts


def _plain_text(column: Sequence[Any]) -> bool:
    """Every value a non-blank ``str`` (not None, not a JSON number)."""
    return set(map(type, column)) == {str} and not any(map(str.isspace, column))


def _present(column: Sequence[Any]) -> list[Any]:
    return [value for value in column if value is not None]


class _PayoutParser:
    """Turns records into payouts for one input, keeping per-input caches of validated values."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[InputProblem] = []
        self.payouts: list[Payout] = []
        self.lines = array("I")  # the line of each payout, for duplicate payout_id messages
        self.seen_ids: set[str] = set()
        self.duplicates: list[tuple[int, str]] = []
        # Valid value -> the one shared object every row holding it points at.
        self.destinations: dict[str, str] = {}
        self.assets: dict[str, Asset] = {}

    # -- the fast path: a chunk of records, column by column -------------------------------

    def add_columns(self, lines: Sequence[int], columns: Sequence[Sequence[Any]]) -> bool:
        """Add a chunk whose values are all plainly valid; False (and nothing added) otherwise.

        ``columns`` holds one sequence per name in :data:`FIELDS`, None where a
        record has no value. A False answer sends the chunk to :meth:`add`.
        """
        (ids, settlements, destinations, assets, amounts, statuses, times) = columns[:7]
        (tx_hashes, memo_types, memos, keys, ledgers) = columns[7:]
        if not (_plain_text(ids) and _plain_text(settlements)):
            return False
        try:
            destination_objs = self._cached(destinations, self.destinations, self._destination)
            asset_objs = self._cached(assets, self.assets, self._asset)
            amount_values = _amounts(amounts)
            status_values = list(map(STATUSES.get, statuses))
            if None in status_values:
                return False
            created = self._distinct(times, _created_at)
            if tx_hashes.count(None) == len(tx_hashes):
                hashes: Sequence[str | None] = tx_hashes
            else:
                present = _present(tx_hashes)
                if set(map(type, present)) != {str} or not all(map(_HEX64.match, present)):
                    return False
                hashes = [None if h is None else h.lower() for h in tx_hashes]
            memo_objs = _memos(memo_types, memos)
            present_keys = _present(keys)
            if present_keys and not _plain_text(present_keys):
                return False
            ledger_values = self._distinct(ledgers, _ledger, optional=True)
        except (ValueError, TypeError, KeyError):
            return False
        chunk_ids = set(ids)
        if len(chunk_ids) != len(ids) or not self.seen_ids.isdisjoint(chunk_ids):
            return False
        self.seen_ids.update(chunk_ids)
        self.payouts += build_payouts(
            (
                ids,
                settlements,
                destination_objs,
                asset_objs,
                amount_values,
                status_values,
                created,
                hashes,
                memo_objs,
                keys,
                ledger_values,
            )
        )
        self.lines.extend(lines)
        return True

    @staticmethod
    def _cached(
        column: Sequence[Any], cache: dict[Any, Any], validate: Callable[[Any], Any]
    ) -> Sequence[Any]:
        """Each value's cached object, validating (and caching) the values not seen before."""
        lookup = operator.itemgetter(*column)
        try:
            found = lookup(cache)
        except KeyError:
            for value in [value for value in set(column) if value not in cache]:
                if type(value) is not str:
                    raise TypeError("not a plain string") from None
                cache[value] = validate(value)
            found = lookup(cache)
        return [found] if len(column) == 1 else found

    @staticmethod
    def _distinct(
        column: Sequence[Any], parse: Callable[[Any], Any], *, optional: bool = False
    ) -> list[Any]:
        """Parse each distinct value once; equal values share the parsed object."""
        parsed: dict[Any, Any] = {}
        for value in dict.fromkeys(column):
            if value is None and optional:
                parsed[None] = None
            elif type(value) is not str:
                raise TypeError("not a plain string")
            else:
                parsed[value] = parse(value)
        return list(map(parsed.__getitem__, column))

    def _destination(self, address: str) -> str:
        problem = destination_problem(address)
        if problem is not None:
            raise FieldError(problem)
        return address

    def _asset(self, text: str) -> Asset:
        return parse_asset(text)

    # -- the careful path: one record, every problem named ---------------------------------

    def add(self, row: Row) -> None:
        """Validate one record; append its payout, or record one problem per bad field."""
        get = row.values.get
        line = row.line
        before = len(self.problems)
        payout_id = self._required(get, line, "payout_id", _identifier)
        settlement_id = self._required(get, line, "settlement_id", _identifier)
        destination = self._required(get, line, "destination", self._careful_destination)
        asset = self._required(get, line, "asset", self._careful_asset)
        amount = self._required(get, line, "amount", parse_amount)
        status = self._required(get, line, "status", _status)
        created_at = self._required(get, line, "created_at", _created_at)
        tx_hash = self._optional(get, line, "tx_hash", _tx_hash)
        idempotency_key = self._optional(get, line, "idempotency_key", _identifier)
        ledger = self._optional(get, line, "ledger", _ledger)
        memo = NO_MEMO
        try:
            memo = parse_memo(get("memo_type"), get("memo"))
        except FieldError as exc:
            self._problem(line, exc.field, str(exc))
        if payout_id is not None:
            if payout_id in self.seen_ids:
                self.duplicates.append((line, payout_id))
                return
            self.seen_ids.add(payout_id)
        if len(self.problems) != before:
            return
        self.payouts.append(
            Payout(
                payout_id,
                settlement_id,
                destination,
                asset,
                amount,
                status,
                created_at,
                tx_hash,
                memo,
                idempotency_key,
                ledger,
            )
        )
        self.lines.append(line)

    def _problem(self, line: int, field: str | None, message: str) -> None:
        self.problems.append(InputProblem(self.source, line, field, message))

    def _required(
        self, get: Callable[[str], Any], line: int, field: str, parse: Callable[[Any], Any]
    ) -> Any:
        """``parse(value)``, or None after recording why the field is missing or wrong."""
        value = get(field)
        if value is None:
            self._problem(line, field, "missing required field")
            return None
        return self._parsed(value, line, field, parse)

    def _optional(
        self, get: Callable[[str], Any], line: int, field: str, parse: Callable[[Any], Any]
    ) -> Any:
        value = get(field)
        return None if value is None else self._parsed(value, line, field, parse)

    def _parsed(self, value: Any, line: int, field: str, parse: Callable[[Any], Any]) -> Any:
        try:
            return parse(value)
        except ValueError as exc:  # FieldError, AmountError and timestamp errors are ValueErrors
            self._problem(line, field, str(exc))
            return None

    def _careful_destination(self, value: Any) -> str:
        address = _text(value)
        return self.destinations.setdefault(address, self._destination(address))

    def _careful_asset(self, value: Any) -> Asset:
        text = _text(value)
        asset = self.assets.get(text)
        if asset is None:
            asset = self.assets[text] = parse_asset(text)
        return asset

    # -- the end -------------------------------------------------------------------------

    def finish(self) -> list[Payout]:
        """The payouts in input order, or :class:`InputError` listing every problem."""
        if self.duplicates:
            wanted = {payout_id for _line, payout_id in self.duplicates}
            first_line: dict[str, int] = {}
            for payout, line in zip(self.payouts, self.lines, strict=True):
                if payout.payout_id in wanted:
                    first_line.setdefault(payout.payout_id, line)
            for line, payout_id in self.duplicates:
                seen = first_line.get(payout_id)
                where = f" (first used on line {seen})" if seen is not None else ""
                self._problem(line, "payout_id", f"payout_id is not unique{where}")
        if self.problems:
            order = {name: i for i, name in enumerate(FIELDS)}
            self.problems.sort(
                key=lambda p: (
                    -1 if p.line is None else p.line,
                    order.get(p.field or "", len(order)),
                )
            )
            raise InputError(self.problems)
        return self.payouts


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
        text = read_text(path, source=name)
        if sniff_format(text[:64], str(path)) == "csv":
            try:
                return _read_plain_csv(lambda: io.StringIO(text, newline=""), name, progress)
            except _NotPlainCsv:
                pass
        rows = iter_text_rows(text, source=name, fmt=sniff_format(text[:64], str(path)))
        return payouts_from_rows(rows, source=name, progress=progress)
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
