"""Submission search, the I/O: the transfers from a payer to a destination since a moment.

Stellar RPC first: ``getEvents`` with topic filters ``["transfer", <payer>,
<destination>, *]`` (Stellar Asset Contract events, classic payments included
since CAP-67) and ``["transfer", <payer>, <destination>]`` (other tokens),
paged from the ledger closed at the window start (checked with
``getLedgers``, as the escrow paging does) to the latest ledger. When the RPC
fails, Horizon's payments of the payer are the fallback (destination filtered
afterwards). Everything runs under one deadline (``timeout`` seconds in all);
what it could not read is said in the coverage's gaps, never assumed.

Returns values only (:class:`PairSearch`): what matches what, and whether the
coverage is complete, is decided in :mod:`streampay_incident.checks.search`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from ..model import ChainPayment
from ..stellar.strkey import base_account
from .horizon_payments import fetch_horizon_payments
from .http import make_client, run_sync
from .paging import PaymentsFetch
from .rpc_transfers import fetch_rpc_transfers


@attrs.frozen
class PairSearch:
    """What one source said about one (payer, destination) pair since ``since``.

    ``fetched`` is None when the deadline passed before the source answered.
    """

    payer: str
    destination: str
    since: datetime
    source: str
    kind: str
    fetched: PaymentsFetch | None


def search_filters(payer: str, destination: str) -> list[dict[str, Any]]:
    """``getEvents`` filters for transfers from ``payer`` to ``destination`` (any asset).

    A muxed ``M...`` address is filtered on its ``G...`` account: CAP-67 puts the
    base account in the topics and the muxed id in the event's data.
    """
    from stellar_sdk import Address, scval

    transfer = scval.to_symbol("transfer").to_xdr()
    source = Address(base_account(payer)).to_xdr_sc_val().to_xdr()
    to = Address(base_account(destination)).to_xdr_sc_val().to_xdr()
    return [{"type": "contract", "topics": [[transfer, source, to, "*"], [transfer, source, to]]}]


async def _one(
    kind: str, url: str, payer: str, destination: str, since: datetime, client: Any, timeout: float
) -> PaymentsFetch:
    if kind == "rpc":
        return await fetch_rpc_transfers(
            url,
            payer,
            since=since,
            timeout=timeout,
            client=client,
            filters=search_filters(payer, destination),
        )
    return await fetch_horizon_payments(url, payer, since=since, timeout=timeout, client=client)


async def search_transfers(
    pairs: Iterable[tuple[str, str, datetime]],
    *,
    rpc_urls: Sequence[str] = (),
    horizon_urls: Sequence[str] = (),
    timeout: float,
    client: Any = None,
) -> list[PairSearch]:
    """For each ``(payer, destination, since)``: the first source that read it without
    failing (every RPC, then every Horizon), else the last one's partial answer.

    Never raises on network faults; the whole search ends by ``timeout``.
    """
    sources = [("rpc", u) for u in rpc_urls] + [("horizon", u) for u in horizon_urls]
    own = client is None
    active = client or make_client(timeout=timeout)
    results: dict[tuple[str, str], PairSearch] = {}

    async def pair(payer: str, destination: str, since: datetime) -> None:
        for kind, url in sources:
            fetched = await _one(kind, url, payer, destination, since, active, timeout)
            results[(payer, destination)] = PairSearch(
                payer, destination, since, url, kind, fetched
            )
            if fetched.stop is None:
                return

    wanted = list(pairs)
    try:
        await asyncio.wait_for(
            asyncio.gather(*(pair(p, d, s) for p, d, s in wanted)), timeout=timeout
        )
    except TimeoutError:
        pass  # what was not read in time is said in the coverage
    finally:
        if own:
            await active.aclose()
    out: list[PairSearch] = []
    for payer, destination, since in wanted:
        found = results.get((payer, destination))
        if found is None:
            kind, url = sources[0] if sources else ("rpc", "")
            found = PairSearch(payer, destination, since, url, kind, None)
        out.append(found)
    return out


def search_transfers_sync(
    pairs: Iterable[tuple[str, str, datetime]],
    *,
    rpc_urls: Sequence[str] = (),
    horizon_urls: Sequence[str] = (),
    timeout: float,
) -> list[PairSearch]:
    """The blocking entry point for the CLI (see :func:`search_transfers`)."""
    return run_sync(
        search_transfers(pairs, rpc_urls=rpc_urls, horizon_urls=horizon_urls, timeout=timeout)
    )


def payments_of(searches: Iterable[PairSearch]) -> list[ChainPayment]:
    """Every payment the searches read."""
    return [p for s in searches if s.fetched is not None for p in s.fetched.payments]
