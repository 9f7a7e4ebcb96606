"""Issue 13 §1: a G... escrow reconciled from RPC events (CAP-67 classic events), and the
coverage rules that keep an RPC's silence from passing for an absence."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import CliRunner

from loopback import LoopbackServer, json_reply
from streampay_incident.checks.coverage import classic_event_window, classic_events_missing
from streampay_incident.cli import main
from streampay_incident.model import NATIVE, CoverageWindow, Payout
from streampay_incident.stellar.networks import PUBLIC, TESTNET
from test_submission_search import ACCOUNTS, ALICE, CAP67, ESCROW, EVENTS, FIRST, FIRST_AT, stand_in

ENV = {"STREAMPAY_INCIDENT_DISABLE_PLUGINS": "all"}


def payouts_csv(tmp_path: Any, rows: list[dict[str, str]]) -> str:
    keys = ("payout_id", "settlement_id", "destination", "asset", "amount", "status",
            "created_at", "tx_hash", "memo_type", "memo")  # fmt: skip
    head = ",".join(keys) + "\n"
    body = "".join(",".join(r.get(k, "") for k in keys) + "\n" for r in rows)
    path = tmp_path / "payouts.csv"
    path.write_text(head + body)
    return str(path)


def reconcile(tmp_path: Any, rows: list[dict[str, str]], server: Any) -> dict[str, Any]:
    """``payouts --escrow ESCROW --rpc`` over ``rows`` against ``server``, as JSON."""
    with LoopbackServer(server.routes()) as rpc:
        result = CliRunner().invoke(
            main,
            ["payouts", payouts_csv(tmp_path, rows), "--escrow", ESCROW, "--rpc", rpc.url,
             "--since", "2026-11-27T01:59:00Z", "--format", "json"],
            env=ENV,
        )  # fmt: skip
    return dict(json.loads(result.output))


def tx_of(ledger_offset: int) -> str:
    return next(e["txHash"] for e in EVENTS if e["ledger"] == FIRST + ledger_offset)


def test_g_escrow_reconciled_from_rpc_events(tmp_path: Any) -> None:
    rows = [
        {"payout_id": "p1", "settlement_id": "s1", "destination": ALICE, "asset": "native",
         "amount": "25", "status": "confirmed", "created_at": "2026-11-27T02:00:40Z",
         "tx_hash": tx_of(10), "memo_type": "id", "memo": "4242"},
        {"payout_id": "p2", "settlement_id": "s2", "destination": ACCOUNTS["bob"],
         "asset": f"USDC:{ACCOUNTS['usdc_issuer']}", "amount": "10", "status": "confirmed",
         "created_at": "2026-11-27T02:01:30Z", "tx_hash": tx_of(20)},
    ]  # fmt: skip
    doc = reconcile(tmp_path, rows, stand_in())
    unrecorded = {f["subject"] for f in doc["findings"] if f["code"] == "ESCROW_UNRECORDED_OUTFLOW"}
    # The memo id travels as to_muxed_id: the G... row with memo id 4242 matches it.
    assert "ESCROW_AMOUNT_MISMATCH" not in [f["code"] for f in doc["findings"]]
    assert tx_of(10) not in unrecorded and tx_of(20) not in unrecorded
    for offset in (30, 50, 70, 80, 90):  # path payment, claimable balance, fee-bump, burn, clawback
        assert tx_of(offset) in unrecorded
    assert tx_of(40) not in unrecorded  # the merge is not the escrow's
    assert tx_of(60) not in unrecorded  # a claim back into the escrow is an inflow
    assert doc["inputs"]["chain_payments"] == 8
    assert doc["inputs"]["escrow_window_complete"] is True


def test_an_rpc_without_classic_events_is_not_an_absence(tmp_path: Any) -> None:
    rows = [
        {"payout_id": "p1", "settlement_id": "s1", "destination": ALICE, "asset": "native",
         "amount": "25", "status": "confirmed", "created_at": "2026-11-27T02:00:40Z",
         "tx_hash": tx_of(10)},
    ]  # fmt: skip
    silent = stand_in()
    silent.events = []
    doc = reconcile(tmp_path, rows, silent)
    codes = [f["code"] for f in doc["findings"]]
    assert "ESCROW_RECORD_NOT_ON_CHAIN" not in codes
    assert codes == ["ESCROW_COVERAGE_INCOMPLETE"]
    assert "may not emit or backfill classic events" in doc["findings"][0]["summary"]
    assert doc["findings"][0]["evidence"]["rows_not_checked"] == 1


def test_classic_event_coverage_rules() -> None:
    window = CoverageWindow(since=FIRST_AT)
    args: dict[str, Any] = {"first_ledger": 59_000_000, "last_ledger": 60_000_000}
    overlap = classic_event_window(
        window, escrow=ESCROW, kind="rpc", network_passphrase=PUBLIC, **args
    )
    assert not overlap.complete and "58,762,517-59,501,299" in overlap.note
    assert (
        classic_event_window(window, escrow=ESCROW, kind="rpc", network_passphrase=TESTNET, **args)
        == window
    )
    contract = "CDLZFC3SYJYDZT7K67VZ75HPJVIEUVNIXF47ZG2FB2RMQQVU2HHGCYSC"
    assert (
        classic_event_window(window, escrow=contract, kind="rpc", network_passphrase=PUBLIC, **args)
        == window
    )
    noted = classic_event_window(
        CoverageWindow(note="earlier"), escrow=ESCROW, kind="rpc", network_passphrase=PUBLIC,
        **args,
    )  # fmt: skip
    assert noted.note.startswith("earlier; pubnet ledgers")
    row = Payout("p", "s", ALICE, NATIVE, 1, "confirmed", FIRST_AT + timedelta(minutes=1))
    old = Payout("o", "s", ALICE, NATIVE, 1, "confirmed", datetime(2020, 1, 1, tzinfo=UTC))
    assert classic_events_missing(window, escrow=ESCROW, kind="horizon", payouts=[row],
                                  payments=[]) == window  # fmt: skip
    assert classic_events_missing(window, escrow=ESCROW, kind="rpc", payouts=[old],
                                  payments=[]) == window  # fmt: skip
    assert not classic_events_missing(
        window, escrow=ESCROW, kind="rpc", payouts=[row], payments=[]
    ).complete


def test_memo_id_row_and_muxed_event_must_agree_on_the_id() -> None:
    from streampay_incident.checks.escrow import reconcile_escrow
    from streampay_incident.model import ChainPayment, Memo
    from streampay_incident.stellar.strkey import muxed_address

    paid = ChainPayment("a" * 64, True, ESCROW, muxed_address(ALICE, 4242), NATIVE, 5,
                        "sac_transfer", closed_at=FIRST_AT)  # fmt: skip
    row = Payout("p", "s", ALICE, NATIVE, 5, "confirmed", FIRST_AT, "a" * 64, Memo("id", 4243))
    (finding,) = reconcile_escrow([row], [paid], escrow=ESCROW, window=CoverageWindow())
    assert finding.code == "ESCROW_AMOUNT_MISMATCH"
    assert finding.evidence["differences"] == ["destination"]
    same = Payout("p", "s", ALICE, NATIVE, 5, "confirmed", FIRST_AT, "a" * 64, Memo("id", 4242))
    assert reconcile_escrow([same], [paid], escrow=ESCROW, window=CoverageWindow()) == []


FEE_BUMP = json.loads(
    (CAP67.parent / "getTransaction_fee_bump_testnet.json").read_text(encoding="utf-8")
)["result"]


def test_a_fee_bump_row_recording_the_inner_hash_matches_the_outer_event(tmp_path: Any) -> None:
    """getEvents lists the outer hash; getTransaction's envelope gives the inner one."""
    inner = ACCOUNTS["fee_bump_inner_hash"]
    rows = [
        {"payout_id": "fb", "settlement_id": "s9", "destination": ALICE, "asset": "native",
         "amount": "25", "status": "confirmed", "created_at": "2026-11-27T02:05:30Z",
         "tx_hash": inner},
    ]  # fmt: skip
    args = ["--escrow", ESCROW, "--since", "2026-11-27T02:04:00Z", "--format", "json"]
    server = stand_in(transactions={FEE_BUMP["txHash"]: FEE_BUMP})
    with LoopbackServer(server.routes()) as rpc:
        result = CliRunner().invoke(
            main, ["payouts", payouts_csv(tmp_path, rows), "--rpc", rpc.url, *args], env=ENV
        )
        asked = [r.json()["params"] for r in rpc.requests if r.rpc_method == "getTransaction"]
    doc = json.loads(result.output)
    codes = {(f["code"], f["subject"]) for f in doc["findings"]}
    assert ("ESCROW_RECORD_NOT_ON_CHAIN", inner) not in codes
    assert ("ESCROW_UNRECORDED_OUTFLOW", FEE_BUMP["txHash"]) not in codes
    assert {"hash": FEE_BUMP["txHash"]} in asked
    # Without the RPC's envelope the outer event and the inner row stay apart.
    with LoopbackServer(stand_in().routes()) as rpc:
        plain = CliRunner().invoke(
            main, ["payouts", payouts_csv(tmp_path, rows), "--rpc", rpc.url, *args], env=ENV
        )
    plain_codes = {(f["code"], f["subject"]) for f in json.loads(plain.output)["findings"]}
    assert ("ESCROW_RECORD_NOT_ON_CHAIN", inner) in plain_codes


