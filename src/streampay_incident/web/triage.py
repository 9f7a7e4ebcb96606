"""Request bodies into records: the web app's input parsing.

A body is a JSON array of records, an object holding that array under
``payouts`` / ``settlements``, or JSON Lines (``application/x-ndjson``). A
``settlements`` object may also hold a ``payouts`` array (the payouts export,
for the already-paid check). The
records go through the same parsers as the CLI's files and then the same use
cases (:mod:`streampay_incident.usecases`), so the answer is the same
``streampay-incident.report/v1`` document.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from ..errors import InputError, InputProblem, SecretSeedError
from ..io import strict_json
from ..io.rows import (
    JsonNumber,
    Row,
    contains_seed,
    iter_text_rows,
    rows_from_json_document,
    seed_problem,
)
from ..model import Payout, Settlement

SOURCE = "request body"
RecordKind = Literal["payouts", "settlements"]
BodyFormat = Literal["json", "jsonl"]

_JSONL_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/json-lines",
        "application/jsonlines",
    }
)


def body_format(content_type: str | None, text: str) -> BodyFormat:
    """JSON Lines when the media type says so; JSON for a JSON type; else sniffed."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _JSONL_TYPES:
        return "jsonl"
    if media == "application/json" or media.endswith("+json"):
        return "json"
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("{"):
        # One object is the {"payouts": [...]} form; several lines of objects are JSON Lines.
        try:
            strict_json.loads(stripped)
        except strict_json.JsonProblem:
            return "jsonl"
    return "json"


def decode_body(body: bytes) -> str:
    """The body as text; :class:`InputError` when it is not UTF-8."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(InputProblem(SOURCE, None, None, "body is not UTF-8 text")) from None


def rows_from_text(text: str, fmt: BodyFormat, *, kind: RecordKind) -> list[Row]:
    """Every record of a request body as a Row (``line``: JSON Lines line or array index).

    Raises :class:`InputError` naming every bad record; secret seeds are refused unechoed.
    """
    if fmt == "jsonl":
        return list(iter_text_rows(text, source=SOURCE, fmt="jsonl"))
    if not text.strip():
        raise InputError(
            InputProblem(SOURCE, None, None, f"empty body: send a JSON array of {kind}")
        )
    if text.lstrip("\ufeff \t\r\n").startswith("["):
        return list(iter_text_rows(text, source=SOURCE, fmt="json"))
    return _rows_from_object(text, kind)


def read_body(
    body: bytes, content_type: str | None, *, kind: RecordKind
) -> tuple[BodyFormat, list[Row] | InputError]:
    """The body's format and its rows, or the :class:`InputError` naming every bad record.

    Returns the error instead of raising it so that the caller knows whether to
    name problems by array index or by line either way.
    """
    fmt: BodyFormat = "json"
    text = ""
    try:
        text = decode_body(body)
        fmt = body_format(content_type, text)
        return fmt, rows_from_text(text, fmt, kind=kind)
    except InputError as error:
        if contains_seed(text) and not isinstance(error, SecretSeedError):
            # A seed where no record field holds it (a stray array item): refuse it all the same.
            return fmt, SecretSeedError(seed_problem(SOURCE, None, None))
        return fmt, error


def _rows_from_object(text: str, kind: RecordKind) -> list[Row]:
    try:
        doc = strict_json.loads(text, parse_float=JsonNumber, parse_int=JsonNumber)
    except strict_json.JsonProblem as exc:
        if contains_seed(text):
            raise InputError(seed_problem(SOURCE, None, None)) from None
        raise InputError(InputProblem(SOURCE, exc.lineno, exc.key, exc.message)) from None
    if isinstance(doc, dict):
        # Keys beside the records array are never read, but a seed there is refused too.
        fields = [
            "<field name>" if contains_seed(key) else key
            for key, value in doc.items()
            if key != kind and contains_seed(f"{key}\n{json.dumps(value, default=str)}")
        ]
        if fields:
            raise SecretSeedError([seed_problem(SOURCE, None, f) for f in fields])
    if not isinstance(doc, dict) or not isinstance(doc.get(kind), list):
        raise InputError(
            InputProblem(
                SOURCE, None, kind, f"expected a JSON array, or an object with a {kind!r} array"
            )
        )
    return list(rows_from_json_document(doc, source=SOURCE, key=kind))


def problems_json(error: InputError, fmt: BodyFormat) -> list[dict[str, Any]]:
    """One entry per bad record: index (JSON array) or line (JSON Lines), field, message."""
    where = "line" if fmt == "jsonl" else "index"
    return [{where: p.line, "field": p.field, "message": p.message} for p in error.problems]


def settlements_from_body_rows(
    rows: Sequence[Row], *, network_passphrase: str | None
) -> list[Settlement]:
    from ..io.settlements import settlements_from_rows

    return list(settlements_from_rows(rows, source=SOURCE, network_passphrase=network_passphrase))


def payouts_from_body_rows(rows: Sequence[Row]) -> list[Payout]:
    from ..io.payouts import payouts_from_rows

    return list(payouts_from_rows(rows, source=SOURCE))


def payouts_beside_settlements(body: bytes, fmt: BodyFormat) -> list[Payout] | None:
    """The ``payouts`` array of a ``{"settlements": [...], "payouts": [...]}`` body, or None.

    Read with the payouts parser; a problem names the field as
    ``payouts[INDEX].FIELD`` (a secret seed is refused unechoed).
    """
    if fmt != "json":
        return None
    text = decode_body(body)
    if not text.lstrip("\ufeff \t\r\n").startswith("{"):
        return None
    doc = json.loads(text, parse_float=JsonNumber, parse_int=JsonNumber)
    if not isinstance(doc, dict) or "payouts" not in doc:
        return None
    value = doc["payouts"]
    if not isinstance(value, list):
        raise InputError(InputProblem(SOURCE, None, "payouts", "expected a JSON array of payouts"))
    try:
        return payouts_from_body_rows(list(rows_from_json_document(value, source=SOURCE)))
    except InputError as error:
        problems = [
            InputProblem(
                p.source,
                p.line,
                "payouts"
                + ("" if p.line is None else f"[{p.line}]")
                + ("" if not p.field else f".{p.field}"),
                p.message,
            )
            for p in error.problems
        ]
        raise (SecretSeedError if isinstance(error, SecretSeedError) else InputError)(
            problems
        ) from None
