"""``streampay-incident payouts``: exit codes, formats, the JSON contract, input errors, plugins."""

from __future__ import annotations

import gc
import io
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pluggy
import pytest
from click.testing import CliRunner
from stellar_sdk import Keypair

from conftest import load_fixture
from streampay_incident.cli import main
from streampay_incident.cli import payouts as payouts_cli
from streampay_incident.hookspecs import hookimpl

DEMO = Path(str(resources.files("streampay_incident") / "demo_data" / "payouts.csv"))
PAYMENTS = [
    p
    for p in load_fixture("horizon/account_payments_pubnet_docs.json")["_embedded"]["records"]
    if p["type"] == "payment"
]
HEADER = "payout_id,settlement_id,destination,asset,amount,status,tx_hash,created_at\n"


def line(
    pid: str, settlement: str, payment: dict[str, Any], minute: int, status: str = "confirmed"
) -> str:
    asset = (
        "native"
        if payment["asset_type"] == "native"
        else f"{payment['asset_code']}:{payment['asset_issuer']}"
    )
    return (
        f"{pid},{settlement},{payment['to']},{asset},{payment['amount']},{status},"
        f"{payment['transaction_hash']},2026-11-27T{1 + minute // 60:02d}:{minute % 60:02d}:00Z\n"
    )


# The recorded payments include several 0.0000001 XLM payments to one account: eleven
# minutes apart they are not repeats.
CLEAN = HEADER + "".join(line(f"p{i}", f"s{i}", p, 11 * i) for i, p in enumerate(PAYMENTS))
# One tx hash recorded twice: a warning only.
WARNING = CLEAN + line("dup", "s-dup", PAYMENTS[0], 300).replace(",s-dup,", ",s0,")
# One settlement paid by two confirmed transactions: critical.
CRITICAL = CLEAN + line("again", "s0", PAYMENTS[1], 31).replace(
    PAYMENTS[1]["to"], PAYMENTS[0]["to"]
)


def run(tmp_path: Path, text: str, *args: str, name: str = "payouts.csv") -> Any:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return CliRunner().invoke(main, ["payouts", str(path), *args])


def test_exit_codes_and_fail_on(tmp_path: Path) -> None:
    assert run(tmp_path, CLEAN).exit_code == 0
    assert run(tmp_path, WARNING).exit_code == 1
    assert run(tmp_path, WARNING, "--fail-on", "critical").exit_code == 0
    assert run(tmp_path, CRITICAL, "--fail-on", "critical").exit_code == 1
    assert run(tmp_path, CRITICAL, "--fail-on", "warning").exit_code == 1


