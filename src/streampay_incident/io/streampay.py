"""StreamPay's own ``settlement_outbox`` rows, as its exports and its table give them.

StreamPay-Backend's table (``drizzle/0003_add_settlement_outbox.sql``) is not
the tool's generic settlement format: the key is ``id`` (a uuid), the
idempotency key is ``event_key`` (``settlement:<stream-id>:<ledger>``), the
stream is ``aggregate_id``, and what a worker knows of the transaction (hash,
envelope, amount, asset, destination, escrow, ledger) can only be in the
``payload`` (jsonb), whose keys StreamPay does not document. Every timestamp
is ``timestamp without time zone`` written in UTC.

This module is the *StreamPay profile*: it recognises such rows by their
columns (:func:`detect_profile`), reads every form PostgreSQL prints a
timestamp in (:mod:`~streampay_incident.io.pg_timestamps`), takes the payload's fields by the
first key present or by a configured JSON path (:class:`PayloadPaths`), and
turns each row into the generic values :mod:`streampay_incident.io.settlements`
validates, so there is one validator. Problems name the outbox's own columns
(``id``, ``payload.transactionHash``), never the generic ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, tzinfo
from typing import Any, Literal

import attrs

from ..errors import InputError, InputProblem
from ..model import Settlement
from ..timefmt import format_rfc3339
from .pg_timestamps import parse_pg_timestamp
from .rows import JsonNumber, Row
from .settlements import settlement_from_row

Profile = Literal["streampay", "generic"]
PROFILES: tuple[str, ...] = ("streampay", "generic")

# The columns of StreamPay's settlement_outbox, in the migration's order.
OUTBOX_COLUMNS: tuple[str, ...] = (
    "id",
    "event_key",
    "event_type",
    "aggregate_id",
    "payload",
    "status",
    "attempts",
    "max_attempts",
    "available_at",
    "lease_until",
    "lease_token",
    "last_error",
    "processed_at",
    "created_at",
    "updated_at",
)
# Columns only StreamPay's table has; one of them next to ``id`` identifies the profile.
_OUTBOX_ONLY = frozenset({"event_key", "event_type", "aggregate_id", "payload", "lease_token"})

# Payload keys read for each field, first present wins (StreamPay does not document them).
DEFAULT_PAYLOAD_KEYS: Mapping[str, tuple[str, ...]] = {
    "tx_hash": ("transactionHash", "txHash", "tx_hash", "hash"),
    "envelope_xdr": ("envelopeXdr", "envelope_xdr"),
    "amount": ("amount",),
    "asset": ("asset",),
    "destination": ("destination", "recipient", "to"),
    "escrow": ("escrow", "source", "from"),
    "ledger": ("ledger",),
}
PAYLOAD_FIELDS: tuple[str, ...] = tuple(DEFAULT_PAYLOAD_KEYS)

# Generic settlement field -> the outbox column it comes from (for problems).
_TIME_COLUMNS = ("created_at", "updated_at", "lease_until", "available_at")
_COPIED_COLUMNS = ("status", "attempts", "max_attempts", "last_error", "event_key")

_PATH_STEP = re.compile(r"\.([A-Za-z_$][A-Za-z0-9_$-]*)|\[(?:([0-9]+)|'([^']*)'|\"([^\"]*)\")\]")

# COPY's text format doubles every backslash: JSON escapes \" \n \uXXXX \\ come out as \\" ...
_COPY_DOUBLED = re.compile(r"\\\\(?:[\\\"/bfnrt]|u[0-9a-fA-F]{4})")
WORKING_EXPORTS = (
    'export with `psql -At -c "select row_to_json(t) from settlement_outbox t where ..." '
    "> settlements.jsonl` or `\\copy (select ...) to 'settlements.csv' csv header`"
)


def detect_profile(columns: Iterable[str]) -> Profile:
    """``streampay`` for a row with the outbox's ``id`` and one of its own columns, else generic."""
    names = set(columns)
    if "settlement_id" not in names and "id" in names and names & _OUTBOX_ONLY:
        return "streampay"
    return "generic"


def parse_json_path(text: str) -> tuple[str | int, ...]:
    """``$.result.hash``, ``$['tx hash']``, ``$.hashes[0]`` or a bare key -> its steps."""
    path = text.strip()
    if not path.startswith("$"):
        if not path:
            raise ValueError("empty JSON path")
        return (path,)
    steps: list[str | int] = []
    position = 1
    while position < len(path):
        step = _PATH_STEP.match(path, position)
        if step is None:
            raise ValueError(
                f"{text!r} is not a JSON path such as $.result.hash or $['key'][0] "
                f"(stopped at {path[position:]!r})"
            )
        key, index, single, double = step.groups()
        steps.append(int(index) if index is not None else key or single or double or "")
        position = step.end()
    if not steps:
        raise ValueError(f"{text!r}: a JSON path needs at least one step after $")
    return tuple(steps)


