"""``payouts --db``: the rules pushed down into PostgreSQL, the reference when they cannot be.

The report is the one the reference (``--engine python``) gives for the same
rows: the same inputs (records, ``outbox_rows_without_payout``, database,
table, filter), findings annotated with the streams of their payouts
(``aggregate_ids``), ``INPUT_EMPTY`` when no row names a payout, the
stale-export note. When the push-down hands the rows back
(:class:`~streampay_incident.engines.duckdb_engine.Fallback`), the reference
reads them in its own transaction and names every problem (exit 2).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from ..checks.freshness import stale_export_note
from ..checks.inputs import input_empty
from ..errors import InputError
from ..io.outbox_db import DSN_NOTE, database_target
from ..io.outbox_payouts import OutboxPayouts
from ..logevents import log_event
from ..model import PayoutPolicy, Report
from ..timefmt import format_duration, format_rfc3339
from .outbox import OutboxSource


def _password_note(has_password: bool) -> None:
    """The note the reference gives for a DSN holding a password (once per run)."""
    if has_password:
        click.echo(DSN_NOTE, err=True)


def pushed_down_report(
    source: OutboxSource,
    policy: PayoutPolicy,
    *,
    now: datetime,
    now_given: bool,
    reference: Callable[[], Report],
) -> Report:
    """The payouts report of ``source.db`` from the push-down, or ``reference()``'s."""
    from ..engines.duckdb_engine import Fallback
    from ..engines.postgres_engine import pushdown_outbox_payouts

    assert source.db is not None
    target = database_target(source.db)
    query = source.query()
    try:
        pushed = pushdown_outbox_payouts(
            source.db, query, source.reading, policy, timeout=source.timeout
        )
    except Fallback as why:
        log_event("engine_fallback", engine="postgres", reason=str(why))
        return reference()  # which says it, when the DSN holds a password
    except InputError:
        _password_note(target.has_password)
        raise
    _password_note(target.has_password)
    name = f"{target.display} {source.table}"
    records = int(pushed.records)
    log_event("engine", engine="postgres", records=records, findings=len(pushed.findings))
    inputs: dict[str, Any] = {
        "payouts": name,
        "records": records,
        "profile": "streampay",
        "outbox_rows_without_payout": pushed.skipped,
        "database": target.display,
        "table": source.table,
        "filter": query.describe(),
        "repeat_window": format_duration(policy.repeat_window),
    }
    if now_given:
        inputs["now"] = format_rfc3339(now)
    findings = list(OutboxPayouts([], pushed.streams, pushed.skipped).annotate(pushed.findings))
    if not records:
        findings.append(input_empty(name, "payout"))
    note = None if now_given or not records else stale_export_note([pushed.records.newest], now=now)
    return Report(
        command="payouts",
        findings=tuple(findings),
        generated_at=now,
        inputs=inputs,
        extra={"notes": [note]} if note else {},
    )
