"""The payout rules pushed down into PostgreSQL: ``payouts --db`` without pulling the outbox.

Over 400 lines as one thing: the streampay payouts view written as SQL, the one
SELECT around the shared rules, and the judgement of what it sends back.

The ``streampay`` payouts view (:mod:`streampay_incident.io.outbox_payouts`)
is written here as SQL over ``settlement_outbox`` (:func:`outbox_cells_sql`):
the text cells the reference hands its payout reader, row for row. The typed
relation and the five rules are the same SQL as DuckDB's and Spark's
(:mod:`.sql`, rendered with :data:`~.dialect.POSTGRES`), run as one SELECT of
CTEs: a READ ONLY transaction cannot create even a temporary table. Only the
finding groups, the counts and the distinct values Python must judge (StrKey
checksums, assets, rarer timestamp shapes, base64 memos, base32 runs that may
hide a seed) cross the wire.

Anything the reference would refuse, or might read otherwise (a missing id,
a bad timestamp, a payload that is not an object, a value shaped like a seed,
deep nesting, an amount with a non-zero 8th decimal...), raises
:class:`~.duckdb_engine.Fallback`: the caller then runs the reference, whose
exit 2 names every problem. The guarantees of the read (READ ONLY,
statement_timeout within ``--timeout``, session zone UTC, the password never
printed) are :func:`~streampay_incident.io.outbox_db.read_only_transaction`'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import attrs

from ..io.outbox_db import OutboxQuery, read_only_transaction
from ..io.payout_fields import FIELDS, _memo_bytes, parse_time
from ..io.rows import contains_seed
from ..io.streampay import PAYLOAD_FIELDS, OutboxReading
from ..model import Finding, PayoutPolicy
from ..stellar.strkey import destination_problem
from . import sql
from .dialect import POSTGRES
from .duckdb_engine import (
    _LAST_US,
    Fallback,
    _asset_problem,
    _memo_problem,
    _micros,
    _time_problem,
)
from .findings import RecordCount, findings_from_rows, moment

# Memory for each sort or hash of the rules, in the push-down's transaction only.
WORK_MEM = "64MB"
# The reference refuses JSON nested deeper than 64 levels; fewer brackets than this in a
# row's text cannot nest that deep (its own object adds a level).
_MAX_BRACKETS = 62
_TIME_COLUMNS = ("created_at", "updated_at", "lease_until", "available_at")
# What row_to_json prints for a timestamp (UTC: no offset) or a timestamptz in a UTC session.
_ROW_TIME = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,6})?([+]00:00)?$"


@attrs.frozen
class PushedDown:
    """What the push-down found: the findings (not yet annotated), the record count with
    the newest ``created_at``, how many outbox rows named no payout, and each finding's
    payout's stream (``aggregate_id``)."""

    findings: list[Finding]
    records: RecordCount
    skipped: int = 0
    streams: Mapping[str, str] = attrs.field(factory=dict)


# -- the streampay payouts view as SQL ------------------------------------------------------


def _present(column: str) -> str:
    """A top-level column's JSON value the reference keeps (its reader drops null and "")."""
    kind, text = f"k_{column}", f"s_{column}"
    return f"({kind} IS NOT NULL AND {kind} <> 'null' AND NOT ({kind} = 'string' AND {text} = ''))"


def _path(steps: tuple[str | int, ...], quote: Callable[[str], str]) -> str:
    """The payload value at ``steps``, as :meth:`~..io.streampay.PayloadPaths.find` follows
    them: a key only into an object, an index only into an array (jsonb's ``->`` agrees)."""
    expr = "payload"
    for step in steps:
        expr = f"({expr} -> {step if isinstance(step, int) else quote(step)})"
    return f"nullif({expr}, 'null'::jsonb)"


def _json_of(column: str, columns: Collection[str]) -> str:
    """The column's value as row_to_json writes it (jsonb), NULL when the table has none."""
    return f'to_jsonb(t."{column}")' if column in columns else "CAST(NULL AS jsonb)"