def _show_path(steps: Sequence[str | int]) -> str:
    shown = "payload"
    for step in steps:
        shown += f"[{step}]" if isinstance(step, int) else f".{step}"
    return shown


def _follow(document: Any, steps: Sequence[str | int]) -> Any:
    for step in steps:
        if isinstance(step, int):
            if not isinstance(document, list) or step >= len(document):
                return None
        elif not isinstance(document, dict):
            return None
        document = document[step] if isinstance(step, int) else document.get(step)
    return document


@attrs.frozen
class PayloadPaths:
    """Where each payload field is read: JSON paths tried in order, first non-null wins."""

    paths: Mapping[str, tuple[tuple[str | int, ...], ...]] = attrs.field(
        factory=lambda: {
            field: tuple((key,) for key in keys) for field, keys in DEFAULT_PAYLOAD_KEYS.items()
        }
    )

    @classmethod
    def from_options(cls, specs: Iterable[str]) -> PayloadPaths:
        """Defaults, with each ``FIELD=PATH`` spec replacing that field's keys.

        Repeating a field tries its paths in the order given. ``ValueError``
        names an unknown field or a bad path.
        """
        defaults = cls().paths
        configured: dict[str, list[tuple[str | int, ...]]] = {}
        for spec in specs:
            field, equals, path = spec.partition("=")
            field = field.strip()
            if not equals or field not in DEFAULT_PAYLOAD_KEYS:
                raise ValueError(
                    f"{spec!r}: expected FIELD=JSONPATH with FIELD one of "
                    f"{', '.join(PAYLOAD_FIELDS)} (e.g. tx_hash=$.result.hash)"
                )
            configured.setdefault(field, []).append(parse_json_path(path))
        return cls({**defaults, **{f: tuple(p) for f, p in configured.items()}})

    def find(self, field: str, payload: Mapping[str, Any]) -> tuple[str, Any] | None:
        """``(where, value)`` of the first path holding a non-null value, else None."""
        for steps in self.paths[field]:
            if len(steps) == 1 and type(steps[0]) is str:  # a top-level key: most paths
                value = payload.get(steps[0]) if isinstance(payload, dict) else None
            else:
                value = _follow(payload, steps)
            if value is not None:
                return _show_path(steps), value
        return None


@attrs.frozen
class OutboxReading:
    """How to read outbox rows: payload paths and the zone of offset-less timestamps."""

    payload_paths: PayloadPaths = attrs.field(factory=PayloadPaths)
    source_timezone: tzinfo = UTC


@attrs.frozen
class OutboxRow:
    """One outbox row read through the profile: the settlement and what only StreamPay has.

    Kept small (exports run to millions of rows): the payload's money fields
    are the payouts view's business (:func:`translate_outbox_row`), not kept here.
    """

    settlement: Settlement
    event_key: str | None = None
    aggregate_id: str | None = None
    event_type: str | None = None

    def evidence(self) -> dict[str, Any]:
        """What a finding about this settlement adds from the outbox."""
        shown = {"event_key": self.event_key, "aggregate_id": self.aggregate_id}
        return {k: v for k, v in shown.items() if v is not None}


@attrs.frozen
class _Translated:
    """An outbox row as generic settlement values, and where each one came from."""

    values: dict[str, Any]
    fields: dict[str, str]
    payload: dict[str, Any]
    payload_sources: dict[str, str]


def _load_payload(value: Any, add: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str) and not isinstance(value, JsonNumber):
        # CSV and psql's text output carry jsonb as its JSON text.
        try:
            value = json.loads(value, parse_float=JsonNumber, parse_int=JsonNumber)
        except json.JSONDecodeError as exc:
            add("payload", f"not valid JSON ({exc.msg})")
            return {}
    if not isinstance(value, dict):
        add("payload", f"expected a JSON object, found {type(value).__name__}")
        return {}
    return value


