"""Escrow reconciliation options of ``streampay-incident payouts``.

``--chain-payments FILE | --horizon URL | --rpc URL`` with ``--escrow G...|C...``
and ``--since T --until T``: what left the escrow on chain, compared with the
payout rows by :func:`~streampay_incident.usecases.reconcile_escrow`. A
``G...`` escrow is read from Horizon's payments of the account, a ``C...``
escrow contract from Stellar RPC ``getEvents`` transfer events; a file may hold
either shape. ``--escrow`` without a chain source, or a source without
``--escrow``, is a usage error (exit 2).

The payouts command adds :func:`escrow_options` to its options and hands
:func:`escrow_observation` (what the chain source says) to the use case.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import click

from .. import registry, usecases
from ..checks.coverage import rpc_fallback_reason
from ..errors import shown
from ..io.chain_payments import read_chain_payments
from ..io.rows import contains_seed
from ..model import ChainPayment, EscrowObservation, Finding, Payout
from ..stellar import strkey
from ..timefmt import format_rfc3339
from .common import RFC3339, Network, utc_now

if TYPE_CHECKING:
    pass

F = TypeVar("F", bound=Callable[..., Any])

ESCROW_OPTION_NAMES = (
    "chain_payments",
    "horizon",
    "rpc",
    "escrow",
    "since",
    "until",
    "cursor_file",
    "timeout",
    "chain_timeout",
    "network",
)
# Seconds all Horizon/RPC requests of one run may wait for together (--timeout).
DEFAULT_TIMEOUT = 60.0


def escrow_options(func: F) -> F:
    """The escrow reconciliation options (passed to the command as keyword arguments)."""
    options = [
        click.option(
            "--network",
            type=Network(),
            help="Check that the escrow's endpoint serves this network (public, testnet or a "
            "passphrase); exit 2 when it reports another. Default: the endpoint's own.",
        ),
        click.option(
            "--chain-timeout",
            "chain_timeout",
            type=click.FloatRange(min=0.1),
            deprecated="use --timeout, which bounds the whole run",
            help="Old name of --timeout.",
        ),
        click.option(
            "--timeout",
            "timeout",
            type=click.FloatRange(min=0.1),
            help=(
                "Seconds the whole run may wait on Horizon/RPC, all pages and retries "
                f"together (not local processing). Default: {DEFAULT_TIMEOUT:g}."
            ),
        ),
        click.option(
            "--cursor-file",
            metavar="FILE",
            help="Keep the paging cursor and what was read here; a re-run continues from it.",
        ),
        click.option("--until", type=RFC3339(), help="End of the reconciled window (RFC 3339)."),
        click.option("--since", type=RFC3339(), help="Start of the reconciled window (RFC 3339)."),
        click.option(
            "--escrow",
            metavar="G...|C...",
            help="The escrow account (G..., Horizon payments) or contract (C..., RPC events).",
        ),
        click.option(
            "--rpc",
            metavar="URL",
            help="Stellar RPC to read the escrow's transfer events (C..., and G... from "
            "Protocol 23's classic events; Horizon for older windows).",
        ),
        click.option("--horizon", metavar="URL", help="Horizon to read a G... escrow's payments."),
        click.option(
            "--chain-payments",
            metavar="FILE",
            help="Horizon payment records/pages or RPC getEvents results (JSON, JSON Lines).",
        ),
    ]
    for option in options:
        func = option(func)
    return func


@attrs.frozen
class EscrowRequest:
    """What the escrow options ask for, checked."""

    escrow: str
    chain_payments: str | None = None
    horizon: str | None = None
    rpc: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    network: str | None = None

    @property
    def source(self) -> str:
        return self.chain_payments or self.horizon or self.rpc or ""

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> EscrowRequest | None:
        """None when no escrow option was given; ``click.UsageError`` (exit 2) when they clash."""
        sources = [n for n in ("chain_payments", "horizon", "rpc") if options.get(n)]
        escrow = options.get("escrow")
        if not sources and not escrow:
            for name in ("since", "until", "cursor_file", "network"):
                if options.get(name):
                    flag = "--" + name.replace("_", "-")
                    raise click.UsageError(f"{flag} needs --escrow and a chain source")
            return None
        if not escrow:
            raise click.UsageError(
                "--chain-payments/--horizon/--rpc need --escrow G...|C... (the escrow to reconcile)"
            )
        if not sources:
            raise click.UsageError(
                "--escrow needs a chain source: --chain-payments FILE, --horizon URL or --rpc URL"
            )
        escrow = escrow.strip()
        both = sorted(sources) == ["horizon", "rpc"]
        if len(sources) > 1 and not (both and escrow.startswith("G")):
            raise click.UsageError(
                "give one of --chain-payments, --horizon, --rpc (a G... escrow may take "
                "--rpc with --horizon as its fallback)"
            )
        _check_escrow(escrow)
        if options.get("horizon") and not escrow.startswith("G"):
            raise click.UsageError("--horizon reads a G... escrow account; use --rpc for C...")
        if options.get("cursor_file") and options.get("chain_payments"):
            raise click.UsageError("--cursor-file goes with --horizon or --rpc, not a file")
        if options.get("cursor_file") and both:
            raise click.UsageError("--cursor-file goes with one of --horizon or --rpc")
        since, until = options.get("since"), options.get("until")
        if since is not None and until is not None and since > until:
            raise click.UsageError("--since is after --until")
        return cls(
            escrow=escrow,
            chain_payments=options.get("chain_payments"),
            horizon=options.get("horizon"),
            rpc=options.get("rpc"),
            since=since,
            until=until,
            cursor_file=options.get("cursor_file"),
            timeout=float(
                options.get("timeout") or options.get("chain_timeout") or DEFAULT_TIMEOUT
            ),
            network=options.get("network"),
        )


def _check_escrow(escrow: str) -> None:
    if contains_seed(escrow):
        # Never echo it: this is someone's secret key.
        raise click.UsageError(
            "--escrow looks like a secret seed (S...); give the escrow's public G... or C... "
            "address. This tool never needs a secret."
        )
    if not (strkey.is_account(escrow) or strkey.is_contract(escrow)):
        raise click.UsageError(
            f"--escrow {shown(escrow)} is not a valid G... account or C... contract"
        )


@contextlib.contextmanager
def _progress_line() -> Iterator[Callable[[int, int, datetime | None], None]]:
    """A live progress line on stderr when it is a terminal; a no-op otherwise."""
    if not sys.stderr.isatty():
        yield lambda *_: None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = progress.add_task("paging escrow payments", total=None)

    def update(pages: int, payments: int, reached: datetime | None) -> None:
        at = format_rfc3339(reached) if reached else "..."
        progress.update(task, description=f"{pages} page(s), {payments} payment(s), at {at}")

    with progress:
        yield update


def _from_file(request: EscrowRequest) -> EscrowObservation:
    batch = read_chain_payments(request.chain_payments or "")
    return usecases.escrow_from_file(
        request.escrow, request.source, batch, since=request.since, until=request.until
    )


def _from_network(request: EscrowRequest, kind: str) -> EscrowObservation:
    from ..probes.payments import fetch_escrow_payments

    url = (request.rpc if kind == "rpc" else request.horizon) or ""
    with _progress_line() as update:
        fetched = fetch_escrow_payments(
            url,
            request.escrow,
            since=request.since,
            until=request.until,
            timeout=request.timeout,
            cursor_file=request.cursor_file,
            progress=update,
            kind=kind,
        )
    return usecases.escrow_from_paging(request.escrow, url, fetched, kind=kind)


def escrow_observation(
    request: EscrowRequest,
    *,
    payouts: Sequence[Payout] = (),
    rows_for: Callable[[Sequence[ChainPayment]], Sequence[Payout]] | None = None,
) -> EscrowObservation:
    """What the chain source of ``request`` says left the escrow, and the window it covers.

    A file that cannot be read raises :class:`~streampay_incident.errors.InputError`
    (exit 2); an endpoint that misbehaves gives ``CHAIN_*`` findings and an
    incomplete window instead. With ``--rpc``, fee-bumps whose inner hash a row of
    ``payouts`` may have recorded are resolved with ``getTransaction``. An endpoint
    that reports another network than a ``--network`` given raises
    :class:`~streampay_incident.errors.WrongNetworkError` (exit 2).
    ``rows_for(payments)``, when given, stands for ``payouts``: the rows that can
    matter for those payments (the DuckDB engine selects them in SQL).
    """
    if request.chain_payments:
        return _from_file(request)
    observation = _live_observation(request, rows_for or (lambda _payments: payouts))
    usecases.check_escrow_network(observation, request.network)
    return observation


def _live_observation(
    request: EscrowRequest, rows_for: Callable[[Sequence[ChainPayment]], Sequence[Payout]]
) -> EscrowObservation:
    """What the live source (RPC first, Horizon for what it could not cover) says."""
    if not request.rpc:
        return _from_network(request, "horizon")
    from ..probes.fee_bumps import resolve_hashes_sync

    rpc = request.rpc
    listed = _from_network(request, "rpc")
    chain = usecases.resolve_fee_bumps(
        rows_for(listed.payments),
        listed,
        lambda hashes: resolve_hashes_sync(rpc, hashes, timeout=request.timeout),
    )
    if request.horizon is None:
        return chain
    why = rpc_fallback_reason(
        chain.window,
        escrow=request.escrow,
        payouts=rows_for(chain.payments),
        payments=chain.payments,
    )
    if why is None:
        return chain
    # Horizon for what the RPC could not cover: its retention, a failure, missing events.
    fallback = _from_network(request, "horizon")
    note = f"RPC {rpc} did not cover the window ({why}): read from Horizon {request.horizon}"
    if fallback.window.note:
        note += f"; {fallback.window.note}"
    return attrs.evolve(fallback, window=attrs.evolve(fallback.window, note=note))


def escrow_findings(
    payouts: Sequence[Payout], request: EscrowRequest
) -> tuple[list[Finding], dict[str, Any]]:
    """Reconcile ``payouts`` with the chain source; the findings and the report inputs."""
    settings = registry.plugin_settings_from_env(os.environ, timeout=request.timeout)
    pm = registry.get_plugin_manager(settings)
    chain = escrow_observation(request, payouts=payouts)
    report = usecases.reconcile_escrow(payouts, chain, now=utc_now(), pm=pm)
    return list(report.findings), dict(report.inputs)
