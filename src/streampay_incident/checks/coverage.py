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

from ..model import ChainPayment, CoverageWindow, Finding, make_finding
from ..observations import PagingCoverage, PagingStop
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
    return CoverageWindow(since=since, until=until, complete=complete, note="; ".join(notes))


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
