"""Paging a ``C...`` escrow's transfer events on Stellar RPC (see :mod:`.payments`)."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from ..io.chain_payments import (
    RecordProblem,
    chain_payment_from_rpc_event,
)
from ..observations import PagingStop, as_int, as_unix_time
from ..timefmt import format_rfc3339
from .paging import (
    _FAST_LEDGER_SECONDS,
    _MAX_PAGES,
    PAGE_LIMIT,
    PaymentsFetch,
    Progress,
    _page,
    _resume,
    _Run,
    _Stop,
)


def _transfer_filters(escrow: str) -> list[dict[str, Any]]:
    from stellar_sdk import Address, scval

    transfer = scval.to_symbol("transfer").to_xdr()
    burn = scval.to_symbol("burn").to_xdr()
    clawback = scval.to_symbol("clawback").to_xdr()
    source = Address(escrow).to_xdr_sc_val().to_xdr()
    return [
        {
            "type": "contract",
            # SAC events have 4 topics (the asset last), other tokens 3.
            "topics": [[transfer, source, "*", "*"], [transfer, source, "*"]],
        },
        {
            # CAP-67: a payment to the issuer is a burn; a clawback takes from the holder.
            "type": "contract",
            "topics": [[burn, source, "*"], [clawback, source, "*"]],
        },
    ]


async def _rpc_start(
    run: _Run, notes: list[str]
) -> tuple[int, datetime | None, datetime | None, str | None]:
    """(start ledger, start of coverage, latest close time, network passphrase)."""
    health = await run.rpc("getHealth")
    oldest = as_int(health.get("oldestLedger"))
    latest = as_int(health.get("latestLedger"))
    if oldest is None or latest is None:
        raise _Stop(
            PagingStop(
                run.endpoint,
                "getHealth",
                "error",
                "getHealth: no oldestLedger/latestLedger to page events from",
            )
        )
    try:
        network = await run.rpc("getNetwork")
        passphrase = (
            network.get("passphrase") if isinstance(network.get("passphrase"), str) else None
        )
    except _Stop:
        passphrase = None  # only used to double-check asset contracts
    oldest_at = as_unix_time(health.get("oldestLedgerCloseTime"))
    latest_at = as_unix_time(health.get("latestLedgerCloseTime"))
    if oldest_at is None or latest_at is None:
        found = await _rpc_ledger_time(run, oldest)
        oldest_at = oldest_at or found[0]
        latest_at = latest_at or found[1]
    since = run.since
    if oldest_at is None:
        if since is not None:
            run.unverified = True
            notes.append(
                f"the RPC keeps events from ledger {oldest} but did not say when that ledger "
                "closed: it may start after --since"
            )
        return oldest, None, latest_at, passphrase
    if since is None:
        notes.append(f"the RPC keeps events from ledger {oldest} ({format_rfc3339(oldest_at)})")
        return oldest, oldest_at, latest_at, passphrase
    if since < oldest_at:
        notes.append(
            f"the RPC's retention window starts at ledger {oldest} ({format_rfc3339(oldest_at)}), "
            f"after --since {format_rfc3339(since)}: older payouts cannot be checked here"
        )
        return oldest, oldest_at, latest_at, passphrase
    if latest_at is not None:
        guess = latest - math.ceil((latest_at - since).total_seconds() / _FAST_LEDGER_SECONDS) - 1
        if guess > oldest:
            at, _ = await _rpc_ledger_time(run, guess)
            if at is not None and at <= since:
                return guess, None, latest_at, passphrase
    return oldest, None, latest_at, passphrase


async def _rpc_ledger_time(run: _Run, sequence: int) -> tuple[datetime | None, datetime | None]:
    """(close time of ``sequence``, latest close time) from ``getLedgers``; Nones when unknown."""
    try:
        result = await run.rpc("getLedgers", {"startLedger": sequence, "pagination": {"limit": 1}})
    except _Stop:
        return None, None  # an older RPC without getLedgers: fall back to the oldest ledger
    ledgers = result.get("ledgers") or []
    first = ledgers[0] if ledgers and isinstance(ledgers[0], dict) else {}
    at = (
        as_unix_time(first.get("ledgerCloseTime"))
        if as_int(first.get("sequence")) == sequence
        else None
    )
    return at, as_unix_time(result.get("latestLedgerCloseTime"))


def _cursor_ledger(cursor: str) -> int | None:
    """The ledger an RPC events cursor points into: ``<toid>-<index>``, TOID = ledger << 32 | ..."""
    head = cursor.split("-", 1)[0]
    return int(head) >> 32 if head.isdigit() else None


async def _rpc_pages(
    run: _Run, start_ledger: int | None, passphrase: str | None
) -> datetime | None:
    """Page getEvents; returns the latest ledger close time the RPC reported."""
    filters = run.filters or _transfer_filters(run.escrow)
    run.first_ledger = start_ledger if not run.cursor else None
    cursor = run.cursor
    latest_at: datetime | None = None
    while run.pages < _MAX_PAGES:  # pragma: no branch - the bound is a safety net
        params: dict[str, Any] = {"filters": filters, "pagination": {"limit": PAGE_LIMIT}}
        if cursor:
            params["pagination"]["cursor"] = cursor
        else:
            params["startLedger"] = start_ledger
        result = await run.rpc("getEvents", params)
        events = result.get("events")
        if not isinstance(events, list):
            raise _Stop(
                PagingStop(
                    run.endpoint,
                    "getEvents",
                    "error",
                    "getEvents: result without an events list",
                )
            )
        latest_at = as_unix_time(result.get("latestLedgerCloseTime")) or latest_at
        run.last_ledger = as_int(result.get("latestLedger")) or run.last_ledger
        kept: list[dict[str, Any]] = []
        past_until = False
        for index, event in enumerate(events):
            try:
                if not isinstance(event, dict):
                    raise RecordProblem(None, "not an object")
                payment = chain_payment_from_rpc_event(event, network_passphrase=passphrase)
            except RecordProblem as exc:
                raise _Stop(
                    PagingStop(
                        run.endpoint,
                        "getEvents",
                        "error",
                        f"getEvents: event {index}: {exc.field}: {exc.message}",
                    )
                ) from None
            closed = payment.closed_at if payment is not None else None
            if run.until is not None and closed is not None and closed > run.until:
                past_until = True
                break
            kept.append(event)
            if payment is not None:
                run.keep([payment])
                if closed is not None:
                    run.reached = closed
        next_cursor = result.get("cursor")
        next_cursor = str(next_cursor) if next_cursor else None
        if next_cursor and not past_until:
            run.cursor = next_cursor
            if run.cursor_file is not None:
                run.cursor_file.add_page(kept, next_cursor)
        run.page_done(run.reached)
        if past_until or next_cursor is None or next_cursor == cursor:
            return latest_at
        if not events:
            # An empty page may only mean the RPC scanned a slice of ledgers: go on until
            # the cursor reaches the latest ledger.
            at, latest = _cursor_ledger(next_cursor), as_int(result.get("latestLedger"))
            if at is None or latest is None or at >= latest:
                return latest_at
        cursor = next_cursor
    return latest_at  # pragma: no cover - a hundred thousand pages


async def fetch_rpc_transfers(
    rpc_url: str,
    escrow: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    timeout: float = 10.0,
    client: Any = None,
    cursor_file: Path | str | None = None,
    progress: Progress | None = None,
    filters: list[dict[str, Any]] | None = None,
) -> PaymentsFetch:
    """Every token transfer out of ``escrow`` (a ``C...`` contract) the RPC still keeps.

    ``filters`` replaces the escrow's ``getEvents`` filters (the submission
    search narrows them to one destination). Never raises on network faults
    (see :func:`fetch_horizon_payments`).
    """
    return await _page(
        _rpc_walk,
        "rpc",
        rpc_url,
        escrow,
        since=since,
        until=until,
        timeout=timeout,
        client=client,
        cursor_file=cursor_file,
        progress=progress,
        filters=filters,
    )


async def _rpc_walk(run: _Run) -> None:
    """The retention window and start ledger (or the cursor file's cursor), then the events."""
    start, run.covered_since, run.latest_at, passphrase = await _rpc_start(run, run.notes)
    run.network_passphrase = passphrase
    state = run.cursor_file
    if state is not None and state.resumed:
        run.notes.clear()  # the cursor file's span replaces the retention notes
        run.covered_since = _resume(run, state, run.notes, run.since)
    run.latest_at = await _rpc_pages(run, start, passphrase) or run.latest_at
