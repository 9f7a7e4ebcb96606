"""Issue 9 §9 in the shell: ``summary.actions``, each verdict's action with its advice and
runbook in text and Markdown, ``payouts --now``, and the note on an old export."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from streampay_incident.checks.freshness import stale_export_note
from streampay_incident.checks.settlements import RETRY_REASONS
from streampay_incident.cli import main
from streampay_incident.model import SettlementVerdict
from streampay_incident.report import RETRY_ADVICE, verdict_advice
from test_settlements_cli import demo_args

DEMO = Path(str(resources.files("streampay_incident") / "demo_data"))
NOW = "2026-11-27T03:00:00Z"
CLOSE = "2026-11-27T02:59:56Z"
NOTE = "pass --now to judge an old export"


def run(args: Sequence[str]) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def demo_settlements(*extra: str) -> list[str]:
    """The demo export under its own network, judged at the clock unless ``extra`` says."""
    args = demo_args(*extra)
    at = args.index("--now")  # demo_args' own --now NOW: dropped, extra may give one
    return args[:at] + args[at + 2 :]


def test_summary_actions_count_every_verdict_but_none() -> None:
    doc = json.loads(
        run(
            demo_settlements("--now", NOW, "--latest-ledger-close-time", CLOSE, "--format", "json")
        ).stdout
    )
    actions = [v["action"] for v in doc["settlements"]]
    expected = {a: actions.count(a) for a in ("retry", "do_not_retry", "wait", "investigate")}
    assert doc["summary"] == {"actions": expected}
    assert sum(expected.values()) == len(actions) - actions.count("none")
    # stl-1002 landed but is recorded dead: the one do_not_retry of the demo.
    assert {v["settlement_id"]: v["action"] for v in doc["settlements"]}["stl-1002"] == (
        "do_not_retry"
    )


def test_text_shows_each_action_with_advice_and_runbook() -> None:
    out = run(demo_settlements("--now", NOW, "--latest-ledger-close-time", CLOSE)).stdout
    table = out[out.index("Settlements (") :]
    assert table.startswith("Settlements (retry ")
    lines = table.splitlines()
    row = next(i for i, line in enumerate(lines) if line.strip().startswith("stl-1002"))
    assert lines[row].split()[-2:] == ["tx_landed", "do_not_retry"]
    assert lines[row + 1].strip() == "DO NOT RETRY: the transaction landed; record it as paid"
    assert lines[row + 2].strip() == (
        "runbook: docs/runbooks/stuck-settlement.md#settlement-confirmed-not-recorded"
    )
    settled = next(i for i, line in enumerate(lines) if line.strip().startswith("stl-1001"))
    assert lines[settled].split()[-1] == "none"
    assert lines[settled + 1].strip() == "nothing to do: settled"
    assert lines[settled + 2].strip().endswith("stuck-settlement.md#decision-tree")


def test_markdown_shows_actions_and_runbook_links() -> None:
    out = run(demo_settlements("--now", NOW, "--format", "markdown")).stdout
    assert "Actions: retry " in out
    assert "| settlement | state | retry safe | reason | action | advice |" in out
    row = next(line for line in out.splitlines() if line.startswith("| `stl-1003`"))
    assert "| retry | retry is safe: the transaction failed on chain" in row
    assert "([runbook](docs/runbooks/stuck-settlement.md#settlement-tx-failed))" in row


def test_every_retry_reason_has_advice() -> None:
    assert set(RETRY_REASONS) <= set(RETRY_ADVICE)
    odd = SettlementVerdict("s", "stuck", False, "brand_new_reason")
    assert verdict_advice(odd) == "brand_new_reason"


def test_payouts_now_stamps_the_report() -> None:
    result = run(["payouts", str(DEMO / "payouts.csv"), "--now", NOW, "--format", "json"])
    doc = json.loads(result.stdout)
    assert doc["generated_at"] == NOW
    assert doc["inputs"]["now"] == NOW
    assert "notes" not in doc


@pytest.mark.parametrize(
    "args",
    [
        ["payouts", str(DEMO / "payouts.csv")],
        demo_settlements(),
    ],
)
def test_an_old_export_without_now_gets_the_note(args: list[str]) -> None:
    # The demo exports were taken on 2026-11-27; the clock is later than that by days.
    text = run(args).stdout
    assert NOTE in text.split("\n\n")[0]  # among the inputs, before the findings
    doc = json.loads(run([*args, "--format", "json"]).stdout)
    assert NOTE in doc["notes"][0]
    markdown = run([*args, "--format", "markdown"]).stdout
    assert "> note: the newest record (" in markdown
    stamped = run([*args, "--now", NOW]).stdout
    assert NOTE not in stamped


def test_stale_export_note_boundaries() -> None:
    newest = datetime(2026, 11, 27, 3, tzinfo=UTC)
    older = newest - timedelta(days=3)
    assert stale_export_note([], now=newest) is None
    assert stale_export_note([older, newest], now=newest + timedelta(hours=24)) is None
    note = stale_export_note([older, newest], now=newest + timedelta(hours=24, seconds=1))
    assert note is not None
    assert note.startswith("the newest record (2026-11-27T03:00:00Z) is over 24 h older")
    assert NOTE in note
