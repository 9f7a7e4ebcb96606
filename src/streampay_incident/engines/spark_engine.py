"""The payout rules run by Spark (``--engine spark``), for exports that outgrow one machine.

The same SQL as DuckDB (:mod:`.sql`, rendered for Spark SQL) over Parquet or
CSV: a file, or a directory of part files (``part-*.parquet``, ``*.csv``), a
local path or any URI Spark reads. Python judges the distinct values SQL
cannot (StrKey checksums, assets, rarer timestamp shapes, base64 memos) on
the driver. Bad input: a single CSV file goes back to the reference reader,
which names every problem with its line (see
:class:`~.duckdb_engine.Fallback`); for Parquet and directories each wrong
field is named with the reference's message, without a line (Spark does
not number rows) and without echoing the value.

PySpark (the ``spark`` extra) and a Java runtime are needed only here.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, InputProblem
from ..io.payout_fields import FIELDS, _memo_bytes, parse_asset, parse_time
from ..model import Finding, PayoutPolicy
from ..stellar.strkey import destination_problem
from . import sql
from .duckdb_engine import Fallback, _micros, parquet_type_problem
from .findings import RecordCount, findings_from_rows, moment

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

_TEXT_TYPES = ("StringType", "LongType", "IntegerType", "ShortType", "ByteType")


# The heap of the JVM PySpark starts (the driver; in local mode the executors too): Spark's
# 1g default ran out in a hash aggregate at 10M rows.
DRIVER_MEMORY_ENV = "STREAMPAY_INCIDENT_SPARK_DRIVER_MEMORY"
DEFAULT_DRIVER_MEMORY = "3g"


def spark_session(master: str) -> SparkSession:
    """A Spark session for the rules: UTC, lenient casts (SQL judges values itself), no UI,
    the driver's heap from DRIVER_MEMORY_ENV (DEFAULT_DRIVER_MEMORY)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        from . import EngineUnavailable

        raise EngineUnavailable(
            "--engine spark needs PySpark and Java: pip install 'streampay-incident[spark]'"
        ) from None
    return (
        SparkSession.builder.master(master)
        .appName("streampay-incident payouts")
        .config("spark.driver.memory", os.environ.get(DRIVER_MEMORY_ENV) or DEFAULT_DRIVER_MEMORY)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


@contextlib.contextmanager
def heap_exhaustion_explained() -> Iterator[None]:
    """Spark running out of Java heap, or its JVM dying (most often of that), is exit 2
    naming the setting to raise, not exit 3 ("a bug"): the input outgrew the heap."""
    try:
        yield
    except (Fallback, InputError):
        raise
    except Exception as exc:
        from . import EngineUnavailable

        text, heap = str(exc), os.environ.get(DRIVER_MEMORY_ENV) or DEFAULT_DRIVER_MEMORY
        advice = (
            f"set {DRIVER_MEMORY_ENV} higher (now {heap}), or give Parquet part files "
            "(a CSV file with quoted fields is read whole, as one task)"
        )
        if "OutOfMemoryError" in text or "Java heap space" in text:
            raise EngineUnavailable(
                f"--engine spark: Spark ran out of Java heap: {advice}"
            ) from None
        if "Answer from Java side is empty" in text:
            raise EngineUnavailable(
                f"--engine spark: Spark's JVM stopped answering (most often out of Java heap): "
                f"{advice}"
            ) from None
        raise


def run_spark(
    path: Path | str,
    *,
    source: str,
    policy: PayoutPolicy,
    master: str = "local[*]",
    session: SparkSession | None = None,
) -> tuple[list[Finding], RecordCount]:
    """The findings of the five payout rules over ``path`` (a file or a directory), and
    the record count. Raises :class:`Fallback` or :class:`InputError` on bad input."""
    spark = session or spark_session(master)
    # A URI given on the command line went through Path, which folds "s3://" to "s3:/".
    location = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)", r"\1://", str(path))
    fmt = _format(location)
    raw = (
        _parquet_cells(spark, location, source) if fmt == "parquet" else _csv_cells(spark, location)
    )
    raw.createOrReplaceTempView("raw_payouts")
    extra = tuple(c for c in raw.columns if c not in FIELDS)
    judged = spark.sql(sql.typed_payouts_sql(sql.SPARK, "raw_payouts", extra)).cache()
    judged.createOrReplaceTempView("judged")
    try:
        records = judged.count()
        if not records:
            raise Fallback("no record: the reference judges an empty input")
        _judge(spark, source, location, fmt)
        window_us = int(policy.repeat_window.total_seconds() * 1_000_000)
        payouts = spark.table("payouts").cache()
        # One step at a time, each materialised without its lineage: as one query of
        # CTEs Spark inlines every step wherever it is used and the plan outgrows the heap.
        steps = []
        for name, query in sql.rule_steps(sql.SPARK, window_us):
            step = spark.sql(query).localCheckpoint(eager=True)
            step.createOrReplaceTempView(name)
            steps.append(name)
        rows = [r.asDict() for r in spark.sql(sql.findings_sql(sql.SPARK)).collect()]
        at_risk = [r.asDict() for r in spark.sql(sql.at_risk_sql()).collect()]
        newest_us = spark.sql("SELECT max(created_us) FROM payouts").collect()[0][0]
        payouts.unpersist()
        for name in steps:
            spark.catalog.dropTempView(name)
    finally:
        judged.unpersist()
        for view in ("payouts", "members", "judged", "raw_payouts"):
            spark.catalog.dropTempView(view)
    findings = findings_from_rows(rows, at_risk, repeat_window=policy.repeat_window)
    return findings, RecordCount(records, newest=moment(newest_us))


