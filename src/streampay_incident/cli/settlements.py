"""``streampay-incident settlements``: which settlements are stuck, and is a retry safe?

The shell around :func:`~streampay_incident.usecases.triage_settlements`:
read the export and what the chain says (a file, live lookups), call the use
case, print the report with a verdict per settlement.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click
import pluggy

from ..io.transactions import read_transactions
from ..logevents import log_event
from ..model import ChainTransaction, Settlement
from ..registry import get_plugin_manager, plugin_settings_from_env
from ..stellar.networks import network_name
from ..timefmt import format_rfc3339
from ..usecases import SettlementChain, settlement_chain, triage_settlements
from .chain import endpoint_urls
from .common import RFC3339, Network, emit, handle_input_errors, output_options, utc_now
from .outbox import OutboxSource, outbox_options, read_settlement_input


def gather_chain(
    settlements: Sequence[Settlement],
    *,
    transactions_file: str | None,
    latest_ledger_close_time: datetime | None,
    pm: pluggy.PluginManager,
    horizon_urls: Sequence[str] = (),
    rpc_urls: Sequence[str] = (),
    network_passphrase: str | None = None,
    timeout: float = 5.0,
    now: datetime | None = None,
) -> tuple[SettlementChain, dict[str, Any]]:
    """What the chain says, from ``--transactions`` and live lookups; and the report inputs.

    The I/O happens here (the file, the network, within one ``timeout``); the
    use case grades the live round through ``pm`` and keeps what it can trust.
    """
    transactions: tuple[ChainTransaction, ...] = ()
    inputs: dict[str, Any] = {}
    if transactions_file is not None:
        transactions = tuple(read_transactions(transactions_file))
        inputs["transactions"] = transactions_file
        inputs["transaction_records"] = len(transactions)
    live = None
    if horizon_urls or rpc_urls:
        from ..probes.transactions import observe_settlements

        assert network_passphrase is not None
        live = observe_settlements(
            settlements,
            horizon_urls=horizon_urls,
            rpc_urls=rpc_urls,
            network_passphrase=network_passphrase,
            timeout=timeout,
            known=transactions,
        )
    chain = settlement_chain(
        transactions,
        latest_ledger_close_time=latest_ledger_close_time,
        live=live,
        network_passphrase=network_passphrase,
        now=now,
        pm=pm,
    )
    inputs.update(chain.inputs)
    return chain, inputs


@click.command("settlements")
@click.argument("file", metavar="FILE", required=False)
@click.option(
    "--transactions",
    "transactions_file",
    metavar="FILE",
    help="What the chain says: Horizon transaction records/pages or RPC getTransaction "
    "results (JSON, JSON Lines).",
)
@click.option(
    "--network",
    type=Network(),
    help="public, testnet or a passphrase; needed when the export has envelope_xdr.",
)
@click.option("--now", type=RFC3339(), help="Evaluate as of this time (default: the clock).")
@click.option(
    "--latest-ledger-close-time",
    type=RFC3339(),
    help="Close time of a ledger known to have closed: proves a max time has passed.",
)
@click.option(
    "--horizon",
    "horizon",
    multiple=True,
    metavar="URL",
    help="Look each tx hash up live on this Horizon (repeatable; needs --network).",
)
@click.option(
    "--rpc",
    "rpc",
    multiple=True,
    metavar="URL",
    help="Look each tx hash up live on this Stellar RPC (repeatable; needs --network).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds for all live lookups together.",
)
@outbox_options
@output_options
@handle_input_errors
def settlements(
    file: str | None,
    transactions_file: str | None,
    network: str | None,
    now: datetime | None,
    latest_ledger_close_time: datetime | None,
    horizon: tuple[str, ...],
    rpc: tuple[str, ...],
    timeout: float,
    fmt: str,
    fail_on: str,
    **outbox_opts: Any,
) -> None:
    """Triage settlement_outbox rows: stuck, failed, settled, and whether a retry is safe.

    FILE is a JSON Lines, CSV or JSON export (``-`` for stdin): the generic
    format or StreamPay's settlement_outbox columns (detected). --db reads the
    table live in a READ ONLY transaction instead. Exit 2 on bad input, 1 when
    the report is at or above --fail-on, else 0.
    """
    moment = now or utc_now()
    horizon_urls = endpoint_urls(horizon, None, option="--horizon")
    rpc_urls = endpoint_urls(rpc, None, option="--rpc")
    if (horizon_urls or rpc_urls) and network is None:
        raise click.UsageError("--horizon/--rpc need --network (another network, other hashes)")
    if file == "-" and transactions_file == "-":
        raise click.UsageError("standard input can be read once: give FILE or --transactions as -")
    source = OutboxSource.from_options(file, outbox_opts, timeout)
    read = read_settlement_input(source, network_passphrase=network)
    records = read.settlements
    pm = get_plugin_manager(plugin_settings_from_env(os.environ))
    chain, chain_inputs = gather_chain(
        records,
        transactions_file=transactions_file,
        latest_ledger_close_time=latest_ledger_close_time,
        pm=pm,
        horizon_urls=horizon_urls,
        rpc_urls=rpc_urls,
        network_passphrase=network,
        timeout=timeout,
        now=moment,
    )
    inputs: dict[str, Any] = dict(read.inputs)
    inputs.update(chain_inputs)
    if network is not None:
        inputs["network"] = network_name(network)
    inputs["now"] = format_rfc3339(moment)
    close_time = chain.context.latest_ledger_close_time
    if close_time is not None:
        inputs["latest_ledger_close_time"] = format_rfc3339(close_time)
    report = read.annotate_report(
        triage_settlements(records, chain=chain, now=moment, pm=pm, inputs=inputs)
    )
    log_event("report", command="settlements", status=report.overall, findings=len(report.findings))
    emit(report, fmt, fail_on)
