"""Reading what moved on chain: Horizon payment records and Stellar RPC transfer events.

Accepted (``--chain-payments FILE``), in one JSON document or as JSON Lines:

- Horizon ``/accounts/{id}/payments`` (or ``/payments``,
  ``/transactions/{hash}/payments``) pages (``_embedded.records``), single
  records, or arrays of records; with ``join=transactions`` the embedded
  ``transaction`` gives the fee-bump outer/inner hashes, the memo and the
  ledger. Record types: ``payment``, both path payments, ``create_account``,
  ``account_merge`` and ``invoke_host_function`` (its ``asset_balance_changes``
  of type ``transfer``); other operation types move nothing to a destination
  and are skipped.
- Stellar RPC ``getEvents`` results (with or without the JSON-RPC envelope),
  or bare events: Stellar Asset Contract ``transfer`` events, whose topics and
  value are XDR ``ScVal`` in base64 (decoded with stellar-sdk, imported here
  lazily). Events of other names are skipped.

Every bad record is reported (:class:`~streampay_incident.errors.InputError`,
one problem per record and field), never only the first. ``line`` is the line
for JSON Lines and the record's index for a JSON document.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from ..errors import InputError, InputProblem, SecretSeedError
from ..model import ChainPayment
from .payment_records import (
    HORIZON_PAYMENT_TYPES,
    RecordProblem,
    _int,
    _time,
    chain_payment_from_rpc_event,
    chain_payments_from_horizon,
)
from .rows import JsonNumber, contains_seed, input_name, read_text, seed_problem
from .strict_json import JsonProblem, loads


@attrs.frozen
class ChainPaymentBatch:
    """The payments read from one input, and what the source said about its coverage.

    ``oldest_ledger_close_time`` / ``latest_ledger_close_time`` come from RPC
    ``getEvents`` results (the retention window); ``cursor`` is the last
    paging cursor seen (a Horizon ``paging_token`` or an RPC ``cursor``).
    """

    payments: tuple[ChainPayment, ...]
    oldest_ledger: int | None = None
    latest_ledger: int | None = None
    oldest_ledger_close_time: datetime | None = None
    latest_ledger_close_time: datetime | None = None
    cursor: str | None = None


# --- documents -----------------------------------------------------------------------------


@attrs.define
class _Collector:
    source: str
    network_passphrase: str | None
    payments: list[ChainPayment] = attrs.field(factory=list)
    problems: list[InputProblem] = attrs.field(factory=list)
    oldest_ledger: int | None = None
    latest_ledger: int | None = None
    oldest_time: datetime | None = None
    latest_time: datetime | None = None
    cursor: str | None = None

    def problem(self, line: int | None, field: str | None, message: str) -> None:
        self.problems.append(InputProblem(self.source, line, field, message))

    def record(self, obj: Any, line: int | None) -> None:
        """One Horizon record, RPC event, getEvents result/envelope or Horizon page."""
        if not isinstance(obj, Mapping):
            self.problem(line, None, "expected a JSON object")
            return
        if "jsonrpc" in obj or ("result" in obj and "events" not in obj):
            if "error" in obj:
                err = obj["error"] if isinstance(obj["error"], Mapping) else {}
                self.problem(
                    line, "error", f"JSON-RPC error {err.get('code')}: {err.get('message')}"
                )
                return
            self.record(obj.get("result"), line)
            return
        if "_embedded" in obj:
            records = (obj.get("_embedded") or {}).get("records")
            # /transactions/{hash}/payments with one payment may hold a bare object.
            if isinstance(records, Mapping):
                records = [records]
            if not isinstance(records, list):
                self.problem(line, "_embedded.records", "not a list of records")
                return
            for index, rec in enumerate(records):
                self.record(rec, line if line is not None else index)
            return
        if "events" in obj:
            self.rpc_result(obj, line)
            return
        try:
            if "topic" in obj or "topics" in obj:
                payment = chain_payment_from_rpc_event(
                    obj, network_passphrase=self.network_passphrase
                )
                if payment is not None:
                    self.payments.append(payment)
            elif "type" in obj:
                self.payments.extend(chain_payments_from_horizon(obj))
                token = obj.get("paging_token")
                if isinstance(token, str):
                    self.cursor = token
            else:
                self.problem(line, None, "not a Horizon payment record or a Stellar RPC event")
        except RecordProblem as exc:
            self.problem(line, exc.field, exc.message)

    def rpc_result(self, result: Mapping[str, Any], line: int | None) -> None:
        events = result.get("events")
        if not isinstance(events, list):
            self.problem(line, "events", "not a list of events")
            return
        try:
            for key, attr in (("oldestLedger", "oldest_ledger"), ("latestLedger", "latest_ledger")):
                if result.get(key) is not None:
                    value = _int(result[key], key)
                    current = getattr(self, attr)
                    pick = min if attr.startswith("oldest") else max
                    setattr(self, attr, value if current is None else pick(current, value))
            for key, attr in (
                ("oldestLedgerCloseTime", "oldest_time"),
                ("latestLedgerCloseTime", "latest_time"),
            ):
                if result.get(key) is not None:
                    moment = _time(result[key], key)
                    current = getattr(self, attr)
                    pick = min if attr.startswith("oldest") else max
                    setattr(self, attr, moment if current is None else pick(current, moment))
        except RecordProblem as exc:
            self.problem(line, exc.field, exc.message)
        if isinstance(result.get("cursor"), str):
            self.cursor = result["cursor"]
        for index, event in enumerate(events):
            try:
                if not isinstance(event, Mapping):
                    raise RecordProblem(None, "expected a JSON object")
                payment = chain_payment_from_rpc_event(
                    event, network_passphrase=self.network_passphrase
                )
            except RecordProblem as exc:
                field = f"events[{index}]" + (f".{exc.field}" if exc.field else "")
                self.problem(line if line is not None else index, field, exc.message)
                continue
            if payment is not None:
                self.payments.append(payment)

    def batch(self) -> ChainPaymentBatch:
        if self.problems:
            raise InputError(self.problems)
        return ChainPaymentBatch(
            payments=tuple(self.payments),
            oldest_ledger=self.oldest_ledger,
            latest_ledger=self.latest_ledger,
            oldest_ledger_close_time=self.oldest_time,
            latest_ledger_close_time=self.latest_time,
            cursor=self.cursor,
        )


def _loads(text: str) -> Any:
    # Amounts are strings in Horizon; a float anywhere stays exact text, never a float.
    return loads(text, parse_float=JsonNumber)


def _json_lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def parse_chain_payments(
    text: str, *, source: str, network_passphrase: str | None = None
) -> ChainPaymentBatch:
    """Every payment in a chain-payments document (one JSON document, or JSON Lines).

    Raises :class:`InputError` listing every bad record (a secret seed anywhere
    is refused without being echoed).
    """
    collector = _Collector(source, network_passphrase)
    try:
        doc = _loads(text)
    except JsonProblem as doc_error:
        lines = list(_json_lines(text))
        if not lines:
            raise InputError(InputProblem(source, None, None, "empty input")) from None
        try:
            _loads(lines[0][1])
        except JsonProblem:
            # Not JSON Lines either: report where the one document breaks.
            if contains_seed(text):
                raise SecretSeedError(seed_problem(source, None, None)) from None
            raise InputError(
                InputProblem(source, doc_error.lineno, doc_error.key, doc_error.message)
            ) from None
        for number, line in lines:
            if contains_seed(line):
                collector.problems.append(seed_problem(source, number, None))
                continue
            try:
                obj = _loads(line)
            except JsonProblem as exc:
                collector.problem(number, exc.key, exc.message)
                continue
            collector.record(obj, number)
        if any("secret seed" in p.message for p in collector.problems):
            raise SecretSeedError(collector.problems) from None
        return collector.batch()
    if contains_seed(text):
        raise SecretSeedError(seed_problem(source, None, None))
    if isinstance(doc, list):
        for index, obj in enumerate(doc):
            collector.record(obj, index)
    else:
        collector.record(doc, None)
    return collector.batch()


def read_chain_payments(
    path: Path | str, *, network_passphrase: str | None = None
) -> ChainPaymentBatch:
    """Read ``--chain-payments FILE`` (or ``-``, a FIFO: read once); see
    :func:`parse_chain_payments`."""
    name = input_name(path)
    text = read_text(path, source=name)
    return parse_chain_payments(text, source=name, network_passphrase=network_passphrase)


__all__ = [
    "HORIZON_PAYMENT_TYPES",
    "ChainPaymentBatch",
    "RecordProblem",
    "chain_payment_from_rpc_event",
    "chain_payments_from_horizon",
    "parse_chain_payments",
    "read_chain_payments",
]
