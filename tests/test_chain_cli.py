"""``streampay-incident chain``: the pinned command line, live on loopback and offline."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import FIXTURES, REPO
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
        "latest_ledger_close_time",
        "ledger_age_seconds",
        "ingest_lag",
        "duration_seconds",
    }
    # Each endpoint's latest ledger with its close time (RFC 3339) next to its age (issue 9 §5).
    assert [e["latest_ledger_close_time"] for e in doc["endpoints"]] == [
        rfc3339(HORIZON_CLOSED_AT)
    ] * 2
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
    for url in ("horizon.stellar.org", "http://[::1/", "http://127.0.0.1:99999", "https://"):
        result = run("--horizon", url, "--network", "public")
        assert result.exit_code == 2, url
        assert "is not an http(s) URL" in result.output
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


def test_snapshot_needs_nothing_live(tmp_path: Path) -> None:
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
    fixture = FIXTURES / "horizon" / "health" / "503_core_not_synced.json"
    assert health["body"] == fixture.read_text()
    assert doc["network_passphrase"] == TESTNET


def test_text_and_markdown_show_the_endpoint_table() -> None:
    args = ("--snapshot", str(DEMO), "--now", "2026-11-27T03:00:00Z")
    text = run(*args).output
    assert "FAIL streampay-incident chain" in text
    assert "Endpoints" in text
    line = "https://rpc.streampay.internal  ledger 1283415 closed 2026-11-27T02:58:55Z, age 1m05s"
    assert line in text
    assert "runbook: docs/runbooks/chain-outage.md#chain-rpc-unhealthy" in text
    markdown = run(*args, "--format", "markdown").output
    assert "| endpoint | kind | status |" in markdown
    assert (
        "| `https://horizon.streampay.internal` | horizon | fail | 1283415 | "
        "2026-11-27T02:58:55Z | 1m05s | 0 |" in markdown
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


# --- settlements with live lookups (--horizon/--rpc/--timeout) -------------------------------

SETTLEMENT_NOW = "2026-11-27T03:00:00Z"
DEMO_SETTLEMENTS = REPO / "src" / "streampay_incident" / "demo_data" / "settlements.jsonl"
RPC_SUCCESS = "32f7e5c3afd281fcaa99c0e990adf62f33e3bb341b1641a5c8b0b4a4dc55c487"
RPC_NOT_FOUND = "85f7aa8bfda425b98c0e53ffe56796ffd8865ec2fcc3ad71abf120801e2a14e5"
LOST = "ab" * 32  # never landed anywhere
ENVELOPE_SOURCE = "GC3IMK2BSHNZZ4WAC3AXQYA7HQTZKUUDJ7UYSA2HTNCIX5S5A5NVD3FD"
ENVELOPE_SEQUENCE = 1881766906298369


def settlement_rows(tmp_path: Path) -> Path:
    envelope = json.loads(DEMO_SETTLEMENTS.read_text().splitlines()[0])["envelope_xdr"]
    stuck = {
        "status": "processing",
        "created_at": "2026-11-27T02:30:00Z",
        "updated_at": "2026-11-27T02:40:00Z",
        "lease_until": "2026-11-27T03:30:00Z",
        "attempts": 1,
    }
    rows = [
        {"settlement_id": "landed", **stuck, "tx_hash": RPC_SUCCESS.upper()},
        {
            "settlement_id": "expired",
            **stuck,
            "tx_hash": LOST,
            "tx_max_time": "2026-11-27T02:45:00Z",
        },
        {
            "settlement_id": "outside-window",
            **stuck,
            "tx_hash": RPC_NOT_FOUND,
            "tx_max_time": "2026-11-27T02:45:00Z",
        },
        {"settlement_id": "seq-used", **stuck, "envelope_xdr": envelope},
    ]
    path = tmp_path / "settlements.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _testnet_horizon(**health: Any) -> dict[str, Any]:
    from loopback import fixture_reply, json_reply

    routes = horizon_routes(
        root={
            "network_passphrase": TESTNET,
            "history_latest_ledger_closed_at": "2026-11-27T02:59:55Z",
        },
        **health,
    )
    routes["GET /transactions/*"] = fixture_reply(
        "horizon/problems/derived/404_not_found.json", 404
    )
    # Horizon's account resource: only the field read here (no recorded account body exists).
    routes[f"GET /accounts/{ENVELOPE_SOURCE}"] = json_reply(
        {"id": ENVELOPE_SOURCE, "sequence": str(ENVELOPE_SEQUENCE + 1)}
    )
    return routes


def _testnet_rpc() -> dict[str, Any]:
    from loopback import fixture_reply

    def get_transaction(request: Any) -> Any:
        tx_hash = request.json()["params"]["hash"]
        if tx_hash == RPC_SUCCESS:
            return fixture_reply("rpc/getTransaction_SUCCESS_testnet_docs.json")
        # NOT_FOUND, retention window starting at the recorded oldestLedgerCloseTime...
        window = "1795747500" if tx_hash == RPC_NOT_FOUND else "1795700000"  # 02:45 / 01:33 UTC
        return fixture_reply(
            "rpc/getTransaction_NOT_FOUND_docs.json",
            overrides={"result": {"txHash": tx_hash, "oldestLedgerCloseTime": window}},
        )

    routes = rpc_routes(
        latest_ledger=HORIZON_LEDGER, close_time=datetime(2026, 11, 27, 2, 59, 55, tzinfo=UTC)
    )
    routes["RPC getTransaction"] = get_transaction
    return routes


def settlements_run(*args: str) -> Any:
    return CliRunner().invoke(main, ["settlements", *args], env=ENV_CLEAN)


def verdicts(result: Any) -> dict[str, tuple[str, bool, str]]:
    return {
        v["settlement_id"]: (v["state"], v["retry_safe"], v["retry_reason"])
        for v in json.loads(result.output)["settlements"]
    }


def test_settlements_live_lookup_decides_retry_safety(tmp_path: Path) -> None:
    path = settlement_rows(tmp_path)
    with LoopbackServer(_testnet_horizon()) as h, LoopbackServer(_testnet_rpc()) as r:
        result = settlements_run(
            str(path),
            "--horizon",
            h.url,
            "--rpc",
            r.url,
            "--network",
            "testnet",
            "--now",
            SETTLEMENT_NOW,
            "--timeout",
            "2",
            "--format",
            "json",
        )
        asked = {req.path for req in h.requests}
    assert result.exit_code == 1, result.output
    assert verdicts(result) == {
        "landed": ("settled", False, "tx_landed"),
        "expired": ("stuck", True, "tx_expired"),
        # Horizon's 404 covers its whole history, whatever the RPC's window.
        "outside-window": ("stuck", True, "tx_expired"),
        "seq-used": ("stuck", True, "sequence_consumed"),
    }
    doc = json.loads(result.output)
    assert doc["inputs"]["chain_status"] == "pass"
    assert doc["inputs"]["latest_ledger_close_time"] == "2026-11-27T02:59:55Z"
    assert doc["inputs"]["horizon"] == [h.url] and doc["inputs"]["rpc"] == [r.url]
    assert f"/transactions/{RPC_SUCCESS}" in asked
    assert f"/accounts/{ENVELOPE_SOURCE}" in asked


def test_settlements_rpc_not_found_before_its_window_is_unknown(tmp_path: Path) -> None:
    path = settlement_rows(tmp_path)
    with LoopbackServer(_testnet_rpc()) as r:
        result = settlements_run(
            str(path),
            "--rpc",
            r.url,
            "--network",
            "testnet",
            "--now",
            SETTLEMENT_NOW,
            "--format",
            "json",
        )
    assert verdicts(result) == {
        "landed": ("settled", False, "tx_landed"),
        # The window (from 01:33) covers the settlement's last change (02:40): not found.
        "expired": ("stuck", True, "tx_expired"),
        # The window starts at 02:45, after the last change: the NOT_FOUND proves nothing.
        "outside-window": ("stuck", False, "tx_status_unknown"),
        # No Horizon, no sequence number; the envelope sets no max time.
        "seq-used": ("stuck", False, "tx_may_still_land"),
    }


def test_settlements_never_retry_into_an_outage(tmp_path: Path) -> None:
    path = settlement_rows(tmp_path)
    sick = _testnet_horizon(health="horizon/health/503_core_not_synced.json")
    with LoopbackServer(sick) as h:
        result = settlements_run(
            str(path),
            "--horizon",
            h.url,
            "--network",
            "testnet",
            "--now",
            SETTLEMENT_NOW,
            "--format",
            "json",
        )
    doc = json.loads(result.output)
    assert doc["inputs"]["chain_status"] == "fail"
    blocked = {f["subject"] for f in doc["findings"] if f["code"] == "SETTLEMENT_CHAIN_BLOCKED"}
    # Issue 9 §3: the outage blocks the verdicts that would be retry-safe, beside their own
    # finding; "landed" (not found without RPC, no max time) may still land: not blocked.
    assert blocked == {"expired", "outside-window", "seq-used"}
    assert verdicts(result)["expired"] == ("stuck", False, "chain_unhealthy")
    assert verdicts(result)["landed"] == ("stuck", False, "tx_may_still_land")
    expired = sorted(f["code"] for f in doc["findings"] if f["subject"] == "expired")
    assert expired == ["SETTLEMENT_CHAIN_BLOCKED", "SETTLEMENT_STUCK_UNCONFIRMED"]


def test_settlements_lookups_that_hang_are_unknown_within_the_timeout(tmp_path: Path) -> None:
    path = settlement_rows(tmp_path)
    with LoopbackServer({"*": HANG}) as hung:
        started = time.monotonic()
        result = settlements_run(
            str(path),
            "--rpc",
            hung.url,
            "--network",
            "testnet",
            "--now",
            SETTLEMENT_NOW,
            "--timeout",
            "0.5",
            "--format",
            "json",
        )
        wall = time.monotonic() - started
    assert wall < 1.5
    doc = json.loads(result.output)
    assert doc["inputs"]["chain_status"] == "fail"
    assert {v["retry_safe"] for v in doc["settlements"]} == {False}


def test_settlements_live_lookup_needs_a_network_and_valid_urls(tmp_path: Path) -> None:
    path = settlement_rows(tmp_path)
    assert settlements_run(str(path), "--horizon", "http://127.0.0.1:9").exit_code == 2
    bad = settlements_run(str(path), "--rpc", "rpc.example", "--network", "testnet")
    assert bad.exit_code == 2


def test_one_url_given_as_both_kinds_is_said_and_graded_as_each() -> None:
    # A server that answers both Horizon's REST and RPC's JSON-RPC (a proxy), given twice.
    both = {
        **horizon_routes(),
        **rpc_routes(passphrase=PUBLIC, latest_ledger=HORIZON_LEDGER, close_time=HORIZON_CLOSED_AT),
    }
    with LoopbackServer(both) as server:
        args = ("--horizon", server.url, "--rpc", server.url, "--network", "public", "--now", NOW)
        doc = report(run(*args, "--format", "json"))
        text = run(*args).output
    note = f"{server.url} given as both --horizon and --rpc: graded once as each kind"
    assert doc["inputs"]["note"] == note
    assert f"  note: {note}" in text
    assert sorted((e["kind"], e["url"]) for e in doc["endpoints"]) == [
        ("horizon", server.url),
        ("rpc", server.url),
    ]
    assert doc["status"] == "pass"


def test_distinct_urls_get_no_note(healthy: Any) -> None:
    h, r = healthy
    doc = report(run("--horizon", h.url, "--rpc", r.url, "--network", "public", "--format", "json"))
    assert "note" not in doc["inputs"]
