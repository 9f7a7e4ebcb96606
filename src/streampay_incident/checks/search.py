"""Submission search: which transfer on chain, if any, paid a settlement with no usable hash. Pure.

StreamPay's outbox often has no tx hash, so a stuck row could only be
``unknown_submission``. When the settlement's payer (escrow or source account),
destination, asset and amount are known, the transfers the chain shows from
the payer to the destination are matched against it here; the probe
(:mod:`streampay_incident.probes.search`) fetches them, the use case
(:mod:`streampay_incident.usecases.search`) ties the two to the verdicts.

Matching rules (issue 13 §2):

- a candidate is a successful transfer from the payer (its base account, so a
  muxed ``M...`` payer counts) to exactly the destination, in the asset, of
  exactly the amount, closed no earlier than ``created_at`` minus the clock-skew
  margin (at most 5 minutes);
- a transfer matches at most one settlement (fixed-rate streams repeat
  amounts): one candidate shared by two settlements proves neither;
- one candidate, claimed by no other settlement: ``found``; two or more:
  ``ambiguous`` (conclude nothing, investigate, every hash in evidence); none:
  ``none``, with the ledgers searched and whether that covers everything
  since the window start.

A search never makes a settlement retry-safe by itself: ``found`` feeds rule 1
(the transaction landed); ``ambiguous`` takes retry safety away; ``none`` only
adds evidence to the verdict it had.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import attrs

from ..amounts import format_stroops
from ..model import (
    Asset,
    ChainPayment,
    ChainTransaction,
    Finding,
    Payout,
    Settlement,
    SettlementVerdict,
    make_finding,
)
from ..observations import PagingCoverage, PagingStop
from ..stellar.strkey import base_account
from ..timefmt import format_rfc3339
from .coverage import incomplete_event_range

#: Clock skew allowed between StreamPay's ``created_at`` and ledger close times.
MAX_SKEW = timedelta(minutes=5)

SearchOutcome = Literal["found", "ambiguous", "none"]
OUTCOMES: tuple[SearchOutcome, ...] = ("found", "ambiguous", "none")


@attrs.frozen
class SearchTarget:
    """What one settlement would have paid: who, to whom, what, from when."""

    settlement_id: str
    payer: str
    destination: str
    asset: Asset
    amount: int
    created_at: datetime

    def window_start(self, skew: timedelta = MAX_SKEW) -> datetime:
        """The earliest close time a transfer for it can have (never more than 5 min early)."""
        return self.created_at - min(skew, MAX_SKEW)


@attrs.frozen
class SearchCoverage:
    """Which ledgers a search read for one payer and destination, and what it did not.

    ``first_ledger``..``last_ledger`` were read completely when ``complete``;
    ``since`` is the earliest close time the data covers; ``gaps`` say, in
    words, what was not searched (retention after the window start, a failed
    endpoint, the deadline, the incomplete pubnet event range).
    """

    first_ledger: int | None = None
    last_ledger: int | None = None
    since: datetime | None = None
    complete: bool = False
    gaps: tuple[str, ...] = ()
    source: str = ""


@attrs.frozen
class SearchResult:
    """The outcome of searching for one settlement's transfer."""

    settlement_id: str
    outcome: SearchOutcome
    candidates: tuple[ChainPayment, ...] = ()
    coverage: SearchCoverage = SearchCoverage()
    complete: bool = False
    note: str = ""

    @property
    def hashes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h for p in self.candidates for h in p.all_hashes))

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "outcome": self.outcome,
            "tx_hashes": list(self.hashes),
            "complete": self.complete,
            "note": self.note,
            "first_ledger": self.coverage.first_ledger,
            "last_ledger": self.coverage.last_ledger,
            "source": self.coverage.source,
        }
        if self.coverage.gaps:
            doc["not_searched"] = list(self.coverage.gaps)
        if self.candidates:
            doc["candidates"] = [
                {
                    "tx_hash": p.tx_hash,
                    "tx_hashes": list(p.all_hashes),
                    "ledger": p.ledger,
                    "closed_at": format_rfc3339(p.closed_at) if p.closed_at else None,
                    "amount": format_stroops(p.amount) if p.amount is not None else None,
                }
                for p in self.candidates
            ]
        return doc


