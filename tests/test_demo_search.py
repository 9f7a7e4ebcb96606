"""Issue 13: the demo's submission-search scenario, a processing row with no hash found landed."""

from __future__ import annotations

import json

from click.testing import CliRunner

from streampay_incident.cli import demo as demo_mod
from streampay_incident.cli import main


def test_unhashed_settlement_scenario_finds_the_landed_payment() -> None:
    result = CliRunner().invoke(main, ["demo", "--scenario", "unhashed-settlement"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "=== Stuck settlement with no tx hash" in out
    assert "stl-3100     DO NOT RETRY: the transaction landed" in out
    assert "submission search: matching transfer in tx" in out
    assert "stl-3101     DO NOT RETRY: it may have been submitted" in out
    assert "no matching transfer in ledgers 1163000-1283400 (complete)" in out


def test_the_scenario_data_reads_the_same_as_json() -> None:
    with demo_mod.demo_data_dir() as data:
        args = [a.replace("{data}", str(data)) for a in demo_mod.SCENARIOS[-1].args]
        result = CliRunner().invoke(main, [*args, "--format", "json"])
    doc = json.loads(result.output)
    assert doc["search"]["summary"]["found"] == 1
    assert doc["search"]["summary"]["ambiguous"] == 0  # one transfer read for two pairs
    assert doc["search"]["settlements"]["stl-3100"]["outcome"] == "found"
    assert doc["search"]["settlements"]["stl-3101"]["complete"] is True
    assert "search_ambiguous" in demo_mod.RETRY_ADVICE
