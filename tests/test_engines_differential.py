"""One meaning, every engine: random exports give the same findings from the Python
reference, DuckDB (CSV, JSON Lines, JSON array, Parquet) and Spark (CSV, Parquet).

The exports collide on every key the rules group by: duplicates, memos of
every type spelt several ways, muxed destinations, repeats either side of the
window, upper- and lower-case hashes, pending and failed rows, timestamps with
offsets, fractions and shapes only Python judges.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines_support import (
    essentials,
    export_rows,
    queued_and_memo_rows,
    spark_or_skip,
    write_export,
)
from streampay_incident.checks.payouts import find_payout_anomalies
from streampay_incident.engines.duckdb_engine import run_duckdb
from streampay_incident.io.payouts import read_payouts
from streampay_incident.model import PayoutPolicy

WINDOWS = st.sampled_from([timedelta(minutes=10), timedelta(seconds=90)])


def reference(path: Path, policy: PayoutPolicy) -> list[dict[str, Any]]:
    return [f.to_json() for f in find_payout_anomalies(read_payouts(path), policy=policy)]


@given(export_rows(), WINDOWS, st.sampled_from(["csv", "jsonl", "json", "parquet"]))
def test_duckdb_finds_what_the_reference_finds(
    rows: list[dict[str, str]], window: timedelta, fmt: str
) -> None:
    policy = PayoutPolicy(repeat_window=window)
    with tempfile.TemporaryDirectory() as folder:
        expected = reference(write_export(rows, Path(folder), "csv"), policy)
        path = write_export(rows, Path(folder), fmt)
        found, records = run_duckdb(path, source=str(path), policy=policy)
    assert records == len(rows)
    # Everything the report shows, not only the essentials: summaries and evidence too.
    assert [f.to_json() for f in found] == expected


@given(queued_and_memo_rows(), WINDOWS, st.sampled_from(["csv", "jsonl", "parquet"]))
def test_duckdb_exposed_amounts_and_memo_chains_are_the_reference(
    rows: list[dict[str, str]], window: timedelta, fmt: str
) -> None:
    """Queued rows under conflicting idempotency keys (``amount_exposed``) and repeats
    under differing memos (never chained) give the reference's findings, whole."""
    policy = PayoutPolicy(repeat_window=window)
    with tempfile.TemporaryDirectory() as folder:
        expected = reference(write_export(rows, Path(folder), "csv"), policy)
        path = write_export(rows, Path(folder), fmt)
        found, _ = run_duckdb(path, source=str(path), policy=policy)
    assert [f.to_json() for f in found] == expected


@pytest.fixture(scope="module")
def spark() -> Any:
    session = spark_or_skip()
    yield session
    session.stop()


@settings(max_examples=6, deadline=None)
@given(export_rows(max_rows=10), WINDOWS, st.sampled_from(["csv", "parquet"]))
def test_spark_finds_what_the_reference_and_duckdb_find(
    spark: Any, rows: list[dict[str, str]], window: timedelta, fmt: str
) -> None:
    from streampay_incident.engines.spark_engine import run_spark

    policy = PayoutPolicy(repeat_window=window)
    with tempfile.TemporaryDirectory() as folder:
        path = write_export(rows, Path(folder), fmt)
        python_findings = find_payout_anomalies(
            read_payouts(write_export(rows, Path(folder), "csv")), policy=policy
        )
        duckdb_findings, _ = run_duckdb(path, source=str(path), policy=policy)
        spark_findings, records = run_spark(path, source=str(path), policy=policy, session=spark)
    assert records == len(rows)
    assert essentials(spark_findings) == essentials(python_findings) == essentials(duckdb_findings)
    assert [f.to_json() for f in spark_findings] == [f.to_json() for f in python_findings]


