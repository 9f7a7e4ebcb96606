"""Issue 9 §5: the latest close time from evidence, not from arithmetic.

``settlements --chain-snapshot`` (a ``chain --record`` file) takes the chain
status and the close time of the freshest endpoint on the expected network
that is not critical; ``chain --snapshot`` grades at the recording's own time
unless ``--now`` is given, and refuses a ``--now`` before the recording started.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from conftest import REPO
from loopback import HORIZON_LEDGER, LoopbackServer, horizon_routes, rfc3339, rpc_routes
from streampay_incident.checks.chain import ChainGrade, EndpointGrade, evidence_close_time
from streampay_incident.cli import main
from streampay_incident.stellar.networks import PUBLIC, TESTNET

DEMO = REPO / "src" / "streampay_incident" / "demo_data"
ENV = {
    "STREAMPAY_INCIDENT_HORIZON_URLS": None,
    "STREAMPAY_INCIDENT_RPC_URLS": None,
    "STREAMPAY_INCIDENT_NETWORK": None,
    "STREAMPAY_INCIDENT_DISABLE_PLUGINS": "all",
}
T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=ENV)


def endpoint(
    url: str,
    status: str = "pass",
    closed: datetime | None = T0,
    network: str | None = TESTNET,
    ledger: int = 100,
) -> EndpointGrade:
    return EndpointGrade(
        url=url,
        kind="rpc" if "rpc" in url else "horizon",
        status=status,  # type: ignore[arg-type]
        latest_ledger=ledger,
        ledger_age_seconds=None,
        ingest_lag=None,
        duration_seconds=0.0,
        latest_ledger_close_time=closed,
        network_passphrase=network,
    )


def chosen(*endpoints: EndpointGrade) -> tuple[datetime, str] | None:
    grade = ChainGrade(status="pass", findings=(), endpoints=endpoints)
    return evidence_close_time(grade, expected_network=TESTNET)


# --- the pure choice ----------------------------------------------------------------------


def test_the_freshest_healthy_endpoint_on_the_network_gives_the_close_time() -> None:
    stale_horizon = endpoint("https://horizon", "fail", T0 - timedelta(seconds=120))
    rpc = endpoint("https://rpc", "pass", T0 - timedelta(seconds=5))
    assert chosen(stale_horizon, rpc) == (T0 - timedelta(seconds=5), "https://rpc")
    warned = endpoint("https://rpc-2", "warn", T0 - timedelta(seconds=20))
    assert chosen(warned, rpc) == (T0 - timedelta(seconds=5), "https://rpc")
    assert chosen(warned) == (T0 - timedelta(seconds=20), "https://rpc-2")


def test_critical_other_network_or_silent_endpoints_give_no_close_time() -> None:
    assert chosen() is None
    assert chosen(endpoint("https://horizon", "fail")) is None
    assert chosen(endpoint("https://rpc", network=PUBLIC, closed=T0 + timedelta(hours=1))) is None
    assert chosen(endpoint("https://rpc", closed=None)) is None
    # A critical endpoint never wins, however fresh its ledger.
    fresh_but_critical = endpoint("https://rpc-a", "fail", T0 + timedelta(minutes=5))
    assert chosen(fresh_but_critical, endpoint("https://rpc-b")) == (T0, "https://rpc-b")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["pass", "warn", "fail"]),
            st.sampled_from([TESTNET, PUBLIC, None]),
            st.one_of(st.none(), st.integers(min_value=-600, max_value=600)),
        ),
        max_size=6,
    )
)
def test_the_choice_is_the_newest_trusted_close_time(specs: list[Any]) -> None:
    endpoints = [
        endpoint(f"https://rpc-{i}", status, None if s is None else T0 + timedelta(seconds=s), net)
        for i, (status, net, s) in enumerate(specs)
    ]
    trusted = [
        e.latest_ledger_close_time
        for e in endpoints
        if e.status != "fail" and e.network_passphrase == TESTNET and e.latest_ledger_close_time
    ]
    result = chosen(*endpoints)
    if not trusted:
        assert result is None
    else:
        assert result is not None and result[0] == max(trusted)


# --- settlements --chain-snapshot ---------------------------------------------------------


@pytest.fixture
def our_horizon_stale(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A recorded round: our only Horizon 120 s stale, the RPC current (both testnet)."""
    now = datetime.now(UTC).replace(microsecond=0)
    root = {
        "network_passphrase": TESTNET,
        "history_latest_ledger_closed_at": rfc3339(now - timedelta(seconds=120)),
    }
    rpc = rpc_routes(
        passphrase=TESTNET, latest_ledger=HORIZON_LEDGER, close_time=now - timedelta(seconds=3)
    )
    recording = tmp_path / "round.json"
    with LoopbackServer(horizon_routes(root=root)) as h, LoopbackServer(rpc) as r:
        live = run(
            "chain", "--horizon", h.url, "--rpc", r.url, "--network", "testnet",
            "--timeout", "5", "--record", str(recording), "--format", "json",
        )  # fmt: skip
        urls = {"horizon": h.url, "rpc": r.url}
    assert live.exit_code == 1, live.output
    doc = json.loads(recording.read_text())
    return recording, {**doc, "urls": urls, "rpc_closed": now - timedelta(seconds=3)}


def write_settlement(tmp_path: Path, max_time: datetime, now: datetime) -> Path:
    record = {
        "settlement_id": "stl-exp",
        "status": "processing",
        "attempts": 1,
        "tx_hash": "ab" * 32,
        "created_at": rfc3339(now - timedelta(hours=1)),
        "updated_at": rfc3339(now - timedelta(minutes=30)),
        "tx_max_time": rfc3339(max_time),
    }
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return path


