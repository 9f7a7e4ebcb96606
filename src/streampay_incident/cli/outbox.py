"""Where ``settlements`` and ``payouts`` read StreamPay's outbox from: a file or the database.

The options (``--profile``, ``--payload-key``, ``--source-timezone``,
``--db``, ``--table``, ``--since``, ``--status``) and the one function per
command that reads its records: a generic export, a StreamPay
``settlement_outbox`` export (detected by its columns), or the table itself,
live and read-only (:mod:`streampay_incident.io.outbox_db`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click

from ..errors import InputError
from ..io.outbox_db import DEFAULT_TABLE, DSN_ENV, DSN_NOTE, STATUSES, OutboxQuery
from ..io.outbox_payouts import OutboxPayouts
from ..io.payouts import payouts_from_text
from ..io.pg_timestamps import parse_source_timezone
from ..io.rows import (
    Row,
    input_name,
    is_stream,
    iter_rows,
    iter_text_rows,
    read_text,
    sniff_format,
)
from ..io.settlements import iter_settlements
from ..io.streampay import (
    PROFILES,
    OutboxReading,
    OutboxRow,
    PayloadPaths,
    annotate_evidence,
    copy_text_problem,
    detect_profile,
    iter_outbox_rows,
)
from ..model import Finding, Payout, Report, Settlement
from ..timefmt import parse_duration, parse_rfc3339

F = TypeVar("F", bound=Callable[..., Any])


class SourceTimezone(click.ParamType):
    """``UTC``, ``+05:30`` or an IANA zone name -> tzinfo."""

    name = "ZONE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return parse_source_timezone(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Since(click.ParamType):
    """A duration back from now (``2h``, ``3d``) or an RFC 3339 time."""

    name = "DURATION|RFC3339"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip()
        try:
            return parse_duration(text)
        except ValueError:
            pass
        try:
            return parse_rfc3339(text)
        except ValueError:
            self.fail(f"{text!r}: expected a duration (24h, 2d) or an RFC 3339 time", param, ctx)


def _options(*, since: bool) -> list[Callable[[F], F]]:
    options = [
        click.option(
            "--profile",
            type=click.Choice(["auto", *PROFILES]),
            default="auto",
            show_default=True,
            help="streampay: StreamPay's settlement_outbox columns (id, event_key, payload, ...); "
            "generic: the documented settlement_id format. auto: by the columns.",
        ),
        click.option(
            "--payload-key",
            "payload_keys",
            multiple=True,
            metavar="FIELD=JSONPATH",
            help="Where the payload holds FIELD (tx_hash, envelope_xdr, amount, asset, "
            "destination, escrow, ledger), e.g. tx_hash=$.result.hash (repeatable).",
        ),
        click.option(
            "--source-timezone",
            type=SourceTimezone(),
            default="UTC",
            show_default=True,
            help="Zone of outbox timestamps printed without an offset (StreamPay writes UTC).",
        ),
        click.option(
            "--db",
            "db",
            envvar=DSN_ENV,
            metavar="POSTGRESQL_URL",
            help=f"Read the outbox live, read-only, from PostgreSQL (or ${DSN_ENV}); "
            "put the password in PGPASSWORD or ~/.pgpass, not here.",
        ),
        click.option(
            "--table",
            default=DEFAULT_TABLE,
            show_default=True,
            help="The outbox table (schema.table accepted) for --db.",
        ),
        click.option(
            "--status",
            "statuses",
            multiple=True,
            type=click.Choice(STATUSES),
            help="With --db: only rows with this status (repeatable).",
        ),
    ]
    if since:
        options.append(
            click.option(
                "--since",
                type=Since(),
                help="With --db: rows updated after this (a duration back or a time); default: "
                "every unsettled row and what settled in the last 24h.",
            )
        )
    return options


def outbox_options(func: F) -> F:
    """The options of ``settlements`` reading StreamPay's outbox (file profile or --db)."""
    for option in reversed(_options(since=True)):
        func = option(func)
    return func


def outbox_payout_options(func: F) -> F:
    """The same for ``payouts`` (whose --since is the escrow window's: no --since here)."""
    for option in reversed(_options(since=False)):
        func = option(func)
    return func


# The parameter names outbox_payout_options adds (payouts splits them from the escrow options).
PAYOUT_OUTBOX_OPTIONS = ("profile", "payload_keys", "source_timezone", "db", "table", "statuses")


