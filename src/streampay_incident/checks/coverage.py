"""What the chain data covers: coverage windows, and what a stopped paging run means. Pure.

The escrow reconciliation (:mod:`streampay_incident.checks.escrow`) only
calls a payout missing inside the window the chain data covers. A file covers
the bounds asked for, narrowed to an RPC's retention window; a live paging run
covers what it reached before it ended or was stopped. An endpoint that
stopped the paging is a ``CHAIN_*`` finding.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from ..model import ChainPayment, CoverageWindow, Finding, Payout, make_finding
from ..observations import PagingCoverage, PagingStop
from ..stellar.networks import PUBLIC
from ..timefmt import format_rfc3339

_CODES = {
    "unreachable": "CHAIN_ENDPOINT_UNREACHABLE",
    "rate_limited": "CHAIN_RATE_LIMITED",
    "error": "CHAIN_ENDPOINT_ERROR",
}


def paging_finding(stop: PagingStop) -> Finding:
    """The ``CHAIN_*`` finding for an endpoint that stopped the paging."""
    evidence: dict[str, Any] = {"endpoint": stop.endpoint, "call": stop.call}
    if stop.url is not None:
        evidence["url"] = stop.url
    evidence.update(stop.rate_limit)
    return make_finding(
        _CODES[stop.problem], subject=stop.endpoint, summary=stop.summary, evidence=evidence
    )


def paging_window(coverage: PagingCoverage, stopped: PagingStop | None) -> CoverageWindow:
    """The window the data covers, and whether that is everything that was asked."""
    notes = list(coverage.notes)
    asked_since = coverage.asked_since
    covered_since = coverage.covered_since
    covered_until = coverage.covered_until
    complete = not coverage.unverified
    if asked_since is not None and covered_since is not None and covered_since > asked_since:
        complete = False
    if stopped is not None:
        complete = False
        covered_until = coverage.reached or covered_since or asked_since
        notes.append(
            f"paging stopped at {format_rfc3339(covered_until) if covered_until else 'the start'}: "
            f"{stopped.summary}"
        )
    until = covered_until
    if coverage.asked_until is not None and (until is None or coverage.asked_until < until):
        until = coverage.asked_until
    since = covered_since if covered_since is not None else asked_since
    return CoverageWindow(
        since=since,
        until=until,
        complete=complete,
        note="; ".join(notes),
        failed_endpoint=stopped.endpoint if stopped is not None else None,
        failure=stopped.summary if stopped is not None else None,
    )


def file_window(
    *,
    since: datetime | None,
    until: datetime | None,
    oldest_ledger_close_time: datetime | None,
    latest_ledger_close_time: datetime | None,
    payments: Sequence[ChainPayment],
) -> CoverageWindow:
    """What a file covers: the asked bounds, narrowed to an RPC retention window, else the
    span of its records when a bound was not given."""
    notes: list[str] = []
    complete = True
    asked_since, asked_until = since, until
    oldest = oldest_ledger_close_time
    if oldest is not None and (since is None or since < oldest):
        if since is not None:
            complete = False
            notes.append(
                f"the RPC's retention window starts at {format_rfc3339(oldest)}, after --since"
            )
        since = oldest
    if until is None and latest_ledger_close_time is not None:
        until = latest_ledger_close_time
    times = [p.closed_at for p in payments if p.closed_at is not None]
    if times and since is None:
        since = min(times)
        notes.append(
            f"no --since: the window starts at the file's first record ({format_rfc3339(since)})"
        )
    if times and until is None:
        until = max(times)
        notes.append(
            f"no --until: the window ends at the file's last record ({format_rfc3339(until)})"
        )
    if not payments and asked_since is None and asked_until is None:
        notes.append("the chain payments file holds no payments")
    return CoverageWindow(since=since, until=until, complete=complete, note="; ".join(notes))


#: Pubnet ledgers whose CAP-67 classic events were incomplete until re-ingested (P23-P24).
INCOMPLETE_EVENT_LEDGERS = (58_762_517, 59_501_299)


def incomplete_event_range(
    first_ledger: int | None, last_ledger: int | None, network_passphrase: str | None
) -> str | None:
    """Why RPC events of ``first_ledger``..``last_ledger`` may miss classic transfers, or None.

    On pubnet, events between ledgers 58,762,517 and 59,501,299 were incomplete
    until re-ingested: a window that overlaps them (or whose ledgers are not
    known) cannot prove an absence there.
    """
    if network_passphrase != PUBLIC:
        return None
    low, high = INCOMPLETE_EVENT_LEDGERS
    if first_ledger is not None and first_ledger > high:
        return None
    if last_ledger is not None and last_ledger < low:
        return None
    return (
        f"pubnet ledgers {low:,}-{high:,}: classic events were incomplete there until "
        "re-ingested (CAP-67, Protocol 23-24)"
    )


def _incomplete(window: CoverageWindow, why: str) -> CoverageWindow:
    note = f"{window.note}; {why}" if window.note else why
    return attrs.evolve(window, complete=False, note=note)


def classic_event_window(
    window: CoverageWindow,
    *,
    escrow: str,
    kind: str | None,
    first_ledger: int | None,
    last_ledger: int | None,
    network_passphrase: str | None,
) -> CoverageWindow:
    """A ``G...`` escrow read from RPC events: incomplete when the ledgers read overlap the
    pubnet range whose classic events were incomplete (see :func:`incomplete_event_range`)."""
    if kind != "rpc" or not escrow.startswith("G"):
        return window
    why = incomplete_event_range(first_ledger, last_ledger, network_passphrase)
    return window if why is None else _incomplete(window, why)


def classic_events_missing(
    window: CoverageWindow,
    *,
    escrow: str,
    kind: str | None,
    payouts: Sequence[Payout],
    payments: Sequence[ChainPayment],
) -> CoverageWindow:
    """An RPC that returned no events at all for a ``G...`` escrow that has confirmed payout
    rows in the window does not show an absence: its node may not emit classic events
    (CAP-67) or may not have backfilled them. The window is then incomplete."""
    if kind != "rpc" or not escrow.startswith("G") or payments:
        return window
    recorded = [p for p in payouts if p.status == "confirmed" and window.contains(p.created_at)]
    if not recorded:
        return window
    return _incomplete(
        window,
        f"the RPC returned no events for {escrow} although {len(recorded)} confirmed payout "
        "row(s) fall in the window: its node may not emit or backfill classic events (CAP-67); "
        "read the window from --horizon",
    )


def rpc_fallback_reason(
    window: CoverageWindow,
    *,
    escrow: str,
    payouts: Sequence[Payout],
    payments: Sequence[ChainPayment],
) -> str | None:
    """Why an RPC read of a ``G...`` escrow should give way to Horizon (its window is
    incomplete: failed, retention after ``--since``, the pubnet event gap, no classic
    events), or None when it covers everything asked."""
    checked = classic_events_missing(
        window, escrow=escrow, kind="rpc", payouts=payouts, payments=payments
    )
    if checked.complete:
        return None
    return checked.failure or checked.note or "the window is not complete"
