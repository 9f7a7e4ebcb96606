"""``streampay-incident chain``: the pinned command line, live on loopback and offline."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import REPO
from loopback import (
    HANG,
    HORIZON_CLOSED_AT,
    HORIZON_LEDGER,
    LoopbackServer,
    ServerPool,
    horizon_routes,
    rfc3339,
    rpc_routes,
)
from streampay_incident.cli import main
from streampay_incident.stellar.networks import PUBLIC, TESTNET

pytestmark = pytest.mark.network

NOW = rfc3339(HORIZON_CLOSED_AT.replace(second=24))  # 5 s after the recorded close
DEMO = REPO / "src" / "streampay_incident" / "demo_data" / "chain-outage.json"
ENV_CLEAN = {
    "STREAMPAY_INCIDENT_HORIZON_URLS": None,
    "STREAMPAY_INCIDENT_RPC_URLS": None,
    "STREAMPAY_INCIDENT_NETWORK": None,
    "STREAMPAY_INCIDENT_DISABLE_PLUGINS": "all",
}


def run(*args: str, env: dict[str, str | None] | None = None) -> Any:
    runner = CliRunner()
    return runner.invoke(main, ["chain", *args], env={**ENV_CLEAN, **(env or {})})


def report(result: Any) -> dict[str, Any]:
    return json.loads(result.output)


@pytest.fixture
def healthy() -> Any:
    rpc = rpc_routes(passphrase=PUBLIC, latest_ledger=HORIZON_LEDGER, close_time=HORIZON_CLOSED_AT)
    with LoopbackServer(horizon_routes()) as h, LoopbackServer(rpc) as r:
        yield h, r


def test_healthy_endpoints_pass_with_the_standard_report(healthy: Any) -> None:
    h, r = healthy
    result = run(
        "--horizon", h.url, "--rpc", r.url, "--network", "public", "--now", NOW, "--format", "json"
    )
    assert result.exit_code == 0, result.output
    doc = report(result)
    assert doc["schema"] == "streampay-incident.report/v1"
    assert doc["status"] == "pass"
    assert doc["generated_at"] == NOW
    assert doc["findings"] == []
    assert doc["inputs"] == {
        "network": "public",
        "horizon": [h.url],
        "rpc": [r.url],
        "timeout_seconds": 5.0,
    }
    assert [
        (e["url"], e["kind"], e["status"], e["latest_ledger"], e["ledger_age_seconds"])
        for e in doc["endpoints"]
    ] == [
        (h.url, "horizon", "pass", HORIZON_LEDGER, 5.0),
        (r.url, "rpc", "pass", HORIZON_LEDGER, 5.0),
    ]
    assert set(doc["endpoints"][0]) == {
        "url",
        "kind",
        "status",
        "latest_ledger",
        "ledger_age_seconds",
        "ingest_lag",
        "duration_seconds",
    }
    assert doc["endpoints"][0]["ingest_lag"] == 0 and doc["endpoints"][1]["ingest_lag"] is None


def test_endpoints_and_network_from_the_environment(healthy: Any) -> None:
    h, r = healthy
    env = {
        "STREAMPAY_INCIDENT_HORIZON_URLS": f" {h.url} ,, {h.url}",
        "STREAMPAY_INCIDENT_RPC_URLS": r.url,
        "STREAMPAY_INCIDENT_NETWORK": "testnet",
    }
    result = run("--now", NOW, "--format", "json", env=env)
    doc = report(result)
    assert doc["inputs"]["horizon"] == [h.url]
    assert doc["inputs"]["network"] == "testnet"
    assert {f["code"] for f in doc["findings"]} == {"CHAIN_NETWORK_MISMATCH"}
    assert result.exit_code == 1
    # Flags win over the environment.
    flagged = run("--horizon", h.url, "--network", "public", "--now", NOW, env=env)
    assert flagged.exit_code == 0, flagged.output


def test_without_endpoint_or_network_exit_2() -> None:
    no_endpoint = run("--network", "public")
    assert no_endpoint.exit_code == 2
    assert "no endpoint" in no_endpoint.output
    no_network = run("--horizon", "http://127.0.0.1:9")
    assert no_network.exit_code == 2
    assert "no network" in no_network.output


def test_bad_urls_and_seed_shaped_values_exit_2() -> None:
    assert run("--horizon", "horizon.stellar.org", "--network", "public").exit_code == 2
    from stellar_sdk import Keypair

    seed = Keypair.random().secret
    result = run("--rpc", f"https://rpc.example/{seed}", "--network", "public")
    assert result.exit_code == 2
    assert seed not in result.output
    assert "secret seed" in result.output


def test_fail_on_and_the_chain_status_rule(healthy: Any) -> None:
    h, _ = healthy
    with LoopbackServer({"*": HANG}) as hung:
        args = (
            "--horizon",
            hung.url,
            "--horizon",
            h.url,
            "--network",
            "public",
            "--now",
            NOW,
            "--timeout",
            "0.5",
            "--format",
            "json",
        )
        started = time.monotonic()
        warned = run(*args)
        assert time.monotonic() - started < 1.5
        assert report(warned)["status"] == "warn"  # one Horizon of two still answers
        assert warned.exit_code == 1
        assert run(*args, "--fail-on", "critical").exit_code == 0
        failed = run(
            "--horizon",
            hung.url,
            "--network",
            "public",
            "--timeout",
            "0.5",
            "--fail-on",
            "critical",
            "--format",
            "json",
        )
        assert report(failed)["status"] == "fail"
        assert failed.exit_code == 1


def test_twenty_hung_endpoints_with_one_second_timeout() -> None:
    with ServerPool.of(20, {"*": HANG}) as pool:
        args = [arg for url in pool.urls for arg in ("--horizon", url)]
        started = time.monotonic()
        result = run(*args, "--network", "public", "--timeout", "1", "--format", "json")
        wall = time.monotonic() - started
    assert wall < 2.0, wall
    doc = report(result)
    assert doc["status"] == "fail"
    assert len(doc["findings"]) == 20


def test_record_then_snapshot_gives_the_same_report(healthy: Any, tmp_path: Path) -> None:
    h, r = healthy
    recording = tmp_path / "incident.json"
    with LoopbackServer(horizon_routes(health="horizon/health/503_core_down.json")) as sick:
        live = run(
            "--horizon",
            h.url,
            "--horizon",
            sick.url,
            "--rpc",
            r.url,
            "--network",
            "public",
            "--timeout",
            "2",
            "--record",
            str(recording),
            "--format",
            "json",
        )
    assert live.exit_code == 1, live.output
    doc = json.loads(recording.read_text())
    assert doc["schema"] == "streampay-incident.chain-recording/v1"
    replay = run("--snapshot", str(recording), "--now", doc["now"], "--format", "json")
    assert replay.exit_code == 1
    assert report(replay) == report(live)
    assert {f["code"] for f in report(live)["findings"]} >= {"CHAIN_HORIZON_UNHEALTHY"}
    # An explicit --network regrades the same recording against another network.
    other = run(
        "--snapshot",
        str(recording),
        "--now",
        doc["now"],
        "--network",
        "testnet",
        "--format",
        "json",
    )
    assert {f["code"] for f in report(other)["findings"]} >= {"CHAIN_NETWORK_MISMATCH"}


def test_snapshot_needs_now_and_nothing_live(tmp_path: Path) -> None:
    assert run("--snapshot", str(DEMO)).exit_code == 2
    assert run("--snapshot", str(DEMO), "--now", NOW, "--horizon", "http://x").exit_code == 2
    assert (
        run("--snapshot", str(DEMO), "--now", NOW, "--record", str(tmp_path / "r.json")).exit_code
        == 2
    )
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "streampay-incident.chain-recording/v1"}')
    result = run("--snapshot", str(broken), "--now", NOW)
    assert result.exit_code == 2
    assert "broken.json" in result.output and "Traceback" not in result.output


def test_snapshot_ignores_endpoint_environment(tmp_path: Path) -> None:
    env = {
        "STREAMPAY_INCIDENT_HORIZON_URLS": "http://127.0.0.1:9",
        "STREAMPAY_INCIDENT_NETWORK": "public",
    }
    result = run(
        "--snapshot", str(DEMO), "--now", "2026-11-27T03:00:00Z", "--format", "json", env=env
    )
    assert report(result)["inputs"]["network"] == "testnet"
    assert report(result)["inputs"]["horizon"] == ["https://horizon.streampay.internal"]


def test_record_to_an_unwritable_place_exit_2(healthy: Any, tmp_path: Path) -> None:
    h, _ = healthy
    target = tmp_path / "gone" / "r.json"
    result = run("--horizon", h.url, "--network", "public", "--record", str(target))
    assert result.exit_code == 2
    assert "cannot write the recording" in result.output


def test_bundled_chain_outage_replays_to_the_outage() -> None:
    result = run(
        "--snapshot",
        str(DEMO),
        "--now",
        "2026-11-27T03:00:00Z",
        "--network",
        "testnet",
        "--format",
        "json",
    )
    assert result.exit_code == 1
    doc = report(result)
    assert doc["status"] == "fail"
    horizon, rpc = "https://horizon.streampay.internal", "https://rpc.streampay.internal"
    assert sorted((f["code"], f["subject"], f["severity"]) for f in doc["findings"]) == [
        ("CHAIN_HORIZON_UNHEALTHY", horizon, "critical"),
        ("CHAIN_LEDGER_STALE", horizon, "critical"),
        ("CHAIN_LEDGER_STALE", rpc, "critical"),
        ("CHAIN_RPC_UNHEALTHY", rpc, "critical"),
    ]
    assert [e["ledger_age_seconds"] for e in doc["endpoints"]] == [65.0, 65.0]
    assert doc["inputs"]["network"] == "testnet"


def test_bundled_recording_is_exactly_what_its_script_builds() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import make_chain_outage_recording as script
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    assert DEMO.read_text(encoding="utf-8") == script.render()
    doc = json.loads(DEMO.read_text())
    health = next(x for x in doc["exchanges"] if x["call"] == "health")
    fixture = (
        REPO.parent
        / "shared"
        / "fixtures"
        / "stellar"
        / "horizon"
        / "health"
        / "503_core_not_synced.json"
    )
    if fixture.exists():
        assert health["body"] == fixture.read_text()
    assert doc["network_passphrase"] == TESTNET


def test_text_and_markdown_show_the_endpoint_table() -> None:
    args = ("--snapshot", str(DEMO), "--now", "2026-11-27T03:00:00Z")
    text = run(*args).output
    assert "FAIL streampay-incident chain" in text
    assert "Endpoints" in text
    assert "https://rpc.streampay.internal  ledger 1283415, age 65s" in text
    assert "runbook: docs/runbooks/chain-outage.md#chain-rpc-unhealthy" in text
    markdown = run(*args, "--format", "markdown").output
    assert "| endpoint | kind | status |" in markdown
    assert (
        "| `https://horizon.streampay.internal` | horizon | fail | 1283415 | 65 | 0 |" in markdown
    )


def test_text_table_for_endpoints_without_figures() -> None:
    with LoopbackServer({"*": HANG}) as hung:
        result = run("--rpc", hung.url, "--network", "public", "--timeout", "0.3")
    assert "FAIL  rpc      " in result.output
    assert "ledger -, age -, ingest lag -" in result.output
    assert result.exit_code == 1


def test_report_log_event(healthy: Any, caplog: pytest.LogCaptureFixture) -> None:
    h, _ = healthy
    import logging

    with caplog.at_level(logging.INFO, logger="streampay_incident"):
        run("--horizon", h.url, "--network", "public", "--now", NOW)
    messages = [rec.getMessage() for rec in caplog.records]
    assert "event=report command=chain status=pass findings=0" in messages
    assert any(m.startswith("event=probe_result") and h.url in m for m in messages)
