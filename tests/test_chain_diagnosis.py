"""Issue 9 §4: say whether it is Stellar or us (the chain diagnosis, pure, and in the report).

Observations come from the real recorded bodies, through the helpers of
``test_chain_grade``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from streampay_incident.checks.chain import ChainGrade, EndpointGrade, diagnose_chain
from streampay_incident.cli import main
from streampay_incident.cli.demo import DEMO_NOW
from streampay_incident.codes import Severity
from streampay_incident.model import make_finding
from test_chain_grade import CLOSED_AT, TESTNET, grade, horizon, rpc

HORIZON = "https://horizon.streampay.internal"
RPC = "https://rpc.example"
STALE = (CLOSED_AT - timedelta(seconds=120)).isoformat().replace("+00:00", "Z")


def test_our_only_horizon_stale_while_the_rpc_is_current() -> None:
    # §4: our only Horizon 120 s stale, the RPC current: fail, with nothing saying the
    # network itself is fine. Now the diagnosis says so.
    result = grade(horizon(HORIZON, root={"history_latest_ledger_closed_at": STALE}), rpc(RPC))
    assert result.status == "fail"
    diagnosis = diagnose_chain(result)
    assert diagnosis.kind == "our_endpoints_down"
    assert diagnosis.summary == (
        f"Stellar is healthy per RPC {RPC}; the Horizon given is stale: fail over, "
        "this is not a network outage"
    )
    assert (diagnosis.current, diagnosis.down) == ((RPC,), (HORIZON,))


def test_every_horizon_down_for_different_reasons_names_them() -> None:
    stale = horizon(HORIZON, root={"history_latest_ledger_closed_at": STALE})
    other = horizon("https://horizon-2.example", root={"network_passphrase": TESTNET})
    diagnosis = diagnose_chain(grade(stale, other, rpc(RPC)))
    assert diagnosis.kind == "our_endpoints_down"
    assert "every Horizon given is down (stale, on another network)" in diagnosis.summary
    assert diagnosis.down == (HORIZON, "https://horizon-2.example")


def test_no_endpoint_current_is_network_down() -> None:
    old = CLOSED_AT - timedelta(seconds=120)
    result = grade(
        horizon(HORIZON, root={"history_latest_ledger_closed_at": STALE}),
        rpc(RPC, close_time=old),
    )
    diagnosis = diagnose_chain(result)
    assert diagnosis.kind == "network_down"
    assert diagnosis.summary.startswith("No endpoint given is current (stale)")
    assert diagnosis.current == () and diagnosis.down == (HORIZON, RPC)


def test_healthy_and_degraded() -> None:
    healthy = diagnose_chain(grade(horizon(HORIZON), rpc(RPC)))
    assert healthy.kind == "healthy"
    assert healthy.summary.startswith("Stellar is healthy per ")
    assert set(healthy.current) == {HORIZON, RPC}
    warm = (CLOSED_AT - timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
    degraded = diagnose_chain(
        grade(horizon(HORIZON, root={"history_latest_ledger_closed_at": warm}), rpc(RPC))
    )
    assert degraded.kind == "degraded"
    # The freshest current endpoint is named first.
    assert degraded.summary == (
        f"Stellar is current per RPC {RPC}; degraded: 1 finding(s) on {HORIZON}"
    )
    assert degraded.current == (RPC, HORIZON)
    assert degraded.to_json()["kind"] == "degraded"


def test_a_critical_endpoint_without_a_ledger_and_unknown_codes() -> None:
    # A plugin's critical code gives "down"; an endpoint with no ledger is never current.
    silent = EndpointGrade(RPC, "rpc", "warn", None, None, None, 0.1)
    broken = EndpointGrade(HORIZON, "horizon", "fail", 10, 1.0, 0, 0.1)
    warning = make_finding("PLUGIN_ERROR", HORIZON, "boom")
    diagnosis = diagnose_chain(ChainGrade("fail", (warning,), (silent, broken)))
    assert diagnosis.kind == "network_down"
    assert "(no ledger reported)" in diagnosis.summary
    plugin_critical = make_finding("PLUGIN_ERROR", HORIZON, "boom", severity=Severity.CRITICAL)
    current = EndpointGrade(RPC, "rpc", "pass", 11, 2.0, None, 0.1)
    mixed = diagnose_chain(ChainGrade("fail", (plugin_critical,), (current, broken)))
    assert mixed.kind == "our_endpoints_down"
    assert "the Horizon given is down: fail over" in mixed.summary


def test_the_chain_report_leads_with_the_diagnosis(tmp_path: Path) -> None:
    runner = CliRunner()
    data = tmp_path / "drill"
    assert runner.invoke(main, ["demo", "--write-data", str(data)]).exit_code == 0
    args = ["chain", "--snapshot", str(data / "chain-outage.json"), "--now", DEMO_NOW]
    text = runner.invoke(main, args)
    assert text.output.splitlines()[0].startswith("No endpoint given is current")
    doc = json.loads(runner.invoke(main, [*args, "--format", "json"]).output)
    assert doc["diagnosis"]["kind"] == "network_down"
    markdown = runner.invoke(main, [*args, "--format", "markdown"]).output
    assert markdown.startswith("**No endpoint given is current")