def outbox_cells_sql(
    reading: OutboxReading,
    table: str,
    where: str,
    quote: Callable[[str], str],
    columns: Collection[str],
) -> str:
    """CTEs ``outbox_rows`` (every selected row: ``doubtful``, ``seed_runs``, ``is_payout``
    and its text cells) and ``cells`` (the payout rows: FIELDS and ``aggregate_id``).

    ``table`` and ``where`` are SQL (the table aliased ``t``); ``quote`` renders a
    string literal; ``columns``: the table's column names. ``doubtful``: the reference
    refuses the row or might read it otherwise; ``seed_runs``: where its text may hold a
    secret seed, the base32 runs of 56 characters or more (Python judges them).
    """
    found = {
        field: "coalesce("
        + ", ".join(_path(steps, quote) for steps in reading.payload_paths.paths[field])
        + ")"
        for field in PAYLOAD_FIELDS
    }
    wrong_kind = " OR ".join(
        f"coalesce(jsonb_typeof(f_{field}) IN ('object', 'array', 'boolean'), false)"
        for field in PAYLOAD_FIELDS
    )
    # The time columns are timestamps (_columns_problem): what row_to_json prints of one in
    # this shape is a valid time; infinity, BC and years past 9999 are not in this shape.
    times = " OR ".join(
        f"({_present(c)} AND NOT coalesce(k_{c} = 'string' AND s_{c} ~ '{_ROW_TIME}', false))"
        for c in _TIME_COLUMNS
    )
    texts = " OR ".join(
        f"({_present(c)} AND k_{c} <> 'string')"
        for c in ("id", "event_key", "status", "aggregate_id")
    )
    top = ("id", "event_key", "status", "aggregate_id", "payload", *_TIME_COLUMNS)
    text = POSTGRES.text
    c = 'COLLATE "C"'
    # Each step is fenced (OFFSET 0): PostgreSQL would otherwise inline it, copying its
    # expressions into every place a column is used. Each column is read as to_jsonb of
    # it alone: what row_to_json writes of it, without serialising the whole row.
    # Only the narrow outbox_rows is materialized (the census and cells both read it).
    return f"""
outbox_top AS (
    SELECT t::text AS line, {", ".join(f"{_json_of(c, columns)} AS v_{c}" for c in top)}
    FROM {table} t WHERE {where} OFFSET 0
), outbox_typed AS (
    SELECT line, {
        ", ".join(f"jsonb_typeof(v_{c}) AS k_{c}, v_{c} #>> '{{}}' AS s_{c}" for c in top)
    },
        CASE WHEN jsonb_typeof(v_payload) = 'object' THEN v_payload END AS payload
    FROM outbox_top OFFSET 0
), outbox_found AS (
    SELECT *, {", ".join(f"{expr} AS f_{field}" for field, expr in found.items())}
    FROM outbox_typed OFFSET 0
), outbox_rows AS MATERIALIZED (
    SELECT
        (f_amount IS NOT NULL AND f_destination IS NOT NULL AND f_asset IS NOT NULL)
            AS is_payout,
        (NOT {_present("id")} OR NOT {_present("event_key")}
            OR {texts} OR {times}
            OR ({_present("payload")} AND k_payload <> 'object')
            OR {wrong_kind}
            OR coalesce(f_destination IS NOT NULL AND f_asset IS NOT NULL
                AND (f_amount #>> '{{}}') ~ '^[0-9]+[.][0-9]{{7}}[0-9]*[1-9][0-9]*$', false)
            OR length(line) - length(replace(replace(line, '[', ''), '{{', '')) > {_MAX_BRACKETS}
        ) AS doubtful,
        CASE WHEN line ~ 'S[A-Z2-7]{{55}}' THEN ARRAY(
            SELECT run[1] FROM regexp_matches(line, '([A-Z2-7]{{56,}})', 'g') AS run
        ) END AS seed_runs,
        CAST(s_id AS {text}) {c} AS payout_id,
        CAST(s_event_key AS {text}) {c} AS settlement_id,
        CAST(f_destination #>> '{{}}' AS {text}) {c} AS destination,
        CAST(f_asset #>> '{{}}' AS {text}) {c} AS asset,
        CAST(CASE WHEN (f_amount #>> '{{}}') ~ '^[0-9]+[.][0-9]{{8,}}$'
             THEN left(f_amount #>> '{{}}', strpos(f_amount #>> '{{}}', '.') + 7)
             ELSE f_amount #>> '{{}}' END AS {text}) {c} AS amount,
        CAST(CASE WHEN s_status = 'succeeded' THEN 'confirmed'
             WHEN s_status = 'processing' AND coalesce(f_tx_hash #>> '{{}}', '') <> ''
             THEN 'submitted'
             WHEN s_status IN ('failed', 'dead') THEN 'failed'
             ELSE 'pending' END AS {text}) {c} AS status,
        CAST(CASE WHEN right(s_created_at, 6) = '+00:00' THEN left(s_created_at, -6)
             ELSE s_created_at END || 'Z' AS {text}) {c}
            AS created_at,
        CAST(f_tx_hash #>> '{{}}' AS {text}) {c} AS tx_hash,
        CAST(NULL AS {text}) {c} AS memo_type,
        CAST(NULL AS {text}) {c} AS memo,
        CAST(s_event_key AS {text}) {c} AS idempotency_key,
        CAST(f_ledger #>> '{{}}' AS {text}) {c} AS ledger,
        CASE WHEN {_present("aggregate_id")} THEN s_aggregate_id END
            AS aggregate_id
    FROM outbox_found
), cells AS (
    SELECT {", ".join(FIELDS)}, aggregate_id FROM outbox_rows WHERE is_payout
)"""