@settings(max_examples=6, deadline=None)
@given(queued_and_memo_rows(max_rows=10), WINDOWS, st.sampled_from(["csv", "parquet"]))
def test_spark_exposed_amounts_and_memo_chains_are_the_reference(
    spark: Any, rows: list[dict[str, str]], window: timedelta, fmt: str
) -> None:
    """Spark too: ``amount_exposed`` of queued rows and repeats never chained across
    differing memos give the reference's findings, whole."""
    from streampay_incident.engines.spark_engine import run_spark

    policy = PayoutPolicy(repeat_window=window)
    with tempfile.TemporaryDirectory() as folder:
        expected = reference(write_export(rows, Path(folder), "csv"), policy)
        path = write_export(rows, Path(folder), fmt)
        found, _ = run_spark(path, source=str(path), policy=policy, session=spark)
    assert [f.to_json() for f in found] == expected


def test_spark_sums_amounts_past_the_int64_limit(spark: Any, tmp_path: Path) -> None:
    """Three transfers of the largest amount for one settlement: twice the int64 limit at
    risk, as the reference says (a BIGINT sum wrapped to a negative amount on Spark)."""
    from engines_support import DESTINATIONS, HASHES
    from streampay_incident.engines.spark_engine import run_spark

    largest = {
        "settlement_id": "s1", "destination": DESTINATIONS[0], "asset": "native",
        "amount": "922337203685.4775807", "status": "confirmed", "memo_type": "", "memo": "",
        "idempotency_key": "", "ledger": "",
    }  # fmt: skip
    rows = [
        {**largest, "payout_id": f"p{i}", "created_at": f"2026-11-27T01:0{i}:00Z",
         "tx_hash": HASHES[i]}
        for i in range(3)
    ]  # fmt: skip
    path = write_export(rows, tmp_path, "parquet")
    found, _ = run_spark(path, source="big.parquet", policy=PayoutPolicy(), session=spark)
    expected = reference(write_export(rows, tmp_path, "csv"), PayoutPolicy())
    assert [f.to_json() for f in found] == expected
    assert "1844674407370.9551614" in str(expected)


def test_spark_cli_reads_a_directory_of_part_files(spark: Any, tmp_path: Path) -> None:
    """``--engine spark`` on a folder of CSV parts: the reference's report of the whole."""
    import json
    from importlib import resources

    from click.testing import CliRunner

    from streampay_incident.cli import main

    demo = Path(str(resources.files("streampay_incident") / "demo_data" / "payouts.csv"))
    header, *lines = demo.read_text(encoding="utf-8").splitlines(keepends=True)
    parts = tmp_path / "export"
    parts.mkdir()
    half = len(lines) // 2
    (parts / "part-0000.csv").write_text(header + "".join(lines[:half]), encoding="utf-8")
    (parts / "part-0001.csv").write_text(header + "".join(lines[half:]), encoding="utf-8")
    spark_run = CliRunner().invoke(
        main, ["payouts", str(parts), "--engine", "spark", "--spark-master", "local[2]",
               "--format", "json"],
    )  # fmt: skip
    python_run = CliRunner().invoke(main, ["payouts", str(demo), "--engine", "python",
                                           "--format", "json"])  # fmt: skip
    assert spark_run.exception is None or isinstance(spark_run.exception, SystemExit)
    assert spark_run.exit_code == python_run.exit_code == 1, spark_run.output
    assert json.loads(spark_run.stdout)["findings"] == json.loads(python_run.stdout)["findings"]


def test_spark_split_csv_still_refuses_a_repeated_header_line(spark: Any, tmp_path: Path) -> None:
    """Read by lines (no quote in the file), Spark drops the header of each file only:
    a data line that repeats the header is a bad record, as for the reference."""
    from streampay_incident.engines.duckdb_engine import Fallback
    from streampay_incident.engines.spark_engine import may_span_lines, run_spark

    demo = Path(str(resources.files("streampay_incident") / "demo_data" / "payouts.csv"))
    header, *lines = demo.read_text(encoding="utf-8").splitlines(keepends=True)
    export = tmp_path / "payouts.csv"
    export.write_text(header + "".join(lines[:3]) + header + "".join(lines[3:]), encoding="utf-8")
    assert not may_span_lines(str(export))
    with pytest.raises(Fallback):
        run_spark(export, source="payouts.csv", policy=PayoutPolicy(), session=spark)


