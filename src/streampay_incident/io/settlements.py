"""Settlement records (StreamPay's ``settlement_outbox`` export) into :class:`Settlement`.

Fields (pinned): ``settlement_id``, ``status`` and ``created_at`` are required;
``updated_at``, ``attempts`` (default 0), ``max_attempts`` (default 8),
``lease_until``, ``available_at``, ``tx_hash``, ``envelope_xdr``,
``tx_max_time`` (RFC 3339 or unix seconds; 0 means no bound), ``last_error``
and ``event_key`` are optional. Other columns are ignored.

When ``envelope_xdr`` is given, the transaction's hash(es), max time, source
account and sequence number are derived from it with the network passphrase
(``--network``); without a passphrase that is an input error, because the
wrong network silently gives another hash. A fee-bump is identified by both
its outer and its inner hash. The envelope is also hashed under the public,
testnet and futurenet passphrases (``Settlement.network_hashes``), so a chain
record of the envelope on another network can be told apart from "not found".
A ``tx_hash`` or ``tx_max_time`` that disagrees
with the envelope is an input error: one of them is not what was submitted.

Every bad record is reported (file, line, field), never only the first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from ..errors import InputError, InputProblem, shown
from ..model import Settlement, SettlementStatus
from ..stellar.envelope import EnvelopeError, EnvelopeIdentity, envelope_identity
from ..stellar.hashes import TX_HASH
from ..stellar.networks import WELL_KNOWN
from ..timefmt import format_rfc3339, in_range, parse_rfc3339, parse_unix_or_rfc3339
from .rows import Row, iter_rows
from .settlement_payment import settlement_payment

STATUSES: tuple[str, ...] = ("pending", "processing", "succeeded", "failed", "dead")
REQUIRED: tuple[str, ...] = ("settlement_id", "status", "created_at")
_TX_HASH = TX_HASH
_INTEGER = re.compile(r"[0-9]+\Z")
# attempts and max_attempts are PostgreSQL integers in the outbox.
MAX_COUNT = 2**31 - 1


class _Problems:
    """Collects the problems of one row (each names its field)."""

    def __init__(self, source: str, line: int) -> None:
        self.source = source
        self.line = line
        self.items: list[InputProblem] = []

    def add(self, field: str | None, message: str) -> None:
        self.items.append(InputProblem(self.source, self.line, field, message))


def _text(values: dict[str, Any], field: str, problems: _Problems) -> str | None:
    value = values.get(field)
    if value is None:
        return None
    if type(value) is str:  # the usual case first: a dozen fields a row, millions of rows
        return value.strip() or None
    if isinstance(value, bool) or not isinstance(value, str | int):
        problems.add(field, f"expected a string, found {type(value).__name__}")
        return None
    text = str(value).strip()
    return text or None


def _time(values: dict[str, Any], field: str, problems: _Problems) -> datetime | None:
    value = values.get(field)
    if isinstance(value, datetime):  # read already (an outbox timestamp): aware UTC
        try:
            return in_range(value)
        except ValueError as exc:
            problems.add(field, f"{shown(format_rfc3339(value))}: {exc}")
            return None
    text = _text(values, field, problems)
    if text is None:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        problems.add(field, f"{shown(text)}: {exc}")
        return None


def _count(values: dict[str, Any], field: str, default: int, problems: _Problems) -> int:
    text = _text(values, field, problems)
    if text is None:
        return default
    if not _INTEGER.match(text):
        problems.add(field, f"{shown(text)}: expected a non-negative whole number")
        return default
    if len(text.lstrip("0")) > len(str(MAX_COUNT)) or int(text) > MAX_COUNT:
        problems.add(field, f"larger than {MAX_COUNT}")
        return default
    return int(text)


def _max_time(values: dict[str, Any], problems: _Problems) -> tuple[bool, datetime | None]:
    """``(given, max_time)``; 0 means "no upper bound" and gives ``(True, None)``."""
    text = _text(values, "tx_max_time", problems)
    if text is None:
        return False, None
    if text == "0" or text.strip("0") == "":
        return True, None
    try:
        moment = parse_unix_or_rfc3339(text)
    except (ValueError, OverflowError, OSError) as exc:
        problems.add("tx_max_time", f"{shown(text)}: expected RFC 3339 or unix seconds ({exc})")
        return True, None
    # The epoch is how Horizon prints a 0 bound: no bound either.
    return True, None if moment.timestamp() == 0 else moment


def settlement_from_row(
    row: Row, *, source: str, network_passphrase: str | None
) -> tuple[Settlement | None, list[InputProblem]]:
    """One settlement, or the problems that stop it (each naming file, line, field)."""
    problems = _Problems(source, row.line)
    values = row.values
    for field in REQUIRED:
        value = values.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            problems.add(field, "required field is missing or empty")
    settlement_id = _text(values, "settlement_id", problems)
    status_text = _text(values, "status", problems)
    status = status_text.lower() if status_text else None
    if status is not None and status not in STATUSES:
        problems.add("status", f"{shown(status_text)}: expected one of {', '.join(STATUSES)}")
    created_at = _time(values, "created_at", problems)
    updated_at = _time(values, "updated_at", problems)
    lease_until = _time(values, "lease_until", problems)
    available_at = _time(values, "available_at", problems)
    event_key = _text(values, "event_key", problems)
    attempts = _count(values, "attempts", 0, problems)
    max_attempts = _count(values, "max_attempts", 8, problems)
    if max_attempts == 0 and not any(p.field == "max_attempts" for p in problems.items):
        problems.add("max_attempts", "must be at least 1")
    last_error = values.get("last_error")

    tx_hash = _text(values, "tx_hash", problems)
    if tx_hash is not None:
        if _TX_HASH.match(tx_hash):
            tx_hash = tx_hash.lower()
        else:
            problems.add("tx_hash", f"{shown(tx_hash)}: expected 64 hex characters")
            tx_hash = None
    max_time_given, tx_max_time = _max_time(values, problems)

    identity: EnvelopeIdentity | None = None
    envelope_xdr = _text(values, "envelope_xdr", problems)
    if envelope_xdr is not None:
        if not network_passphrase:
            problems.add(
                "envelope_xdr",
                "an envelope needs the network passphrase to compute its hash: pass --network "
                "public|testnet|PASSPHRASE",
            )
        else:
            try:
                identity = envelope_identity(
                    envelope_xdr, network_passphrase=network_passphrase, also_under=WELL_KNOWN
                )
            except EnvelopeError as exc:
                problems.add("envelope_xdr", exc.reason)
    tx_hashes: tuple[str, ...] = ()
    source_account: str | None = None
    sequence: int | None = None
    network_hashes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if identity is not None:
        tx_hashes = identity.hashes
        network_hashes = identity.network_hashes
        source_account, sequence = identity.source_account, identity.sequence
        if tx_hash is not None and tx_hash not in tx_hashes:
            problems.add(
                "tx_hash",
                f"{tx_hash} is not the envelope's hash ({' or '.join(tx_hashes)}) on "
                f"{network_passphrase!r}: wrong --network, or not the envelope submitted",
            )
        if max_time_given and tx_max_time != identity.max_time:
            bound = "none" if identity.max_time is None else format_rfc3339(identity.max_time)
            problems.add("tx_max_time", f"disagrees with the envelope's max time ({bound})")
        tx_max_time = identity.max_time
        tx_hash = tx_hash or identity.hash

    payer, destination, asset, amount = settlement_payment(values, problems.add)

    if problems.items:
        return None, problems.items
    assert settlement_id is not None and status is not None and created_at is not None
    return (
        Settlement(
            settlement_id=settlement_id,
            status=cast(SettlementStatus, status),
            created_at=created_at,
            updated_at=updated_at,
            attempts=attempts,
            max_attempts=max_attempts,
            lease_until=lease_until,
            tx_hash=tx_hash,
            tx_hashes=tx_hashes,
            tx_max_time=tx_max_time,
            source_account=source_account,
            sequence=sequence,
            last_error=None if last_error is None else str(last_error),
            available_at=available_at,
            network_hashes=network_hashes,
            event_key=event_key,
            payer=payer,
            destination=destination,
            asset=asset,
            amount=amount,
        ),
        [],
    )


def settlements_from_rows(
    rows: Iterable[Row], *, source: str, network_passphrase: str | None
) -> list[Settlement]:
    """Every settlement of an export, in input order.

    Raises :class:`InputError` listing every bad record (file, line, field);
    no settlement is returned when any record is bad.
    """
    return list(iter_settlements(rows, source=source, network_passphrase=network_passphrase))


def iter_settlements(
    rows: Iterable[Row], *, source: str, network_passphrase: str | None
) -> Iterator[Settlement]:
    """:func:`settlements_from_rows` a record at a time. After a bad record nothing more is
    yielded; when the rows run out, InputError lists every bad record."""
    problems: list[InputProblem] = []
    for row in rows:
        settlement, row_problems = settlement_from_row(
            row, source=source, network_passphrase=network_passphrase
        )
        if settlement is None:
            problems.extend(row_problems)
        elif not problems:
            yield settlement
    if problems:
        raise InputError(problems)


def read_settlements(path: Path | str, *, network_passphrase: str | None) -> list[Settlement]:
    """Read a settlement export (JSON Lines, CSV or JSON array): :func:`settlements_from_rows`."""
    return settlements_from_rows(
        iter_rows(path), source=str(path), network_passphrase=network_passphrase
    )
