"""Shared by the engine tests: random payout exports, writers for every format, Spark.

Spark (PySpark and a Java runtime) is optional: its tests skip with a reason
when either is missing, unless ``CI=true`` or ``STREAMPAY_INCIDENT_REQUIRE_SPARK=1``
(set by ``.ci/run``), where a missing Spark is a failure.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from stellar_sdk import MuxedAccount

from conftest import load_fixture
from streampay_incident.io.payouts import FIELDS
from streampay_incident.model import Finding

PAYMENTS = [
    p
    for p in load_fixture("horizon/account_payments_pubnet_docs.json")["_embedded"]["records"]
    if p["type"] == "payment"
]
CREDIT = next(p for p in PAYMENTS if p["asset_type"] != "native")
G_ADDRESSES = sorted({p["to"] for p in PAYMENTS})[:3]
DESTINATIONS = [
    *G_ADDRESSES,
    MuxedAccount(G_ADDRESSES[0], 1).account_muxed,
    MuxedAccount(G_ADDRESSES[0], 2).account_muxed,
]
ASSETS = ["native", "XLM", f"{CREDIT['asset_code']}:{CREDIT['asset_issuer']}"]
HASHES = sorted({p["transaction_hash"] for p in PAYMENTS})[:4]
AMOUNTS = ["1", "0.0000001", "25.5", "25.5000000", "007.10", "922337203685.4775807"]
T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
HASH_MEMO = bytes(range(32))
# Every memo type, each spelt several ways (the same memo must group whatever its spelling).
MEMOS = [
    ("", ""),
    ("none", ""),
    ("text", ""),
    ("", "inv-1"),
    ("text", "inv-1"),
    ("text", "счёт-7"),
    ("id", "42"),
    ("id", "0042"),
    ("id", "18446744073709551615"),
    ("hash", HASH_MEMO.hex()),
    ("hash", HASH_MEMO.hex().upper()),
    ("hash", base64.b64encode(HASH_MEMO).decode()),
    ("return", HASH_MEMO.hex()),
]
STATUSES = ["pending", "submitted", "confirmed", "failed"]


def spell_time(moment: datetime, style: int) -> str:
    """One instant in the RFC 3339 spellings exporters use."""
    if style == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == 1:
        return moment.isoformat()  # +00:00, and microseconds when there are some
    if style == 2:
        return moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    if style == 3:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if style == 4:
        return moment.strftime("%Y-%m-%d %H:%M:%SZ")  # a space: not the plain shape
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # nanoseconds, as some print


@st.composite
def export_rows(draw: st.DrawFn, max_rows: int = 16) -> list[dict[str, str]]:
    """Rows of a payout export (cells as text, "" for absent) that collide on every key."""
    rows = []
    for i in range(draw(st.integers(1, max_rows))):
        status = draw(st.sampled_from(STATUSES))
        tx_hash = draw(st.sampled_from(["", *HASHES]))
        if tx_hash and draw(st.booleans()):
            tx_hash = tx_hash.upper()
        memo_type, memo = draw(st.sampled_from(MEMOS))
        # Minutes apart, or seconds either side of a 10-minute window.
        seconds = draw(st.integers(0, 40)) * 60 + draw(st.sampled_from([0, 0, 1, 599, 600, 601]))
        moment = T0 + timedelta(seconds=seconds, microseconds=draw(st.sampled_from([0, 0, 250])))
        rows.append(
            {
                "payout_id": f"p{i}",
                "settlement_id": draw(st.sampled_from(["s1", "s2", "s3", "s4"])),
                "destination": draw(st.sampled_from(DESTINATIONS)),
                "asset": draw(st.sampled_from(ASSETS)),
                "amount": draw(st.sampled_from(AMOUNTS)),
                "status": status,
                "created_at": spell_time(moment, draw(st.integers(0, 5))),
                "tx_hash": tx_hash,
                "memo_type": memo_type,
                "memo": memo,
                "idempotency_key": draw(st.sampled_from(["", "k1", "k2"])),
                "ledger": draw(st.sampled_from(["", "50000000", "0050000001"])),
            }
        )
    return rows


def write_export(rows: list[dict[str, str]], folder: Path, fmt: str) -> Path:
    """The rows as a ``csv``, ``jsonl``, ``json`` (array) or ``parquet`` file in ``folder``."""
    path = folder / f"payouts.{fmt}"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(FIELDS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path.write_text(out.getvalue(), encoding="utf-8")
    elif fmt in ("jsonl", "json"):
        records = [{k: v for k, v in row.items() if v != ""} for row in rows]
        if fmt == "jsonl":
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        else:
            text = json.dumps(records, ensure_ascii=False, indent=1)
        path.write_text(text, encoding="utf-8")
    else:
        import duckdb

        csv_path = write_export(rows, folder, "csv")
        duckdb.sql(f"COPY (SELECT * FROM read_csv('{csv_path}', all_varchar = true)) TO '{path}'")
    return path


def essentials(findings: list[Finding]) -> list[tuple[Any, ...]]:
    """What the engines must agree on (the brief's list), in report order."""
    return [
        (
            f.code,
            f.severity.value,
            f.subject,
            tuple(f.evidence["payout_ids"]),
            tuple(sorted(f.evidence["amount_at_risk"].items())),
        )
        for f in findings
    ]


def spark_required() -> bool:
    return (
        os.environ.get("CI", "").lower() == "true"
        or os.environ.get("STREAMPAY_INCIDENT_REQUIRE_SPARK") == "1"
    )


def spark_or_skip() -> Any:
    """A local Spark session, or a skip (a failure where Spark is required)."""
    missing = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        missing = "PySpark is not installed (pip install '.[spark]')"
    if missing is None and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        missing = "no Java runtime (apt-get install openjdk-17-jre-headless)"
    if missing is not None:
        if spark_required():
            pytest.fail(f"Spark is required here (CI) but {missing}")
        pytest.skip(missing)
    from streampay_incident.engines.spark_engine import spark_session

    session = spark_session("local[2]")
    session.sparkContext.setLogLevel("ERROR")
    return session


@st.composite
def queued_and_memo_rows(draw: st.DrawFn, max_rows: int = 12) -> list[dict[str, str]]:
    """Rows that stress ``amount_exposed`` and the memo rule of repeats: one destination,
    asset and amount paid minutes apart under a few differing memos (or none), and
    pending (queued) rows under conflicting idempotency keys, with or without a transfer."""
    memos = [("", ""), ("text", "inv-1"), ("text", "inv-2"), ("id", "7"), ("id", "007")]
    rows = []
    for i in range(draw(st.integers(2, max_rows))):
        moment = T0 + timedelta(seconds=draw(st.integers(0, 12)) * 120)
        memo_type, memo = draw(st.sampled_from(memos))
        rows.append(
            {
                "payout_id": f"q{i}",
                "settlement_id": draw(st.sampled_from(["s1", "s2", "s3"])),
                "destination": DESTINATIONS[0],
                "asset": draw(st.sampled_from(ASSETS[:2])),
                "amount": draw(st.sampled_from(["25", "25", "30"])),
                "status": draw(st.sampled_from(["pending", "pending", "submitted", "confirmed"])),
                "created_at": spell_time(moment, 0),
                "tx_hash": "",
                "memo_type": memo_type,
                "memo": memo,
                "idempotency_key": draw(st.sampled_from(["", "k1", "k1", "k2"])),
                "ledger": "",
            }
        )
    return rows
