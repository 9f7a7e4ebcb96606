"""Bulk engines for the payout rules: DuckDB for files, Spark for exports past one machine.

The five payout rules of :mod:`streampay_incident.checks.payouts` (the
reference, run by ``--engine python``) are also written as SQL
(:mod:`.sql`); an engine reads the export where it lies, validates it and
runs that SQL, and only the findings come back as Python objects. Nothing
here is imported by ``import streampay_incident``, and DuckDB and PySpark
are imported only when an engine runs.

``auto`` (the default) picks DuckDB for a file when nothing needs the
records as Python objects (escrow reconciliation, a third-party payout
check), else the reference.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..logevents import log_event
from ..model import Finding, PayoutPolicy, Report

if TYPE_CHECKING:  # pragma: no cover
    import pluggy

ENGINES = ("auto", "duckdb", "python", "spark")
DEFAULT_SPARK_MASTER = "local[*]"
BUILTIN_PAYOUT_PLUGIN = "streampay_incident.checks.payouts"
PAYOUT_CHECKS_HOOK = "streampay_incident_register_payout_checks"
# A file larger than this gets a progress bar on a terminal's stderr.
PROGRESS_MIN_BYTES = 16 * 2**20

PythonTriage = Callable[..., Report]


class EngineUnavailable(InputError):
    """The engine asked for cannot run this request (exit 2, with the reason)."""


def needs_records(pm: pluggy.PluginManager, escrow_requested: bool) -> str | None:
    """Why this run needs the records as Python objects (so the reference engine), or None."""
    if escrow_requested:
        return "escrow reconciliation (--escrow) reads the records"
    hook = getattr(pm.hook, PAYOUT_CHECKS_HOOK)
    others = sorted(
        {pm.get_name(impl.plugin) or "?" for impl in hook.get_hookimpls()} - {BUILTIN_PAYOUT_PLUGIN}
    )
    if others:
        return f"third-party payout checks ({', '.join(others)}) read the records"
    return None


def choose_engine(engine: str, reason_for_python: str | None) -> str:
    """The engine that runs: ``auto`` is DuckDB unless something needs the records
    (or DuckDB is not installed)."""
    if engine == "auto":
        duckdb_installed = importlib.util.find_spec("duckdb") is not None
        return "python" if reason_for_python or not duckdb_installed else "duckdb"
    if engine != "python" and reason_for_python:
        raise EngineUnavailable(f"--engine {engine}: {reason_for_python}; use --engine python")
    return engine


def triage_payouts(
    file: Path,
    policy: PayoutPolicy,
    escrow_request: Any = None,
    *,
    engine: str,
    python: PythonTriage,
    now: Callable[[], datetime],
    spark_master: str = DEFAULT_SPARK_MASTER,
    plugin_manager: pluggy.PluginManager | None = None,
) -> Report:
    """The payouts report from ``engine``; the reference ``python`` whenever it must judge.

    ``python(file, policy, escrow_request, source=...)`` is the reference
    triage. DuckDB hands the input back to it (see
    :class:`~.duckdb_engine.Fallback`) for anything it might read otherwise,
    so the report and every error message stay the reference's.
    """
    from .. import registry

    pm = plugin_manager or registry.get_plugin_manager(
        registry.plugin_settings_from_env(os.environ)
    )
    chosen = choose_engine(engine, needs_records(pm, escrow_request is not None))
    if chosen == "python":
        return python(file, policy, escrow_request)
    from .duckdb_engine import Fallback, spooled

    with spooled(file) as readable:
        try:
            if chosen == "spark":
                from .spark_engine import run_spark

                findings, records = run_spark(
                    readable, source=str(file), policy=policy, master=spark_master
                )
            else:
                findings, records = _run_duckdb(readable, str(file), policy)
        except Fallback as why:
            log_event("engine_fallback", engine=chosen, reason=str(why))
            return python(readable, policy, escrow_request, source=str(file))
    log_event("engine", engine=chosen, records=records, findings=len(findings))
    return payouts_report(file, policy, findings, records, now())


def _run_duckdb(path: Path, source: str, policy: PayoutPolicy) -> tuple[list[Finding], int]:
    from .duckdb_engine import run_duckdb

    with progress_bar(path) as progress:
        return run_duckdb(path, source=source, policy=policy, progress=progress)


def payouts_report(
    file: Path, policy: PayoutPolicy, findings: list[Finding], records: int, generated_at: datetime
) -> Report:
    """The report the reference builds, from an engine's findings and record count."""
    return Report(
        command="payouts",
        findings=tuple(findings),
        generated_at=generated_at,
        inputs={
            "payouts": str(file),
            "records": records,
            "repeat_window": f"{int(policy.repeat_window.total_seconds())}s",
        },
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
