"""Submission search: find the transfer of settlements with no usable hash, then triage.

The order: which settlements need a search and what they would have paid
(:mod:`streampay_incident.checks.search`, pure); the transfers from each payer
to each destination since the earliest window start (``fetch``, the probe the
shell passes in: :func:`streampay_incident.probes.search.search_transfers_sync`);
the matching (pure); then the ordinary triage with the found transactions as
chain records, so rule 1 of the decision table decides, and the search's
evidence on each searched settlement's findings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import attrs
import pluggy

from ..checks import search as rules
from ..checks.settlements import index_transactions
from ..model import Payout, Report, Settlement, SettlementPolicy
from .settlements import SettlementChain, triage_settlements


class PairFetch(Protocol):
    """What the probe returned for one (payer, destination) pair (see ``probes.search``)."""

    @property
    def payer(self) -> str: ...
    @property
    def destination(self) -> str: ...
    @property
    def since(self) -> datetime: ...
    @property
    def source(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def fetched(self) -> Any: ...


Fetch = Callable[[list[tuple[str, str, datetime]]], Sequence[PairFetch]]


@attrs.frozen
class SubmissionSearch:
    """What the search found for each settlement it searched, and what it read."""

    results: tuple[rules.SearchResult, ...] = ()
    skipped: int = 0  # settlements that needed a search but whose payment is unknown
    sources: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        """The counts: searched, each outcome, complete, not searchable, and the sources."""
        counts: dict[str, int] = {
            o: sum(1 for r in self.results if r.outcome == o) for o in rules.OUTCOMES
        }
        return {
            "searched": len(self.results),
            **counts,
            "complete": sum(1 for r in self.results if r.complete),
            "not_searchable": self.skipped,
            "sources": list(self.sources),
        }

    def inputs(self) -> dict[str, Any]:
        """One line for the report's inputs (the counts are in the report's ``search``)."""
        c = self.summary()
        line = (
            f"{c['searched']} searched: {c['found']} found, {c['ambiguous']} ambiguous, "
            f"{c['none']} not found ({c['complete']} with complete coverage); "
            f"{c['not_searchable']} without payer/destination/asset/amount"
        )
        if self.sources:
            line += f"; read {', '.join(self.sources)}"
        return {"search": line}


def search_submissions(
    settlements: Sequence[Settlement],
    chain: SettlementChain,
    *,
    fetch: Fetch,
    payouts: Sequence[Payout] = (),
    payer: str | None = None,
) -> SubmissionSearch:
    """Search for every settlement with no recorded hash, or one not found, whose payer,
    destination, asset and amount are known (from the row, else its payout rows, else
    ``payer``). One ``fetch`` for all pairs, from each pair's earliest window start."""
    index = index_transactions(chain.transactions)
    by_settlement: dict[str, list[Payout]] = {}
    for p in payouts:
        by_settlement.setdefault(p.settlement_id, []).append(p)
    targets: list[rules.SearchTarget] = []
    skipped = 0
    for s in settlements:
        if not rules.needs_search(s, index):
            continue
        # A payout names its settlement by id, or (StreamPay's outbox view) by event key.
        rows = by_settlement.get(s.settlement_id) or by_settlement.get(s.event_key or "", [])
        target = rules.search_target(s, payouts=rows, payer=payer)
        if target is None:
            skipped += 1
        else:
            targets.append(target)
    if not targets:
        return SubmissionSearch(skipped=skipped)
    starts: dict[tuple[str, str], datetime] = {}
    for t in targets:
        key = (t.payer, t.destination)
        starts[key] = min(starts.get(key, t.window_start()), t.window_start())
    pairs = [(payer_, dest, since) for (payer_, dest), since in starts.items()]
    answers = fetch(pairs)
    coverage: dict[tuple[str, str], rules.SearchCoverage] = {}
    transfers = []
    for a in answers:
        fetched = a.fetched
        coverage[(a.payer, a.destination)] = rules.pair_coverage(
            source=a.source,
            kind=a.kind,
            asked_since=a.since,
            coverage=fetched.coverage if fetched is not None else None,
            stop=fetched.stop if fetched is not None else None,
            first_ledger=fetched.first_ledger if fetched is not None else None,
            last_ledger=fetched.last_ledger if fetched is not None else None,
            network_passphrase=fetched.network_passphrase if fetched is not None else None,
        )
        if fetched is not None:
            transfers.extend(fetched.payments)
    # One transfer read for two pairs (a payer's Horizon payments, a file) is one transfer.
    unique = {(t.tx_hash.lower(), t.operation_id, t.to_account, t.amount): t for t in transfers}
    results = rules.match_transfers(targets, list(unique.values()), coverage)
    sources = tuple(dict.fromkeys(f"{a.kind} {a.source}" for a in answers))
    return SubmissionSearch(tuple(results), skipped, sources)


def triage_with_search(
    settlements: Sequence[Settlement],
    *,
    chain: SettlementChain,
    search: SubmissionSearch,
    now: datetime,
    pm: pluggy.PluginManager,
    inputs: Mapping[str, Any],
    policy: SettlementPolicy | None = None,
    payouts: Sequence[Payout] | None = None,
    now_from_clock: bool = False,
) -> Report:
    """:func:`~streampay_incident.usecases.triage_settlements` with what the search found:
    a found transfer is the settlement's landed transaction (rule 1), an ambiguous one
    takes retry safety away, and every searched settlement's findings carry the search."""
    found = rules.found_transactions(search.results)
    searched_chain = attrs.evolve(chain, transactions=(*chain.transactions, *found))
    report = triage_settlements(
        rules.with_found_hashes(settlements, search.results),
        chain=searched_chain,
        now=now,
        pm=pm,
        inputs={**inputs, **search.inputs()},
        policy=policy,
        payouts=payouts,
        now_from_clock=now_from_clock,
    )
    verdicts, findings = rules.overlay_search(
        report.settlements or (), report.findings, search.results
    )
    extra = dict(report.extra)
    extra["search"] = {
        "summary": search.summary(),
        "settlements": {r.settlement_id: r.to_json() for r in search.results},
    }
    return attrs.evolve(report, settlements=verdicts, findings=findings, extra=extra)