def test_resolving_needs_a_reason_and_an_answer() -> None:
    import asyncio

    from streampay_incident.checks.fee_bumps import hashes_to_resolve
    from streampay_incident.model import ChainPayment
    from streampay_incident.probes.fee_bumps import resolve_hashes

    paid = ChainPayment("a" * 64, True, ESCROW, ALICE, NATIVE, 5, "sac_transfer")
    named = Payout("p", "s", ALICE, NATIVE, 5, "confirmed", FIRST_AT, "a" * 64)
    assert hashes_to_resolve([named], [paid], ESCROW) == []  # every row's hash is on chain
    assert asyncio.run(resolve_hashes("http://127.0.0.1:9", [], timeout=1)) == {}
    broken = dict(FEE_BUMP, envelopeXdr="not-xdr")
    plain = dict(FEE_BUMP, envelopeXdr=FEE_BUMP["envelopeXdr"], txHash="b" * 64)
    server = stand_in(transactions={"c" * 64: broken, "b" * 64: plain, "d" * 64: {"x": 1}})
    with LoopbackServer(server.routes()) as rpc:
        found = asyncio.run(resolve_hashes(rpc.url, ["c" * 64, "b" * 64, "d" * 64], timeout=2))
    assert found == {}  # bad envelope, a hash the envelope does not have, no envelope
    with LoopbackServer({"*": json_reply({"jsonrpc": "2.0", "id": 1, "result": {}})}) as odd:
        assert asyncio.run(resolve_hashes(odd.url, ["c" * 64], timeout=2)) == {}


