"""Where a Horizon keeps transactions from: what its 404 for a tx hash covers.

A Horizon that keeps partial history (its root's ``history_elder_ledger`` above
2; SDF's pubnet Horizon does) answers 404 for a transaction older than that
ledger: the 404 then proves nothing before the ledger's close time.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from ..observations import as_int, as_rfc3339
from .http import READ_RETRY, Deadline, ExchangeSink, fetch, join_url, json_object

if TYPE_CHECKING:
    import httpx


@attrs.frozen
class HorizonHistory:
    """Which ledgers a Horizon's 404 covers: all of them (``full``), or from ``starts_at``
    (the close time of its ``history_elder_ledger``); neither when that is unknown."""

    full: bool = True
    elder_ledger: int | None = None
    starts_at: datetime | None = None


FULL_HISTORY = HorizonHistory()


async def horizon_history(
    client: httpx.AsyncClient, url: str, *, deadline: Deadline, sink: ExchangeSink | None = None
) -> HorizonHistory:
    """Where the Horizon at ``url`` keeps transactions from: its root's
    ``history_elder_ledger`` and that ledger's ``closed_at``. A Horizon that keeps
    partial history answers 404 for older transactions: that proves nothing."""

    async def get(path: str, call: str) -> Any:
        exchange = await fetch(
            client, "GET", join_url(url, path), endpoint=url, call=call, deadline=deadline,
            retry=READ_RETRY, sink=sink,
        )  # fmt: skip
        return json_object(exchange) if exchange.status == 200 else None

    root = await get("", "root")
    elder = as_int(root.get("history_elder_ledger")) if root else None
    if elder is None:
        return HorizonHistory(full=False)
    if elder <= 2:
        return FULL_HISTORY
    ledger = await get(f"ledgers/{elder}", "ledger")
    closed = as_rfc3339(ledger.get("closed_at")) if ledger else None
    return HorizonHistory(full=False, elder_ledger=elder, starts_at=closed)