# -- the rules over text cells --------------------------------------------------------------


def rules_sql(cells: str, window_us: int, *, outbox: bool) -> str:
    """One SELECT: the census of the input and, as JSON, the finding rows, the amounts at
    risk and the streams of the payouts in findings.

    ``cells``: CTEs ending in ``cells`` (text columns named by FIELDS, COLLATE "C",
    and ``aggregate_id``), after ``outbox_rows`` (``doubtful``, ``seed_runs``) when
    ``outbox``. Parameters: the odd
    timestamps and memos Python judged (``%(odd_times)s`` / ``%(odd_us)s``,
    ``%(odd_memos)s`` / ``%(odd_hex)s``, arrays).
    """
    d = POSTGRES
    typed = fenced(sql.typed_payouts_sql(d, "cells", keep=("aggregate_id",)))
    steps = ",\n".join(f"{name} AS (\n{query}\n)" for name, query in sql.rule_steps(d, window_us))
    census_outbox = (
        """
    (SELECT row_to_json(c) FROM (
        SELECT count(*) AS selected, count(*) FILTER (WHERE doubtful) AS doubtful,
            (SELECT array_agg(DISTINCT run) FROM outbox_rows, unnest(seed_runs) AS run)
                AS seed_runs
        FROM outbox_rows) c) AS outbox,"""
        if outbox
        else """
    NULL AS outbox,"""
    )
    # One scan of each relation for the whole census (each is materialized: a scan reads
    # it back, from disk past work_mem).
    return f"""
WITH {cells},
judged AS ({typed}),
odd_times AS (
    SELECT * FROM unnest(CAST(%(odd_times)s AS TEXT[]), CAST(%(odd_us)s AS BIGINT[]))
        AS o(text, us)
), odd_memos AS (
    SELECT * FROM unnest(CAST(%(odd_memos)s AS TEXT[]), CAST(%(odd_hex)s AS TEXT[]))
        AS o(text, hex)
), payouts AS ({sql.payouts_sql(d, odd_values=True)}),
{steps},
found AS ({sql.findings_sql(d)}),
risk AS ({sql.at_risk_sql()}),
streams AS (
    SELECT DISTINCT j.payout_id, j.aggregate_id FROM judged j
    JOIN members m ON m.payout_id = j.payout_id WHERE j.aggregate_id IS NOT NULL
)
SELECT {census_outbox}
    (SELECT row_to_json(c) FROM (
        SELECT count(*) AS records, count(*) FILTER (WHERE bad) AS bad,
            count(*) - count(DISTINCT payout_id) AS duplicated,
            array_agg(DISTINCT destination) FILTER (WHERE NOT bad) AS destinations,
            array_agg(DISTINCT asset) FILTER (WHERE NOT bad) AS assets,
            array_agg(DISTINCT created_odd) FILTER (WHERE created_odd IS NOT NULL)
                AS odd_times,
            array_agg(DISTINCT memo_odd) FILTER (WHERE memo_odd IS NOT NULL) AS odd_memos,
            array_agg(DISTINCT payout_id) FILTER (WHERE blank_odd) AS blank_ids,
            array_agg(DISTINCT settlement_id) FILTER (WHERE blank_odd) AS blank_settlements,
            array_agg(DISTINCT idempotency_key) FILTER (WHERE blank_odd) AS blank_keys
        FROM judged) c) AS judged,
    (SELECT row_to_json(c) FROM (
        SELECT count(*) FILTER (WHERE created_us < 0 OR created_us >= {_LAST_US})
                AS out_of_range,
            max(created_us) AS newest_us
        FROM payouts) c) AS payouts,
    (SELECT json_agg(found) FROM found) AS finding_rows,
    (SELECT json_agg(risk) FROM risk) AS risk_rows,
    (SELECT json_object_agg(payout_id, aggregate_id) FROM streams) AS streams
"""