def test_spark_bad_inputs_are_named(spark: Any, tmp_path: Path) -> None:
    from streampay_incident.engines.duckdb_engine import Fallback
    from streampay_incident.engines.spark_engine import run_spark
    from streampay_incident.errors import InputError

    base = {
        "payout_id": "p0", "settlement_id": "s1", "destination": "GA" + "A" * 54,
        "asset": "native", "amount": "1", "status": "confirmed",
        "created_at": "2026-11-27T01:00:00Z", "tx_hash": "", "memo_type": "", "memo": "",
        "idempotency_key": "", "ledger": "",
    }  # fmt: skip
    rows = [base, {**base, "payout_id": "p1", "amount": "-1"}]
    policy = PayoutPolicy()
    csv_file = write_export(rows, tmp_path, "csv")
    with pytest.raises(Fallback):  # one CSV file: the reference names every line
        run_spark(csv_file, source="x.csv", policy=policy, session=spark)
    parquet_file = write_export(rows, tmp_path, "parquet")
    with pytest.raises(InputError, match=r"x.parquet:1: field 'destination'"):
        run_spark(parquet_file, source="x.parquet", policy=policy, session=spark)
    folder = tmp_path / "parts"
    folder.mkdir()
    parquet_file.rename(folder / "part-0.parquet")
    with pytest.raises(InputError) as caught:
        run_spark(folder, source="parts", policy=policy, session=spark)
    fields = {problem.field for problem in caught.value.problems}
    assert fields == {None, "destination"}
    assert "1 records hold a missing or malformed value" in str(caught.value)


def test_spark_parquet_types_and_every_named_problem(spark: Any, tmp_path: Path) -> None:
    import duckdb

    from engines_support import DESTINATIONS
    from streampay_incident.engines.duckdb_engine import Fallback
    from streampay_incident.engines.spark_engine import run_spark
    from streampay_incident.errors import InputError

    policy = PayoutPolicy()
    typed = tmp_path / "typed"
    typed.mkdir()
    select = (
        f"SELECT 'p' || i AS payout_id, 's' || i AS settlement_id, '{DESTINATIONS[0]}' AS "
        "destination, 'native' AS asset, CAST(25.5 AS DECIMAL(18, 7)) AS amount, "
        "'confirmed' AS status, TIMESTAMPTZ '2026-11-27 01:00:00+00' + i * INTERVAL 1 MINUTE "
        "AS created_at FROM range(2) t(i)"
    )
    duckdb.sql(f"COPY ({select}) TO '{typed / 'part-0.parquet'}'")
    found, records = run_spark(typed, source="typed", policy=policy, session=spark)
    assert records == 2 and [f.code for f in found] == ["PAYOUT_SUSPECTED_REPEAT"]
    duckdb.sql(f"COPY (SELECT 25.5::DOUBLE AS amount) TO '{typed / 'part-0.parquet'}'")
    with pytest.raises(InputError, match="field 'amount': Parquet type DoubleType"):
        run_spark(typed, source="typed", policy=policy, session=spark)
    odd = (
        "SELECT 'p1' AS payout_id, 's1' AS settlement_id, 'G' AS destination, 'EUR:G' AS asset,"
        " '1' AS amount, 'failed' AS status, '2026-13-01 00:00:00Z' AS created_at,"
        " 'hash' AS memo_type, 'bm90IDMyIGJ5dGVz' AS memo FROM range(2)"
    )
    duckdb.sql(f"COPY ({odd}) TO '{typed / 'part-0.parquet'}'")
    with pytest.raises(InputError) as caught:
        run_spark(typed, source="typed", policy=policy, session=spark)
    assert {p.field for p in caught.value.problems} == {
        "payout_id", "destination", "asset", "created_at", "memo"
    }  # fmt: skip
    empty = tmp_path / "empty.csv"
    empty.write_text("payout_id,amount\n", encoding="utf-8")
    with pytest.raises(Fallback, match="no record"):
        run_spark(empty, source="empty.csv", policy=policy, session=spark)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(Fallback, match="no CSV file"):
        run_spark(tmp_path / "nothing", source="nothing", policy=policy, session=spark)
