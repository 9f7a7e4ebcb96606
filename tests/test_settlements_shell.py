"""Issue 9, the shell: ``settlements --payouts``, the wrong-network exit 2, the web ``payouts``
field; the examples of the issue on bundled and recorded data."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings

import test_settlements_v2 as v2
from loopback import LoopbackServer, horizon_routes, rpc_routes
from streampay_incident.cli import main
from test_settlements_cli import demo_args

DEMO = Path(str(resources.files("streampay_incident") / "demo_data"))
NOW = "2026-11-27T03:00:00Z"
DESTINATION = "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"
OTHER_HASH = "cd" * 32

REQUEUED = {  # an admin re-queue of a settlement that was already paid
    "settlement_id": "stl-requeued",
    "status": "pending",
    "created_at": "2026-11-27T01:00:00Z",
    "attempts": 0,
}
PAYOUT_HEADER = "payout_id,settlement_id,destination,asset,amount,status,tx_hash,created_at\n"


def run(args: Sequence[str]) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def settlements_file(tmp_path: Path, *records: dict[str, Any]) -> Path:
    return write(tmp_path / "s.jsonl", "".join(json.dumps(r) + "\n" for r in records))


def payouts_file(tmp_path: Path, *rows: str) -> Path:
    return write(tmp_path / "payouts.csv", PAYOUT_HEADER + "".join(r + "\n" for r in rows))


def triage(tmp_path: Path, *extra: str) -> dict[str, Any]:
    result = run(
        ["settlements", str(settlements_file(tmp_path, REQUEUED)), "--now", NOW, *extra]
        + ["--format", "json"]
    )
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


# --- §2: never submitted is not "not paid" ------------------------------------------------


def test_a_requeue_of_a_paid_settlement_is_already_paid(tmp_path: Path) -> None:
    payouts = payouts_file(
        tmp_path, f"p-9,stl-requeued,{DESTINATION},native,10,confirmed,{OTHER_HASH},{NOW}"
    )
    doc = triage(tmp_path, "--payouts", str(payouts))
    (verdict,) = doc["settlements"]
    assert (verdict["retry_safe"], verdict["retry_reason"]) == (False, "already_paid")
    assert verdict["action"] == "do_not_retry"
    paid = [f for f in doc["findings"] if f["code"] == "SETTLEMENT_ALREADY_PAID"]
    assert len(paid) == 1 and paid[0]["severity"] == "critical"
    assert paid[0]["evidence"]["payout_ids"] == ["p-9"]
    assert paid[0]["evidence"]["payout_tx_hashes"] == [OTHER_HASH]
    assert paid[0]["evidence"]["amounts"] == {"native": "10.0000000"}
    assert doc["inputs"]["payouts"] == str(payouts)
    assert doc["inputs"]["payout_records"] == 1
    assert doc["inputs"]["payouts_checked"] is True
    # The rule's own finding does not claim "no payout" when one paid it.
    (own,) = [f for f in doc["findings"] if f["code"] == "SETTLEMENT_STUCK_UNSUBMITTED"]
    assert "but another payout paid it (SETTLEMENT_ALREADY_PAID)" in own["summary"]
    assert "no payout for it" not in own["summary"]
    # The text's runbook link for the verdict is the finding that decides it.
    text = run(
        ["settlements", str(settlements_file(tmp_path, REQUEUED)), "--now", NOW]
        + ["--payouts", str(payouts)]
    ).stdout
    assert text.rstrip().endswith(
        "runbook: docs/runbooks/stuck-settlement.md#settlement-already-paid"
    )


def test_without_payouts_the_verdict_says_what_it_rests_on(tmp_path: Path) -> None:
    doc = triage(tmp_path)
    (verdict,) = doc["settlements"]
    assert (verdict["retry_safe"], verdict["retry_reason"]) == (True, "never_submitted")
    (finding,) = doc["findings"]
    assert "no tx hash in the outbox; payouts not checked" in finding["summary"]
    assert finding["evidence"]["payouts_checked"] is False
    assert doc["inputs"]["payouts_checked"] is False
    assert "payouts" not in doc["inputs"]


def test_the_settlements_own_outbox_row_does_not_count(tmp_path: Path) -> None:
    payouts = payouts_file(
        tmp_path, f"stl-requeued,stl-requeued,{DESTINATION},native,10,pending,,{NOW}"
    )
    doc = triage(tmp_path, "--payouts", str(payouts))
    (verdict,) = doc["settlements"]
    assert (verdict["retry_safe"], verdict["retry_reason"]) == (True, "never_submitted")
    (finding,) = doc["findings"]
    assert "no payout for it in the payouts given" in finding["summary"]
    assert finding["evidence"]["payouts_checked"] is True


def test_a_bad_payouts_file_is_exit_2_with_no_report(tmp_path: Path) -> None:
    payouts = payouts_file(tmp_path, f"p-9,stl-requeued,{DESTINATION},native,ten,confirmed,,{NOW}")
    result = run(
        ["settlements", str(settlements_file(tmp_path, REQUEUED)), "--payouts", str(payouts)]
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "amount" in result.stderr


def test_payouts_reach_plugins_through_the_context(tmp_path: Path) -> None:
    from streampay_incident import hookimpl
    from streampay_incident.io.payouts import read_payouts
    from streampay_incident.io.settlements import read_settlements
    from streampay_incident.model import SettlementContext
    from streampay_incident.registry import get_plugin_manager
    from streampay_incident.timefmt import parse_rfc3339
    from streampay_incident.usecases import settlement_chain, triage_settlements

    seen: list[SettlementContext] = []

    def check(settlements: Any, *, context: SettlementContext, **kwargs: Any) -> list[Any]:
        seen.append(context)
        return []

    class Plugin:
        @hookimpl
        def streampay_incident_register_settlement_checks(self) -> list[Any]:
            return [check]

    pm = get_plugin_manager(None)
    pm.register(Plugin(), name="spy")
    payouts = read_payouts(
        payouts_file(tmp_path, f"p-9,stl-requeued,{DESTINATION},native,10,confirmed,,{NOW}")
    )
    report = triage_settlements(
        read_settlements(settlements_file(tmp_path, REQUEUED), network_passphrase=None),
        chain=settlement_chain(),
        now=parse_rfc3339(NOW),
        pm=pm,
        inputs={},
        payouts=payouts,
    )
    assert seen and seen[0].payouts == tuple(payouts)
    assert report.settlements is not None
    assert report.settlements[0].retry_reason == "already_paid"


# --- §1: a wrong --network exits 2 --------------------------------------------------------


@pytest.mark.parametrize(("network", "code"), [("public", 2), ("testnet", 1)])
def test_testnet_envelopes_under_network_public_exit_2(network: str, code: int) -> None:
    args = demo_args()  # the demo's envelopes are testnet ones
    args[args.index("--network") + 1] = network
    result = run(args)
    assert result.exit_code == code
    if code == 2:
        assert result.stdout == ""
        assert result.stderr == (
            "error: --network public: none of 1 envelopes was found; 1 match testnet\n"
        )


@pytest.mark.parametrize(
    ("kind", "network", "what"),
    [("rpc", "public", "RPC getNetwork"), ("horizon", "testnet", "Horizon root")],
)
def test_an_endpoint_on_another_network_stops_the_run(
    tmp_path: Path, kind: str, network: str, what: str
) -> None:
    # The recorded RPC serves testnet, the recorded Horizon root pubnet.
    routes = rpc_routes() if kind == "rpc" else horizon_routes()
    record = {**REQUEUED, "tx_hash": OTHER_HASH, "status": "processing"}
    with LoopbackServer(routes) as server:
        result = run(
            ["settlements", str(settlements_file(tmp_path, record)), f"--{kind}", server.url]
            + ["--network", network, "--now", NOW, "--timeout", "5"]
        )
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: --network {network}: {server.url} ({what}) reports")
    assert "no verdict is given" in result.stderr


# --- the property, through the use case (what the shells call) ----------------------------

_PM = None


def _pm() -> Any:
    global _PM
    if _PM is None:
        from streampay_incident.registry import get_plugin_manager

        _PM = get_plugin_manager(None)
    return _PM


@given(v2.evidence())
@settings(max_examples=60, deadline=None)
def test_the_use_case_never_makes_a_transfer_retry_safe(ev: dict[str, Any]) -> None:
    """No settlement is retry-safe when the evidence the shell passes (transactions, payouts,
    the chain grade and close time) shows a transfer for it landed or may still land, or when
    the chain status is fail: the payouts reach the check through the context."""
    from streampay_incident.usecases import settlement_chain, triage_settlements

    chain = settlement_chain(
        ev["records"],
        latest_ledger_close_time=ev["latest_ledger_close_time"],
        chain_status=ev["chain_status"],
    )
    report = triage_settlements(
        ev["settlements"], chain=chain, now=v2.NOW, pm=_pm(), inputs={}, payouts=ev["payouts"]
    )
    assert report.settlements is not None
    assert report.inputs["payouts_checked"] is (ev["payouts"] is not None)
    for s, verdict in zip(ev["settlements"], report.settlements, strict=True):
        if ev["chain_status"] == "fail" or v2._shows_a_transfer(s, ev):
            assert not verdict.retry_safe, (s, verdict)


def test_a_live_close_time_says_where_it_came_from(tmp_path: Path) -> None:
    record = {**REQUEUED, "tx_hash": OTHER_HASH, "status": "processing"}
    with LoopbackServer(rpc_routes()) as server:  # testnet, a recorded latest ledger
        result = run(
            ["settlements", str(settlements_file(tmp_path, record)), "--rpc", server.url]
            + ["--network", "testnet", "--now", NOW, "--timeout", "5", "--format", "json"]
        )
    assert result.exit_code in (0, 1), result.output
    inputs = json.loads(result.stdout)["inputs"]
    assert inputs["latest_ledger_close_time_source"] == "live lookup"
    assert inputs["rpc"] == [server.url]
