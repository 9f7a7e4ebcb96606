"""Paging a ``G...`` escrow's payments on Horizon (see :mod:`.payments`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from ..io.chain_payments import (
    RecordProblem,
    chain_payments_from_horizon,
)
from ..model import ChainPayment
from ..observations import as_int, as_rfc3339
from ..timefmt import format_rfc3339
from .http import (
    json_object,
    transport_outcome,
)
from .paging import (
    _FAST_LEDGER_SECONDS,
    _MAX_PAGES,
    PAGE_LIMIT,
    PaymentsFetch,
    Progress,
    _bad_answer,
    _endpoint_stop,
    _page,
    _resume,
    _Run,
    _Stop,
)


def _next_cursor(page: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str | None:
    href = ((page.get("_links") or {}).get("next") or {}).get("href")
    if isinstance(href, str):
        values = parse_qs(urlsplit(href).query).get("cursor")
        if values and values[0]:
            return values[0]
    token = records[-1].get("paging_token") if records else None
    return str(token) if token is not None else None


async def _horizon_ledger_time(run: _Run, sequence: int) -> datetime | None:
    exchange = await run.get(f"ledgers/{sequence}", "ledger")
    doc = json_object(exchange)
    if exchange.status != 200 or doc is None:
        return None
    return as_rfc3339(doc.get("closed_at"))


async def _horizon_root(run: _Run) -> tuple[int | None, datetime | None, int]:
    """(latest ledger, its close time, first ledger of history) from the Horizon root."""
    exchange = await run.get("", "root")
    if transport_outcome(exchange) is not None:
        raise _Stop(_endpoint_stop(run.endpoint, exchange, "Horizon root"))
    root = json_object(exchange)
    if exchange.status != 200 or root is None:
        raise _Stop(
            _bad_answer(run.endpoint, exchange, f"HTTP {exchange.status}: not a Horizon root")
        )
    passphrase = root.get("network_passphrase")
    run.network_passphrase = passphrase if isinstance(passphrase, str) else None
    return (
        as_int(root.get("history_latest_ledger")),
        as_rfc3339(root.get("history_latest_ledger_closed_at")),
        as_int(root.get("history_elder_ledger")) or 1,
    )


async def _horizon_start(
    run: _Run, latest: int | None, latest_at: datetime | None, elder: int, notes: list[str]
) -> tuple[str, datetime | None]:
    """(start cursor, start of coverage when it is not --since itself)."""
    since = run.since
    if since is not None and latest is not None and latest_at is not None:
        guess = latest - math.ceil((latest_at - since).total_seconds() / _FAST_LEDGER_SECONDS) - 1
        if guess > elder:
            at = await _horizon_ledger_time(run, guess)
            if at is not None and at <= since:
                return str(guess << 32), None
    # No --since, or the estimate is not provably early enough: start where history starts.
    elder_at = await _horizon_ledger_time(run, elder) if elder > 2 else None
    if elder_at is not None and (since is None or elder_at > since):
        after = ", after --since" if since is not None else ""
        notes.append(
            f"Horizon's history starts at ledger {elder} ({format_rfc3339(elder_at)}){after}"
        )
        return "", elder_at
    if elder > 2 and elder_at is None and since is not None:
        run.unverified = True
        notes.append(
            f"Horizon's history starts at ledger {elder} and it did not say when that ledger "
            "closed: it may start after --since"
        )
    return "", None


async def _merge_amount(run: _Run, record: Mapping[str, Any]) -> str | None:
    """The merged balance of an ``account_merge``: its ``account_credited`` effect."""
    op_id = record.get("id")
    into = record.get("into")
    exchange = await run.get(f"operations/{op_id}/effects?limit={PAGE_LIMIT}", "effects")
    doc = json_object(exchange)
    if exchange.status != 200 or doc is None:
        return None
    for effect in (doc.get("_embedded") or {}).get("records") or []:
        if (
            isinstance(effect, dict)
            and effect.get("type") == "account_credited"
            and effect.get("account") == into
            and isinstance(effect.get("amount"), str)
        ):
            return str(effect["amount"])
    return None


async def _horizon_pages(run: _Run, start_cursor: str) -> None:
    cursor = start_cursor
    base = f"accounts/{run.escrow}/payments"
    while run.pages < _MAX_PAGES:  # pragma: no branch - the bound is a safety net
        query = urlencode(
            {
                "join": "transactions",
                "include_failed": "true",
                "order": "asc",
                "limit": PAGE_LIMIT,
                "cursor": cursor,
            }
        )
        exchange = await run.get(f"{base}?{query}", "payments")
        if transport_outcome(exchange) is not None or exchange.status != 200:
            raise _Stop(_endpoint_stop(run.endpoint, exchange, "payments page"))
        page = json_object(exchange)
        records = ((page or {}).get("_embedded") or {}).get("records")
        if page is None or not isinstance(records, list):
            raise _Stop(_bad_answer(run.endpoint, exchange, "not a Horizon payments page"))
        if not records:
            return
        kept: list[dict[str, Any]] = []
        payments: list[ChainPayment] = []
        past_until = False
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise _Stop(_bad_answer(run.endpoint, exchange, f"record {index} is not an object"))
            record = {k: v for k, v in record.items() if k != "_links"}
            if (
                record.get("type") == "account_merge"
                and record.get("account") == run.escrow
                and "amount" not in record
            ):
                amount = await _merge_amount(run, record)
                if amount is not None:
                    record["amount"] = amount
            try:
                parsed = chain_payments_from_horizon(record)
            except RecordProblem as exc:
                raise _Stop(
                    _bad_answer(
                        run.endpoint, exchange, f"record {index}: {exc.field}: {exc.message}"
                    )
                ) from None
            closed = next((p.closed_at for p in parsed if p.closed_at), None)
            if closed is None:
                closed = as_rfc3339(record.get("created_at"))
            if run.until is not None and closed is not None and closed > run.until:
                past_until = True
                break
            kept.append(record)
            payments.extend(parsed)
            if closed is not None:
                run.reached = closed
        run.keep(payments)
        next_cursor = _next_cursor(page, kept) if kept else None
        if kept and next_cursor is not None:
            cursor = next_cursor
            run.cursor = cursor
            if run.cursor_file is not None:
                run.cursor_file.add_page(kept, cursor)
        run.page_done(run.reached)
        if past_until or len(records) < PAGE_LIMIT or next_cursor is None:
            return


async def fetch_horizon_payments(
    horizon_url: str,
    escrow: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    timeout: float = 10.0,
    client: Any = None,
    cursor_file: Path | str | None = None,
    progress: Progress | None = None,
) -> PaymentsFetch:
    """Every payment of ``escrow`` (a ``G...`` account) from ``since`` to ``until``.

    Never raises on network faults: they end the paging with a ``CHAIN_*``
    finding and an incomplete window. Raises :class:`InputError` only for a
    cursor file that belongs to another run.
    """
    return await _page(
        _horizon_walk,
        "horizon",
        horizon_url,
        escrow,
        since=since,
        until=until,
        timeout=timeout,
        client=client,
        cursor_file=cursor_file,
        progress=progress,
    )


async def _horizon_walk(run: _Run) -> None:
    """The Horizon root, the start cursor (or the cursor file's), then the payments pages."""
    latest, run.latest_at, elder = await _horizon_root(run)
    state = run.cursor_file
    if state is not None and state.resumed:
        run.covered_since = _resume(run, state, run.notes, run.since)
        start = state.cursor or ""
    else:
        start, run.covered_since = await _horizon_start(
            run, latest, run.latest_at, elder, run.notes
        )
    await _horizon_pages(run, start)
