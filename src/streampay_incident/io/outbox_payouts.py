"""The ``streampay`` payouts view: payout attempts read from StreamPay's settlement_outbox.

StreamPay has no payouts table. Each outbox row whose payload names an
amount, a destination and an asset is one payout attempt:

- payout id = ``id``; settlement id and idempotency key = ``event_key``
  (StreamPay's settlement identity: stream and ledger); ``aggregate_id``
  (the stream) is kept for the findings' evidence;
- status: ``succeeded`` -> confirmed, ``processing`` with a tx hash ->
  submitted, ``failed``/``dead`` -> failed, anything else -> pending;
- amount as StreamPay writes it (``decimal(20,9)``: nine fraction digits):
  zeros past the 7th are dropped (``12.500000000`` is 12.5); a non-zero
  digit there is an input error, because Stellar amounts have 7 decimals;
- tx hash, asset, destination and ledger from the payload (the profile's keys
  and ``--payload-key`` paths), timestamps as every PostgreSQL form.

The rows are then validated by the payouts reader itself
(:func:`~streampay_incident.io.payouts.payouts_from_rows`): one set of rules,
problems renamed to the outbox's columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from ..errors import InputError, InputProblem
from ..model import Finding, Payout, Report
from .payouts import payouts_from_rows
from .rows import Row
from .streampay import OutboxReading, translate_outbox_row

PAYOUT_FIELDS = ("amount", "destination", "asset")
_NINE_DECIMALS = re.compile(r"([0-9]+)\.([0-9]{7})([0-9]+)\Z")


def payout_status(status: str | None, tx_hash: str | None) -> str:
    """The payout status an outbox status stands for (see the module docstring)."""
    if status == "succeeded":
        return "confirmed"
    if status == "processing" and tx_hash:
        return "submitted"
    if status in ("failed", "dead"):
        return "failed"
    return "pending"


def seven_decimals(amount: str) -> str:
    """``12.500000000`` -> ``12.5000000``; ``ValueError`` for a non-zero digit past the 7th."""
    match = _NINE_DECIMALS.match(amount)
    if match is None:
        return amount
    whole, seven, rest = match.groups()
    if rest.strip("0"):
        raise ValueError(
            f"{amount!r}: Stellar amounts have 7 decimals; a non-zero digit past the 7th "
            "cannot be paid"
        )
    return f"{whole}.{seven}"


@attrs.frozen
class OutboxPayouts:
    """The payouts of an outbox, and the stream (``aggregate_id``) of each payout id."""

    payouts: list[Payout]
    streams: Mapping[str, str]
    skipped: int = 0

    def annotate_report(self, report: Report) -> Report:
        """The report with :meth:`annotate`'s findings."""
        return attrs.evolve(report, findings=self.annotate(report.findings))

    def annotate(self, findings: Iterable[Finding]) -> tuple[Finding, ...]:
        """Each finding naming payouts, with the streams (``aggregate_ids``) they belong to."""
        annotated = []
        for finding in findings:
            ids = finding.evidence.get("payout_ids") or ()
            streams = sorted({self.streams[i] for i in ids if i in self.streams})
            if streams and "aggregate_ids" not in finding.evidence:
                finding = attrs.evolve(
                    finding, evidence={**finding.evidence, "aggregate_ids": streams}
                )
            annotated.append(finding)
        return tuple(annotated)


class _View:
    """Builds generic payout rows, remembering where each field came from per line."""

    def __init__(self, source: str, reading: OutboxReading) -> None:
        self.source = source
        self.reading = reading
        self.problems: list[InputProblem] = []
        self.fields: dict[int, dict[str, str]] = {}
        self.streams: dict[str, str] = {}
        self.skipped = 0

    def rows(self, rows: Iterable[Row]) -> Iterator[Row]:
        for row in rows:
            missing = [c for c in ("id", "event_key") if row.values.get(c) in (None, "")]
            for column in missing:  # not an outbox row: never read it as "no payouts"
                self.problems.append(
                    InputProblem(
                        self.source, row.line, column, "required field is missing or empty"
                    )
                )
            if missing:
                continue
            translated = translate_outbox_row(row, self.reading, self.problems, self.source)
            found = translated.payload
            if not all(field in found for field in PAYOUT_FIELDS):
                self.skipped += 1  # not a payout attempt: no money named
                continue
            try:
                amount = seven_decimals(found["amount"])
            except ValueError as exc:
                self.problems.append(
                    InputProblem(
                        self.source, row.line, translated.payload_sources["amount"], str(exc)
                    )
                )
                continue
            values = translated.values
            event_key = row.values.get("event_key")
            payout: dict[str, Any] = {
                "payout_id": values.get("settlement_id"),
                "settlement_id": event_key,
                "idempotency_key": event_key,
                "destination": found["destination"],
                "asset": found["asset"],
                "amount": amount,
                "status": payout_status(values.get("status"), values.get("tx_hash")),
                "created_at": values.get("created_at"),
                "tx_hash": values.get("tx_hash"),
                "ledger": found.get("ledger"),
            }
            self.fields[row.line] = {
                "payout_id": "id",
                "settlement_id": "event_key",
                "idempotency_key": "event_key",
                **translated.fields,
                **translated.payload_sources,
            }
            aggregate_id = row.values.get("aggregate_id")
            if aggregate_id is not None and payout["payout_id"] is not None:
                self.streams[str(payout["payout_id"])] = str(aggregate_id)
            yield Row(row.line, {k: v for k, v in payout.items() if v is not None})

    def renamed(self, problem: InputProblem) -> InputProblem:
        field = self.fields.get(problem.line or 0, {}).get(problem.field or "", problem.field)
        return attrs.evolve(problem, field=field)


def outbox_payouts(rows: Iterable[Row], *, source: str, reading: OutboxReading) -> OutboxPayouts:
    """The payout attempts of outbox rows; InputError naming every problem (outbox columns)."""
    view = _View(source, reading)
    try:
        payouts = payouts_from_rows(view.rows(rows), source=source)
    except InputError as error:
        raise InputError(view.problems + [view.renamed(p) for p in error.problems]) from None
    if view.problems:
        raise InputError(view.problems)
    return OutboxPayouts(payouts, view.streams, view.skipped)
