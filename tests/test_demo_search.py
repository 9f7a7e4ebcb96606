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


def test_the_search_takes_what_was_paid_from_the_payouts_by_event_key(tmp_path) -> None:
    """A row that does not say what it paid (no destination, asset, amount) is searched with
    its payout row, matched by the settlement's event key (StreamPay's outbox view)."""
    with demo_mod.demo_data_dir() as data:
        rows = [json.loads(line) for line in (data / "unhashed-settlements.jsonl").open()]
        events = (data / "search-events.json").read_text()
    bare = dict(rows[0])
    paid = {k: bare.pop(k) for k in ("destination", "asset", "amount")}
    bare["event_key"] = "settlement:stream-3100:53009900"
    (tmp_path / "s.jsonl").write_text(json.dumps(bare) + "\n")
    (tmp_path / "events.json").write_text(events)
    (tmp_path / "payouts.csv").write_text(
        "payout_id,settlement_id,destination,asset,amount,status,created_at\n"
        f"p-3100,{bare['event_key']},{paid['destination']},{paid['asset']},{paid['amount']},"
        f"pending,{bare['created_at']}\n"
    )
    base = ["settlements", str(tmp_path / "s.jsonl"), "--search-payments"]
    base += [str(tmp_path / "events.json"), "--network", "testnet", "--now", "2026-11-27T03:00:00Z"]
    alone = json.loads(CliRunner().invoke(main, [*base, "--format", "json"]).output)
    assert alone["search"]["summary"]["found"] == 0  # nothing to search with
    result = CliRunner().invoke(
        main, [*base, "--payouts", str(tmp_path / "payouts.csv"), "--format", "json"]
    )
    doc = json.loads(result.output)
    assert doc["search"]["settlements"]["stl-3100"]["outcome"] == "found"
    (verdict,) = doc["settlements"]
    assert verdict["retry_reason"] == "tx_landed" and verdict["retry_safe"] is False