def test_json_report_contract(tmp_path: Path) -> None:
    result = run(tmp_path, CRITICAL, "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["schema"] == "streampay-incident.report/v1"
    assert doc["status"] == "fail"
    assert set(doc) >= {"schema", "status", "generated_at", "tool", "inputs", "findings"}
    assert "settlements" not in doc
    assert doc["tool"]["name"] == "streampay-incident"
    assert doc["inputs"]["records"] == len(PAYMENTS) + 1
    assert doc["inputs"]["repeat_window"] == "10m"
    [finding] = [f for f in doc["findings"] if f["code"] == "PAYOUT_DUPLICATE_SETTLEMENT"]
    assert set(finding) == {"code", "severity", "subject", "summary", "evidence", "runbook"}
    assert finding["severity"] == "critical"
    assert finding["subject"] == "s0"
    assert finding["evidence"]["payout_ids"] == ["again", "p0"]
    assert finding["runbook"] == "docs/runbooks/double-payout.md#payout-duplicate-settlement"
    assert all(isinstance(v, str) for v in finding["evidence"]["amount_at_risk"].values())


def test_clean_json_passes(tmp_path: Path) -> None:
    doc = json.loads(run(tmp_path, CLEAN, "--format", "json").stdout)
    assert (doc["status"], doc["findings"]) == ("pass", [])


def test_text_and_markdown(tmp_path: Path) -> None:
    text = run(tmp_path, CRITICAL).stdout
    assert text.startswith("FAIL streampay-incident payouts")
    assert "PAYOUT_DUPLICATE_SETTLEMENT" in text and "runbook: docs/runbooks/" in text
    markdown = run(tmp_path, WARNING, "--format", "markdown").stdout
    assert markdown.startswith("## streampay-incident payouts: **WARN**")
    assert "`PAYOUT_DUPLICATE_TX_RECORD`" in markdown
    assert "No findings." in run(tmp_path, CLEAN).stdout


def test_repeat_window_option(tmp_path: Path) -> None:
    repeat = (
        HEADER
        + line("a", "s1", PAYMENTS[0], 0)
        + line("b", "s2", PAYMENTS[0], 5).replace(PAYMENTS[0]["transaction_hash"], "ab" * 32)
    )
    assert run(tmp_path, repeat).exit_code == 1
    assert run(tmp_path, repeat, "--repeat-window", "90s").exit_code == 0
    doc = json.loads(run(tmp_path, repeat, "--repeat-window", "1h", "--format", "json").stdout)
    assert [f["code"] for f in doc["findings"]] == ["PAYOUT_SUSPECTED_REPEAT"]
    assert doc["inputs"]["repeat_window"] == "1h"
    bad = run(tmp_path, repeat, "--repeat-window", "10 minutes")
    assert bad.exit_code == 2
    assert "not a duration" in bad.stderr


def test_input_errors_exit_2_name_file_line_field_and_print_no_report(tmp_path: Path) -> None:
    bad = CLEAN.replace(",confirmed,", ",done,", 1) + "p-x,s-x,GABC,native,-1,confirmed,,nope\n"
    result = run(tmp_path, bad, "--format", "json")
    assert result.exit_code == 2
    assert result.stdout == ""
    path = str(tmp_path / "payouts.csv")
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"error: {path}:2: field 'status': 'done' is not one of pending|submitted|confirmed|failed"
    )
    assert any(f"{path}:{len(PAYMENTS) + 2}: field 'destination'" in x for x in lines)
    assert any(f"{path}:{len(PAYMENTS) + 2}: field 'amount'" in x for x in lines)
    assert any(f"{path}:{len(PAYMENTS) + 2}: field 'created_at'" in x for x in lines)
    assert "Traceback" not in result.stderr


