"""The payout rules run in-process by DuckDB over CSV, JSON Lines, JSON arrays and Parquet.

Over 400 lines as one shell around :mod:`.sql`: DuckDB reads the file into the typed
``payouts`` table (validating in SQL what SQL can judge), Python judges each
distinct value SQL cannot (StrKey checksums, assets, timestamps in a rarer
RFC 3339 shape, base64 memos, identifiers that may be blank), and the rules
run as SQL. Only the findings come back. The typed rows are keyed
(:mod:`.duckdb_keys`) to stay within the memory limit.

The Python reader stays the reference for what an input means and for every
message. Whenever a text export holds anything wrong, or anything DuckDB
might read otherwise than the reference (a quoted header, a JSON number that
is not an integer, a ``\\u`` escape, a line DuckDB refuses), this engine
raises :class:`Fallback` and the caller runs the reference on the same file:
it then names every problem (exit 2) or, on valid input, finds exactly what
it always found. Parquet, which the reference does not read, gets its
problems from the reference's record checker over the offending rows.
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, InputProblem
from ..io.payout_fields import FIELDS, _memo_bytes, parse_asset, parse_time
from ..io.payout_parser import _PayoutParser
from ..io.rows import Row, contains_seed, sniff_format
from ..model import Finding, PayoutPolicy
from ..stellar.strkey import invalid_destinations
from . import sql
from .duckdb_keys import (
    DICTIONARY_SHARE,
    DICTIONARY_SQL,
    Collision,
    as_text,
    dictionaries,
    keyed_sql,
)
from .findings import RecordCount, findings_from_rows, moment

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

# The process needs about 120 MiB besides DuckDB's buffers: 224 MiB keeps a 1M-row run under
# 400 MB of peak RSS. Without a limit given, a larger input gets one that holds its typed rows
# with room to spare (LIMIT_PER_INPUT_BYTE of its size, by format: the typed rows of 1M
# payouts take 164 to 230 MiB, about 70% of their CSV, 42% of their JSON Lines and 113% of
# their Parquet), so the rules do not read them back from the spill folder; at most
# LARGEST_DEFAULT_LIMIT and a quarter of the machine's memory: at 10M rows (2.5 GB of CSV)
# 1 GiB, and the peak RSS stays under 1.5 GB.
DEFAULT_MEMORY_LIMIT = "224MiB"
LIMIT_PER_INPUT_BYTE = {"csv": 0.85, "jsonl": 0.5, "json": 0.5, "parquet": 1.4}
MEMORY_LIMIT_ENV = "STREAMPAY_INCIDENT_DUCKDB_MEMORY_LIMIT"
LARGEST_DEFAULT_LIMIT = 2**30
# An input larger than this many memory limits gets compressed in-memory tables.
COMPRESS_AFTER_LIMITS = 2
# Parquet rows handed to the reference's record checker when some are bad.
PROBLEM_ROWS = 1000
_JSON_TEXT_TYPES = ("VARCHAR", "UBIGINT", "BIGINT")
_PARQUET_TEXT_TYPES = (
    "VARCHAR", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT",
    "UTINYINT", "HUGEINT",
)  # fmt: skip

ProgressCallback = Callable[[float], None]
PROGRESS_POLL_SECONDS = 0.2


# The reference reads timestamps from 1970-01-01T00:00:00Z to before 9000-01-01T00:00:00Z.
_LAST_US = 221_845_392_000 * 1_000_000


class Fallback(Exception):
    """This input is the reference reader's to judge; the message says why (for logs)."""


