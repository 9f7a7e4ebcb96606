"""Live paging of what left the escrow: Horizon payments (``G...``), RPC transfer events (``C...``).

Horizon: ``GET /accounts/{G}/payments?join=transactions&include_failed=true&order=asc``
``&limit=200&cursor=...``, page after page (the cursor of ``_links.next`` applied to the URL we were
given, so a Horizon behind a proxy that reports another host still works),
from the ledger closed at ``--since`` to ``--until`` (or Horizon's latest
ledger). The start cursor is a ledger TOID (``ledger << 32``) estimated from
the latest ledger and checked against ``/ledgers/{n}``; when the estimate is
not provably at or before ``--since`` paging starts at the beginning of
Horizon's history. ``account_merge`` records carry no amount: the merged
balance is read from the operation's ``account_credited`` effect.

Stellar RPC: ``getEvents`` with ``type=contract`` and topic filters
``["transfer", <escrow>, *, *]`` / ``["transfer", <escrow>, *]``: the Stellar
Asset Contract emits the transfer event, so the escrow is matched in the
``from`` topic rather than in ``contractIds`` (which names the emitting token
contract). ``startLedger`` comes from ``--since`` the same way (``getHealth``
for the retention window, ``getLedgers`` to check the estimate). When the
RPC's retention window starts after ``--since``, the coverage window says so
(``complete=False`` and a note) instead of calling older payouts missing.
``getNetwork`` supplies the passphrase used to check that a transfer event
comes from the real Stellar Asset Contract of the asset it names.

All requests of a run share one network budget (``timeout`` seconds of waiting
on the endpoint, retries included; time spent parsing does not count); an
endpoint that hangs, refuses, rate-limits or lies ends the paging with
a ``CHAIN_*`` finding and a coverage window that ends where the data ends.

Resumable: ``cursor_file`` is JSON Lines: a header (source, endpoint kind,
escrow, since), then each completed page's raw records followed by a
``{"cursor": ...}`` line. A re-run reads the records back, continues from the
last cursor, and reconciles the whole span.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from .horizon_payments import fetch_horizon_payments
from .http import run_sync
from .paging import CursorFile, PaymentsFetch, Progress
from .rpc_transfers import fetch_rpc_transfers


def fetch_escrow_payments(
    url: str,
    escrow: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    timeout: float = 10.0,
    cursor_file: Path | str | None = None,
    progress: Progress | None = None,
    kind: str | None = None,
) -> PaymentsFetch:
    """The blocking entry point for the CLI: ``kind`` ``rpc`` reads RPC events (a ``G...``
    escrow's classic payments too, CAP-67), ``horizon`` Horizon's payments; without a
    kind, RPC for a ``C...`` escrow and Horizon for a ``G...`` one."""
    if kind is None:
        kind = "rpc" if escrow.startswith("C") else "horizon"
    fetcher = fetch_rpc_transfers if kind == "rpc" else fetch_horizon_payments
    # run_sync, not asyncio.run here: the loop runs in a worker thread (see its docstring).
    return run_sync(
        fetcher(
            url,
            escrow,
            since=since,
            until=until,
            timeout=timeout,
            cursor_file=cursor_file,
            progress=progress,
        )
    )


__all__ = [
    "CursorFile",
    "PaymentsFetch",
    "fetch_escrow_payments",
    "fetch_horizon_payments",
    "fetch_rpc_transfers",
]