def pair_coverage(
    *,
    source: str,
    kind: str,
    asked_since: datetime,
    coverage: PagingCoverage | None,
    stop: PagingStop | None,
    first_ledger: int | None = None,
    last_ledger: int | None = None,
    network_passphrase: str | None = None,
) -> SearchCoverage:
    """What one source's read of a (payer, destination) pair covers. Pure.

    ``coverage`` None: the deadline passed before the source answered. Complete
    only when the source finished, said where its data starts (at or before
    ``asked_since``) and, for RPC events, the ledgers avoid the incomplete
    pubnet range.
    """
    if coverage is None:
        return SearchCoverage(
            source=source, gaps=(f"{kind} {source}: the search deadline passed first",)
        )
    gaps: list[str] = []
    complete = True
    since: datetime | None = coverage.covered_since or asked_since
    if coverage.unverified:
        complete, since = False, None
        gaps.append(f"{kind} {source} did not say where its data starts")
    if stop is not None:
        complete = False
        reached = format_rfc3339(coverage.reached) if coverage.reached else "the start"
        gaps.append(f"{kind} {source} failed ({stop.summary}): nothing after {reached}")
    if kind == "rpc":
        why = incomplete_event_range(first_ledger, last_ledger, network_passphrase)
        if why is not None:
            complete = False
            gaps.append(why)
    return SearchCoverage(
        first_ledger=first_ledger,
        last_ledger=last_ledger,
        since=since,
        complete=complete,
        gaps=tuple(gaps),
        source=source,
    )


def _asset_key(asset: Asset) -> tuple[str, ...]:
    return ("native",) if asset.is_native else (asset.code, asset.issuer or "")


def needs_search(settlement: Settlement, transactions: Mapping[str, ChainTransaction]) -> bool:
    """No recorded hash, or none of its hashes is known to have landed or failed."""
    statuses = {
        tx.status
        for h in settlement.all_tx_hashes
        if (tx := transactions.get(h.lower())) is not None
    }
    return not statuses & {"success", "failed"}


def search_target(
    settlement: Settlement,
    *,
    payouts: Sequence[Payout] = (),
    payer: str | None = None,
) -> SearchTarget | None:
    """What to search for ``settlement``, or None when payer, destination, asset or amount
    is unknown. The settlement's own fields come first, then one payout row of the same
    settlement (two rows that disagree give nothing), then ``payer`` (``--escrow``)."""
    destination, asset, amount = settlement.destination, settlement.asset, settlement.amount
    rows = {(p.destination, _asset_key(p.asset), p.amount): p for p in payouts}
    if destination is None or asset is None or amount is None:
        if len(rows) != 1:
            return None
        row = next(iter(rows.values()))
        destination = destination or row.destination
        asset = asset or row.asset
        amount = amount if amount is not None else row.amount
    who = settlement.payer or payer
    if who is None:
        return None
    return SearchTarget(
        settlement.settlement_id, who, destination, asset, amount, settlement.created_at
    )


def _same_destination(paid_to: str, destination: str) -> bool:
    """A muxed destination matches exactly; a ``G...`` one matches its muxed forms too
    (CAP-67 events carry a memo id as ``to_muxed_id``, read as a muxed address)."""
    if destination.startswith("M"):
        return paid_to == destination
    return base_account(paid_to) == destination


def _is_candidate(target: SearchTarget, p: ChainPayment) -> bool:
    return (
        p.successful
        and base_account(p.from_account) == base_account(target.payer)
        and _same_destination(p.to_account, target.destination)
        and _asset_key(p.asset) == _asset_key(target.asset)
        and p.amount == target.amount
        and (p.closed_at is None or p.closed_at >= target.window_start())
    )


def _key(p: ChainPayment) -> tuple[str, str]:
    return (p.tx_hash.lower(), p.operation_id or "")


