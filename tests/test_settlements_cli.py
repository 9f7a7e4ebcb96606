"""``streampay-incident settlements``: the pinned CLI contract, on bundled and recorded data."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from conftest import FIXTURES, load_fixture
from streampay_incident import hookimpl
from streampay_incident.cli import main
from streampay_incident.registry import get_plugin_manager
from test_envelope import build_envelope

DEMO = Path(str(resources.files("streampay_incident") / "demo_data"))
NOW = "2026-11-27T03:00:00Z"
CLOSE = "2026-11-27T02:59:56Z"
TRIPLES = load_fixture("tx_hash_triples.json")["triples"]


def run(args: Sequence[str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


def demo_args(*extra: str) -> list[str]:
    return [
        "settlements",
        str(DEMO / "settlements.jsonl"),
        "--transactions",
        str(DEMO / "transactions.json"),
        "--network",
        "testnet",
        "--now",
        NOW,
        *extra,
    ]


def write_jsonl(path: Path, *records: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_demo_scenario_json_report() -> None:
    result = run(demo_args("--latest-ledger-close-time", CLOSE, "--format", "json"))
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["schema"] == "streampay-incident.report/v1"
    assert doc["status"] == "fail"
    assert doc["generated_at"] == NOW
    assert doc["inputs"]["network"] == "testnet"
    assert doc["inputs"]["records"] == 11 and doc["inputs"]["transaction_records"] == 4
    assert doc["inputs"]["latest_ledger_close_time"] == CLOSE
    verdicts = {v["settlement_id"]: v for v in doc["settlements"]}
    assert set(verdicts["stl-1001"]) == {
        "settlement_id",
        "state",
        "retry_safe",
        "retry_reason",
        "action",
    }
    assert {k: (v["state"], v["retry_safe"], v["retry_reason"]) for k, v in verdicts.items()} == {
        "stl-1001": ("settled", False, "tx_landed"),
        "stl-1002": ("settled", False, "tx_landed"),
        "stl-1003": ("failed", True, "tx_failed"),
        "stl-1004": ("stuck", True, "never_submitted"),
        "stl-1005": ("stuck", False, "unknown_submission"),
        "stl-1006": ("stuck", True, "tx_expired"),
        "stl-1007": ("stuck", False, "tx_may_still_land"),
        "stl-1008": ("stuck", False, "unknown_submission"),
        "stl-1009": ("in_flight", False, "in_flight"),
        "stl-1010": ("backing_off", False, "backing_off"),
        # Already paid (payout p-071), but this run was given no payouts: issue 9 §2.
        "stl-1011": ("stuck", True, "never_submitted"),
    }
    codes = {(f["code"], f["subject"], f["severity"]) for f in doc["findings"]}
    assert ("SETTLEMENT_CONFIRMED_NOT_RECORDED", "stl-1002", "critical") in codes
    assert ("SETTLEMENT_RETRIES_EXHAUSTED", "stl-1008", "critical") in codes
    runbooks = {f["runbook"].split("#")[0] for f in doc["findings"]}
    assert runbooks == {"docs/runbooks/stuck-settlement.md"}


def test_without_close_time_expiry_is_not_proven() -> None:
    doc = json.loads(run(demo_args("--format", "json")).stdout)
    stl_1006 = next(v for v in doc["settlements"] if v["settlement_id"] == "stl-1006")
    assert (stl_1006["retry_safe"], stl_1006["retry_reason"]) == (False, "no_ledger_after_max_time")


def test_text_and_markdown_outputs() -> None:
    text = run(demo_args()).stdout
    assert text.startswith("FAIL streampay-incident settlements")
    assert "SETTLEMENT_DEAD_LETTERED" not in text and "stl-1006" in text
    assert "retry_safe" in text
    markdown = run(demo_args("--format", "markdown")).stdout
    assert markdown.startswith("## streampay-incident settlements: **FAIL**")
    assert "| `stl-1004` | stuck | yes | never_submitted |" in markdown


def test_fail_on_levels_and_clean_input(tmp_path: Path) -> None:
    assert run(demo_args("--fail-on", "critical")).exit_code == 1
    warn_only = write_jsonl(
        tmp_path / "warn.jsonl",
        {"settlement_id": "a", "status": "pending", "created_at": "2026-11-27T01:00:00Z"},
    )
    base = ["settlements", str(warn_only), "--now", NOW]
    assert run(base).exit_code == 1
    assert run([*base, "--fail-on", "critical"]).exit_code == 0
    clean = write_jsonl(
        tmp_path / "clean.jsonl",
        {"settlement_id": "b", "status": "pending", "created_at": "2026-11-27T02:59:00Z"},
    )
    result = run(["settlements", str(clean), "--now", NOW, "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["status"] == "pass"


def test_stdin_and_csv(tmp_path: Path) -> None:
    record = {"settlement_id": "a", "status": "dead", "created_at": "2026-11-27T01:00:00Z"}
    result = run(["settlements", "-", "--now", NOW, "--format", "json"], stdin=json.dumps(record))
    assert result.exit_code == 1
    assert json.loads(result.stdout)["findings"][0]["code"] == "SETTLEMENT_DEAD_LETTERED"
    csv = tmp_path / "s.csv"
    csv.write_text("settlement_id,status,created_at\na,dead,2026-11-27T01:00:00Z\n", "utf-8")
    assert run(["settlements", str(csv), "--now", NOW]).exit_code == 1


def test_envelope_column_with_network(tmp_path: Path) -> None:
    xdr, sdk = build_envelope(max_time=1_800_000_000)
    path = write_jsonl(
        tmp_path / "s.jsonl",
        {
            "settlement_id": "env-1",
            "status": "processing",
            "created_at": "2026-11-27T02:00:00Z",
            "envelope_xdr": xdr,
        },
    )
    args = ["settlements", str(path), "--now", NOW, "--format", "json"]
    result = run([*args, "--network", "testnet"])
    (finding,) = json.loads(result.stdout)["findings"]
    assert finding["evidence"]["tx_hash"] == sdk.hash_hex()
    assert finding["evidence"]["max_time"] == "2027-01-15T08:00:00Z"
    missing = run(args)
    assert missing.exit_code == 2
    assert missing.stdout == ""
    assert "envelope_xdr" in missing.stderr and "--network" in missing.stderr


def test_recorded_transactions_files_are_accepted(tmp_path: Path) -> None:
    triple = next(t for t in TRIPLES if t["expected_hash"].startswith("109cf617"))
    path = write_jsonl(
        tmp_path / "s.jsonl",
        {
            "settlement_id": "rpc-failed",
            "status": "processing",
            "created_at": "2026-11-27T02:00:00Z",
            "envelope_xdr": triple["envelope_xdr"],
        },
    )
    result = run(
        [
            "settlements",
            str(path),
            "--network",
            "testnet",
            "--transactions",
            str(FIXTURES / "rpc" / "getTransaction_FAILED_testnet_docs.json"),
            "--now",
            NOW,
            "--format",
            "json",
        ]
    )
    (verdict,) = json.loads(result.stdout)["settlements"]
    assert (verdict["state"], verdict["retry_reason"]) == ("failed", "tx_failed")


def test_input_errors_exit_2_with_every_problem_and_no_report(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        {"settlement_id": "a", "status": "weird", "created_at": "2026-11-27T01:00:00Z"},
        {"settlement_id": "b", "status": "dead"},
    )
    result = run(["settlements", str(path), "--now", NOW])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: {path}:1: field 'status': 'weird': expected one of "
        "pending, processing, succeeded, failed, dead",
        f"error: {path}:2: field 'created_at': required field is missing or empty",
    ]
    assert "Traceback" not in result.output


def test_bad_transactions_file_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "tx.json"
    bad.write_text("[{}]", encoding="utf-8")
    result = run(demo_args()[:2] + ["--transactions", str(bad), "--network", "testnet"])
    assert result.exit_code == 2 and "neither a Horizon" in result.stderr
    missing = run(["settlements", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2 and "file not found" in missing.stderr


@pytest.mark.parametrize(
    "args",
    [["--now", "yesterday"], ["--latest-ledger-close-time", "2026-11-27"], ["--format", "xml"]],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert run(demo_args()[:2] + args).exit_code == 2


class RaisingPlugin:
    @hookimpl
    def streampay_incident_register_settlement_checks(self) -> list[Any]:
        def broken(settlements: Any, **kwargs: Any) -> list[Any]:
            raise RuntimeError("boom")

        def counts(settlements: Any, *, transactions: Any, now: Any, policy: Any) -> list[Any]:
            assert isinstance(transactions, dict)  # third-party checks see a plain mapping
            return []

        return [broken, counts]


def test_plugin_that_raises_becomes_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    def manager(*args: Any, **kwargs: Any) -> Any:
        pm = get_plugin_manager(load_entry_points=False)
        pm.register(RaisingPlugin(), name="raising")
        return pm

    monkeypatch.setattr("streampay_incident.cli.settlements.get_plugin_manager", manager)
    result = run(demo_args("--format", "json"))
    doc = json.loads(result.stdout)
    errors = [f for f in doc["findings"] if f["code"] == "PLUGIN_ERROR"]
    assert [f["subject"] for f in errors] == ["raising"]
    assert len(doc["settlements"]) == 11  # the other checks still ran


def test_a_real_process_exits_1_with_the_report_and_no_traceback() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from streampay_incident.cli import main; main()",
            *demo_args("--format", "json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["status"] == "fail"
    assert "Traceback" not in proc.stderr
