"""Bulk engines for the payout rules: DuckDB for files, Spark for exports past one machine.

The five payout rules of :mod:`streampay_incident.checks.payouts` (the
reference, run by ``--engine python``) are also written as SQL
(:mod:`.sql`); an engine reads the export where it lies, validates it and
runs that SQL, and only the findings come back as Python objects. Nothing
here is imported by ``import streampay_incident``, and DuckDB and PySpark
are imported only when an engine runs.

DuckDB and Spark read plain payout file exports only. ``auto`` (the default)
picks DuckDB for such a file when nothing needs the records as Python objects
(a third-party payout or escrow check, escrow reconciliation on Spark) or the
reference's readers (an outbox export, a stream of unknown profile), else the
reference. With ``--escrow``, DuckDB also selects the rows the reconciliation
can read (:mod:`.escrow_sql`). For ``--db`` (without ``--escrow``) ``auto``
pushes the rules down into PostgreSQL (:mod:`.postgres_engine`, ``--engine
postgres``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..logevents import log_event
from ..model import Finding, PayoutPolicy, Report
from ..timefmt import format_duration, format_rfc3339

if TYPE_CHECKING:  # pragma: no cover
    import pluggy

    from .escrow_sql import EscrowReconcile
    from .findings import RecordCount

ENGINES = ("auto", "duckdb", "postgres", "python", "spark")
DEFAULT_SPARK_MASTER = "local[*]"
BUILTIN_PAYOUT_PLUGIN = "streampay_incident.checks.payouts"
PAYOUT_CHECKS_HOOK = "streampay_incident_register_payout_checks"
# The engines that reconcile the escrow (auto: when it picks DuckDB).
ESCROW_ENGINES = ("auto", "duckdb", "python")
# A file larger than this gets a progress bar on a terminal's stderr.
PROGRESS_MIN_BYTES = 16 * 2**20

# The reference triage of a plain export: ``(file, source=name) -> Report``.
PythonTriage = Callable[..., Report]


class EngineUnavailable(InputError):
    """The engine asked for cannot run this request (exit 2, with the reason)."""


def needs_records(pm: pluggy.PluginManager, escrow_requested: bool, *, engine: str) -> str | None:
    """Why this run needs the records as Python objects (so the reference engine), or None.

    ``engine`` is the one asked for: escrow reconciliation runs on DuckDB (or the
    reference), not on the others. A plugin's escrow check is a plugin in the report.
    """
    if escrow_requested and engine not in ESCROW_ENGINES:
        return "escrow reconciliation (--escrow) runs on duckdb or python"
    hook = getattr(pm.hook, PAYOUT_CHECKS_HOOK)
    others = sorted(
        {pm.get_name(impl.plugin) or "?" for impl in hook.get_hookimpls()} - {BUILTIN_PAYOUT_PLUGIN}
    )
    if others:
        return f"third-party payout checks ({', '.join(others)}) read the records"
    # Any other plugin may add to the report (its codes, a PLUGIN_ERROR when it fails):
    # the reference's use case reports it.
    plugins = sorted(
        name for name, _ in pm.list_name_plugin() if not name.startswith("streampay_incident.")
    )
    if plugins:
        return f"plugins ({', '.join(plugins)}) take part in the report"
    return None


def choose_engine(engine: str, reason_for_python: str | None) -> str:
    """The engine that runs: ``auto`` is DuckDB unless something needs the reference
    (or DuckDB is not installed); ``duckdb`` / ``spark`` asked for when something needs
    the reference is exit 2 naming it."""
    if engine == "auto":
        duckdb_installed = importlib.util.find_spec("duckdb") is not None
        return "python" if reason_for_python or not duckdb_installed else "duckdb"
    if engine != "python" and reason_for_python:
        raise EngineUnavailable(f"--engine {engine}: {reason_for_python}; use --engine python")
    return engine


def triage_payouts(
    file: Path,
    policy: PayoutPolicy,
    *,
    engine: str,
    python: PythonTriage,
    now: datetime,
    now_given: bool = False,
    spark_master: str = DEFAULT_SPARK_MASTER,
    plain: Callable[[Path], bool] | None = None,
    escrow: EscrowReconcile | None = None,
) -> Report:
    """The payouts report of a plain payout file export from ``engine`` (``duckdb``/``spark``).

    ``python(file, source=name)`` is the reference triage. An engine hands the
    input back to it (see :class:`~.duckdb_engine.Fallback`) for anything it
    might read otherwise (an empty input, duplicate keys, non-finite numbers,
    nesting, shapes only Python judges), so the report and every error
    message stay the reference's. ``escrow`` (DuckDB only) reconciles the
    escrow over the rows DuckDB selects for it, once the rules ran; its
    findings and inputs follow the rules'.
    """
    from .duckdb_engine import Fallback, spooled

    reconciled: list[Report] = []
    with spooled(file) as readable:
        try:
            if engine == "spark":
                from .spark_engine import heap_exhaustion_explained, run_spark

                with heap_exhaustion_explained():
                    findings, records = run_spark(
                        readable, source=str(file), policy=policy, master=spark_master
                    )
            else:
                findings, records = _run_duckdb(readable, str(file), policy, escrow, reconciled)
        except Fallback as why:
            log_event("engine_fallback", engine=engine, reason=str(why))
            return python(readable, source=str(file))
    log_event("engine", engine=engine, records=records, findings=len(findings))
    report = payouts_report(file, policy, findings, records, now, now_given=now_given)
    if reconciled:
        from .escrow_sql import with_escrow

        return with_escrow(report, reconciled[0])
    return report


def _run_duckdb(
    path: Path,
    source: str,
    policy: PayoutPolicy,
    escrow: EscrowReconcile | None = None,
    reconciled: list[Report] | None = None,
) -> tuple[list[Finding], RecordCount]:
    from .duckdb_engine import run_duckdb
    from .escrow_sql import Narrowing

    with contextlib.ExitStack() as reading:
        progress = reading.enter_context(progress_bar(path))

        def join(con: Any) -> None:
            assert escrow is not None and reconciled is not None
            reading.close()  # the bar ends before a live chain source draws its own line
            reconciled[:] = [escrow(Narrowing(con))]

        return run_duckdb(
            path,
            source=source,
            policy=policy,
            progress=progress,
            with_payouts=join if escrow else None,
        )


def payouts_report(
    file: Path,
    policy: PayoutPolicy,
    findings: list[Finding],
    records: RecordCount,
    generated_at: datetime,
    *,
    now_given: bool = False,
) -> Report:
    """The report the reference builds, from an engine's findings and record count
    (with the reference's note on an export over 24 h older than the clock)."""
    from ..checks.freshness import stale_export_note

    note = None if now_given else stale_export_note([records.newest], now=generated_at)
    inputs: dict[str, Any] = {
        "payouts": str(file),
        "records": int(records),
        "repeat_window": format_duration(policy.repeat_window),
    }
    if now_given:
        inputs["now"] = format_rfc3339(generated_at)
    return Report(
        command="payouts",
        findings=tuple(findings),
        generated_at=generated_at,
        inputs=inputs,
        extra={"notes": [note]} if note else {},
    )


@contextlib.contextmanager
def progress_bar(path: Path) -> Iterator[Callable[[float], None] | None]:
    """A percent-done callback drawing a bar on stderr, or None when none is wanted.

    Only on a terminal and only for files big enough to make someone wait.
    """
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    if size < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        "{task.percentage:>3.0f}%",
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(f"reading {path.name}", total=100)
        yield lambda percent: bar.update(task, completed=min(percent, 100.0))
