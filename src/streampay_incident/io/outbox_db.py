"""Reading StreamPay's ``settlement_outbox`` live from PostgreSQL, read-only.

The guarantees (pinned; tests hold each one against a real server):

- one transaction, begun ``READ ONLY``: PostgreSQL refuses any write in it,
  whatever the role may do; it is rolled back at the end;
- ``statement_timeout`` (and ``idle_in_transaction_session_timeout``) set
  for that transaction to what is left of ``--timeout``; the connection
  attempt has the same deadline, and the rows must all arrive within it;
- the session's ``TimeZone`` is ``UTC`` for the transaction, so comparing the
  outbox's ``timestamp without time zone`` columns with ``now()`` means what
  StreamPay (which writes UTC) means;
- rows are streamed through a server-side cursor (``DECLARE ... CURSOR``)
  a batch at a time, as ``row_to_json`` text: exactly what
  ``psql -At -c "select row_to_json(t) ..."`` exports, read by the same reader;
- the password is never printed: problems name the host, the database and
  the table only, and a DSN holding a password gets a note to use
  ``PGPASSWORD`` or ``~/.pgpass``.

psycopg 3 (the ``postgres`` extra) is imported only when a database is read.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from ..errors import InputError, InputProblem
from ..hookspecs import hookimpl
from ..model import Settlement
from .rows import Row, _iter_jsonl
from .streampay import OutboxReading, outbox_rows

DSN_ENV = "STREAMPAY_INCIDENT_DATABASE_URL"
DEFAULT_TABLE = "settlement_outbox"
STATUSES = ("pending", "processing", "succeeded", "failed", "dead")
CURSOR_NAME = "streampay_incident_outbox"
FETCH_ROWS = 2000
DEFAULT_WINDOW = timedelta(hours=24)
DSN_NOTE = (
    "note: the database URL holds a password; prefer PGPASSWORD or ~/.pgpass (it is never printed)"
)


@attrs.frozen
class DatabaseTarget:
    """What may be shown of a DSN: never the password."""

    host: str
    port: str | None
    database: str
    user: str | None
    has_password: bool

    def where(self, table: str) -> str:
        port = f":{self.port}" if self.port else ""
        return f"postgresql host {self.host}{port}, database {self.database}, table {table}"

    @property
    def display(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"postgresql://{user}{self.host}{port}/{self.database}"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise InputError(
            InputProblem(
                "--db",
                None,
                None,
                "reading PostgreSQL needs psycopg 3: pip install 'streampay-incident[postgres]'",
            )
        ) from None
    return psycopg


def database_target(dsn: str, environ: Mapping[str, str] | None = None) -> DatabaseTarget:
    """Host, port, database and user of ``dsn`` (libpq's environment defaults filled in)."""
    psycopg = _psycopg()
    env = os.environ if environ is None else environ
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        # libpq's message quotes the text around the mistake, which may be the password.
        raise InputError(
            InputProblem(
                "--db",
                None,
                None,
                "not a PostgreSQL connection URI (postgresql://user@host:port/database) or "
                "key=value string; the value is not shown (it may hold a password)",
            )
        ) from None
    user = params.get("user") or env.get("PGUSER")
    host = params.get("host") or env.get("PGHOST") or "the local socket"
    return DatabaseTarget(
        host=str(host),
        port=params.get("port") or env.get("PGPORT"),
        database=str(params.get("dbname") or env.get("PGDATABASE") or user or "(default)"),
        user=user,
        has_password=bool(params.get("password")),
    )


@attrs.frozen
class OutboxQuery:
    """Which outbox rows to read.

    Default: ``status <> 'succeeded' or updated_at > now() - interval '24 hours'``
    (everything unsettled, and what settled in the last day). ``since`` (a
    duration back from the server's ``now()``, or a time) replaces the day;
    ``statuses`` keeps only those statuses (and then ``since``, when given,
    bounds ``updated_at`` for all of them). ``settlement_id`` reads one row by
    ``id`` or ``event_key`` (the sidecar's lookup).
    """

    table: str = DEFAULT_TABLE
    since: timedelta | datetime | None = None
    statuses: tuple[str, ...] = ()
    settlement_id: str | None = None

    def describe(self) -> str:
        if self.settlement_id is not None:
            return "id or event_key = ?"
        since = _since_text(self.since or DEFAULT_WINDOW)
        if self.statuses:
            keep = f"status in ({', '.join(self.statuses)})"
            return f"{keep} and updated_at > {since}" if self.since is not None else keep
        return f"status <> 'succeeded' or updated_at > {since}"

    def where(self) -> tuple[Any, list[Any]]:
        """The WHERE condition over the table aliased ``t``, and its parameters."""
        from psycopg import sql

        params: list[Any] = []
        where: sql.Composable
        if self.settlement_id is not None:
            # One index lookup: the primary key for a uuid, the unique event_key otherwise.
            key = _canonical_uuid(self.settlement_id)
            where = sql.SQL("t.id = %s" if key is not None else "t.event_key = %s")
            params = [key or self.settlement_id]
        else:
            since = self.since or DEFAULT_WINDOW
            after = sql.SQL(
                "t.updated_at > now() - %s" if isinstance(since, timedelta) else "t.updated_at > %s"
            )
            # timestamp without time zone vs a UTC instant: compare in UTC (the session is UTC).
            since_param = since if isinstance(since, timedelta) else since.replace(tzinfo=None)
            if self.statuses:
                where = sql.SQL("t.status::text = any(%s)")
                params = [list(self.statuses)]
                if self.since is not None:
                    where = sql.SQL("{} and {}").format(where, after)
                    params.append(since_param)
            else:
                where = sql.SQL("t.status::text <> 'succeeded' or {}").format(after)
                params = [since_param]
        return where, params

    @property
    def table_sql(self) -> Any:
        """The table (``schema.table`` accepted) as a quoted identifier."""
        from psycopg import sql

        return sql.Identifier(*self.table.split("."))

    def sql(self, psycopg: Any) -> tuple[Any, list[Any]]:
        from psycopg import sql

        where, params = self.where()
        query = sql.SQL(
            "select row_to_json(t)::text from {} t where {} order by t.created_at, t.id"
        ).format(self.table_sql, where)
        return query, params


def _canonical_uuid(text: str) -> str | None:
    """``text`` as PostgreSQL's uuid text when it is a uuid in any form Python reads."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _since_text(since: timedelta | datetime) -> str:
    if isinstance(since, datetime):
        return f"'{since.isoformat()}'"
    return f"now() - interval '{int(since.total_seconds())} seconds'"


def _reason(exc: Exception, password: str | None) -> str:
    diag = getattr(exc, "diag", None)
    text = (getattr(diag, "message_primary", None) or str(exc)).strip().splitlines()
    reason = " ".join(line.strip() for line in text if line.strip()) or type(exc).__name__
    if password:
        reason = reason.replace(password, "***")
    return reason


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


@attrs.frozen
class ReadOnlySession:
    """A connection inside the read-only transaction, and how to fail naming the table."""

    conn: Any
    fail: Callable[[str], InputError]
    deadline: _Deadline
    timeout: float


@contextlib.contextmanager
def read_only_transaction(
    dsn: str, table: str, *, timeout: float, repeatable_read: bool = False
) -> Iterator[ReadOnlySession]:
    """One transaction begun READ ONLY (``repeatable_read``: every statement sees one
    snapshot), ``statement_timeout`` set to what is left of ``timeout``, session zone UTC;
    rolled back at the end.

    Raises :class:`InputError` naming host, database and table (never the password) when
    the server cannot be reached, the login fails, the table is missing, the statement
    times out or a query fails (inside the block too).
    """
    psycopg = _psycopg()
    target = database_target(dsn)
    password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    where = target.where(table)
    deadline = _Deadline(timeout)

    def fail(message: str) -> InputError:
        return InputError(InputProblem(where, None, None, message))

    try:
        conn = psycopg.connect(dsn, connect_timeout=max(2, math.ceil(timeout)), autocommit=False)
    except psycopg.Error as exc:
        raise fail(f"cannot connect or log in: {_reason(exc, password)}") from None
    try:
        # Every statement below runs in one transaction begun READ ONLY.
        conn.read_only = True
        if repeatable_read:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        ms = max(1, int(deadline.left() * 1000))
        try:
            with conn.cursor() as setup:
                setup.execute(
                    "select set_config('statement_timeout', %s, true),"
                    " set_config('idle_in_transaction_session_timeout', %s, true),"
                    " set_config('TimeZone', 'UTC', true)",
                    (f"{ms}ms", f"{ms}ms"),
                )
            yield ReadOnlySession(conn, fail, deadline, timeout)
        except psycopg.errors.UndefinedTable:
            raise fail("table not found (--table names it; schema.table is accepted)") from None
        except psycopg.errors.QueryCanceled:
            raise fail(
                f"the query was cancelled by statement_timeout ({ms} ms, within --timeout "
                f"{timeout:g}s); a large outbox needs a larger --timeout (a million rows "
                "take about a minute)"
            ) from None
        except psycopg.errors.InsufficientPrivilege as exc:
            raise fail(f"permission denied: {_reason(exc, password)}") from None
        except psycopg.Error as exc:
            raise fail(f"query failed: {_reason(exc, password)}") from None
    finally:
        with contextlib.suppress(psycopg.Error):  # the connection may already be gone
            conn.rollback()
        conn.close()


def stream_outbox_json(
    dsn: str, query: OutboxQuery, *, timeout: float, fetch_rows: int = FETCH_ROWS
) -> Iterator[str]:
    """The ``row_to_json`` text of each selected row, streamed in a READ ONLY transaction.

    Raises :class:`InputError` naming host, database and table (never the
    password) when the server cannot be reached, the login fails, the table is
    missing, the statement times out or the rows do not all arrive in ``timeout``.
    """
    with read_only_transaction(dsn, query.table, timeout=timeout) as session:
        sql_query, params = query.sql(None)
        with session.conn.cursor(name=CURSOR_NAME) as cursor:
            cursor.itersize = fetch_rows
            cursor.execute(sql_query, params)
            while batch := cursor.fetchmany(fetch_rows):
                for (text,) in batch:
                    yield text
                if session.deadline.left() <= 0:
                    raise session.fail(f"the rows did not all arrive within --timeout {timeout:g}s")


def outbox_json_rows(dsn: str, query: OutboxQuery, *, timeout: float, source: str) -> Iterator[Row]:
    """The selected rows as :class:`Row` values (line = row number), through the JSON reader."""
    return _iter_jsonl(stream_outbox_json(dsn, query, timeout=timeout), source)


class OutboxLookup:
    """A built-in ``streampay_incident_find_settlement`` plugin reading the outbox by DSN.

    Serves ``GET /settlements/{id}`` in the sidecar when
    ``STREAMPAY_INCIDENT_DATABASE_URL`` is set: one READ ONLY transaction per
    lookup, by ``id`` or ``event_key``.
    """

    def __init__(
        self,
        dsn: str,
        *,
        table: str = DEFAULT_TABLE,
        timeout: float = 5.0,
        network_passphrase: str | None = None,
        reading: OutboxReading | None = None,
    ) -> None:
        self._dsn = dsn
        self.table = table
        self.timeout = timeout
        self.network_passphrase = network_passphrase
        self.reading = reading or OutboxReading()
        self.target = database_target(dsn)

    def __repr__(self) -> str:
        return f"OutboxLookup({self.target.display!r}, table={self.table!r})"

    @hookimpl
    def streampay_incident_find_settlement(self, settlement_id: str) -> Settlement | None:
        query = OutboxQuery(table=self.table, settlement_id=settlement_id)
        source = f"{self.target.display} {self.table}"
        rows = outbox_json_rows(self._dsn, query, timeout=self.timeout, source=source)
        found = outbox_rows(
            rows, source=source, reading=self.reading, network_passphrase=self.network_passphrase
        )
        return found[0].settlement if found else None


TABLE_ENV = "STREAMPAY_INCIDENT_DATABASE_TABLE"


def outbox_lookup_from_env(environ: Mapping[str, str], config: Any) -> OutboxLookup | None:
    """The sidecar's lookup when ``STREAMPAY_INCIDENT_DATABASE_URL`` is set, else None.

    ``config`` (a :class:`~streampay_incident.web.WebConfig`) gives the network
    passphrase and the probe timeout, which bounds each lookup too.
    """
    dsn = environ.get(DSN_ENV, "").strip()
    if not dsn:
        return None
    return OutboxLookup(
        dsn,
        table=environ.get(TABLE_ENV, "").strip() or DEFAULT_TABLE,
        timeout=config.probe_timeout_seconds,
        network_passphrase=config.network_passphrase,
    )
