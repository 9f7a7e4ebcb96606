"""Every file argument accepts a stream: ``-``, ``/dev/stdin``, a FIFO, ``<(...)``.

A stream is read once from start to end and never seeked or reopened (``payouts``
on a FIFO used to block forever: it opened the file twice). The FIFO and
process-substitution cases run the real command in a child process with a
writer attached, bounded by a timeout so a regression fails instead of hanging.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from streampay_incident.cli import main
from streampay_incident.cli.payouts import estimated_lines
from streampay_incident.io.rows import is_stream

DEMO = Path(str(resources.files("streampay_incident") / "demo_data"))
NOW = "2026-11-27T03:00:00Z"
ESCROW = "GBVFTZL5HIPT4PFQVTZVIWR77V7LWYCXU4CLYWWHHOEXB64XPG5LDMTU"
ENV = {**os.environ, "STREAMPAY_INCIDENT_DISABLE_PLUGINS": "all"}
ENV.pop("STREAMPAY_INCIDENT_DEBUG", None)
CLI = [sys.executable, "-c", "from streampay_incident.cli import main; main()"]
# Seconds a child may take before the test calls it hung.
DEADLINE = 60

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")


def demo(name: str) -> str:
    return (DEMO / name).read_text(encoding="utf-8")


PAYOUT_ROWS = len(demo("payouts.csv").splitlines()) - 1


def run_cli(args: Sequence[str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(
        main,
        list(args),
        input=stdin,
        env={"STREAMPAY_INCIDENT_DISABLE_PLUGINS": "all"},
        catch_exceptions=False,
    )


def child(args: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, text=True, env=ENV, timeout=DEADLINE
    )


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[tuple[Path, list[threading.Thread]]]:
    """A FIFO and the writer threads feeding it (each writes once, then closes)."""
    path = tmp_path / "input.fifo"
    os.mkfifo(path)
    writers: list[threading.Thread] = []
    yield path, writers
    for writer in writers:
        if writer.is_alive():  # the command never opened it: unblock the writer
            with open(path, "rb"):
                pass
        writer.join(DEADLINE)


def feed(fifo: tuple[Path, list[threading.Thread]], text: str) -> Path:
    path, writers = fifo

    def write() -> None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writers.append(writer)
    return path


# -- the reference: the same command on regular files -----------------------------------------


def expected(args: Sequence[str]) -> Result:
    return run_cli(args)


PAYOUTS_ARGS = ["--format", "json"]
SETTLEMENTS_ARGS = ["--network", "testnet", "--now", NOW, "--format", "json"]


def strip_inputs(text: str) -> dict[str, object]:
    """A JSON report without the input names (a stream is named otherwise) and the clock."""
    doc = json.loads(text)
    doc["inputs"] = {k: v for k, v in doc["inputs"].items() if k not in ("payouts", "settlements")}
    doc.pop("generated_at")
    return doc


# -- ``-`` and /dev/stdin -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["payouts.csv"])
def test_payouts_from_standard_input(name: str) -> None:
    reference = expected(["payouts", str(DEMO / name), *PAYOUTS_ARGS])
    result = run_cli(["payouts", "-", *PAYOUTS_ARGS], stdin=demo(name))
    assert result.exit_code == reference.exit_code == 1
    assert strip_inputs(result.stdout) == strip_inputs(reference.stdout)


def test_payouts_json_lines_and_bad_rows_from_standard_input() -> None:
    jsonl = '{"payout_id": "p-1"}\n'
    result = run_cli(["payouts", "-"], stdin=jsonl)
    assert result.exit_code == 2
    assert "<stdin>:1: field 'settlement_id': missing required field" in result.stderr


def test_settlements_and_transactions_from_standard_input() -> None:
    reference = expected(
        [
            "settlements",
            str(DEMO / "settlements.jsonl"),
            "--transactions",
            str(DEMO / "transactions.json"),
            *SETTLEMENTS_ARGS,
        ]
    )
    from_stdin = run_cli(
        [
            "settlements",
            str(DEMO / "settlements.jsonl"),
            "--transactions",
            "-",
            *SETTLEMENTS_ARGS,
        ],
        stdin=demo("transactions.json"),
    )
    assert from_stdin.exit_code == reference.exit_code
    assert strip_inputs(from_stdin.stdout)["findings"] == strip_inputs(reference.stdout)["findings"]


def test_standard_input_is_read_once_so_two_inputs_cannot_both_be_dash() -> None:
    both = run_cli(["settlements", "-", "--transactions", "-", "--now", NOW], stdin="")
    assert both.exit_code == 2
    assert "standard input can be read once" in both.stderr
    both = run_cli(
        ["payouts", "-", "--escrow", ESCROW, "--chain-payments", "-"], stdin=demo("payouts.csv")
    )
    assert both.exit_code == 2
    assert "standard input can be read once" in both.stderr


def test_snapshot_from_standard_input() -> None:
    args = ["--now", NOW, "--format", "json"]
    reference = expected(["chain", "--snapshot", str(DEMO / "chain-outage.json"), *args])
    result = run_cli(["chain", "--snapshot", "-", *args], stdin=demo("chain-outage.json"))
    assert result.exit_code == reference.exit_code
    assert json.loads(result.stdout)["findings"] == json.loads(reference.stdout)["findings"]


def test_chain_payments_from_standard_input(tmp_path: Path) -> None:
    result = run_cli(
        ["payouts", str(DEMO / "payouts.csv"), "--escrow", ESCROW, "--chain-payments", "-"],
        stdin='{"_embedded": {"records": []}}',
    )
    assert result.exit_code == 1, result.stderr
    assert "chain_payments: 0" in result.stdout


def test_dev_stdin_in_a_real_process() -> None:
    result = child(["payouts", "/dev/stdin", *PAYOUTS_ARGS], stdin=demo("payouts.csv"))
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["inputs"]["records"] == PAYOUT_ROWS
    result = child(
        ["settlements", "/dev/stdin", *SETTLEMENTS_ARGS], stdin=demo("settlements.jsonl")
    )
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["inputs"]["records"] == len(
        demo("settlements.jsonl").splitlines()
    )


# -- FIFOs ----------------------------------------------------------------------------------


@needs_fifo
@pytest.mark.parametrize("name", ["payouts.csv"])
def test_payouts_on_a_fifo_with_a_writer(
    fifo: tuple[Path, list[threading.Thread]], name: str
) -> None:
    path = feed(fifo, demo(name))
    result = child(["payouts", str(path), *PAYOUTS_ARGS])
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["inputs"]["records"] == PAYOUT_ROWS


@needs_fifo
def test_payouts_on_a_fifo_holding_json_lines_with_a_quoted_csv_fallback(
    fifo: tuple[Path, list[threading.Thread]],
) -> None:
    # A quote sends the fast CSV reader to the reference reader: still one read of the FIFO.
    text = demo("payouts.csv").replace("p-001,", '"p-001",', 1)
    path = feed(fifo, text)
    result = child(["payouts", str(path), *PAYOUTS_ARGS])
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["inputs"]["records"] == PAYOUT_ROWS


@needs_fifo
def test_settlements_transactions_chain_payments_and_snapshots_on_fifos(
    tmp_path: Path, fifo: tuple[Path, list[threading.Thread]]
) -> None:
    path = feed(fifo, demo("settlements.jsonl"))
    result = child(["settlements", str(path), *SETTLEMENTS_ARGS])
    assert result.returncode == 1, result.stderr

    path = feed(fifo, demo("transactions.json"))
    result = child(
        [
            "settlements",
            str(DEMO / "settlements.jsonl"),
            "--transactions",
            str(path),
            *SETTLEMENTS_ARGS,
        ]
    )
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["inputs"]["transaction_records"] > 0

    path = feed(fifo, demo("chain-outage.json"))
    result = child(["chain", "--snapshot", str(path), "--now", NOW])
    assert result.returncode == 1, result.stderr
    assert "CHAIN_" in result.stdout

    path = feed(fifo, '{"_embedded": {"records": []}}')
    result = child(
        ["payouts", str(DEMO / "payouts.csv"), "--escrow", ESCROW, "--chain-payments", str(path)]
    )
    assert result.returncode == 1, result.stderr
    assert "chain_payments: 0" in result.stdout


@needs_bash
def test_bash_process_substitution() -> None:
    cli = " ".join(f"'{part}'" for part in CLI)
    script = (
        f"{cli} payouts <(cat '{DEMO / 'payouts.csv'}') --format json && exit 99; "
        f"{cli} settlements <(cat '{DEMO / 'settlements.jsonl'}') --network testnet --now {NOW}"
        f" --transactions <(cat '{DEMO / 'transactions.json'}') --format json"
    )
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=ENV, timeout=DEADLINE
    )
    assert result.returncode == 1, result.stderr
    reports = [json.loads(part) for part in result.stdout.replace("}\n{", "}\n\x00{").split("\x00")]
    assert reports[0]["inputs"]["records"] == PAYOUT_ROWS
    assert reports[1]["inputs"]["transaction_records"] > 0


def test_streams_are_not_measured_for_the_progress_bar(tmp_path: Path) -> None:
    assert is_stream("-") and is_stream("/dev/stdin")
    assert not is_stream(DEMO / "payouts.csv")
    assert not is_stream(tmp_path / "missing.csv")  # opening it reports the problem
    assert estimated_lines(Path("-")) == 0