def test_settlements_take_the_close_time_and_status_from_the_snapshot(
    tmp_path: Path, our_horizon_stale: tuple[Path, dict[str, Any]]
) -> None:
    recording, doc = our_horizon_stale
    recorded_now = datetime.fromisoformat(doc["now"])
    # Max time between the stale Horizon's close time and the RPC's: only the RPC proves it passed.
    export = write_settlement(tmp_path, recorded_now - timedelta(seconds=60), recorded_now)
    args = ["settlements", str(export), "--network", "testnet", "--now", doc["now"]]
    result = run(*args, "--chain-snapshot", str(recording), "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    inputs = report["inputs"]
    assert inputs["chain_snapshot"] == str(recording)
    assert inputs["chain_status"] == "fail"
    assert inputs["chain_diagnosis"] == "our_endpoints_down"
    assert inputs["latest_ledger_close_time"] == rfc3339(doc["rpc_closed"])
    assert inputs["latest_ledger_close_time_source"] == f"chain snapshot {doc['urls']['rpc']}"
    (verdict,) = report["settlements"]
    # The chain grade is fail (our Horizon is down): no retry into it, the proof kept.
    assert (verdict["retry_safe"], verdict["retry_reason"]) == (False, "chain_unhealthy")
    blocked = [f for f in report["findings"] if f["code"] == "SETTLEMENT_CHAIN_BLOCKED"]
    assert blocked[0]["evidence"]["retry_reason_when_healthy"] == "tx_expired"

    # --latest-ledger-close-time still overrides the snapshot's close time.
    given_close = rfc3339(recorded_now - timedelta(seconds=90))
    overridden = json.loads(
        run(
            *args,
            "--chain-snapshot",
            str(recording),
            "--latest-ledger-close-time",
            given_close,
            "--format",
            "json",
        ).stdout  # fmt: skip
    )
    assert overridden["inputs"]["latest_ledger_close_time"] == given_close
    assert overridden["inputs"]["latest_ledger_close_time_source"] == "--latest-ledger-close-time"
    assert overridden["settlements"][0]["retry_reason"] == "tx_may_still_land"


def test_a_snapshot_on_another_network_exits_2(
    tmp_path: Path, our_horizon_stale: tuple[Path, dict[str, Any]]
) -> None:
    recording, doc = our_horizon_stale
    export = write_settlement(tmp_path, T0, T0)
    result = run(
        "settlements", str(export), "--network", "public", "--now", doc["now"],
        "--chain-snapshot", str(recording),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "error: --network public: " in result.output
    assert "reports 'testnet'" in result.output
    assert '"settlements"' not in result.output


def test_the_demo_outage_snapshot_gives_no_close_time_and_blocks_retries() -> None:
    result = run(
        "settlements", str(DEMO / "settlements.jsonl"), "--transactions",
        str(DEMO / "transactions.json"), "--network", "testnet", "--now", "2026-11-27T03:00:00Z",
        "--chain-snapshot", str(DEMO / "chain-outage.json"), "--format", "json",
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["inputs"]["chain_status"] == "fail"
    assert "latest_ledger_close_time" not in report["inputs"]
    assert not any(v["retry_safe"] for v in report["settlements"])
    assert report["summary"]["actions"]["retry"] == 0


def test_chain_snapshot_option_clashes_are_usage_errors(tmp_path: Path) -> None:
    export = write_settlement(tmp_path, T0, T0)
    snap = str(DEMO / "chain-outage.json")
    no_network = run("settlements", str(export), "--chain-snapshot", snap)
    assert no_network.exit_code == 2 and "--chain-snapshot needs --network" in no_network.output
    live = run(
        "settlements", str(export), "--chain-snapshot", snap, "--network", "testnet",
        "--rpc", "http://127.0.0.1:9",
    )  # fmt: skip
    assert live.exit_code == 2 and "drop --horizon, --rpc" in live.output


# --- chain --snapshot at its own time -----------------------------------------------------


def test_chain_snapshot_grades_at_the_recordings_own_time() -> None:
    own = run("chain", "--snapshot", str(DEMO / "chain-outage.json"), "--format", "json")
    stamped = run(
        "chain", "--snapshot", str(DEMO / "chain-outage.json"), "--now", "2026-11-27T03:00:00Z",
        "--format", "json",
    )  # fmt: skip
    assert own.exit_code == 1
    assert json.loads(own.stdout)["generated_at"] == "2026-11-27T03:00:00Z"
    assert json.loads(own.stdout) == json.loads(stamped.stdout)


@pytest.mark.parametrize(
    ("now", "code"),
    [
        ("2026-11-27T02:59:57Z", 2),  # 2 s before the recording started
        ("2026-11-27T02:59:58.5Z", 1),  # within 1 s: clock skew
        ("2026-11-27T02:59:59Z", 1),
    ],
)
def test_chain_snapshot_refuses_a_now_before_the_recording(now: str, code: int) -> None:
    result = run("chain", "--snapshot", str(DEMO / "chain-outage.json"), "--now", now)
    assert result.exit_code == code, result.output
    if code == 2:
        assert "is before the recording started (2026-11-27T02:59:59Z)" in result.output


def test_a_recording_without_a_time_needs_now(tmp_path: Path) -> None:
    doc = json.loads((DEMO / "chain-outage.json").read_text())
    doc.update(now=None, started_at=None, finished_at=None)
    timeless = tmp_path / "timeless.json"
    timeless.write_text(json.dumps(doc))
    result = run("chain", "--snapshot", str(timeless))
    assert result.exit_code == 2 and "give --now" in result.output
    assert run("chain", "--snapshot", str(timeless), "--now", "2026-11-27T03:00:00Z").exit_code == 1