def test_missing_file_and_jsonl(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["payouts", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2 and "file not found" in result.stderr
    records = [
        {
            "payout_id": "a",
            "settlement_id": "s",
            "destination": PAYMENTS[0]["to"],
            "asset": "XLM",
            "amount": 25,
            "status": "confirmed",
            "created_at": "2026-11-27T01:00:00Z",
        },
        {
            "payout_id": "b",
            "settlement_id": "s",
            "destination": PAYMENTS[0]["to"],
            "asset": "native",
            "amount": 25.0,
            "status": "submitted",
            "created_at": "2026-11-27T01:01:00Z",
        },
    ]
    jsonl = "".join(json.dumps(r) + "\n" for r in records)
    doc = json.loads(run(tmp_path, jsonl, "--format", "json", name="p.jsonl").stdout)
    assert [f["code"] for f in doc["findings"]] == ["PAYOUT_DUPLICATE_SETTLEMENT"]


def test_secret_seed_refused_and_never_echoed(tmp_path: Path) -> None:
    seed = Keypair.random().secret
    text = CLEAN.replace("2026-11-27T01:00:00Z", f"2026-11-27T01:00:00Z,{seed}", 1).replace(
        "created_at\n", "created_at,note\n"
    )
    text = "\n".join(x if x.count(",") == 8 else x + "," for x in text.splitlines()) + "\n"
    result = run(tmp_path, text, "--format", "json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert seed not in result.stderr and seed not in result.output
    assert "secret seed" in result.stderr
    assert "field 'note'" in result.stderr


class RaisingPlugin:
    @hookimpl
    def streampay_incident_register_payout_checks(self) -> list[Any]:
        def broken(payouts: Any, *, policy: Any) -> list[Any]:
            raise RuntimeError("boom")

        return [broken]


def test_a_raising_plugin_becomes_plugin_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = payouts_cli.registry.get_plugin_manager

    def with_plugin(*args: Any, **kwargs: Any) -> pluggy.PluginManager:
        pm = real(*args, **kwargs)
        pm.register(RaisingPlugin(), name="broken-plugin")
        return pm

    monkeypatch.setattr(payouts_cli.registry, "get_plugin_manager", with_plugin)
    result = run(tmp_path, CRITICAL, "--format", "json")
    doc = json.loads(result.stdout)
    codes = [f["code"] for f in doc["findings"]]
    assert "PLUGIN_ERROR" in codes and "PAYOUT_DUPLICATE_SETTLEMENT" in codes
    [error] = [f for f in doc["findings"] if f["code"] == "PLUGIN_ERROR"]
    assert error["subject"] == "broken-plugin" and error["severity"] == "warning"
    assert result.exit_code == 1


def test_plugins_can_be_disabled_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    real = payouts_cli.registry.get_plugin_manager

    def spy(settings: Any = None, **kwargs: Any) -> pluggy.PluginManager:
        seen.append(settings)
        return real(settings, **kwargs)

    monkeypatch.setattr(payouts_cli.registry, "get_plugin_manager", spy)
    monkeypatch.setenv("STREAMPAY_INCIDENT_DISABLE_PLUGINS", "all")
    assert run(tmp_path, CLEAN).exit_code == 0
    assert seen[0].disable_all is True


def test_demo_export_shows_all_five_rules(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["payouts", str(DEMO), "--format", "json"])
    doc = json.loads(result.stdout)
    assert result.exit_code == 1
    assert {f["code"] for f in doc["findings"]} == {
        "PAYOUT_DUPLICATE_TX_RECORD",
        "PAYOUT_DUPLICATE_SETTLEMENT",
        "PAYOUT_DUPLICATE_MEMO",
        "PAYOUT_IDEMPOTENCY_CONFLICT",
        "PAYOUT_SUSPECTED_REPEAT",
    }


def test_real_process_no_traceback_on_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "p,s,GABC,native,0,confirmed,,2026\n", encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from streampay_incident.cli import main; main()",
            "payouts",
            str(path),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert f"{path}:2: field 'amount'" in done.stderr


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_for_long_files_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long = tmp_path / "long.csv"
    long.write_text(
        CLEAN
        + "".join(
            line(f"x{i}", f"t{i}", PAYMENTS[0], 0).replace(
                PAYMENTS[0]["transaction_hash"], f"{i:064x}"
            )
            for i in range(3000)
        ),
        encoding="utf-8",
    )
    assert payouts_cli.estimated_lines(long) == pytest.approx(3000 + len(PAYMENTS) + 1, rel=0.2)
    with payouts_cli.progress_bar(long, label="x") as progress:
        assert progress is None  # stderr is not a terminal here
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(payouts_cli, "PROGRESS_MIN_LINES", 10)
    with payouts_cli.progress_bar(long, label="reading long.csv") as progress:
        assert progress is not None
        progress(100)
        progress(10**9)  # never past the estimate
    records = payouts_cli.load_payouts(long)
    assert len(records) == 3000 + len(PAYMENTS)
    assert "reading long.csv" in terminal.getvalue()
    monkeypatch.setattr(payouts_cli, "PROGRESS_MIN_LINES", 10**9)
    with payouts_cli.progress_bar(long, label="x") as progress:
        assert progress is None


def test_estimated_lines_of_odd_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert payouts_cli.estimated_lines(empty) == 0
    assert payouts_cli.estimated_lines(tmp_path / "missing.csv") == 0


def test_collector_paused_and_restored() -> None:
    assert gc.isenabled()
    with payouts_cli.collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with payouts_cli.collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_duration_param_passes_timedeltas_through() -> None:
    from datetime import timedelta

    assert payouts_cli.Duration().convert(timedelta(seconds=5), None, None) == timedelta(seconds=5)