def fenced(query: str) -> str:
    """``query`` (a WITH of layered CTEs, each used once by the next) with each CTE fenced
    by ``OFFSET 0``: PostgreSQL would inline the layers, copying each expression into every
    place its column is used (DuckDB computes a layer once); fenced, each is computed once
    per row, streaming (no tuplestore, as ``MATERIALIZED`` would write)."""
    return re.sub(r"\n\)(, \w+ AS \(|\nSELECT)", r"\nOFFSET 0\n)\1", query)


def _wrong(census: Mapping[str, Any]) -> str | None:
    """Why the reference must judge this input (it refuses it, or may read it otherwise)."""
    if census["doubtful"]:
        return f"{census['doubtful']} outbox rows the reference must judge"
    if census["bad"] or census["duplicated"] or census["out_of_range"]:
        return "a missing, malformed, duplicate or out-of-range payout value"
    judged: list[tuple[str, Iterable[str] | None, Callable[[str], Any]]] = [
        ("a destination", census["destinations"], destination_problem),
        ("an asset", census["assets"], _asset_problem),
        ("a created_at", census["odd_times"], _time_problem),
        ("a memo", census["odd_memos"], _memo_problem),
        ("an identifier", census["blanks"], str.isspace),
        ("a secret seed", census["seed_runs"], contains_seed),
    ]
    for what, values, problem in judged:
        if any(value is not None and problem(value) for value in values or ()):
            return f"{what} the reference refuses"
    return None


def run_rules(
    conn: Any, cells: str, policy: PayoutPolicy, *, outbox: bool = False
) -> tuple[PushedDown, Mapping[str, Any]]:
    """Run the rules over ``cells`` (see :func:`rules_sql`) on ``conn``, in its transaction.

    One statement, or two when some timestamps or memos are in shapes only Python
    reads (the second joins what Python made of them). Raises :class:`Fallback`
    when the reference must judge the input. Returns the findings and the census.
    """
    query = rules_sql(cells, int(policy.repeat_window.total_seconds() * 1_000_000), outbox=outbox)
    params: dict[str, list[Any]] = {"odd_times": [], "odd_us": [], "odd_memos": [], "odd_hex": []}
    with conn.cursor() as cursor:
        # For this transaction only: JIT-compiling one query this large costs more than it
        # saves (3x slower at 100k rows), and the sorts and hashes of the rules stay in memory.
        cursor.execute(
            "select set_config('jit', 'off', true), set_config('work_mem', %s, true)",
            (WORK_MEM,),
        )
    for _attempt in range(2):
        with conn.cursor() as cursor:
            cursor.execute(query, params)
            outbox_census, judged, payouts, rows, risks, streams = cursor.fetchone()
        census: dict[str, Any] = {
            **(outbox_census or {"doubtful": 0, "seed_runs": None, "selected": judged["records"]}),
            **judged,
            **payouts,
            "blanks": [
                *(judged["blank_ids"] or ()),
                *(judged["blank_settlements"] or ()),
                *(judged["blank_keys"] or ()),
            ],
            "finding_rows": rows,
            "risk_rows": risks,
            "streams": streams,
        }
        reason = _wrong(census)
        if reason is not None:
            raise Fallback(reason)
        times = [t for t in census["odd_times"] or () if t is not None]
        memos = [m for m in census["odd_memos"] or () if m is not None]
        if times == params["odd_times"] and memos == params["odd_memos"]:
            break  # nothing (more) for Python to fill in
        params = {
            "odd_times": times,
            "odd_us": [_micros(parse_time(t)) for t in times],
            "odd_memos": memos,
            "odd_hex": [_memo_bytes(m).hex() for m in memos],
        }
    else:  # pragma: no cover - a safeguard: every odd value was judged before the second run
        raise Fallback("values Python judged did not join")
    findings = findings_from_rows(
        census["finding_rows"] or [], census["risk_rows"] or [], repeat_window=policy.repeat_window
    )
    newest = moment(census["newest_us"]) if census["newest_us"] is not None else _NO_RECORD
    pushed = PushedDown(
        findings,
        RecordCount(census["records"], newest=newest),
        skipped=int(census["selected"]) - int(census["records"]),
        streams=census["streams"] or {},
    )
    return pushed, census


