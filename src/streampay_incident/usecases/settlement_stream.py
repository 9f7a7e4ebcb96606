"""Triage settlements as they stream in, a batch at a time: memory does not grow with rows.

:func:`~streampay_incident.usecases.triage_settlements` holds every settlement,
verdict and finding at once; for a million-row outbox that is gigabytes.
:func:`stream_settlement_triage` takes the settlements as an iterator (the
database cursor, an export read line by line), runs the registered settlement
checks on one batch of :data:`BATCH_SIZE` at a time, hands each batch's verdicts
and findings to a sink (the shell's, which keeps them on disk) and keeps only
counts. It returns the head of the report (status, inputs, notes) and the counts.

A batch at a time is the same as one call only when every settlement check
judges each settlement on its own. The built-in rules do: a verdict depends on
the settlement, the chain records, the payouts and ``now``, never on another
settlement. A third-party check is given the whole sequence and may compare
settlements, so with one registered :func:`streams_settlements` is False and the
shell keeps to :func:`~streampay_incident.usecases.triage_settlements`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import islice
from typing import Any, Protocol

import attrs
import pluggy

from ..checks.freshness import stale_export_note
from ..checks.inputs import input_empty
from ..checks.settlements import (
    COUNTED_ACTIONS,
    EnvelopeNetworkCheck,
    check_envelope_network,
    index_transactions,
)
from ..codes import Severity
from ..hookspecs import SETTLEMENT_CHECKS
from ..io.streampay import OutboxRow, annotate_evidence
from ..model import (
    Finding,
    Payout,
    Report,
    Settlement,
    SettlementPolicy,
    SettlementVerdict,
    status_from_findings,
)
from ..registry import DEFAULT_PLUGINS, plugin_name, plugin_run, run_settlement_checks
from ..stellar.networks import network_name
from .settlements import SettlementChain, refuse_wrong_envelopes

#: Settlements judged per call of the settlement checks.
BATCH_SIZE = 2000


class SettlementSink(Protocol):
    """Where the verdicts and findings go, a batch at a time."""

    def add(self, verdicts: Sequence[SettlementVerdict], findings: Sequence[Finding]) -> None:
        """One batch: its verdicts in input order and every finding about them."""


@attrs.frozen
class StreamedTriage:
    """The head of a streamed settlements report and what the sink was given.

    ``report`` has the status, inputs and notes, and neither findings nor
    verdicts (the sink has them); ``findings`` counts the findings,
    ``severities`` per severity; ``actions`` is ``summary.actions``.
    """

    report: Report
    findings: int
    severities: Mapping[Severity, int]
    actions: Mapping[str, int]


def streams_settlements(pm: pluggy.PluginManager) -> bool:
    """True when every settlement check of ``pm`` is a built-in one (judges each settlement
    on its own), so a batch at a time gives the report one call would."""
    impls = getattr(pm.hook, SETTLEMENT_CHECKS).get_hookimpls()
    return all(plugin_name(pm, impl.plugin) in DEFAULT_PLUGINS for impl in impls)


def _batches(records: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(records)
    while batch := list(islice(it, size)):
        yield batch


def stream_settlement_triage(
    records: Iterable[Settlement | OutboxRow],
    *,
    chain: SettlementChain,
    now: datetime,
    pm: pluggy.PluginManager,
    inputs: Mapping[str, Any],
    sink: SettlementSink,
    policy: SettlementPolicy | None = None,
    payouts: Sequence[Payout] | None = None,
    now_from_clock: bool = False,
    network_passphrase: str | None = None,
    batch_size: int = BATCH_SIZE,
) -> StreamedTriage:
    """:func:`~streampay_incident.usecases.triage_settlements` over an iterator, a batch at a
    time, each batch's verdicts and findings given to ``sink``; for :func:`streams_settlements`.

    ``records`` are settlements, or outbox rows (whose findings get the row's
    ``event_key`` and ``aggregate_id``). ``inputs["records"]``, when present, is
    set to how many were read (known only at the end). With ``network_passphrase``,
    :class:`WrongNetworkError` is raised at the end, before any report, when none of
    the envelopes the chain records know is under it but some are under another
    (:func:`~streampay_incident.usecases.check_settlement_network`). Findings reach ``sink``
    in the order ``triage_settlements`` gives them; an error raised by
    ``records`` (a bad row, a lost database) propagates, and the sink's
    content is then no report.
    """
    context = chain.context
    if payouts is not None:
        context = attrs.evolve(context, payouts=tuple(payouts))
    transactions = index_transactions(chain.transactions)
    policy = policy or SettlementPolicy()
    read = 0
    newest: datetime | None = None
    counts: dict[Severity, int] = dict.fromkeys(Severity, 0)
    worst: dict[Severity, Finding] = {}
    actions: dict[str, int] = dict.fromkeys(COUNTED_ACTIONS, 0)

    network = None if network_passphrase is None else network_name(network_passphrase)
    envelopes = EnvelopeNetworkCheck(network or "", 0, 0, ())

    def judge(batch: list[Settlement | OutboxRow]) -> None:
        nonlocal envelopes
        settlements = [r.settlement if isinstance(r, OutboxRow) else r for r in batch]
        if network is not None:
            batch_check = check_envelope_network(
                settlements, transactions=transactions, network=network
            )
            envelopes = envelopes.plus(batch_check)
        triage = run_settlement_checks(
            pm, settlements, transactions=transactions, now=now, policy=policy, context=context
        )
        findings: Sequence[Finding] = triage.findings
        outbox = {r.settlement.settlement_id: r for r in batch if isinstance(r, OutboxRow)}
        if outbox:
            findings = tuple(annotate_evidence(findings, outbox))
        add_findings(findings)
        for verdict in triage.verdicts:
            if verdict.action in actions:
                actions[verdict.action] += 1
        sink.add(triage.verdicts, findings)

    def add_findings(findings: Sequence[Finding]) -> None:
        for f in findings:
            counts[f.severity] += 1
            worst.setdefault(f.severity, f)

    with plugin_run():  # a plugin that fails is reported once, in the first batch
        for batch in _batches(records, batch_size):
            read += len(batch)
            for r in batch:
                changed = (r.settlement if isinstance(r, OutboxRow) else r).last_change
                newest = changed if newest is None or changed > newest else newest
            judge(batch)
        if not read:  # nothing triaged: the checks still run once (a failed plugin says so)
            judge([])
    refuse_wrong_envelopes(envelopes)
    if not read:  # never a pass
        source = str(inputs.get("settlements", "settlements"))
        empty = input_empty(source, "settlement")
        add_findings([empty])
        sink.add((), [empty])
    report_inputs = dict(inputs)
    if "records" in report_inputs:
        report_inputs["records"] = read
    report_inputs["payouts_checked"] = context.payouts is not None
    note = stale_export_note(() if newest is None else (newest,), now=now)
    head = Report(
        command="settlements",
        findings=(),
        generated_at=now,
        inputs=report_inputs,
        settlements=(),
        status=status_from_findings(list(worst.values())),
        extra={"notes": [note]} if now_from_clock and note else {},
    )
    return StreamedTriage(
        report=head,
        findings=sum(counts.values()),
        severities={s: n for s, n in counts.items() if n},
        actions=actions,
    )