def test_horizon_is_the_fallback_when_the_rpc_does_not_cover(tmp_path: Any) -> None:
    from loopback import RefusingEndpoint, fixture_reply, horizon_routes

    rows = [
        {"payout_id": "p1", "settlement_id": "s1", "destination": ALICE, "asset": "native",
         "amount": "25", "status": "confirmed", "created_at": "2026-11-27T02:00:40Z",
         "tx_hash": tx_of(10), "memo_type": "id", "memo": "4242"},
    ]  # fmt: skip
    routes = horizon_routes()
    routes["GET /accounts/*/payments"] = fixture_reply("horizon/account_payments_pubnet_docs.json")
    csv = payouts_csv(tmp_path, rows)
    with RefusingEndpoint() as refused, LoopbackServer(routes) as horizon:
        args = ["payouts", csv, "--escrow", ESCROW, "--rpc", refused.url, "--horizon",
                horizon.url, "--timeout", "2", "--format", "json"]  # fmt: skip
        doc = json.loads(CliRunner().invoke(main, args, env=ENV).output)
        asked = [r.path for r in horizon.requests]
    assert doc["inputs"]["chain_source"] == horizon.url
    assert doc["inputs"]["escrow_window_note"].startswith(f"RPC {refused.url} did not cover")
    assert any(p.endswith("/payments") for p in asked)
    # An RPC that covers the window is enough: Horizon is not asked.
    with LoopbackServer(stand_in().routes()) as rpc, LoopbackServer(routes) as horizon:
        args = ["payouts", csv, "--escrow", ESCROW, "--rpc", rpc.url, "--horizon", horizon.url,
                "--since", "2026-11-27T01:59:00Z", "--format", "json"]  # fmt: skip
        doc = json.loads(CliRunner().invoke(main, args, env=ENV).output)
        assert horizon.requests == []
    assert doc["inputs"]["chain_source"] == rpc.url


def test_both_sources_only_for_a_g_escrow_without_a_cursor_file(tmp_path: Any) -> None:
    csv = payouts_csv(tmp_path, [])
    contract = "CDLZFC3SYJYDZT7K67VZ75HPJVIEUVNIXF47ZG2FB2RMQQVU2HHGCYSC"
    both = ["--rpc", "http://r", "--horizon", "http://h"]
    bad = CliRunner().invoke(main, ["payouts", csv, "--escrow", contract, *both], env=ENV)
    assert bad.exit_code == 2 and "give one of" in bad.output
    cursor = ["--cursor-file", str(tmp_path / "c.jsonl")]
    bad = CliRunner().invoke(main, ["payouts", csv, "--escrow", ESCROW, *both, *cursor], env=ENV)
    assert bad.exit_code == 2 and "one of --horizon or --rpc" in bad.output


def test_fallback_note_when_horizon_has_nothing_to_add(tmp_path: Any) -> None:
    from loopback import RefusingEndpoint, fixture_reply, horizon_routes

    routes = horizon_routes(root={"history_elder_ledger": 1})
    routes["GET /accounts/*/payments"] = fixture_reply("horizon/account_payments_pubnet_docs.json")
    with RefusingEndpoint() as refused, LoopbackServer(routes) as horizon:
        args = ["payouts", payouts_csv(tmp_path, []), "--escrow", ESCROW, "--rpc", refused.url,
                "--horizon", horizon.url, "--timeout", "2", "--format", "json"]  # fmt: skip
        doc = json.loads(CliRunner().invoke(main, args, env=ENV).output)
    note = doc["inputs"]["escrow_window_note"]
    assert note.startswith(f"RPC {refused.url} did not cover") and ";" not in note.split("): ")[1]