def match_transfers(
    targets: Iterable[SearchTarget],
    transfers: Iterable[ChainPayment],
    coverage: Mapping[tuple[str, str], SearchCoverage],
) -> list[SearchResult]:
    """Match each target against the transfers found (see the module rules). Pure.

    ``coverage`` is keyed ``(payer, destination)``: what was searched for that
    pair. A target whose pair was not searched at all gets ``none`` with
    ``complete`` False.
    """
    wanted = list(targets)
    payments = list(transfers)
    candidates = {t.settlement_id: [p for p in payments if _is_candidate(t, p)] for t in wanted}
    claims: dict[tuple[str, str], int] = {}
    for found in candidates.values():
        for p in found:
            claims[_key(p)] = claims.get(_key(p), 0) + 1
    results: list[SearchResult] = []
    for t in wanted:
        cov = coverage.get((t.payer, t.destination), SearchCoverage(gaps=("not searched",)))
        found = sorted(candidates[t.settlement_id], key=lambda p: (p.ledger or 0, _key(p)))
        complete = cov.complete and cov.since is not None and cov.since <= t.window_start()
        span = (
            f"ledgers {cov.first_ledger}-{cov.last_ledger}"
            if cov.first_ledger is not None and cov.last_ledger is not None
            else f"{cov.source or 'the chain'} since {format_rfc3339(t.window_start())}"
        )
        if len(found) == 1 and claims[_key(found[0])] == 1:
            results.append(
                SearchResult(
                    t.settlement_id,
                    "found",
                    tuple(found),
                    cov,
                    complete,
                    f"matching transfer in tx {found[0].tx_hash} (ledger {found[0].ledger})",
                )
            )
        elif found:
            shared = len(found) == 1
            why = (
                "the only matching transfer also matches another settlement"
                if shared
                else f"{len(found)} matching transfers"
            )
            results.append(
                SearchResult(
                    t.settlement_id,
                    "ambiguous",
                    tuple(found),
                    cov,
                    complete,
                    f"{why}: conclude nothing, investigate ({', '.join(p.tx_hash for p in found)})",
                )
            )
        else:
            if complete:
                note = f"no matching transfer in {span} (complete)"
            else:
                gaps = list(cov.gaps)
                if cov.since is None or cov.since > t.window_start():
                    gaps.append(
                        "ledgers closed from "
                        f"{format_rfc3339(t.window_start())} to "
                        f"{format_rfc3339(cov.since) if cov.since else 'the data start'}"
                    )
                note = f"no matching transfer in {span} (partial: not searched: {'; '.join(gaps)})"
            results.append(SearchResult(t.settlement_id, "none", (), cov, complete, note))
    return results


def found_transactions(results: Iterable[SearchResult]) -> list[ChainTransaction]:
    """A success record for each found transfer's transaction (rule 1 reads these)."""
    out: list[ChainTransaction] = []
    for r in results:
        if r.outcome == "found":
            p = r.candidates[0]
            out.append(
                ChainTransaction(
                    hash=p.tx_hash.lower(),
                    status="success",
                    hashes=p.all_hashes,
                    ledger=p.ledger,
                    closed_at=p.closed_at,
                    source=f"search {r.coverage.source}".strip(),
                )
            )
    return out


def with_found_hashes(
    settlements: Iterable[Settlement], results: Iterable[SearchResult]
) -> list[Settlement]:
    """Each settlement a search found, with the found transaction's hashes added."""
    found = {r.settlement_id: r.candidates[0].all_hashes for r in results if r.outcome == "found"}
    out: list[Settlement] = []
    for s in settlements:
        hashes = found.get(s.settlement_id)
        if hashes:
            merged = tuple(dict.fromkeys((*s.tx_hashes, *hashes)))
            s = attrs.evolve(s, tx_hashes=merged)
        out.append(s)
    return out


def overlay_search(
    verdicts: Sequence[SettlementVerdict],
    findings: Sequence[Finding],
    results: Iterable[SearchResult],
) -> tuple[tuple[SettlementVerdict, ...], tuple[Finding, ...]]:
    """The search's evidence on each searched settlement's findings; ambiguity takes retry
    safety away (``search_ambiguous``, investigate) and adds
    ``SETTLEMENT_SEARCH_AMBIGUOUS``. Never makes a verdict retry-safe."""
    by_id = {r.settlement_id: r for r in results}
    out_findings: list[Finding] = []
    for f in findings:
        r = by_id.get(f.subject)
        if r is not None:
            f = attrs.evolve(
                f,
                summary=f"{f.summary}; submission search: {r.note}",
                evidence={**f.evidence, "search": r.to_json()},
            )
        out_findings.append(f)
    out_verdicts: list[SettlementVerdict] = []
    for v in verdicts:
        r = by_id.get(v.settlement_id)
        if r is not None and r.outcome == "ambiguous" and v.state != "settled":
            v = attrs.evolve(
                v,
                retry_safe=False,
                retry_reason="search_ambiguous",
                action="investigate",
                codes=(*v.codes, "SETTLEMENT_SEARCH_AMBIGUOUS"),
                code=v.code or "SETTLEMENT_SEARCH_AMBIGUOUS",
            )
            out_findings.append(
                make_finding(
                    "SETTLEMENT_SEARCH_AMBIGUOUS",
                    v.settlement_id,
                    f"submission search: {r.note}; do NOT retry",
                    {"settlement_id": v.settlement_id, "search": r.to_json()},
                )
            )
        out_verdicts.append(v)
    return tuple(out_verdicts), tuple(out_findings)