def translate_outbox_row(
    row: Row,
    reading: OutboxReading,
    problems: list[InputProblem],
    source: str,
    *,
    times: bool = False,
) -> _Translated:
    """The generic values of one outbox row; problems (outbox column names) go to ``problems``.

    Timestamps are RFC 3339 text, or with ``times`` the aware UTC datetimes themselves
    (what :func:`~streampay_incident.io.settlements.settlement_from_row` takes as they
    are: no printing and parsing again, a million rows at a time).
    """

    def add(field: str, message: str) -> None:
        problems.append(InputProblem(source, row.line, field, message))

    raw = row.values
    values: dict[str, Any] = {}
    fields: dict[str, str] = {"settlement_id": "id"}
    if "id" in raw:
        values["settlement_id"] = raw["id"]
    for column in _COPIED_COLUMNS:
        if column in raw:
            values[column] = raw[column]
    for column in _TIME_COLUMNS:
        text = raw.get(column)
        if text is None:
            continue
        if not isinstance(text, str) or isinstance(text, JsonNumber):
            add(column, f"expected a timestamp string, found {type(text).__name__}")
            continue
        try:
            moment = parse_pg_timestamp(text, source_timezone=reading.source_timezone)
        except ValueError as exc:
            add(column, f"{text!r}: {exc}")
            continue
        values[column] = moment if times else format_rfc3339(moment)
    payload = _load_payload(raw.get("payload"), add)
    found: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for field in PAYLOAD_FIELDS:
        hit = reading.payload_paths.find(field, payload)
        if hit is None:
            continue
        where, value = hit
        if isinstance(value, dict | list | bool):
            add(where, f"expected a string or number, found {type(value).__name__}")
            continue
        found[field] = str(value)
        sources[field] = where
    for field in ("tx_hash", "envelope_xdr"):
        if field in found:
            values[field] = found.pop(field)
            fields[field] = sources[field]
    return _Translated(values, fields, found, sources)


def _text(raw: Mapping[str, Any], column: str) -> str | None:
    value = raw.get(column)
    return None if value is None else str(value)


def outbox_row_to_settlement(
    row: Row, *, source: str, reading: OutboxReading, network_passphrase: str | None
) -> tuple[OutboxRow | None, list[InputProblem]]:
    """One outbox row read through the profile, or the problems that stop it."""
    problems: list[InputProblem] = []
    translated = translate_outbox_row(row, reading, problems, source, times=True)
    settlement, generic_problems = settlement_from_row(
        Row(row.line, translated.values), source=source, network_passphrase=network_passphrase
    )
    for problem in generic_problems:
        field = translated.fields.get(problem.field or "", problem.field)
        # An outbox timestamp already failed above; its generic echo would say the same twice.
        if not any(p.field == field for p in problems):
            problems.append(attrs.evolve(problem, field=field))
    if problems or settlement is None:
        return None, problems
    return (
        OutboxRow(
            settlement=settlement,
            event_key=_text(row.values, "event_key"),
            aggregate_id=_text(row.values, "aggregate_id"),
            event_type=_text(row.values, "event_type"),
        ),
        [],
    )


def outbox_rows(
    rows: Iterable[Row],
    *,
    source: str,
    reading: OutboxReading,
    network_passphrase: str | None,
) -> list[OutboxRow]:
    """Every row of an outbox export or query, in order; InputError naming every bad row."""
    return list(
        iter_outbox_rows(
            rows, source=source, reading=reading, network_passphrase=network_passphrase
        )
    )


def iter_outbox_rows(
    rows: Iterable[Row],
    *,
    source: str,
    reading: OutboxReading,
    network_passphrase: str | None,
) -> Iterator[OutboxRow]:
    """:func:`outbox_rows` a row at a time. After a bad row nothing more is yielded; when the
    rows run out, InputError names every bad row (a consumer gives no report for them)."""
    problems: list[InputProblem] = []
    for row in rows:
        outbox_row, row_problems = outbox_row_to_settlement(
            row, source=source, reading=reading, network_passphrase=network_passphrase
        )
        if outbox_row is None:
            problems.extend(row_problems)
        elif not problems:
            yield outbox_row
    if problems:
        raise InputError(problems)


def copy_text_problem(lines: Iterable[str], source: str) -> InputProblem | None:
    """A problem when JSON text shows COPY's doubled backslashes, else None.

    ``\\copy (select row_to_json(t) ...) to 'f.jsonl'`` writes COPY's *text*
    format, which doubles every backslash: an escaped quote in ``last_error``
    becomes ``\\\\"`` and breaks the JSON, an escaped newline becomes a literal
    ``\\n``. Such a file is refused whole, naming the exports that work.
    """
    for number, line in enumerate(lines, start=1):
        if "\\\\" in line and _COPY_DOUBLED.search(line):
            return InputProblem(
                source,
                number,
                None,
                "doubled backslashes: this looks like COPY's text format "
                "(\\copy ... to 'file' without csv), which corrupts JSON; " + WORKING_EXPORTS,
            )
    return None


def annotate_evidence(findings: Iterable[Any], outbox: Mapping[str, OutboxRow]) -> Iterator[Any]:
    """Each finding about an outbox settlement, with its ``event_key`` and ``aggregate_id``."""
    for finding in findings:
        row = outbox.get(finding.subject)
        if row is None:
            yield finding
            continue
        extra = {k: v for k, v in row.evidence().items() if k not in finding.evidence}
        yield attrs.evolve(finding, evidence={**finding.evidence, **extra}) if extra else finding