# A record count of nothing: no note about the newest record (there is none).
_NO_RECORD = datetime(1970, 1, 1, tzinfo=UTC)


def pushdown_outbox_payouts(
    dsn: str,
    query: OutboxQuery,
    reading: OutboxReading,
    policy: PayoutPolicy,
    *,
    timeout: float,
) -> PushedDown:
    """The five rules over the ``streampay`` payouts view of the selected outbox rows, run
    inside PostgreSQL in one READ ONLY, REPEATABLE READ transaction.

    Raises :class:`Fallback` when the reference must read the rows (a doubtful row, an
    offset-less time read in another zone than UTC, a database not in UTF-8), and
    :class:`~streampay_incident.errors.InputError` (exit 2, naming host, database and
    table) when the server, the login, the table or the statement timeout fails.
    """
    if _not_utc(reading.source_timezone):
        raise Fallback("--source-timezone other than UTC: the reference reads the times")
    with read_only_transaction(dsn, query.table, timeout=timeout, repeatable_read=True) as session:
        import psycopg
        from psycopg import sql as pgsql

        conn = session.conn
        with conn.cursor() as cursor:
            cursor.execute("select current_setting('server_encoding')")
            (encoding,) = cursor.fetchone()
        if encoding != "UTF8":
            raise Fallback(f"a {encoding} database: the reference reads its text")
        with conn.cursor() as cursor:
            cursor.execute(f"select * from {query.table_sql.as_string(conn)} t limit 0")
            columns = {column.name: column.type_code for column in cursor.description}
        reason = _columns_problem(columns)
        if reason is not None:
            raise Fallback(reason)
        where, params = query.where()
        where_text = psycopg.ClientCursor(conn).mogrify(where, params)
        table = query.table_sql.as_string(conn)

        def quote(text: str) -> str:  # the query has parameters: a literal % is doubled
            return pgsql.Literal(text).as_string(conn).replace("%", "%%")

        cells = outbox_cells_sql(reading, table, where_text.replace("%", "%%"), quote, columns)
        pushed, _ = run_rules(conn, cells, policy, outbox=True)
    return pushed


# json and json[] (not jsonb): their text reaches the reference as written (duplicate keys,
# number spellings) while to_jsonb normalises it.
_JSON_TYPES = (114, 199)
_TIMESTAMP, _TIMESTAMPTZ = 1114, 1184


def _columns_problem(columns: Mapping[str, int]) -> str | None:
    """Why the reference must read a table with these columns (name -> type oid), or None."""
    if not {"id", "event_key", "created_at"} <= set(columns):
        return "the table lacks id, event_key or created_at: the reference says what it needs"
    if any(contains_seed(name) for name in columns):
        return "a column name shaped like a secret seed"
    if any(kind in _JSON_TYPES for kind in columns.values()):
        return "a json (not jsonb) column: the reference reads its text as written"
    if any(columns.get(c, _TIMESTAMP) not in (_TIMESTAMP, _TIMESTAMPTZ) for c in _TIME_COLUMNS):
        return "a time column that is not a timestamp: the reference reads its text"
    return None


def _not_utc(zone: tzinfo) -> bool:
    """A zone other than UTC or a fixed offset of zero (``+00:00``)."""
    return not (isinstance(zone, timezone) and zone.utcoffset(None) == timedelta(0))


def cells_sql(header: list[str], table: str) -> str:
    """``cells`` over a table of text columns ``c0``, ``c1``... in ``header`` order (as
    :func:`~.sql.csv_cells_sql`), every text in code-point order, no ``aggregate_id``."""
    select = [
        f"nullif(c{header.index(f)}, '') COLLATE \"C\" AS {f}"
        if f in header
        else f'CAST(NULL AS TEXT) COLLATE "C" AS {f}'
        for f in FIELDS
    ]
    select.append("CAST(NULL AS TEXT) AS aggregate_id")
    return f"cells AS (SELECT {', '.join(select)} FROM {table})"
