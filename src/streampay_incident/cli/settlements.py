"""``streampay-incident settlements``: which settlements are stuck, and is a retry safe?

The shell around :func:`~streampay_incident.usecases.triage_settlements`:
read the export and what the chain says (a file, live lookups), call the use
case, print the report with a verdict per settlement.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click
import pluggy

from ..io.payouts import read_payouts
from ..io.transactions import read_transactions
from ..logevents import log_event
from ..model import ChainTransaction, Payout, Settlement
from ..registry import get_plugin_manager, plugin_settings_from_env
from ..report_stream import SettlementSpool
from ..stellar.networks import network_name
from ..timefmt import format_rfc3339
from ..usecases import (
    SettlementChain,
    check_settlement_network,
    settlement_chain,
    stream_settlement_triage,
    streams_settlements,
)
from ..usecases.search import triage_with_search
from .chain import endpoint_urls
from .common import (
    RFC3339,
    Network,
    docs_url,
    emit,
    emit_spooled,
    handle_input_errors,
    output_color,
    output_options,
    utc_now,
)
from .outbox import OutboxSource, outbox_options, read_settlement_input, stream_settlement_input
from .search import check_escrow, run_search, search_from_file, search_options


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
    chain_snapshot: str | None = None,
) -> tuple[SettlementChain, dict[str, Any]]:
    """What the chain says, from ``--transactions``, a ``--chain-snapshot`` recording and
    live lookups; and the report inputs.

    The I/O happens here (the files, the network, within one ``timeout``); the
    use case grades the round through ``pm`` and keeps what it can trust.
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
    snapshot = None
    if chain_snapshot is not None:
        from ..probes import observations_from_recording, read_recording

        snapshot = observations_from_recording(read_recording(chain_snapshot))
        inputs["chain_snapshot"] = chain_snapshot
    chain = settlement_chain(
        transactions,
        latest_ledger_close_time=latest_ledger_close_time,
        snapshot=snapshot,
        live=live,
        network_passphrase=network_passphrase,
        now=now,
        pm=pm,
    )
    inputs.update(chain.inputs)
    return chain, inputs


def report_inputs(
    read_inputs: dict[str, Any],
    chain: SettlementChain,
    chain_inputs: dict[str, Any],
    payouts_file: str | None,
    payouts: Sequence[Payout] | None,
    network: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The report's inputs, in the order it shows them (``now`` and the close time last)."""
    inputs: dict[str, Any] = dict(read_inputs)
    inputs.update(chain_inputs)
    if payouts is not None:
        inputs["payouts"] = payouts_file
        inputs["payout_records"] = len(payouts)
    if network is not None:
        inputs["network"] = network_name(network)
    inputs["now"] = format_rfc3339(now)
    close_time = chain.context.latest_ledger_close_time
    if close_time is not None:
        inputs["latest_ledger_close_time"] = format_rfc3339(close_time)
        # Every close time the use case keeps has a source (given, snapshot or live).
        source = chain.close_time_source or "given"
        inputs["latest_ledger_close_time_source"] = (
            "--latest-ledger-close-time" if source == "given" else source
        )
    return inputs


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
@click.option(
    "--chain-snapshot",
    "chain_snapshot",
    metavar="FILE",
    help="A `chain --record` recording: its chain status (fail blocks every retry) and the "
    "latest ledger close time of its freshest healthy endpoint on --network.",
)
@click.option(
    "--payouts",
    "payouts_file",
    metavar="FILE",
    help="The payouts export (CSV, JSON Lines, JSON): a settlement another payout already "
    "paid is never retry-safe (SETTLEMENT_ALREADY_PAID).",
)
@search_options
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
    payouts_file: str | None = None,
    chain_snapshot: str | None = None,
    search: bool = True,
    escrow: str | None = None,
    search_payments: str | None = None,
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
    if [file, transactions_file, payouts_file].count("-") > 1:
        raise click.UsageError(
            "standard input can be read once: give one of FILE, --transactions, --payouts as -"
        )
    if chain_snapshot is not None and (horizon_urls or rpc_urls):
        raise click.UsageError("--chain-snapshot replays a recorded round: drop --horizon, --rpc")
    if chain_snapshot is not None and network is None:
        raise click.UsageError("--chain-snapshot needs --network (the network it must show)")
    source = OutboxSource.from_options(file, outbox_opts, timeout)
    payer = check_escrow(escrow)
    pm = get_plugin_manager(plugin_settings_from_env(os.environ, timeout=timeout))
    # Nothing needs every settlement at once (no live lookup, no search, only built-in
    # checks): judged a batch at a time, the report on disk until it is complete.
    live = bool(horizon_urls or rpc_urls)
    searching = bool(search and search_payments)
    if not (live or searching) and streams_settlements(pm):
        stream = stream_settlement_input(source, network_passphrase=network)
        payouts = None if payouts_file is None else read_payouts(payouts_file)
        chain, chain_inputs = gather_chain(
            (),
            transactions_file=transactions_file,
            latest_ledger_close_time=latest_ledger_close_time,
            pm=pm,
            network_passphrase=network,
            now=moment,
            chain_snapshot=chain_snapshot,
        )
        inputs = report_inputs(
            stream.inputs, chain, chain_inputs, payouts_file, payouts, network, moment
        )
        with SettlementSpool(fmt, color=output_color(fmt), docs_url=docs_url()) as spool:
            streamed = stream_settlement_triage(
                stream.records,
                chain=chain,
                now=moment,
                pm=pm,
                inputs=inputs,
                sink=spool,
                payouts=payouts,
                now_from_clock=now is None,
                network_passphrase=network,
            )
            log_event(
                "report",
                command="settlements",
                status=streamed.report.overall,
                findings=streamed.findings,
            )
            emit_spooled(spool, streamed, fail_on)
    read = read_settlement_input(source, network_passphrase=network)
    records = read.settlements
    # Every file is read (bad input: exit 2) before any network call.
    payouts = None if payouts_file is None else read_payouts(payouts_file)
    started = time.monotonic()  # the search gets what is left of --timeout
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
        chain_snapshot=chain_snapshot,
    )
    if network is not None:
        check_settlement_network(records, chain, network_passphrase=network)
    inputs = report_inputs(read.inputs, chain, chain_inputs, payouts_file, payouts, network, moment)
    found = None
    if search and search_payments:
        found = search_from_file(
            records,
            chain,
            path=search_payments,
            network_passphrase=network,
            escrow=payer,
            payouts=payouts or (),
        )
    elif search and (horizon_urls or rpc_urls):
        found = run_search(
            records, chain, horizon_urls=horizon_urls, rpc_urls=rpc_urls,
            timeout=max(0.0, timeout - (time.monotonic() - started)), escrow=payer,
            payouts=payouts or (),
        )  # fmt: skip
    report = triage_with_search(
        records,
        chain=chain,
        search=found,
        now=moment,
        pm=pm,
        inputs=inputs,
        payouts=payouts,
        now_from_clock=now is None,
    )
    report = read.annotate_report(report)
    log_event("report", command="settlements", status=report.overall, findings=len(report.findings))
    emit(report, fmt, fail_on)
