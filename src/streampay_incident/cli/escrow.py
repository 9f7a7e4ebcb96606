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
from ..errors import shown
from ..io.chain_payments import read_chain_payments
from ..io.rows import contains_seed
from ..model import EscrowObservation, Finding, Payout
from ..stellar import strkey
from ..timefmt import format_rfc3339
from .common import RFC3339, utc_now

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
)
# Seconds all Horizon/RPC requests of one run may wait for together (--timeout).
DEFAULT_TIMEOUT = 60.0


def escrow_options(func: F) -> F:
    """The escrow reconciliation options (passed to the command as keyword arguments)."""
    options = [
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
        click.option("--rpc", metavar="URL", help="Stellar RPC to read a C... escrow's transfers."),
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

    @property
    def source(self) -> str:
        return self.chain_payments or self.horizon or self.rpc or ""

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> EscrowRequest | None:
        """None when no escrow option was given; ``click.UsageError`` (exit 2) when they clash."""
        sources = [n for n in ("chain_payments", "horizon", "rpc") if options.get(n)]
        escrow = options.get("escrow")
        if not sources and not escrow:
            for name in ("since", "until", "cursor_file"):
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
        if len(sources) > 1:
            raise click.UsageError("give one of --chain-payments, --horizon, --rpc")
        escrow = escrow.strip()
        _check_escrow(escrow)
        if options.get("horizon") and not escrow.startswith("G"):
            raise click.UsageError("--horizon reads a G... escrow account; use --rpc for C...")
        if options.get("rpc") and not escrow.startswith("C"):
            raise click.UsageError("--rpc reads a C... escrow contract; use --horizon for G...")
        if options.get("cursor_file") and options.get("chain_payments"):
            raise click.UsageError("--cursor-file goes with --horizon or --rpc, not a file")
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


def _from_network(request: EscrowRequest) -> EscrowObservation:
    from ..probes.payments import fetch_escrow_payments

    with _progress_line() as update:
        fetched = fetch_escrow_payments(
            request.horizon or request.rpc or "",
            request.escrow,
            since=request.since,
            until=request.until,
            timeout=request.timeout,
            cursor_file=request.cursor_file,
            progress=update,
        )
    return usecases.escrow_from_paging(request.escrow, request.source, fetched)


def escrow_observation(request: EscrowRequest) -> EscrowObservation:
    """What the chain source of ``request`` says left the escrow, and the window it covers.

    A file that cannot be read raises :class:`~streampay_incident.errors.InputError`
    (exit 2); an endpoint that misbehaves gives ``CHAIN_*`` findings and an
    incomplete window instead.
    """
    return _from_file(request) if request.chain_payments else _from_network(request)


def escrow_findings(
    payouts: Sequence[Payout], request: EscrowRequest
) -> tuple[list[Finding], dict[str, Any]]:
    """Reconcile ``payouts`` with the chain source; the findings and the report inputs."""
    pm = registry.get_plugin_manager(registry.plugin_settings_from_env(os.environ))
    report = usecases.reconcile_escrow(payouts, escrow_observation(request), now=utc_now(), pm=pm)
    return list(report.findings), dict(report.inputs)