@attrs.frozen
class OutboxSource:
    """What a command reads, from its FILE argument and the outbox options."""

    file: str | None
    profile: str = "auto"
    payload_keys: tuple[str, ...] = ()
    source_timezone: tzinfo = UTC
    db: str | None = None
    table: str = DEFAULT_TABLE
    since: timedelta | datetime | None = None
    statuses: tuple[str, ...] = ()
    timeout: float = 5.0

    @classmethod
    def from_options(cls, file: str | Path | None, options: dict[str, Any], timeout: float) -> Any:
        """The source, or a usage error for FILE and --db together or neither."""
        ctx = click.get_current_context(silent=True)
        db = options.get("db")
        from_env = (
            ctx is not None
            and ctx.get_parameter_source("db") is click.core.ParameterSource.ENVIRONMENT
        )
        if file is not None and db is not None:
            if not from_env:
                raise click.UsageError("give FILE or --db, not both")
            db = None  # an explicit FILE wins over the environment's database
        if file is None and db is None:
            raise click.UsageError(f"give FILE (an export, - for stdin) or --db / ${DSN_ENV}")
        if db is None and (options.get("since") is not None or options.get("statuses")):
            raise click.UsageError("--since and --status filter the database: they need --db")
        if db is not None and options.get("profile") == "generic":
            raise click.UsageError("--db reads StreamPay's settlement_outbox: --profile streampay")
        try:
            PayloadPaths.from_options(options.get("payload_keys", ()))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--payload-key") from None
        return cls(
            file=None if file is None else str(file),
            profile=options.get("profile", "auto"),
            payload_keys=tuple(options.get("payload_keys", ())),
            source_timezone=options.get("source_timezone") or UTC,
            db=db,
            table=options.get("table", DEFAULT_TABLE),
            since=options.get("since"),
            statuses=tuple(options.get("statuses", ())),
            timeout=timeout,
        )

    @property
    def reading(self) -> OutboxReading:
        paths = PayloadPaths.from_options(self.payload_keys)
        return OutboxReading(payload_paths=paths, source_timezone=self.source_timezone)

    def query(self) -> OutboxQuery:
        return OutboxQuery(table=self.table, since=self.since, statuses=self.statuses)


@attrs.frozen
class SettlementInput:
    """Settlements read for a command, the report inputs saying from where, and the outbox rows."""

    settlements: list[Settlement]
    inputs: dict[str, Any]
    outbox: dict[str, OutboxRow] = attrs.field(factory=dict)

    def annotate_report(self, report: Report) -> Report:
        """The report with :meth:`annotate`'s findings."""
        if not self.outbox:
            return report
        return attrs.evolve(report, findings=self.annotate(report.findings))

    def annotate(self, findings: Iterable[Finding]) -> tuple[Finding, ...]:
        """Findings about outbox settlements, with their event_key and aggregate_id."""
        return tuple(annotate_evidence(findings, self.outbox))


def _checked_json_lines(lines: Iterable[str], source: str) -> None:
    problem = copy_text_problem(lines, source)
    if problem is not None:
        raise InputError(problem)


def _looks_like_outbox_json(head: str) -> bool:
    # Only outbox exports are checked for COPY's doubling: a generic export may hold a
    # legitimately escaped backslash (a Windows path in last_error).
    return sniff_format(head) != "csv" and ('"event_key"' in head or '"payload"' in head)


def _text_rows(text: str, name: str) -> Iterator[Row]:
    """The rows of an input read whole (a stream); COPY-corrupted JSON is refused first."""
    if _looks_like_outbox_json(text[:4096]):
        _checked_json_lines(io.StringIO(text), name)
    return iter_text_rows(text, source=name, fmt=sniff_format(text[:64], name))


def file_rows(file: str) -> tuple[Iterator[Row], str]:
    """The rows of ``file`` and its name; COPY-corrupted JSON is refused first.

    A stream (``-``, a FIFO such as ``<(psql ...)``) is read once, whole.
    """
    name = input_name(file)
    if is_stream(file):
        return _text_rows(read_text(file, source=name), name), name
    path = Path(file)
    try:
        with path.open("r", encoding="utf-8", errors="replace", newline="") as handle:
            head = handle.read(4096)
            if not path.name.lower().endswith(".csv") and _looks_like_outbox_json(head):
                handle.seek(0)
                _checked_json_lines(handle, name)
    except OSError:
        pass  # iter_rows names the problem (missing, unreadable) the way every reader does
    return iter_rows(path), name