def run_duckdb(
    path: Path,
    *,
    source: str,
    policy: PayoutPolicy,
    memory_limit: str | None = None,
    temp_dir: str | None = None,
    threads: int | None = None,
    progress: ProgressCallback | None = None,
    on_disk: bool | None = None,
    with_payouts: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> tuple[list[Finding], RecordCount]:
    """The findings of the five payout rules over the export at ``path``, and its record count.

    Raises :class:`Fallback` when the reference reader must judge the input,
    :class:`InputError` for a bad Parquet file. ``memory_limit`` and
    ``temp_dir`` bound DuckDB's memory and say where it spills. ``on_disk``:
    keep the tables in a database file (None: once an in-memory run ran out
    of memory; compressed in-memory tables spill to ``temp_dir`` too, faster).
    ``with_payouts(con)`` is called once the rules ran, while ``payouts`` (the
    typed relation) is still there (the escrow join).
    """
    try:
        fmt = input_format(path)
    except OSError as exc:
        raise Fallback(f"cannot open the file ({exc}): the reference says so") from None
    import duckdb

    size = path.stat().st_size
    limit = _memory_limit(memory_limit, int(size * LIMIT_PER_INPUT_BYTE[fmt]))
    with tempfile.TemporaryDirectory(prefix="streampay-duckdb-", dir=temp_dir) as spill:
        retry = on_disk is None
        con = duckdb.connect(str(Path(spill) / "payouts.duckdb") if on_disk else ":memory:")
        try:
            if not on_disk and size > COMPRESS_AFTER_LIMITS * _bytes(limit):
                # Compressed (dictionary, FSST) in-memory tables: far fewer bytes to
                # spill and scan again; below a few limits' worth, compressing costs more.
                con.execute("ATTACH ':memory:' AS compressed (COMPRESS)")
                con.execute("USE compressed")
            con.execute(f"SET memory_limit = '{limit}'")
            con.execute(f"SET temp_directory = '{_quoted(spill)}'")
            con.execute("SET preserve_insertion_order = false")
            if threads:
                con.execute(f"SET threads = {int(threads)}")
            relation = _raw_relation(con, path, fmt, source)
            extra = tuple(c for c in relation.columns if c not in FIELDS and c != "_row")
            keep = ("_row",) if "_row" in relation.columns else ()
            typed = sql.typed_payouts_sql(sql.DUCKDB, "raw_payouts", extra, keep)
            con.register("raw_payouts", relation)
            _with_progress(con, DICTIONARY_SQL, _scaled(progress, 0, DICTIONARY_SHARE))
            try:
                dictionaries(con)
            except Collision as exc:
                raise Fallback(str(exc)) from None
            _with_progress(
                con,
                f"CREATE TABLE judged AS {keyed_sql(typed)}",
                _scaled(progress, DICTIONARY_SHARE, 100),
            )
            if not con.execute("SELECT count(*) FROM judged").fetchall()[0][0]:
                raise Fallback("no record: the reference judges an empty input")
            records = con.execute("SELECT count(*) FROM judged").fetchall()[0][0]
            _judge(con, source, fmt)
            if con.execute(
                f"SELECT count(*) FROM payouts WHERE created_us < 0 OR created_us >= {_LAST_US}"
            ).fetchall()[0][0]:
                raise Fallback("a created_at outside 1970-9000: the reference refuses it")
            window_us = int(policy.repeat_window.total_seconds() * 1_000_000)
            for name, query in sql.rule_steps(sql.DUCKDB, window_us):
                name = "members_keyed" if name == "members" else name
                con.execute(f"CREATE TABLE {name} AS {query}")  # one step at a time: bounded
            con.execute(f"CREATE TABLE members AS {as_text('members_keyed')}")
            rows = _dicts(con.execute(sql.findings_sql(sql.DUCKDB)))
            at_risk = _dicts(con.execute(sql.at_risk_sql()))
            newest_us = con.execute("SELECT max(created_us) FROM payouts").fetchall()[0][0]
            if with_payouts is not None:
                con.execute(f"CREATE OR REPLACE TEMP VIEW payouts AS {as_text('keyed')}")
                with_payouts(con)
        except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
            raise Fallback(f"DuckDB could not read it as the reference does: {exc}") from None
        except duckdb.OutOfMemoryException:
            if retry and not on_disk:
                con.close()
                return run_duckdb(
                    path, source=source, policy=policy, memory_limit=memory_limit,
                    temp_dir=temp_dir, threads=threads, progress=progress, on_disk=True,
                    with_payouts=with_payouts,
                )  # fmt: skip
            raise _unavailable(
                f"DuckDB ran out of memory within its limit ({limit}): "
                f"set {MEMORY_LIMIT_ENV} higher"
            ) from None
        except duckdb.Error as exc:  # a resource or an internal error: not the input's fault
            raise _unavailable(f"DuckDB failed ({type(exc).__name__}: {exc})") from None
        finally:
            con.close()
    findings = findings_from_rows(rows, at_risk, repeat_window=policy.repeat_window)
    return findings, RecordCount(records, newest=moment(newest_us))


def _scaled(progress: ProgressCallback | None, low: float, high: float) -> ProgressCallback | None:
    """``progress`` told ``low`` to ``high`` for a statement's 0 to 100."""
    if progress is None:
        return None
    return lambda percent: progress(low + percent * (high - low) / 100)


def _bytes(limit: str) -> int:
    """``256MB``, ``1.5GB``, ``512MiB`` as bytes (roughly: only to compare sizes)."""
    number = "".join(c for c in limit if c.isdigit() or c == ".") or "0"
    unit = limit.upper().rstrip("B").rstrip("I")[-1:]
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(unit, 1)
    return int(float(number) * scale)


def _unavailable(reason: str) -> InputError:
    from . import EngineUnavailable

    return EngineUnavailable(f"--engine duckdb: {reason}; --engine python reads this export too")


def _memory_limit(value: str | None, wanted_bytes: int) -> str:
    """The limit given (argument, then environment), else :func:`default_memory_limit`."""
    limit = value or os.environ.get(MEMORY_LIMIT_ENV) or default_memory_limit(wanted_bytes)
    if not all(c.isalnum() or c in ". " for c in limit):
        raise InputError(f"not a memory limit: {limit!r} (e.g. 1GB, 512MB)")
    return limit


def default_memory_limit(wanted_bytes: int, machine_bytes: int | None = None) -> str:
    """``wanted_bytes`` (LIMIT_PER_INPUT_BYTE of the input), at least DEFAULT_MEMORY_LIMIT and
    at most LARGEST_DEFAULT_LIMIT and a quarter of ``machine_bytes`` (the physical memory
    when not given)."""
    if machine_bytes is None:
        machine_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    floor = _bytes(DEFAULT_MEMORY_LIMIT)
    limit = max(floor, min(wanted_bytes, LARGEST_DEFAULT_LIMIT, machine_bytes // 4))
    return f"{limit // 2**20}MiB"


def _quoted(text: str) -> str:
    return text.replace("'", "''")


def input_format(path: Path) -> str:
    """``parquet``, or the text format the reference reader would take it for.

    Raises :class:`Fallback` for an input with no record (the reference says
    what an empty input means) and ``OSError`` when the file cannot be read.
    """
    with path.open("rb") as handle:
        head = handle.read(1 << 12)
    if not head.strip():
        raise Fallback("no record: the reference judges an empty input")
    if head.startswith(b"PAR1") or path.name.lower().endswith(".parquet"):
        return "parquet"
    # The reference sniffs the first 64 characters: so must this, to read it the same way.
    return sniff_format(head.decode("utf-8", "replace")[:64], path.name)


# -- reading --------------------------------------------------------------------------------


def _raw_relation(con: duckdb.DuckDBPyConnection, path: Path, fmt: str, source: str) -> Any:
    """A relation of text columns named by FIELDS (NULL where absent), plus any other column."""
    if fmt == "csv":
        return _csv_relation(con, path)
    if fmt == "parquet":
        return _parquet_relation(con, path, source)
    return _json_relation(con, path, fmt)


def _csv_relation(con: duckdb.DuckDBPyConnection, path: Path) -> Any:
    header = _csv_header(path)
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header)))
    con.execute(
        "CREATE TEMP VIEW csv_cells AS SELECT * FROM read_csv("
        f"'{_quoted(str(path))}', header = false, skip = 1, columns = {{{columns}}}, "
        "delim = ',', quote = '\"', escape = '\"', auto_detect = false, "
        "strict_mode = true, null_padding = false, all_varchar = true)"
    )
    return con.sql(sql.csv_cells_sql(sql.DUCKDB, header, "csv_cells"))


