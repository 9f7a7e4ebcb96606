"""Fuzzing every reader through the command line: exit 2 or a report, never a crash.

Random bytes, random JSON (NaN, huge numbers, deep nesting, odd keys) and
records whose fields hold random JSON go to every file argument: the payout
export, the settlement export, ``--transactions``, ``--chain-payments`` and
``chain --snapshot``. The contract: exit 2 with nothing on stdout and every
error line on stderr, or exit 0/1 with a report that is strict JSON (no NaN);
never exit 3 (an escaped bug) and never a traceback.
"""

from __future__ import annotations

import json
import math
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streampay_incident.cli import main
from streampay_incident.io.payouts import FIELDS as PAYOUT_FIELDS

DEMO = Path(str(resources.files("streampay_incident") / "demo_data"))
NOW = "2026-11-27T03:00:00Z"
ESCROW = "GBVFTZL5HIPT4PFQVTZVIWR77V7LWYCXU4CLYWWHHOEXB64XPG5LDMTU"
SETTLEMENT_FIELDS = (
    "settlement_id", "status", "created_at", "updated_at", "attempts", "max_attempts",
    "lease_until", "tx_hash", "envelope_xdr", "tx_max_time", "last_error",
)  # fmt: skip
TRANSACTION_FIELDS = (
    "hash", "successful", "ledger", "created_at", "txHash", "status", "createdAt",
    "oldestLedgerCloseTime", "feeBump", "inner_transaction",
)  # fmt: skip
PAYMENT_FIELDS = ("type", "transaction_hash", "from", "to", "amount", "asset_type", "id",
                  "created_at", "transaction", "topic", "value", "contractId", "ledger",
                  "events", "oldestLedger", "latestLedgerCloseTime")  # fmt: skip

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# JSON scalars as hostile exports write them: huge and non-finite numbers, dates at the
# edges of datetime, seed-like and long text.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**50), max_value=10**50),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2026-11-27T02:00:00Z",
            "1e400",
            "9" * 5000,
            "native",
            "id",
            "pending",
            "SUCCESS",
            ESCROW,
            "ab" * 32,
            "99999999999999999999d",
        ]
    ),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def records(fields: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with (some of) the expected keys, each holding random JSON."""
    return st.dictionaries(st.sampled_from(fields), JSON, max_size=len(fields))


def as_text(doc: Any, style: str) -> str:
    if style == "jsonl" and isinstance(doc, list):
        return "".join(json.dumps(item) + "\n" for item in doc)
    if style == "deep":
        return "[" * 2000 + json.dumps(doc) + "]" * 2000
    return json.dumps(doc)  # NaN and Infinity as Python writes them (not JSON)


def check(args: list[str], stdin: str | None = None) -> None:
    result = CliRunner().invoke(
        main,
        [*args, "--format", "json"],
        input=stdin,
        env={"STREAMPAY_INCIDENT_DISABLE_PLUGINS": "all", "STREAMPAY_INCIDENT_DEBUG": None},
        catch_exceptions=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr)
    if result.exit_code == 2:
        assert result.stdout == "", result.stdout
        assert result.stderr.strip(), "an input error must say what is wrong"
        return
    doc = json.loads(result.stdout, parse_constant=_no_constants)
    assert doc["schema"] == "streampay-incident.report/v1"


def _no_constants(name: str) -> Any:
    raise AssertionError(f"a report holds {name}, which is not JSON")


def write(data: str | bytes, suffix: str) -> str:
    handle = tempfile.NamedTemporaryFile(suffix=suffix, delete=False)  # noqa: SIM115
    with handle:
        handle.write(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    return handle.name


def run_on(args: list[str], data: str | bytes, suffix: str, *tail: str) -> None:
    path = write(data, suffix)
    try:
        check([*args, path, *tail])
    finally:
        Path(path).unlink()


STYLE = st.sampled_from(["json", "jsonl", "deep"])


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".jsonl", ".json", ""]))
def test_random_bytes_to_every_reader(data: bytes, suffix: str) -> None:
    run_on(["payouts"], data, suffix)
    run_on(["settlements"], data, suffix, "--now", NOW)
    run_on(["settlements", str(DEMO / "settlements.jsonl"), "--network", "testnet",
            "--now", NOW, "--transactions"], data, suffix)  # fmt: skip
    run_on(["payouts", str(DEMO / "payouts.csv"), "--escrow", ESCROW, "--chain-payments"],
           data, suffix)  # fmt: skip
    run_on(["chain", "--now", NOW, "--snapshot"], data, suffix)


@FUZZ
@given(doc=JSON, style=STYLE)
def test_random_json_to_every_reader(doc: Any, style: str) -> None:
    text = as_text(doc, style)
    run_on(["payouts"], text, ".json" if style != "jsonl" else ".jsonl")
    run_on(["settlements"], text, ".json", "--now", NOW)
    run_on(["chain", "--now", NOW, "--snapshot"], text, ".json")


@FUZZ
@given(rows=st.lists(records(PAYOUT_FIELDS), max_size=4), style=STYLE, csv=st.booleans())
def test_payout_records_with_random_values(
    rows: list[dict[str, Any]], style: str, csv: bool
) -> None:
    if csv:
        cells = [[str(row.get(f, "")).replace(",", " ").replace("\n", " ") for f in PAYOUT_FIELDS]
                 for row in rows]  # fmt: skip
        text = ",".join(PAYOUT_FIELDS) + "\n" + "".join(",".join(c) + "\n" for c in cells)
        run_on(["payouts"], text, ".csv")
    else:
        run_on(["payouts"], as_text(rows, style), ".jsonl" if style == "jsonl" else ".json")


@FUZZ
@given(rows=st.lists(records(SETTLEMENT_FIELDS), max_size=4), style=STYLE)
def test_settlement_records_with_random_values(rows: list[dict[str, Any]], style: str) -> None:
    suffix = ".jsonl" if style == "jsonl" else ".json"
    run_on(["settlements"], as_text(rows, style), suffix, "--network", "testnet", "--now", NOW)


@FUZZ
@given(rows=st.lists(records(TRANSACTION_FIELDS), max_size=4), style=STYLE)
def test_transaction_records_with_random_values(rows: list[dict[str, Any]], style: str) -> None:
    run_on(["settlements", str(DEMO / "settlements.jsonl"), "--network", "testnet",
            "--now", NOW, "--transactions"], as_text(rows, style), ".json")  # fmt: skip


@FUZZ
@given(rows=st.lists(records(PAYMENT_FIELDS), max_size=4), style=STYLE)
def test_chain_payment_records_with_random_values(rows: list[dict[str, Any]], style: str) -> None:
    run_on(["payouts", str(DEMO / "payouts.csv"), "--escrow", ESCROW, "--chain-payments"],
           as_text(rows, style), ".json")  # fmt: skip


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index))
    return found


RECORDING = json.loads((DEMO / "chain-outage.json").read_text(encoding="utf-8"))
RECORDING_PATHS = [p for p in _paths(RECORDING) if p]


@FUZZ
@given(path=st.sampled_from(RECORDING_PATHS), value=JSON)
def test_a_recording_with_one_random_value(path: tuple[Any, ...], value: Any) -> None:
    doc = json.loads(json.dumps(RECORDING))
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    if isinstance(value, float) and not math.isfinite(value):
        assert "NaN" in json.dumps(doc) or "Infinity" in json.dumps(doc)
    run_on(["chain", "--now", NOW, "--snapshot"], json.dumps(doc), ".json")


@FUZZ
@given(body=JSON)
def test_a_recorded_body_with_random_json(body: Any) -> None:
    doc = json.loads(json.dumps(RECORDING))
    for exchange in doc["exchanges"]:
        exchange["body"] = json.dumps(body)
    run_on(["chain", "--now", NOW, "--snapshot"], json.dumps(doc), ".json")
