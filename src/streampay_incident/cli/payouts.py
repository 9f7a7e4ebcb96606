"""``streampay-incident payouts FILE``: find double payouts in a payout export.

The imperative shell around :func:`~streampay_incident.usecases.triage_payouts`:
read and validate the export (any bad record: exit 2, nothing on stdout),
gather the escrow's chain payments when asked, call the use case (every
registered payout check, built-in rules and plugins), print the report, exit
by ``--fail-on``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from .. import engines, registry, usecases
from ..engines import DEFAULT_SPARK_MASTER, ENGINES
from ..errors import shown
from ..io.payouts import read_payouts
from ..io.rows import input_name, is_stream
from ..logevents import log_event
from ..model import Payout, PayoutPolicy, Report
from ..timefmt import format_duration, format_rfc3339, parse_duration
from .common import RFC3339, emit, handle_input_errors, output_options, utc_now
from .escrow import EscrowRequest, escrow_observation, escrow_options
from .outbox import (
    PAYOUT_OUTBOX_OPTIONS,
    OutboxSource,
    _generic_file,
    outbox_payout_options,
    read_payout_input,
)

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
            self.fail(f"{shown(value)}: {exc}", param, ctx)


def estimated_lines(path: Path, *, sample_bytes: int = 1 << 16) -> int:
    """Roughly how many lines ``path`` holds, from the line length of its first bytes.

    0 for a stream (``-``, a FIFO): it can be read only once, by the reader.
    """
    if is_stream(path):
        return 0
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
        return read_payouts(path, source=source or input_name(path), progress=progress)


@click.command("payouts")
# A folder (of part files) only for --engine spark; checked in the command.
@click.argument("file", type=click.Path(path_type=Path), required=False)
@click.option(
    "--repeat-window",
    type=Duration(),
    default="10m",
    show_default=True,
    help="Chain same destination/asset/amount transfers at most this far apart (90s, 10m, 1h).",
)
@click.option(
    "--now",
    type=RFC3339(),
    help="Stamp the report with this time (default: the clock); judge an old export as of then.",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="auto",
    show_default=True,
    help="auto: DuckDB for a plain payout file export (--escrow included), PostgreSQL for "
    "--db (not with --escrow), unless a plugin needs the records (else python, the "
    "reference); spark: PySpark (--spark-master), without --escrow; postgres: --db only.",
)
@click.option(
    "--spark-master", default=DEFAULT_SPARK_MASTER, show_default=True, help="For --engine spark."
)
@escrow_options
@outbox_payout_options
@output_options
@handle_input_errors
def payouts(
    file: Path | None,
    repeat_window: timedelta,
    fmt: str,
    fail_on: str,
    now: datetime | None = None,
    engine: str = "auto",
    spark_master: str = DEFAULT_SPARK_MASTER,
    **escrow_opts: Any,
) -> None:
    """Find double payouts in a payout export (CSV, JSON Lines or a JSON array).

    Rules: one tx hash on several rows; one settlement paid by several
    transfers; one memo paid for several settlements; an idempotency key
    reused with other content; the same destination, asset and amount paid
    again within --repeat-window. Each finding names the payout rows, the
    amount at risk and the runbook section to follow.

    With --escrow and a chain source (--chain-payments FILE, --horizon URL for a
    G... escrow account, --rpc URL for a C... contract or a G... account), also reconcile
    the rows with what actually left the escrow between --since and --until.

    StreamPay's settlement_outbox (an export, detected by its columns, or --db)
    is read as the streampay payouts view: each row whose payload names amount,
    destination and asset is a payout attempt.
    """
    outbox_opts = {name: escrow_opts.pop(name) for name in PAYOUT_OUTBOX_OPTIONS}
    escrow_request = EscrowRequest.from_options(escrow_opts)  # usage errors before any work
    if str(file) == "-" and escrow_opts.get("chain_payments") == "-":
        raise click.UsageError(
            "standard input can be read once: give FILE or --chain-payments as -"
        )
    db_timeout = escrow_opts.get("timeout") or escrow_opts.get("chain_timeout") or 5.0
    source = OutboxSource.from_options(file, outbox_opts, db_timeout)
    policy = PayoutPolicy(repeat_window=repeat_window)
    if file is not None and engine != "spark" and file.is_dir():
        raise click.BadParameter(f"File {shown(str(file))} is a directory.", param_hint="'FILE'")
    with collector_paused():  # the records are freed inside
        report = triage_file(
            source, policy, escrow_request, now=now, engine=engine, spark_master=spark_master
        )
    log_event("report", command="payouts", status=report.overall, findings=len(report.findings))
    emit(report, fmt, fail_on)


def triage_file(
    source: OutboxSource,
    policy: PayoutPolicy,
    escrow_request: EscrowRequest | None = None,
    *,
    now: datetime | None = None,
    engine: str = "python",
    spark_master: str = DEFAULT_SPARK_MASTER,
) -> Report:
    """Read the export or the outbox (and the escrow's chain source), triage it; the report.

    ``now`` (``--now``) stamps the report and goes into its inputs; without it
    the clock does, and an export over 24 h older gets a note. ``engine``
    ``auto`` (DuckDB when it may), ``duckdb`` / ``spark`` run the rules as SQL
    over a plain payout file export (DuckDB with ``--escrow`` too); ``auto`` /
    ``postgres`` run them inside PostgreSQL for ``--db`` (not with ``--escrow``);
    anything else (an outbox export, third-party checks, --escrow on Spark or with
    --db) is the reference's, and asking an engine for it is exit 2.
    """
    budget_cap = escrow_request.timeout if escrow_request is not None else None  # --timeout
    pm = registry.get_plugin_manager(
        registry.plugin_settings_from_env(os.environ, timeout=budget_cap)
    )
    if source.db is not None and engine in ("auto", "postgres"):
        reason = engines.needs_records(pm, False, engine=engine) or (
            "escrow reconciliation (--escrow) reads the records"
            if escrow_request is not None
            else None
        )
        if reason is None:  # the rules run inside PostgreSQL (the reference when they cannot)
            from .payouts_db import pushed_down_report

            return pushed_down_report(
                source,
                policy,
                now=now or utc_now(),
                now_given=now is not None,
                reference=lambda: _db_reference(source, policy, pm=pm, now=now),
            )
        engine = engines.choose_engine(engine, reason)  # postgres asked for in vain: exit 2
    elif engine == "postgres":
        raise engines.EngineUnavailable(
            "--engine postgres runs payouts --db inside PostgreSQL; "
            "a file is read by --engine auto, duckdb or python"
        )
    elif engine != "python":
        reason = engines.needs_records(pm, escrow_request is not None, engine=engine) or _not_plain(
            source, spooled=engine != "auto"
        )
        engine = engines.choose_engine(engine, reason)  # an engine asked for in vain: exit 2
    if engine != "python":
        assert source.file is not None  # _not_plain: a file
        return engines.triage_payouts(
            Path(source.file),
            policy,
            engine=engine,
            python=lambda readable, *, source: _reference_of_copy(
                readable, source, policy, escrow_request, pm=pm, now=now
            ),
            now=now or utc_now(),
            now_given=now is not None,
            spark_master=spark_master,
            plain=lambda copy: source.profile == "generic" or _generic_file(str(copy)),
            escrow=_escrow_join(escrow_request, pm) if escrow_request is not None else None,
        )
    records, inputs, outbox = read_payout_input(source, load_payouts)
    return _reference(records, inputs, policy, escrow_request, pm=pm, now=now, outbox=outbox)


def _db_reference(
    source: OutboxSource, policy: PayoutPolicy, *, pm: Any, now: datetime | None
) -> Report:
    """The reference's report of ``--db`` (the push-down handed the rows back to it)."""
    records, inputs, outbox = read_payout_input(source, load_payouts)
    return _reference(records, inputs, policy, None, pm=pm, now=now, outbox=outbox)


def _not_plain(source: OutboxSource, *, spooled: bool) -> str | None:
    """Why ``source`` is not a plain payout file export an engine may read, or None.

    ``spooled``: an engine asked for spools a stream and checks the copy; ``auto``
    leaves a stream to the reference, which reads it once.
    """
    if source.db is not None:
        return "--db is pushed down to PostgreSQL (--engine auto or postgres)"
    assert source.file is not None
    if source.profile == "generic":
        return None
    path = Path(source.file)
    if path.is_dir() or path.suffix.lower() == ".parquet" or "://" in source.file:
        return None  # psql writes no Parquet nor folders: not an outbox export
    if is_stream(path):
        return None if spooled else "a stream's profile is known once read (--profile generic)"
    if source.profile == "streampay" or not _generic_file(source.file):
        return "an outbox export is read as the streampay payouts view"
    return None


def _escrow_join(request: EscrowRequest, pm: Any) -> Callable[[Any], Report]:
    """The escrow reconciliation over the rows an engine selects for the chain payments
    (``rows_for(payments, escrow)``), for :func:`engines.triage_payouts`."""

    def reconcile(rows_for: Any) -> Report:
        def rows(payments: Any) -> Any:
            return rows_for(payments, request.escrow)

        chain = escrow_observation(request, rows_for=rows)
        with registry.plugin_run():
            return usecases.reconcile_escrow(rows(chain.payments), chain, now=utc_now(), pm=pm)

    return reconcile


def _reference_of_copy(
    readable: Path,
    name: str,
    policy: PayoutPolicy,
    escrow_request: EscrowRequest | None,
    *,
    pm: Any,
    now: datetime | None,
) -> Report:
    """The reference's report of a plain export an engine handed back (``readable`` may be
    a spooled copy of a stream named ``name``)."""
    records = load_payouts(readable, source=name)
    inputs: dict[str, Any] = {"payouts": name, "records": len(records)}
    return _reference(records, inputs, policy, escrow_request, pm=pm, now=now, outbox=None)


def _reference(
    records: list[Payout],
    inputs: dict[str, Any],
    policy: PayoutPolicy,
    escrow_request: EscrowRequest | None,
    *,
    pm: Any,
    now: datetime | None,
    outbox: Any,
) -> Report:
    """Every payout check (and the escrow reconciliation) over the records: the report."""
    escrow = (
        escrow_observation(escrow_request, payouts=records) if escrow_request is not None else None
    )
    inputs["repeat_window"] = format_duration(policy.repeat_window)
    if now is not None:
        inputs["now"] = format_rfc3339(now)
    report = usecases.triage_payouts(
        records,
        policy=policy,
        now=now or utc_now(),
        pm=pm,
        inputs=inputs,
        escrow=escrow,
        now_from_clock=now is None,
    )
    return report if outbox is None else outbox.annotate_report(report)
