"""Submission search options of ``streampay-incident settlements``.

``--search/--no-search`` (on by default when a chain source is given) and
``--escrow G...|C...`` (the payer, when the export does not say). The search
runs inside ``--timeout`` (:func:`~streampay_incident.usecases.search.search_submissions`
with the probe :func:`~streampay_incident.probes.search.search_transfers_sync`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

from ..io.rows import contains_seed
from ..model import Payout, Settlement
from ..stellar import strkey
from ..usecases.search import Fetch, SubmissionSearch, search_submissions
from ..usecases.settlements import SettlementChain

F = TypeVar("F", bound=Callable[..., Any])


def search_options(func: F) -> F:
    """``--search/--no-search``, ``--escrow`` and ``--search-payments`` (passed as ``search``,
    ``escrow`` and ``search_payments``)."""
    func = click.option(
        "--search-payments",
        "search_payments",
        metavar="FILE",
        help="Search this recorded chain data (an RPC getEvents result or Horizon payments) "
        "instead of the live endpoints: what a submission search would read, offline.",
    )(func)
    func = click.option(
        "--escrow",
        metavar="G...|C...",
        help="The account or contract the settlements pay from, for the submission search "
        "when the export does not say.",
    )(func)
    return click.option(
        "--search/--no-search",
        default=True,
        show_default=True,
        help="With --horizon/--rpc: search the chain for the transfer of settlements with no "
        "tx hash (or one not found) whose payer, destination, asset and amount are known.",
    )(func)


def check_escrow(escrow: str | None) -> str | None:
    """The ``--escrow`` given, checked (exit 2 on a seed or a malformed address)."""
    if escrow is None:
        return None
    escrow = escrow.strip()
    if contains_seed(escrow):
        # Never echo it: this is someone's secret key.
        raise click.UsageError(
            "--escrow looks like a secret seed (S...); give the public G... or C... address"
        )
    if not (strkey.is_account(escrow) or strkey.is_contract(escrow)):
        raise click.UsageError(f"--escrow {escrow!r} is not a valid G... account or C... contract")
    return escrow


def run_search(
    settlements: Sequence[Settlement],
    chain: SettlementChain,
    *,
    horizon_urls: Sequence[str],
    rpc_urls: Sequence[str],
    timeout: float,
    escrow: str | None,
    payouts: Sequence[Payout] = (),
) -> SubmissionSearch:
    """Search the chain (RPC first, Horizon as the fallback) within ``timeout``; what a
    settlement paid, when its row does not say, comes from its ``payouts`` rows."""
    from ..probes.search import search_transfers_sync

    def fetch(pairs: list[Any]) -> Any:
        return search_transfers_sync(
            pairs, rpc_urls=rpc_urls, horizon_urls=horizon_urls, timeout=timeout
        )

    return search_submissions(settlements, chain, fetch=fetch, payouts=payouts, payer=escrow)


def file_fetch(path: str, network_passphrase: str | None) -> Fetch:
    """A search source reading ``path`` (``--search-payments``): what it covers is what the
    file says (an RPC result's retention window and ledgers); a file that does not say
    where its data starts covers nothing for sure."""
    from ..io.chain_payments import read_chain_payments
    from ..observations import PagingCoverage
    from ..probes.paging import PaymentsFetch
    from ..probes.search import PairSearch

    batch = read_chain_payments(path)
    oldest = batch.oldest_ledger_close_time
    kind = "rpc" if batch.oldest_ledger is not None else "file"

    def fetch(pairs: list[tuple[str, str, datetime]]) -> list[PairSearch]:
        return [
            PairSearch(
                payer,
                destination,
                since,
                path,
                kind,
                PaymentsFetch(
                    payments=batch.payments,
                    coverage=PagingCoverage(
                        asked_since=since,
                        covered_since=oldest if oldest is not None and oldest > since else None,
                        unverified=oldest is None,
                        notes=(),
                    ),
                    first_ledger=batch.oldest_ledger,
                    last_ledger=batch.latest_ledger,
                    network_passphrase=network_passphrase,
                ),
            )
            for payer, destination, since in pairs
        ]

    return fetch


def search_from_file(
    settlements: Sequence[Settlement],
    chain: SettlementChain,
    *,
    path: str,
    network_passphrase: str | None,
    escrow: str | None,
    payouts: Sequence[Payout] = (),
) -> SubmissionSearch:
    """The submission search over a recorded file (``--search-payments``)."""
    return search_submissions(
        settlements,
        chain,
        fetch=file_fetch(path, network_passphrase),
        payouts=payouts,
        payer=escrow,
    )
