"""Issue 13 §2 and §4: the submission search, on constructed CAP-67 getEvents bodies served
by the loopback stand-in with topic filtering and paging."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import REPO
from loopback import EventsStandIn, LoopbackServer, RefusingEndpoint
from streampay_incident.checks.coverage import incomplete_event_range
from streampay_incident.checks.search import (
    MAX_SKEW,
    SearchCoverage,
    SearchTarget,
    match_transfers,
    needs_search,
    pair_coverage,
    search_target,
)
from streampay_incident.model import (
    NATIVE,
    Asset,
    ChainPayment,
    ChainTransaction,
    Payout,
    Settlement,
)
from streampay_incident.observations import PagingCoverage, PagingStop
from streampay_incident.probes import search as search_probe
from streampay_incident.probes.rpc_transfers import fetch_rpc_transfers
from streampay_incident.stellar.networks import PUBLIC, TESTNET
from streampay_incident.stellar.strkey import base_account

CAP67 = REPO / "tests" / "fixtures" / "stellar" / "rpc" / "cap67" / "getEvents_classic_testnet.json"
DOC = json.loads(CAP67.read_text(encoding="utf-8"))
EVENTS: list[dict[str, Any]] = DOC["result"]["events"]
ACCOUNTS: dict[str, str] = DOC["_accounts"]
ESCROW, ALICE, BOB, CAROL = (ACCOUNTS[k] for k in ("escrow", "alice", "bob", "carol"))
USDC = Asset("USDC", ACCOUNTS["usdc_issuer"])
FIRST = 4_100_000
FIRST_AT = datetime(2026, 11, 27, 2, 0, 0, tzinfo=UTC)


def close_time(ledger: int) -> datetime:
    return FIRST_AT + timedelta(seconds=5 * (ledger - FIRST))


def stand_in(**kwargs: Any) -> EventsStandIn:
    args: dict[str, Any] = {
        "oldest_ledger": DOC["result"]["oldestLedger"],
        "latest_ledger": DOC["result"]["latestLedger"],
        "close_time": close_time,
    }
    args.update(kwargs)
    return EventsStandIn(EVENTS, **args)


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streampay_incident.probes.rpc_transfers.PAGE_LIMIT", 2)


# --- the stand-in and the constructed bodies (§4) ----------------------------------------


def test_g_escrow_outflows_from_classic_events_with_paging(small_pages: None) -> None:
    """A G... escrow read from RPC events: payments, path payment, claimable balance, fee-bump."""
    with LoopbackServer(stand_in().routes()) as server:
        fetched = asyncio.run(fetch_rpc_transfers(server.url, ESCROW, since=FIRST_AT))
        pages = [r.json()["params"] for r in server.requests if r.rpc_method == "getEvents"]
    assert fetched.stop is None
    assert len(pages) >= 3  # two events a page: paged with the cursor
    assert all("cursor" in p["pagination"] for p in pages[1:])
    by_hash = {(p.tx_hash, p.to_account): p for p in fetched.payments}
    assert {base_account(p.from_account) for p in fetched.payments} == {ESCROW}
    assert len(fetched.payments) == 8  # every transfer, burn and clawback from the escrow
    burn = next(p for p in fetched.payments if p.kind == "sac_burn")
    clawback = next(p for p in fetched.payments if p.kind == "sac_clawback")
    assert (burn.to_account, burn.asset, burn.amount) == (USDC.issuer, USDC, 5_000_000)
    assert (clawback.to_account, clawback.amount) == (USDC.issuer, 2_000_000)
    memo_id = next(p for p in fetched.payments if base_account(p.to_account) == ALICE)
    assert memo_id.to_account.startswith("M") and memo_id.amount == 250_000_000
    text = next(p for p in fetched.payments if p.to_account == BOB)
    assert text.memo.type == "text" and text.memo.value == b"inv-77" and text.asset == USDC
    assert text.amount == 100_000_000
    assert any(p.to_account == CAROL and p.asset == USDC for p in fetched.payments)
    assert any(p.to_account == ACCOUNTS["balance"] for p in fetched.payments)
    assert not any(p.to_account == ACCOUNTS["dave"] for p in fetched.payments)
    assert len(by_hash) == 8
    assert fetched.first_ledger is not None and fetched.last_ledger == FIRST + 120
    assert fetched.network_passphrase == TESTNET


def test_a_muxed_destination_is_filtered_on_its_account() -> None:
    from streampay_incident.stellar.strkey import muxed_address

    assert search_probe.search_filters(ESCROW, muxed_address(ALICE, 4242)) == (
        search_probe.search_filters(ESCROW, ALICE)
    )


def test_stand_in_filters_on_destination_and_refuses_a_start_before_retention() -> None:
    filters = search_probe.search_filters(ESCROW, ALICE)
    with LoopbackServer(stand_in().routes()) as server:
        from streampay_incident.probes.http import run_sync

        fetched = run_sync(fetch_rpc_transfers(server.url, ESCROW, since=FIRST_AT, filters=filters))
    # The memo-id payment and the fee-bump (listed under its outer hash) only.
    assert sorted(p.ledger or 0 for p in fetched.payments) == [FIRST + 10, FIRST + 70]
    refusing = stand_in(oldest_ledger=FIRST + 50)
    with LoopbackServer(refusing.routes()) as server:
        fetched = asyncio.run(fetch_rpc_transfers(server.url, ESCROW, since=FIRST_AT))
    assert fetched.coverage.covered_since == close_time(FIRST + 50)


# --- matching rules (pure) --------------------------------------------------------------


def target(sid: str = "s1", *, amount: int = 250_000_000, at: datetime = FIRST_AT) -> SearchTarget:
    return SearchTarget(sid, ESCROW, ALICE, NATIVE, amount, at)


def transfer(
    n: int, *, amount: int = 250_000_000, at: datetime = FIRST_AT, to: str = ALICE
) -> ChainPayment:
    return ChainPayment(
        tx_hash=f"{n:064x}",
        successful=True,
        from_account=ESCROW,
        to_account=to,
        asset=NATIVE,
        amount=amount,
        kind="sac_transfer",
        ledger=FIRST + n,
        closed_at=at,
        operation_id=str(n),
    )


FULL = {(ESCROW, ALICE): SearchCoverage(FIRST, FIRST + 120, FIRST_AT - MAX_SKEW, True, (), "r")}


def test_one_candidate_is_found_two_are_ambiguous() -> None:
    (found,) = match_transfers([target()], [transfer(1)], FULL)
    assert found.outcome == "found" and found.hashes == (f"{1:064x}",) and found.complete
    (ambiguous,) = match_transfers([target()], [transfer(1), transfer(2)], FULL)
    assert ambiguous.outcome == "ambiguous"
    assert ambiguous.hashes == (f"{1:064x}", f"{2:064x}")
    assert "investigate" in ambiguous.note


def test_a_transfer_matches_at_most_one_settlement() -> None:
    """Fixed-rate streams repeat amounts: one transfer, two settlements, neither is proven."""
    results = match_transfers([target("a"), target("b")], [transfer(1)], FULL)
    assert [r.outcome for r in results] == ["ambiguous", "ambiguous"]
    assert "also matches another settlement" in results[0].note


def test_window_starts_at_most_five_minutes_before_created_at() -> None:
    early = transfer(1, at=FIRST_AT - timedelta(minutes=6))
    skewed = transfer(2, at=FIRST_AT - timedelta(minutes=4))
    (result,) = match_transfers([target()], [early, skewed], FULL)
    assert result.outcome == "found" and result.candidates[0].ledger == FIRST + 2
    assert target().window_start(timedelta(hours=1)) == FIRST_AT - MAX_SKEW


def test_other_amount_destination_or_failed_transfer_is_no_candidate() -> None:
    failed = ChainPayment(
        "f" * 64, False, ESCROW, ALICE, NATIVE, 250_000_000, "sac_transfer", closed_at=FIRST_AT
    )
    others = [transfer(1, amount=1), transfer(2, to=BOB), failed]
    (result,) = match_transfers([target()], others, FULL)
    assert result.outcome == "none" and result.complete
    assert result.note == f"no matching transfer in ledgers {FIRST}-{FIRST + 120} (complete)"


def test_muxed_destination_matches_exactly() -> None:
    from streampay_incident.stellar.strkey import muxed_address

    muxed = muxed_address(ALICE, 7)
    muxed_target = SearchTarget("s1", ESCROW, muxed, NATIVE, 250_000_000, FIRST_AT)
    cov = {(ESCROW, muxed): FULL[(ESCROW, ALICE)]}
    (other,) = match_transfers([muxed_target], [transfer(1, to=muxed_address(ALICE, 8))], cov)
    assert other.outcome == "none"
    (same,) = match_transfers([muxed_target], [transfer(1, to=muxed)], cov)
    assert same.outcome == "found"


def test_partial_coverage_says_what_was_not_searched() -> None:
    late = {
        (ESCROW, ALICE): SearchCoverage(FIRST, FIRST + 120, FIRST_AT + timedelta(hours=1), True)
    }
    (result,) = match_transfers([target()], [], late)
    assert result.outcome == "none" and not result.complete
    assert "partial: not searched: ledgers closed from 2026-11-27T01:55:00Z" in result.note
    (unsearched,) = match_transfers([target()], [], {})
    assert "not searched" in unsearched.note and not unsearched.complete
    assert "since 2026-11-27T01:55:00Z" in unsearched.note


def test_pair_coverage_rules() -> None:
    asked = FIRST_AT - MAX_SKEW
    ok = PagingCoverage(asked_since=asked)
    full = pair_coverage(source="r", kind="rpc", asked_since=asked, coverage=ok, stop=None,
                         first_ledger=1, last_ledger=2, network_passphrase=TESTNET)  # fmt: skip
    assert full.complete and full.since == asked
    cut = pair_coverage(source="r", kind="rpc", asked_since=asked, coverage=None, stop=None)
    assert not cut.complete and "deadline" in cut.gaps[0]
    stop = PagingStop("r", "getEvents", "unreachable", "getEvents: refused")
    failed = pair_coverage(source="r", kind="rpc", asked_since=asked, coverage=ok, stop=stop)
    assert not failed.complete and "refused" in failed.gaps[0]
    unverified = PagingCoverage(asked_since=asked, unverified=True)
    unknown = pair_coverage(
        source="h", kind="horizon", asked_since=asked, coverage=unverified, stop=None
    )
    assert not unknown.complete and unknown.since is None
    p23 = pair_coverage(source="r", kind="rpc", asked_since=asked, coverage=ok, stop=None,
                        first_ledger=59_000_000, last_ledger=60_000_000,
                        network_passphrase=PUBLIC)  # fmt: skip
    assert not p23.complete and "58,762,517-59,501,299" in p23.gaps[0]


def test_incomplete_event_range_only_on_pubnet_and_only_overlapping() -> None:
    assert incomplete_event_range(1, 2, TESTNET) is None
    assert incomplete_event_range(59_600_000, None, PUBLIC) is None
    assert incomplete_event_range(None, 58_000_000, PUBLIC) is None
    assert incomplete_event_range(None, None, PUBLIC) is not None
    assert incomplete_event_range(58_000_000, 58_800_000, PUBLIC) is not None


@given(
    amounts=st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=4),
    paid=st.lists(st.sampled_from([1, 2, 3]), max_size=5),
)
def test_no_transfer_is_claimed_twice(amounts: list[int], paid: list[int]) -> None:
    """Property: a transfer is the found transfer of at most one settlement."""
    targets = [target(f"s{i}", amount=a) for i, a in enumerate(amounts)]
    transfers = [transfer(i + 1, amount=a) for i, a in enumerate(paid)]
    results = match_transfers(targets, transfers, FULL)
    claimed = [r.hashes[0] for r in results if r.outcome == "found"]
    assert len(claimed) == len(set(claimed))
    for r in results:
        assert (r.outcome == "ambiguous") == (len(r.candidates) > 1 or (
            len(r.candidates) == 1 and sum(a == r.candidates[0].amount for a in amounts) > 1
        ))  # fmt: skip


def test_what_needs_a_search_and_what_it_looks_for() -> None:
    s = Settlement("s1", "processing", FIRST_AT)
    assert needs_search(s, {})
    hashed = Settlement("s2", "processing", FIRST_AT, tx_hash="a" * 64)
    assert needs_search(hashed, {"a" * 64: ChainTransaction("a" * 64, "not_found")})
    assert not needs_search(hashed, {"a" * 64: ChainTransaction("a" * 64, "success")})
    assert search_target(s) is None
    row = Payout("p1", "s1", ALICE, NATIVE, 5, "pending", FIRST_AT)
    assert search_target(s, payouts=[row]) is None  # no payer
    got = search_target(s, payouts=[row], payer=ESCROW)
    assert got == SearchTarget("s1", ESCROW, ALICE, NATIVE, 5, FIRST_AT)
    other = Payout("p2", "s1", BOB, NATIVE, 5, "pending", FIRST_AT)
    assert search_target(s, payouts=[row, other], payer=ESCROW) is None  # rows disagree
    full = Settlement("s3", "pending", FIRST_AT, payer=ESCROW, destination=CAROL, asset=USDC,
                      amount=30_000_000)  # fmt: skip
    assert search_target(full) == SearchTarget("s3", ESCROW, CAROL, USDC, 30_000_000, FIRST_AT)


# --- the probe (I/O) --------------------------------------------------------------------


def test_search_falls_back_to_the_next_source_and_keeps_within_the_timeout() -> None:
    pairs = [(ESCROW, ALICE, FIRST_AT - MAX_SKEW)]
    with RefusingEndpoint() as refused, LoopbackServer(stand_in().routes()) as good:
        (answer,) = search_probe.search_transfers_sync(
            pairs, rpc_urls=[refused.url, good.url], timeout=3
        )
    assert answer.source == good.url and answer.fetched is not None
    assert len(answer.fetched.payments) == 2
    with RefusingEndpoint() as refused:
        (failed,) = search_probe.search_transfers_sync(pairs, rpc_urls=[refused.url], timeout=2)
    assert failed.fetched is not None and failed.fetched.stop is not None
    from loopback import HANG

    with LoopbackServer({"*": HANG}) as hung:
        (late,) = search_probe.search_transfers_sync(pairs, rpc_urls=[hung.url], timeout=0.3)
    assert late.fetched is None
    (none,) = search_probe.search_transfers_sync(pairs, timeout=0.1)
    assert none.fetched is None and none.source == ""
    assert search_probe.payments_of([answer, late])


# --- end to end: settlements --rpc (§2) -------------------------------------------------


def export(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / "settlements.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def settle(*args: str) -> dict[str, Any]:
    from click.testing import CliRunner

    from streampay_incident.cli import main

    result = CliRunner().invoke(
        main,
        ["settlements", *args, "--format", "json"],
        env={"STREAMPAY_INCIDENT_DISABLE_PLUGINS": "all"},
    )
    assert result.exit_code in (0, 1), result.output
    return dict(json.loads(result.output))


NOW = "2026-11-27T03:00:00Z"
ROW = {
    "status": "processing",
    "created_at": "2026-11-27T02:00:30Z",
    "updated_at": "2026-11-27T02:01:00Z",
    "lease_until": "2026-11-27T02:10:00Z",
    "attempts": 1,
}


def test_a_processing_row_with_no_hash_is_found_landed(tmp_path: Path) -> None:
    rows = [
        {"settlement_id": "bob", **ROW, "payer": ESCROW, "destination": BOB,
         "asset": f"USDC:{USDC.issuer}", "amount": "10"},
        {"settlement_id": "twice", **ROW, "destination": ALICE, "asset": "native",
         "amount": "25"},
        {"settlement_id": "nothing", **ROW, "destination": CAROL, "asset": "native",
         "amount": "1"},
        {"settlement_id": "unknown-payment", **ROW},
    ]  # fmt: skip
    path = export(tmp_path, rows)
    with LoopbackServer(stand_in().routes()) as rpc:
        doc = settle(str(path), "--rpc", rpc.url, "--network", "testnet", "--now", NOW,
                     "--escrow", ESCROW, "--timeout", "5")  # fmt: skip
        off = settle(str(path), "--rpc", rpc.url, "--network", "testnet", "--now", NOW,
                     "--no-search")  # fmt: skip
    verdicts = {v["settlement_id"]: v for v in doc["settlements"]}
    assert (verdicts["bob"]["state"], verdicts["bob"]["retry_reason"]) == ("settled", "tx_landed")
    assert verdicts["bob"]["action"] == "do_not_retry"
    found = next(f for f in doc["findings"] if f["subject"] == "bob")
    assert found["code"] == "SETTLEMENT_CONFIRMED_NOT_RECORDED"
    assert found["evidence"]["search"]["outcome"] == "found"
    bob_hash = next(e["txHash"] for e in EVENTS if e["ledger"] == FIRST + 20)
    assert found["evidence"]["search"]["tx_hashes"] == [bob_hash]
    assert verdicts["twice"]["retry_safe"] is False
    assert verdicts["twice"]["retry_reason"] == "search_ambiguous"
    assert verdicts["twice"]["action"] == "investigate"
    ambiguous = next(
        f for f in doc["findings"]
        if f["subject"] == "twice" and f["code"] == "SETTLEMENT_SEARCH_AMBIGUOUS"
    )  # fmt: skip
    assert len(ambiguous["evidence"]["search"]["tx_hashes"]) == 2
    nothing = [f for f in doc["findings"] if f["subject"] == "nothing"]
    assert nothing and "no matching transfer in ledgers" in nothing[0]["summary"]
    assert nothing[0]["evidence"]["search"]["complete"] is True
    assert doc["search"]["summary"]["found"] == 1
    assert doc["search"]["summary"]["ambiguous"] == 1
    assert doc["search"]["summary"]["not_searchable"] == 1
    assert doc["search"]["settlements"]["bob"]["outcome"] == "found"
    # --no-search: the row stays unknown.
    assert {v["settlement_id"]: v["retry_reason"] for v in off["settlements"]}["bob"] != "tx_landed"
    assert "search" not in off["inputs"]


def test_escrow_option_is_checked(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from streampay_incident.cli import main

    path = export(tmp_path, [{"settlement_id": "s", **ROW}])
    seed = "S" + "A" * 55
    bad = CliRunner().invoke(main, ["settlements", str(path), "--escrow", seed])
    assert bad.exit_code == 2 and seed not in bad.output
    wrong = CliRunner().invoke(main, ["settlements", str(path), "--escrow", "GNOPE"])
    assert wrong.exit_code == 2 and "not a valid" in wrong.output


def test_bad_payment_columns_are_input_errors(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from streampay_incident.cli import main

    rows = [{"settlement_id": "s", **ROW, "payer": "MNOPE", "destination": "x", "asset": "??",
             "amount": "-1"},
            {"settlement_id": "t", **ROW, "escrow": 5}]  # fmt: skip
    result = CliRunner().invoke(main, ["settlements", str(export(tmp_path, rows))])
    assert result.exit_code == 2
    for field in ("payer", "destination", "asset", "amount", "escrow"):
        assert field in result.output


def test_partial_coverage_without_a_start_gap_names_only_its_gaps() -> None:
    cut = {(ESCROW, ALICE): SearchCoverage(FIRST, FIRST + 9, FIRST_AT - MAX_SKEW, False, ("x",))}
    (result,) = match_transfers([target()], [], cut)
    expected = f"no matching transfer in ledgers {FIRST}-{FIRST + 9} (partial: not searched: x)"
    assert result.note == expected
    assert result.to_json()["not_searched"] == ["x"]


def test_search_use_case_reads_payouts_and_says_what_it_could_not_read() -> None:
    from streampay_incident.usecases.search import SubmissionSearch, search_submissions
    from streampay_incident.usecases.settlements import SettlementChain

    s = Settlement("s1", "pending", FIRST_AT, payer=ESCROW)
    row = Payout("p1", "s1", ALICE, NATIVE, 5, "pending", FIRST_AT)
    asked: list[Any] = []

    def fetch(pairs: list[Any]) -> list[Any]:
        asked.extend(pairs)
        return [search_probe.PairSearch(ESCROW, ALICE, pairs[0][2], "r", "rpc", None)]

    found = search_submissions([s], SettlementChain(), fetch=fetch, payouts=[row])
    assert asked == [(ESCROW, ALICE, FIRST_AT - MAX_SKEW)]
    (result,) = found.results
    assert result.outcome == "none" and not result.complete
    assert "the search deadline passed first" in result.note
    assert found.summary()["none"] == 1 and "1 not found" in found.inputs()["search"]
    assert search_submissions([s], SettlementChain(), fetch=fetch) == SubmissionSearch(skipped=1)


def test_search_falls_back_to_horizon_payments() -> None:
    from loopback import fixture_reply, horizon_routes

    routes = horizon_routes()
    routes["GET /accounts/*/payments"] = fixture_reply("horizon/account_payments_pubnet_docs.json")
    pairs = [(ESCROW, ALICE, FIRST_AT)]
    with RefusingEndpoint() as refused, LoopbackServer(routes) as horizon:
        (answer,) = search_probe.search_transfers_sync(
            pairs, rpc_urls=[refused.url], horizon_urls=[horizon.url], timeout=3
        )
    assert answer.kind == "horizon" and answer.source == horizon.url
    assert answer.fetched is not None and answer.fetched.stop is None


@given(
    safe=st.lists(st.booleans(), min_size=1, max_size=4),
    outcomes=st.lists(st.sampled_from(["found", "ambiguous", "none"]), min_size=1, max_size=4),
)
def test_a_search_never_makes_a_verdict_retry_safe(safe: list[bool], outcomes: list[str]) -> None:
    """Property: the overlay only takes retry safety away (ambiguity), never grants it."""
    from streampay_incident.checks.search import SearchResult, overlay_search
    from streampay_incident.model import SettlementVerdict

    verdicts = [
        SettlementVerdict(f"s{i}", "stuck", s, "never_submitted" if s else "unknown_submission")
        for i, s in enumerate(safe)
    ]
    results = [
        SearchResult(f"s{i}", o, (transfer(i + 1),) if o != "none" else ())  # type: ignore[arg-type]
        for i, o in enumerate(outcomes)
    ]
    after, findings = overlay_search(verdicts, [], results)
    for before, now in zip(verdicts, after, strict=True):
        assert now.retry_safe <= before.retry_safe
        kind = (
            outcomes[int(now.settlement_id[1:])]
            if int(now.settlement_id[1:]) < len(outcomes)
            else None
        )
        if kind == "ambiguous":
            assert not now.retry_safe and now.action == "investigate"
    assert all(f.code == "SETTLEMENT_SEARCH_AMBIGUOUS" for f in findings)