def _format(location: str) -> str:
    """``parquet`` or ``csv``: by the files' names or magic; a remote URI by its suffix."""
    if "://" in location:
        return "csv" if location.lower().rstrip("/").endswith(".csv") else "parquet"
    local = Path(location)
    names = [p.name for p in local.iterdir()] if local.is_dir() else [local.name]
    if any(n.lower().endswith(".parquet") for n in names):
        return "parquet"
    if local.is_file():
        with local.open("rb") as handle:
            if handle.read(4) == b"PAR1":
                return "parquet"
    return "csv"


def _csv_cells(spark: SparkSession, location: str) -> DataFrame:
    header = _csv_header(location)
    frame = (
        spark.read.option("header", "true")
        .option("inferSchema", "false")
        .option("multiLine", "true" if may_span_lines(location) else "false")
        .option("quote", '"')
        .option("escape", '"')
        .option("mode", "FAILFAST")
        .option("encoding", "UTF-8")
        .csv(location)
    )
    if len(frame.columns) != len(header):  # pragma: no cover - a safeguard; parts disagree
        raise Fallback("Spark read another number of columns than the header names")
    frame = frame.toDF(*[f"c{i}" for i in range(len(header))])
    frame.createOrReplaceTempView("csv_cells")
    return spark.sql(sql.csv_cells_sql(sql.SPARK, header, "csv_cells"))


def may_span_lines(location: str) -> bool:
    """Whether a record of the CSV at ``location`` may span lines, which makes Spark read
    each file whole, as one task (10M rows of one file ran out of a 3g heap).

    Only a quoted field holds a line break: so true for a remote URI (not read here) and for
    local files any of which holds a double quote; false for the usual export, which Spark
    then splits into tasks of 128 MB. The scan reads every file Spark will (not ``_`` or
    ``.`` files), at disk speed.
    """
    if "://" in location:
        return True
    local = Path(location)
    files = (
        [p for p in local.iterdir() if p.is_file() and not p.name.startswith(("_", "."))]
        if local.is_dir()
        else [local]
    )
    for file in files:
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                if b'"' in chunk:
                    return True
    return False


def _csv_header(location: str) -> list[str]:
    local = Path(location)
    first = (
        min((p for p in local.iterdir() if p.suffix.lower() == ".csv"), default=None)
        if local.is_dir()
        else local
    )
    if first is None or not first.is_file():
        raise Fallback("no CSV file to read the header from")
    from .duckdb_engine import _csv_header as header_of

    return header_of(first)


