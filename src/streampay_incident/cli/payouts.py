"""``streampay-incident payouts FILE``: find double payouts in a payout export.

The imperative shell around :func:`~streampay_incident.checks.payouts.find_payout_anomalies`:
read and validate the export (any bad record: exit 2, nothing on stdout),
run every registered payout check (built-in rules and plugins; a raising
plugin becomes a ``PLUGIN_ERROR`` finding), print the report, exit by
``--fail-on``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from .. import engines, registry
from ..engines import DEFAULT_SPARK_MASTER, ENGINES
from ..io.payouts import read_payouts
from ..logevents import log_event
from ..model import Finding, Payout, PayoutPolicy, Report
from ..timefmt import parse_duration
from .common import emit, handle_input_errors, output_options, utc_now
from .escrow import EscrowRequest, escrow_findings, escrow_options

PAYOUT_CHECKS_HOOK = "streampay_incident_register_payout_checks"
# Show a progress bar (stderr, TTY only) for exports longer than this many lines.
PROGRESS_MIN_LINES = 100_000


class Duration(click.ParamType):
    """A click parameter: ``90s``, ``10m``, ``1h`` -> timedelta."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


def estimated_lines(path: Path, *, sample_bytes: int = 1 << 16) -> int:
    """Roughly how many lines ``path`` holds, from the line length of its first bytes."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(sample_bytes)
    except OSError:
        return 0  # read_payouts reports the problem properly
    if not head:
        return 0
    return int(size * max(head.count(b"\n"), 1) / len(head))


@contextlib.contextmanager
def progress_bar(path: Path, *, label: str) -> Iterator[Callable[[int], None] | None]:
    """A line-count progress callback drawing a bar on stderr, or None when none is wanted.

    Only for a terminal (never in pipes, CI logs or JSON consumers' stderr)
    and only for files long enough to make someone wait.
    """
    total = estimated_lines(path)
    if total < PROGRESS_MIN_LINES or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda line: bar.update(task, completed=min(line, total))


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of acyclic records live.

    Payout records hold no reference cycles, so the collector's repeated scans
    of them while they are allocated are pure overhead (about a third of the
    load time of a large export). Reference counting still frees everything.
    Leave the block only once the records are gone: the first allocation after
    re-enabling would otherwise scan every one of them (half a second per
    million).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_payouts(path: Path, *, source: str | None = None) -> list[Payout]:
    """Read and validate the export, with a progress bar for long files."""
    with progress_bar(path, label=f"reading {path.name}") as progress:
        return read_payouts(path, source=source or str(path), progress=progress)


def payout_findings(records: list[Payout], policy: PayoutPolicy) -> list[Finding]:
    """Every registered payout check (built-in rules and plugins) over ``records``."""
    pm = registry.get_plugin_manager(registry.plugin_settings_from_env(os.environ))
    return list(registry.run_checks(pm, PAYOUT_CHECKS_HOOK, records, policy=policy))


@click.command("payouts")
@click.argument("file", type=click.Path(path_type=Path))  # a folder of parts: --engine spark
@click.option(
    "--repeat-window",
    type=Duration(),
    default="10m",
    show_default=True,
    help="Chain same destination/asset/amount transfers at most this far apart (90s, 10m, 1h).",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="auto",
    show_default=True,
    help="auto: DuckDB for a file unless --escrow or a plugin needs the records; "
    "python: the reference; spark: PySpark (--spark-master).",
)
@click.option(
    "--spark-master", default=DEFAULT_SPARK_MASTER, show_default=True, help="For --engine spark."
)
@escrow_options
@output_options
@handle_input_errors
def payouts(
    file: Path,
    repeat_window: timedelta,
    engine: str,
    spark_master: str,
    fmt: str,
    fail_on: str,
    **escrow_opts: Any,
) -> None:
    """Find double payouts in a payout export (CSV, JSON Lines or a JSON array).

    Rules: one tx hash on several rows; one settlement paid by several
    transfers; one memo paid for several settlements; an idempotency key
    reused with other content; the same destination, asset and amount paid
    again within --repeat-window. Each finding names the payout rows, the
    amount at risk and the runbook section to follow.

    With --escrow and a chain source (--chain-payments FILE, --horizon URL for a
    G... escrow account, --rpc URL for a C... escrow contract), also reconcile
    the rows with what actually left the escrow between --since and --until.
    """
    escrow_request = EscrowRequest.from_options(escrow_opts)  # usage errors before any work
    policy = PayoutPolicy(repeat_window=repeat_window)
    with collector_paused():  # the records (python engine) are freed inside
        report = engines.triage_payouts(
            file, policy, escrow_request, engine=engine, spark_master=spark_master,
            python=triage_payouts, now=utc_now,
        )  # fmt: skip
    log_event("report", command="payouts", status=report.overall, findings=len(report.findings))
    emit(report, fmt, fail_on)


def triage_payouts(
    file: Path,
    policy: PayoutPolicy,
    escrow_request: EscrowRequest | None = None,
    *,
    source: str | None = None,
) -> Report:
    """Read the export and run every payout check over it; the report (not the records).

    ``source`` names the input in messages and the report when ``file`` is a
    copy of it (a spooled pipe).
    """
    records = load_payouts(file, source=source)
    findings = payout_findings(records, policy)
    inputs: dict[str, Any] = {
        "payouts": source or str(file),
        "records": len(records),
        "repeat_window": f"{int(policy.repeat_window.total_seconds())}s",
    }
    # Further checks over the same records (escrow reconciliation against the
    # chain: --chain-payments / --horizon / --rpc / --escrow) add their findings
    # and their inputs here, before the report is built.
    if escrow_request is not None:
        escrow_found, escrow_inputs = escrow_findings(records, escrow_request)
        findings += escrow_found
        inputs.update(escrow_inputs)
    return Report(
        command="payouts",
        findings=tuple(findings),
        generated_at=utc_now(),
        inputs=inputs,
    )
