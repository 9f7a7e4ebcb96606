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
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines_support import essentials, export_rows, spark_or_skip, write_export
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