def _parquet_cells(spark: SparkSession, location: str, source: str) -> DataFrame:
    frame = spark.read.parquet(location)
    types = {f.name: type(f.dataType).__name__ for f in frame.schema.fields}
    frame.createOrReplaceTempView("parquet_cells")
    problems, select = [], []
    for field in FIELDS:
        kind = types.get(field)
        if kind is None:
            select.append(f"CAST(NULL AS STRING) AS {field}")
        elif kind in _TEXT_TYPES or (field == "amount" and kind == "DecimalType"):
            select.append(f"nullif(CAST(`{field}` AS STRING), '') AS {field}")
        elif field == "created_at" and kind == "TimestampType":
            select.append(f"date_format(`{field}`, \"yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'\") AS {field}")
        else:
            problems.append(parquet_type_problem(source, field, kind))
    if problems:
        raise InputError(problems)
    select += [
        f"nullif(CAST(`{c}` AS STRING), '') AS `extra_{c}`"
        for c in frame.columns
        if c not in FIELDS
    ]
    return spark.sql(f"SELECT {', '.join(select)} FROM parquet_cells")


def _judge(spark: SparkSession, source: str, location: str, fmt: str) -> None:
    """Check what SQL left to Python; then ``payouts`` is the valid, typed relation."""
    problems = _problems(spark, source)
    if problems:
        if fmt == "csv" and Path(location).is_file():
            raise Fallback("the export holds a bad value: the reference names it")
        if Path(location).is_file():  # a Parquet file: DuckDB names each line and field
            from .duckdb_engine import run_duckdb

            run_duckdb(Path(location), source=source, policy=PayoutPolicy())
        raise InputError(problems)
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    odd_times = [
        (r[0], _micros(parse_time(r[0])))
        for r in spark.sql(
            "SELECT DISTINCT created_odd FROM judged WHERE created_odd IS NOT NULL"
        ).collect()
    ]
    odd_memos = [
        (r[0], _memo_bytes(r[0]).hex())
        for r in spark.sql(
            "SELECT DISTINCT memo_odd FROM judged WHERE memo_odd IS NOT NULL"
        ).collect()
    ]
    times_schema = StructType([StructField("text", StringType()), StructField("us", LongType())])
    memos_schema = StructType([StructField("text", StringType()), StructField("hex", StringType())])
    spark.createDataFrame(odd_times, times_schema).createOrReplaceTempView("odd_times")
    spark.createDataFrame(odd_memos, memos_schema).createOrReplaceTempView("odd_memos")
    spark.sql(sql.payouts_sql(sql.SPARK, odd_values=True)).createOrReplaceTempView("payouts")


def _problems(spark: SparkSession, source: str) -> list[InputProblem]:
    """One problem per wrong field, with the reference's message; no value is echoed."""
    problems = []
    bad, duplicated = spark.sql(
        "SELECT count(CASE WHEN bad THEN 1 END), count(*) - count(DISTINCT payout_id) FROM judged"
    ).collect()[0]
    if bad:
        problems.append(
            InputProblem(source, None, None, f"{bad} records hold a missing or malformed value")
        )
    if duplicated:
        problems.append(InputProblem(source, None, "payout_id", "payout_id is not unique"))
    checks: list[tuple[str, str, Callable[[str], str | None]]] = [
        ("destination", "SELECT DISTINCT destination FROM judged WHERE NOT bad",
         destination_problem),
        ("asset", "SELECT DISTINCT asset FROM judged WHERE NOT bad", _message(parse_asset)),
        ("created_at", "SELECT DISTINCT created_odd FROM judged WHERE created_odd IS NOT NULL",
         _message(parse_time)),
        ("memo", "SELECT DISTINCT memo_odd FROM judged WHERE memo_odd IS NOT NULL",
         _message(_memo_bytes)),
    ]  # fmt: skip
    for field, query, check in checks:
        for (value,) in spark.sql(query).toLocalIterator():
            message = check(value) if value is not None else None
            if message:
                problems.append(InputProblem(source, None, field, message))
                break
    return problems


def _message(parse: Callable[[str], Any]) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            parse(value)
        except ValueError as exc:
            return str(exc)
        return None

    return check