def _profiled(rows: Iterator[Row], profile: str) -> tuple[str, Iterator[Row]]:
    if profile != "auto":
        return profile, rows
    first = next(rows, None)
    if first is None:
        return "generic", iter(())
    return detect_profile(first.values), _chain(first, rows)


def _chain(first: Row, rest: Iterator[Row]) -> Iterator[Row]:
    yield first
    yield from rest


def _database_rows(source: OutboxSource) -> tuple[Iterator[Row], str, dict[str, Any]]:
    from ..io.outbox_db import database_target, outbox_json_rows

    assert source.db is not None
    target = database_target(source.db)
    if target.has_password:
        click.echo(DSN_NOTE, err=True)
    query = source.query()
    name = f"{target.display} {source.table}"
    rows = outbox_json_rows(source.db, query, timeout=source.timeout, source=name)
    inputs = {"database": target.display, "table": source.table, "filter": query.describe()}
    return rows, name, inputs


@attrs.frozen
class SettlementStream:
    """Settlements to read a batch at a time (:func:`stream_settlement_input`): ``records``
    is an iterator (settlements, or outbox rows) that raises :class:`InputError` at its end
    when a row was bad; ``inputs`` says from where (``records`` is counted as they come)."""

    records: Iterator[Settlement | OutboxRow]
    inputs: dict[str, Any]


def stream_settlement_input(
    source: OutboxSource, *, network_passphrase: str | None
) -> SettlementStream:
    """:func:`read_settlement_input` as an iterator: nothing is held (see
    :mod:`streampay_incident.usecases.settlement_stream`)."""
    if source.db is not None:
        rows, name, inputs = _database_rows(source)
        profile = "streampay"
    else:
        assert source.file is not None
        file_iter, name = file_rows(source.file)
        profile, rows = _profiled(file_iter, source.profile)
        inputs = {}
    if profile == "generic":
        settlements = iter_settlements(rows, source=name, network_passphrase=network_passphrase)
        return SettlementStream(settlements, {"settlements": name, "records": 0})
    read = iter_outbox_rows(
        rows, source=name, reading=source.reading, network_passphrase=network_passphrase
    )
    return SettlementStream(
        read, {"settlements": name, "records": 0, "profile": "streampay", **inputs}
    )


def read_settlement_input(
    source: OutboxSource, *, network_passphrase: str | None
) -> SettlementInput:
    """The settlements of the export or the table, through the profile that fits, all read."""
    stream = stream_settlement_input(source, network_passphrase=network_passphrase)
    read = list(stream.records)
    outbox = {r.settlement.settlement_id: r for r in read if isinstance(r, OutboxRow)}
    return SettlementInput(
        [r.settlement if isinstance(r, OutboxRow) else r for r in read],
        {**stream.inputs, "records": len(read)},
        outbox,
    )


def read_payout_input(
    source: OutboxSource, load_generic: Callable[[Path], list[Payout]]
) -> tuple[list[Payout], dict[str, Any], OutboxPayouts | None]:
    """``(payouts, inputs, outbox view)``: a generic export through ``load_generic`` (its fast
    reader), else the ``streampay`` payouts view over the outbox export or table."""
    from ..io.outbox_payouts import outbox_payouts

    if source.db is None:
        assert source.file is not None
        name = input_name(source.file)
        if is_stream(source.file):  # read once: detect the profile on the text
            text = read_text(source.file, source=name)
            profile, rows = _profiled(_text_rows(text, name), source.profile)
            if profile == "generic":
                records = payouts_from_text(text, source=name)
                return records, {"payouts": name, "records": len(records)}, None
        elif source.profile == "generic" or (
            source.profile == "auto" and _generic_file(source.file)
        ):
            records = load_generic(Path(source.file))
            return records, {"payouts": name, "records": len(records)}, None
        else:
            rows, name = file_rows(source.file)
        inputs: dict[str, Any] = {}
    else:
        rows, name, inputs = _database_rows(source)
    view = outbox_payouts(rows, source=name, reading=source.reading)
    return (
        view.payouts,
        {
            "payouts": name,
            "records": len(view.payouts),
            "profile": "streampay",
            "outbox_rows_without_payout": view.skipped,
            **inputs,
        },
        view,
    )


def _generic_file(file: str) -> bool:
    """True unless the file's first record has the outbox's columns (or cannot be read)."""
    rows = iter_rows(Path(file))
    try:
        first = next(rows, None)
    except InputError:
        return True  # the generic reader reports it, naming file and line
    finally:
        getattr(rows, "close", lambda: None)()  # release the file now, not at collection
    return first is None or detect_profile(first.values) == "generic"
