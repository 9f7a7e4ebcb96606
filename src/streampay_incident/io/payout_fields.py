"""Payout export fields: the pinned record format, one validator per field, column builders.

Used by the record parser (:mod:`.payout_parser`) on both of its paths; see
:mod:`streampay_incident.io.payouts` for how an export is read.
"""

from __future__ import annotations

import base64
import binascii
import collections
import itertools
import operator
import re
import types
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from ..amounts import MAX_INT64, AmountError, parse_stroops
from ..errors import shown
from ..model import NATIVE, NO_MEMO, Asset, Memo, MemoType, Payout, PayoutStatus
from ..stellar.hashes import TX_HASH
from ..stellar.strkey import account_problem
from ..timefmt import in_range, parse_rfc3339

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

_HEX64 = TX_HASH
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
