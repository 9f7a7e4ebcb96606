from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from streampay_incident.cli import demo as demo_mod
from streampay_incident.cli import main


def test_demo_all_scenarios_read_like_triage() -> None:
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    out = result.output
    for title in ("Stuck settlement", "Suspected double payout", "Stellar or Horizon outage"):
        assert f"=== {title}" in out
    # The stuck-settlement verdicts an engineer acts on.
    assert "stl-1002     DO NOT RETRY: the transaction landed" in out
    assert "stl-1004     retry is safe: it was never submitted" in out
    assert "stl-1006     retry is safe: a ledger closed after the transaction's max time" in out
    assert "stl-1007     DO NOT RETRY: the transaction can still land" in out
    assert "docs/runbooks/stuck-settlement.md#settlement-confirmed-not-recorded" in out
    # The double payouts planted in the bundled export.
    for code in (
        "PAYOUT_DUPLICATE_SETTLEMENT stl-2001",
        "PAYOUT_DUPLICATE_MEMO id:4242",
        "PAYOUT_IDEMPOTENCY_CONFLICT idem-2004",
        "PAYOUT_SUSPECTED_REPEAT",
        "PAYOUT_DUPLICATE_TX_RECORD",
    ):
        assert code in out
    assert "CHAIN_RPC_UNHEALTHY https://rpc.streampay.internal" in out
    assert "second engineer" in out


@pytest.mark.parametrize("scenario", ["stuck-settlement", "double-payout", "chain-outage"])
def test_each_scenario_alone(scenario: str) -> None:
    result = CliRunner().invoke(main, ["demo", "--scenario", scenario])
    assert result.exit_code == 0, result.output
    assert result.output.count("=== ") == 1


def test_write_data_copies_the_bundled_files(tmp_path: Path) -> None:
    target = tmp_path / "drill"
    result = CliRunner().invoke(main, ["demo", "--write-data", str(target)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in target.iterdir()) == sorted(demo_mod.DATA_FILES)
    assert json.loads((target / "chain-outage.json").read_text(encoding="utf-8"))
    # The copied data runs through the real command like the bundled data does.
    again = CliRunner().invoke(main, ["payouts", str(target / "payouts.csv"), "--format", "json"])
    assert again.exit_code == 1 and json.loads(again.output)["status"] == "fail"


def test_a_failing_scenario_command_stops_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = demo_mod.Scenario(
        "double-payout",
        "Broken",
        "story",
        ("payouts", "{data}/nope.csv"),
        "docs/runbooks/double-payout.md",
    )
    monkeypatch.setattr(demo_mod, "SCENARIOS", (broken,))
    result = CliRunner().invoke(main, ["demo", "--scenario", "double-payout"])
    assert result.exit_code == 2
    assert "What to do" not in result.output


def test_advice_for_a_clean_report() -> None:
    scenario = demo_mod.SCENARIOS[0]
    assert demo_mod._advice(scenario, {"findings": []}) == [
        f"  nothing to do; runbook: {scenario.runbook}"
    ]
    lines = demo_mod._advice(
        scenario,
        {
            "settlements": [{"settlement_id": "s", "retry_reason": "brand_new_reason"}],
            "findings": [],
        },
    )
    assert "brand_new_reason" in lines[0]


def test_every_retry_reason_has_advice() -> None:
    from streampay_incident.checks.settlements import RETRY_REASONS

    assert set(RETRY_REASONS) <= set(demo_mod.RETRY_ADVICE)


def test_write_data_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "drill"
    assert CliRunner().invoke(main, ["demo", "--write-data", str(target)]).exit_code == 0
    (target / "payouts.csv").write_text("edited by the facilitator\n", encoding="utf-8")
    (target / "settlements.jsonl").unlink()
    refused = CliRunner().invoke(main, ["demo", "--write-data", str(target)])
    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert f"error: {target / 'payouts.csv'} exists; pass --force to overwrite it" in refused.stderr
    # Nothing was written: not the edited file, not the missing one.
    assert (target / "payouts.csv").read_text(encoding="utf-8") == "edited by the facilitator\n"
    assert not (target / "settlements.jsonl").exists()
    forced = CliRunner().invoke(main, ["demo", "--write-data", str(target), "--force"])
    assert forced.exit_code == 0
    with demo_mod.demo_data_dir() as data:
        for name in demo_mod.DATA_FILES:
            assert (target / name).read_bytes() == (data / name).read_bytes(), name


def test_write_data_brings_the_provenance_readme_and_the_escrow_files(tmp_path: Path) -> None:
    target = tmp_path / "drill"
    assert CliRunner().invoke(main, ["demo", "--write-data", str(target)]).exit_code == 0
    readme = (target / "README.md").read_text(encoding="utf-8")
    assert "## Attribution" in readme and demo_mod.DEMO_ESCROW in readme
    for name in demo_mod.DATA_FILES[:-1]:
        assert f"`{name}`" in readme, f"README.md does not say where {name} comes from"
    result = CliRunner().invoke(
        main,
        [
            "payouts",
            str(target / "payouts.csv"),
            "--escrow",
            demo_mod.DEMO_ESCROW,
            "--chain-payments",
            str(target / "chain-payments.json"),
            "--format",
            "json",
        ],
    )
    doc = json.loads(result.stdout)
    # p-070 is the escrow's one recorded outflow: reconciled, so no ESCROW_ finding but the
    # note that the 2026 rows are outside the recorded page's window.
    assert [f["code"] for f in doc["findings"] if f["code"].startswith("ESCROW_")] == [
        "ESCROW_OUTSIDE_WINDOW"
    ]
    outside = next(f for f in doc["findings"] if f["code"] == "ESCROW_OUTSIDE_WINDOW")
    assert "p-070" not in outside["evidence"]["payout_ids"]
