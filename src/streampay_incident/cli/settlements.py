"""``streampay-incident settlements``: which settlements are stuck, and is a retry safe?

The shell around :func:`~streampay_incident.checks.settlements.classify_settlements`:
read the export and what the chain says, run the registered settlement checks
(built-in and plugins), print the report with a verdict per settlement.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs
import click

from ..checks.settlements import ChainStatus, TransactionIndex, classify_settlements
from ..io.transactions import read_transactions
from ..logevents import log_event
from ..model import ChainTransaction, Report, Settlement, SettlementPolicy
from ..registry import get_plugin_manager, plugin_settings_from_env, run_checks
from ..stellar.networks import network_name
from ..timefmt import format_rfc3339
from .chain import endpoint_urls
from .common import RFC3339, Network, emit, handle_input_errors, output_options, utc_now
from .outbox import OutboxSource, outbox_options, read_settlement_input

SETTLEMENT_HOOK = "streampay_incident_register_settlement_checks"


@attrs.frozen
class ChainView:
    """What the chain says, gathered before the pure checks run.

    From ``--transactions`` and ``--latest-ledger-close-time`` today; live
    lookups (``--horizon``/``--rpc``) add their transactions, the latest ledger
    close time, the chain grade and the source accounts' sequence numbers here.
    """

    transactions: tuple[ChainTransaction, ...] = ()
    latest_ledger_close_time: datetime | None = None
    chain_status: ChainStatus | None = None
    account_sequences: dict[str, int] | None = None
    inputs: dict[str, Any] = attrs.field(factory=dict)

    def index(self) -> TransactionIndex:
        return TransactionIndex(
            self.transactions,
            latest_ledger_close_time=self.latest_ledger_close_time,
            chain_status=self.chain_status,
            account_sequences=self.account_sequences,
        )


def gather_chain_view(
    settlements: Sequence[Settlement],
    *,
    transactions_file: str | None,
    latest_ledger_close_time: datetime | None,
    horizon_urls: Sequence[str] = (),
    rpc_urls: Sequence[str] = (),
    network_passphrase: str | None = None,
    timeout: float = 5.0,
    now: datetime | None = None,
) -> ChainView:
    """Everything the checks need to know about the chain, from files and options.

    Live lookup plugs in here (issue 3: ``--horizon``/``--rpc``/``--timeout``):
    look up each hash of ``settlements`` not already answered by the file, take
    the latest ledger close time when none was given, grade the chain and read
    the source accounts' sequence numbers, all within one deadline.
    """
    transactions: tuple[ChainTransaction, ...] = ()
    inputs: dict[str, Any] = {}
    if transactions_file is not None:
        transactions = tuple(read_transactions(transactions_file))
        inputs["transactions"] = transactions_file
        inputs["transaction_records"] = len(transactions)
    chain_status: ChainStatus | None = None
    account_sequences: dict[str, int] | None = None
    if horizon_urls or rpc_urls:
        from ..probes.transactions import lookup_settlement_chain

        assert network_passphrase is not None and now is not None
        live = lookup_settlement_chain(
            settlements,
            horizon_urls=horizon_urls,
            rpc_urls=rpc_urls,
            network_passphrase=network_passphrase,
            timeout=timeout,
            now=now,
            known=transactions,
        )
        transactions += live.transactions
        if latest_ledger_close_time is None:
            latest_ledger_close_time = live.latest_ledger_close_time
        chain_status = live.chain_status
        account_sequences = dict(live.account_sequences)
        inputs.update(live.inputs())
    return ChainView(
        transactions=transactions,
        latest_ledger_close_time=latest_ledger_close_time,
        chain_status=chain_status,
        account_sequences=account_sequences,
        inputs=inputs,
    )


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
    source = OutboxSource.from_options(file, outbox_opts, timeout)
    read = read_settlement_input(source, network_passphrase=network)
    records = read.settlements
    chain = gather_chain_view(
        records,
        transactions_file=transactions_file,
        latest_ledger_close_time=latest_ledger_close_time,
        horizon_urls=horizon_urls,
        rpc_urls=rpc_urls,
        network_passphrase=network,
        timeout=timeout,
        now=moment,
    )
    policy = SettlementPolicy()
    triage = classify_settlements(
        records,
        transactions=chain.transactions,
        now=moment,
        latest_ledger_close_time=chain.latest_ledger_close_time,
        policy=policy,
        chain_status=chain.chain_status,
        account_sequences=chain.account_sequences,
    )
    pm = get_plugin_manager(plugin_settings_from_env(os.environ))
    # Every registered check (the built-in rules are one) gets the same values.
    findings = run_checks(
        pm, SETTLEMENT_HOOK, records, transactions=chain.index(), now=moment, policy=policy
    )
    findings = read.annotate(findings)
    inputs: dict[str, Any] = dict(read.inputs)
    inputs.update(chain.inputs)
    if network is not None:
        inputs["network"] = network_name(network)
    inputs["now"] = format_rfc3339(moment)
    if chain.latest_ledger_close_time is not None:
        inputs["latest_ledger_close_time"] = format_rfc3339(chain.latest_ledger_close_time)
    report = Report(
        command="settlements",
        findings=findings,
        generated_at=moment,
        inputs=inputs,
        settlements=triage.verdicts,
    )
    log_event("report", command="settlements", status=report.overall, findings=len(findings))
    emit(report, fmt, fail_on)