def _csv_header(path: Path) -> list[str]:
    """The header as the reference reads it; Fallback for any header it judges otherwise."""
    try:
        with path.open("r", encoding="utf-8", newline="") as handle:
            line = handle.readline()
    except UnicodeDecodeError:
        raise Fallback("the header is not UTF-8") from None
    if '"' in line or contains_seed(line) or not line.strip():
        raise Fallback("the header needs the reference reader")
    header = [name.strip().lstrip("\ufeff") for name in next(csv.reader([line]))]
    if len(set(header)) != len(header) or "" in header:
        raise Fallback("the header has duplicate or empty names")
    return header


def _json_relation(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> Any:
    with path.open("rb") as handle:
        if handle.read(3) == b"\xef\xbb\xbf":  # DuckDB skips a BOM; the reference refuses it
            raise Fallback("a byte-order mark before JSON: the reference judges it")
    json_format = "newline_delimited" if fmt == "jsonl" else "array"
    objects = con.sql(
        "SELECT json FROM read_json_objects(?, format = ?)",
        params=[str(path), json_format],
    )
    raw = objects.filter(
        sql.DUCKDB.contains_match("json", sql.SEED_REGEX)
        + (" OR contains(json, '\\u')" if fmt == "json" else "")
        # Nesting (an array, an inner object) is the strict reader's to refuse or judge.
        + " OR contains(json, '[') OR contains(substr(json, 2), '{')"
    )
    if raw.limit(1).fetchall():
        raise Fallback(
            "a value shaped like a secret seed, an escape or nesting needs the reference"
        )
    columns = ", ".join(f"'{f}': 'JSON'" for f in FIELDS)
    con.execute(
        f"CREATE TEMP VIEW json_cells AS SELECT * FROM read_json('{_quoted(str(path))}', "
        f"format = '{json_format}', columns = {{{columns}}})"
    )
    odd = " OR ".join(
        f"(json_type({f}) NOT IN ({', '.join(repr(t) for t in _JSON_TEXT_TYPES)}, 'NULL'))"
        for f in FIELDS
    )
    if con.execute(f"SELECT count(*) FROM json_cells WHERE {odd}").fetchall()[0][0]:
        raise Fallback("a JSON value that is not text or an integer needs the reference")
    select = [f"nullif({f} ->> '$', '') AS {f}" for f in FIELDS]
    return con.sql(f"SELECT {', '.join(select)} FROM json_cells")


def parquet_type_problem(source: str, field: str, kind: str) -> InputProblem:
    """A Parquet column whose type no payout field takes (a float amount above all)."""
    return InputProblem(
        source,
        None,
        field,
        f"Parquet type {kind} is not accepted here "
        "(text, an integer, a decimal amount or a UTC timestamp)",
    )


def _parquet_relation(con: duckdb.DuckDBPyConnection, path: Path, source: str) -> Any:
    cells = con.sql("SELECT * FROM read_parquet(?, file_row_number = true)", params=[str(path)])
    types = dict(zip(cells.columns, map(str, cells.types), strict=True))
    problems = []
    select = []
    for field in FIELDS:
        kind = types.get(field)
        if kind is None:
            select.append(f"NULL::VARCHAR AS {field}")
        elif kind in _PARQUET_TEXT_TYPES or (field == "amount" and kind.startswith("DECIMAL")):
            select.append(f"nullif(CAST({field} AS VARCHAR), '') AS {field}")
        elif field == "created_at" and kind == "TIMESTAMP WITH TIME ZONE":
            select.append(f"strftime(timezone('UTC', {field}), '%Y-%m-%dT%H:%M:%S.%fZ') AS {field}")
        else:
            problems.append(parquet_type_problem(source, field, kind))
    if problems:
        raise InputError(problems)
    select += [
        f'nullif(CAST("{c}" AS VARCHAR), \'\') AS "extra_{c}"'
        for c in cells.columns
        if c not in FIELDS and c != "file_row_number"
    ]
    select.append("file_row_number AS _row")
    con.register("parquet_cells", cells)
    return con.sql(f"SELECT {', '.join(select)} FROM parquet_cells")


# -- judging --------------------------------------------------------------------------------


def _judge(con: duckdb.DuckDBPyConnection, source: str, fmt: str) -> None:
    """Check what SQL left to Python; then ``payouts`` is the valid, typed relation.

    Raises :class:`Fallback` (text formats) or :class:`InputError` (Parquet)
    when anything is wrong.
    """
    wrong = _wrong_values(con)
    if wrong:
        if fmt != "parquet":
            raise Fallback("the export holds a bad value: the reference names it")
        raise _parquet_problems(con, source, wrong)
    odd_times = {
        text: _micros(parse_time(text))
        for (text,) in con.execute(
            "SELECT DISTINCT created_odd FROM judged WHERE created_odd IS NOT NULL"
        ).fetchall()
    }
    odd_memos = {
        text: _memo_bytes(text).hex()
        for (text,) in con.execute(
            "SELECT DISTINCT memo_odd FROM judged WHERE memo_odd IS NOT NULL"
        ).fetchall()
    }
    if not odd_times and not odd_memos:  # the usual export: nothing for Python to fill in
        con.execute(f"CREATE TEMP VIEW keyed AS {sql.payouts_sql(sql.DUCKDB, odd_values=False)}")
    else:
        con.execute("CREATE TABLE odd_times (text VARCHAR, us BIGINT)")
        if odd_times:
            con.executemany("INSERT INTO odd_times VALUES (?, ?)", list(odd_times.items()))
        con.execute("CREATE TABLE odd_memos (text VARCHAR, hex VARCHAR)")
        if odd_memos:
            con.executemany("INSERT INTO odd_memos VALUES (?, ?)", list(odd_memos.items()))
        con.execute(f"CREATE TABLE keyed AS {sql.payouts_sql(sql.DUCKDB, odd_values=True)}")
        con.execute("DROP TABLE judged")
    # The rules read ``payouts``; the escrow join replaces it with the rows' texts (as_text).
    con.execute("CREATE TEMP VIEW payouts AS SELECT * FROM keyed")


def _micros(value: datetime) -> int:
    delta = value - moment(0)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _wrong_values(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Values SQL or Python refuses, by kind (empty when the input is valid)."""
    wrong: dict[str, set[str]] = {}
    bad, duplicated = con.execute(
        "SELECT count(*) FILTER (WHERE bad), count(*) - count(DISTINCT payout_id) FROM judged"
    ).fetchall()[0]
    if bad:
        wrong["sql"] = set()
    if duplicated:
        wrong["duplicate"] = set()
    destinations = con.execute("SELECT text FROM dict_destination").fetchall()
    if refused := invalid_destinations(text for (text,) in destinations):
        wrong["destination"] = refused
    checks: list[tuple[str, str, Callable[[str], Any]]] = [
        ("asset", "SELECT text FROM dict_asset", _asset_problem),
        ("created_at", "SELECT DISTINCT created_odd FROM judged WHERE created_odd IS NOT NULL",
         _time_problem),
        ("memo", "SELECT DISTINCT memo_odd FROM judged WHERE memo_odd IS NOT NULL",
         _memo_problem),
        ("blank", "SELECT DISTINCT unnest([payout_id, settlement_id, idempotency_key]) "
         "FROM judged WHERE blank_odd", _blank_problem),
    ]  # fmt: skip
    for kind, query, problem in checks:
        refused = {
            value
            for (value,) in con.execute(query).fetchall()
            if value is not None and problem(value)
        }
        if refused:
            wrong[kind] = refused
    return wrong


def _asset_problem(text: str) -> bool:
    try:
        parse_asset(text)
    except ValueError:
        return True
    return False


def _time_problem(text: str) -> bool:
    try:
        parse_time(text)
    except ValueError:
        return True
    return False


def _memo_problem(text: str) -> bool:
    try:
        _memo_bytes(text)
    except ValueError:
        return True
    return False


def _blank_problem(text: str) -> bool:
    return text.isspace()


def _parquet_problems(
    con: duckdb.DuckDBPyConnection, source: str, wrong: dict[str, set[str]]
) -> InputError:
    """The reference's problems for the offending Parquet rows (the first PROBLEM_ROWS)."""
    con.execute("CREATE TABLE refused (value VARCHAR)")
    values = set().union(*wrong.values())
    con.executemany("INSERT INTO refused VALUES (?)", [(v,) for v in values])
    cells = ", ".join(FIELDS)
    rows = con.execute(
        f"SELECT _row + 1 AS line, {cells} FROM raw_payouts WHERE _row IN ("
        "SELECT _row FROM raw_payouts r WHERE payout_id IN ("
        "  SELECT payout_id FROM raw_payouts GROUP BY payout_id HAVING count(*) > 1)"
        " UNION ALL SELECT _row FROM raw_payouts WHERE destination IN (SELECT value FROM refused)"
        " OR asset IN (SELECT value FROM refused)"
        " UNION ALL SELECT j._row FROM judged j WHERE j.bad"
        " OR j.created_odd IN (SELECT value FROM refused)"
        " OR j.memo_odd IN (SELECT value FROM refused)"
        " OR (j.blank_odd AND (j.payout_id IN (SELECT value FROM refused)"
        "  OR j.settlement_id IN (SELECT value FROM refused)"
        "  OR j.idempotency_key IN (SELECT value FROM refused)))"
        f") ORDER BY line LIMIT {PROBLEM_ROWS}"
    ).fetchall()
    parser = _PayoutParser(source)
    for line, *values_ in rows:
        parser.add(Row(line, {f: v for f, v in zip(FIELDS, values_, strict=True) if v}))
    try:
        parser.finish()
    except InputError as error:
        return error
    return InputError(  # pragma: no cover - the reference names every value refused above
        InputProblem(source, None, None, "the export holds a bad value")
    )


# -- progress and results -------------------------------------------------------------------


def _with_progress(
    con: duckdb.DuckDBPyConnection, statement: str, progress: ProgressCallback | None
) -> None:
    """Run ``statement``; while it runs, report DuckDB's query progress (0-100) now and then."""
    if progress is None:
        con.execute(statement)
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(PROGRESS_POLL_SECONDS):
            report_progress(con, progress)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        con.execute(statement)
    finally:
        done.set()
        watcher.join()
    progress(100.0)


def report_progress(con: Any, progress: ProgressCallback) -> None:
    """Pass on DuckDB's progress of the running query (-1 when it cannot tell: skipped)."""
    with contextlib.suppress(Exception):  # the query may end between the check and the call
        percent = con.query_progress()
        if percent >= 0:
            progress(percent)


def _dicts(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@contextlib.contextmanager
def spooled(path: Path, temp_dir: str | None = None) -> Iterator[Path]:
    """``path`` itself when it is a regular file or a folder; else (a pipe, a FIFO, a device)
    its bytes read once into a temporary file, which is removed afterwards."""
    if path.is_file() or path.is_dir() or not path.exists():
        yield path
        return
    with (
        tempfile.NamedTemporaryFile(
            prefix="streampay-spool-", suffix=path.suffix, dir=temp_dir
        ) as spool,
        path.open("rb") as stream,
    ):
        while chunk := stream.read(1 << 20):
            spool.write(chunk)
        spool.flush()
        yield Path(spool.name)
