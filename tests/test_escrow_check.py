"""The pure escrow reconciliation: each trap of "count only what actually moved", and properties."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streampay_incident.amounts import parse_stroops
from streampay_incident.checks.escrow import (
    MERGE_AMOUNT_NOTE,
    ChainPayment,
    CoverageWindow,
    _Transactions,
    base_account,
    is_outflow,
    reconcile_escrow,
)
from streampay_incident.codes import Severity
from streampay_incident.model import NATIVE, Asset, Payout

# Real accounts from the recorded Horizon bodies in tests/fixtures/stellar.
ESCROW = "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"
ALICE = "GASWJWFRYE55KC7MGANZMMRBK5NPXT3HMPDQ6SEXZN6ZPWYXVVYBFRTE"
BOB = "GDV4KECLSZLKRVH4ZTWVAS4I3W2LPAPV66ADFFUZKGIVOTK6GMKGJT53"
CAROL = "GBDSJHAGNQDL2WZ5LBRSIVI6MUHJO6CLKF5XFVUK7GMPUQ4NBLSYVAHX"
ESCROW_CONTRACT = "CBXVVJ5BOTUVRPXUY54LXFILWC4ZTJWRP2GIVHBMOEAOPHSLGHBG3NNP"
USD = Asset("USD", "GDUKMGUGDZQK6YHYA5Z6AY2G4XDSZPSZ3SW5UN3ARVMO6QSRDWP5YLEX")
EURT = Asset("EURT", "GAP5LETOV6YIE62YAM56STDANPRDO7ZFDBGSNHJQIYGGKSMOZAHOOS2S")

T0 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
WINDOW = CoverageWindow(since=T0 - timedelta(hours=1), until=T0 + timedelta(hours=1))


def muxed(base: str, muxed_id: int) -> str:
    from stellar_sdk import MuxedAccount

    return MuxedAccount(base, muxed_id).account_muxed


def h(n: int) -> str:
    return f"{n:064x}"


def row(
    pid: str,
    tx: int | str | None,
    *,
    dest: str = ALICE,
    asset: Asset = NATIVE,
    amount: int = 25_0000000,
    status: str = "confirmed",
    at: datetime = T0,
) -> Payout:
    tx_hash = h(tx) if isinstance(tx, int) else tx
    return Payout(
        payout_id=pid,
        settlement_id=f"s-{pid}",
        destination=dest,
        asset=asset,
        amount=amount,
        status=status,  # type: ignore[arg-type]
        created_at=at,
        tx_hash=tx_hash,
    )


def pay(
    tx: int | str,
    *,
    src: str = ESCROW,
    dest: str = ALICE,
    asset: Asset = NATIVE,
    amount: int | None = 25_0000000,
    kind: str = "payment",
    ok: bool = True,
    hashes: tuple[str, ...] = (),
    at: datetime | None = T0 + timedelta(seconds=6),
    op: str | None = None,
    **extra: object,
) -> ChainPayment:
    return ChainPayment(
        tx_hash=h(tx) if isinstance(tx, int) else tx,
        successful=ok,
        from_account=src,
        to_account=dest,
        asset=asset,
        amount=amount,
        kind=kind,  # type: ignore[arg-type]
        hashes=hashes,
        closed_at=at,
        operation_id=op,
        **extra,  # type: ignore[arg-type]
    )


def codes(findings: list) -> list[tuple[str, str]]:
    return [(f.code, f.subject) for f in findings]


def run(rows: list[Payout], payments: list[ChainPayment], window: CoverageWindow = WINDOW):
    return reconcile_escrow(rows, payments, escrow=ESCROW, window=window)


# --- the basics ----------------------------------------------------------------------------


def test_matching_records_and_payments_give_no_finding() -> None:
    rows = [row("p1", 1), row("p2", 2, dest=BOB, asset=USD, amount=1)]
    payments = [pay(1), pay(2, dest=BOB, asset=USD, amount=1)]
    assert run(rows, payments) == []


def test_payment_out_of_escrow_without_a_row_is_an_unrecorded_outflow() -> None:
    findings = run([row("p1", 1)], [pay(1), pay(9, dest=BOB, amount=12_5000000, op="77")])
    assert codes(findings) == [("ESCROW_UNRECORDED_OUTFLOW", h(9))]
    f = findings[0]
    assert f.severity is Severity.CRITICAL
    assert f.runbook == "docs/runbooks/double-payout.md#escrow-unrecorded-outflow"
    assert f.evidence["amount_at_risk"] == {"native": "12.5000000"}
    assert f.evidence["destinations"] == [BOB]
    assert f.evidence["on_chain"][0]["amount"] == "12.5000000"
    assert f.evidence["on_chain"][0]["operation_id"] == "77"
    assert f.evidence["payout_ids"] == []
    assert "12.5000000 native" in f.summary


def test_confirmed_row_without_a_payment_is_not_on_chain() -> None:
    findings = run([row("p1", 1), row("p2", 2)], [pay(1)])
    assert codes(findings) == [("ESCROW_RECORD_NOT_ON_CHAIN", h(2))]
    ev = findings[0].evidence
    assert ev["payout_ids"] == ["p2"]
    assert ev["chain_status"] == "not_found"
    assert ev["recorded"][0]["amount"] == "25.0000000"
    assert ev["recorded"][0]["destination"] == ALICE
    assert ev["window"]["since"] == "2026-11-27T01:00:00Z"


def test_confirmed_row_without_tx_hash_uses_payout_id_as_subject() -> None:
    findings = run([row("p9", None)], [])
    assert codes(findings) == [("ESCROW_RECORD_NOT_ON_CHAIN", "p9")]
    assert findings[0].evidence["chain_status"] == "no_tx_hash"
    assert findings[0].evidence["tx_hashes"] == []


@pytest.mark.parametrize("status", ["pending", "submitted", "failed"])
def test_only_confirmed_rows_can_be_missing(status: str) -> None:
    assert run([row("p1", 1, status=status)], []) == []


def test_rows_sharing_a_missing_hash_give_one_finding() -> None:
    findings = run([row("p1", 5), row("p2", h(5).upper())], [])
    assert codes(findings) == [("ESCROW_RECORD_NOT_ON_CHAIN", h(5))]
    assert findings[0].evidence["payout_ids"] == ["p1", "p2"]
    assert findings[0].evidence["recorded_total"] == {"native": "50.0000000"}
    assert findings[0].summary.startswith("payouts p1, p2 are confirmed")


def test_tx_hashes_compare_case_insensitively() -> None:
    assert run([row("p1", h(1).upper())], [pay(h(1).upper())]) == []


# --- the traps -----------------------------------------------------------------------------


def test_failed_transactions_move_nothing() -> None:
    # A confirmed row whose transaction failed on chain: nothing left the escrow.
    findings = run([row("p1", 1)], [pay(1, ok=False), pay(2, ok=False, dest=BOB)])
    assert codes(findings) == [("ESCROW_RECORD_NOT_ON_CHAIN", h(1))]
    ev = findings[0].evidence
    assert ev["chain_status"] == "failed"
    assert ev["on_chain"][0]["successful"] is False
    assert "failed on chain" in findings[0].summary


def test_failed_payment_without_a_row_is_not_an_outflow() -> None:
    assert run([], [pay(3, ok=False)]) == []


def test_successful_tx_that_paid_nothing_from_the_escrow() -> None:
    findings = run([row("p1", 1)], [pay(1, src=BOB, dest=ALICE)])
    assert findings[0].evidence["chain_status"] == "not_from_escrow"


@pytest.mark.parametrize("recorded", ["outer", "inner"])
def test_fee_bump_matches_either_hash(recorded: str) -> None:
    outer, inner = h(100), h(101)
    payments = [pay(outer, hashes=(outer, inner))]
    rows = [row("p1", outer if recorded == "outer" else inner)]
    assert run(rows, payments) == []


def test_fee_bump_hashes_join_across_records() -> None:
    # One record knows only the outer hash, another (joined) knows both.
    outer, inner = h(100), h(101)
    payments = [pay(outer, op="1"), pay(inner, hashes=(outer,), dest=BOB, op="2")]
    rows = [row("p1", inner), row("p2", outer, dest=BOB)]
    assert run(rows, payments) == []


def test_unrecorded_fee_bump_is_one_finding_listing_both_hashes() -> None:
    outer, inner = h(100), h(101)
    findings = run([], [pay(inner, hashes=(outer, inner))])
    assert codes(findings) == [("ESCROW_UNRECORDED_OUTFLOW", inner)]
    assert findings[0].evidence["tx_hashes"] == sorted([outer, inner])


def test_path_payment_compares_what_the_destination_received() -> None:
    path = pay(
        7,
        kind="path_payment_strict_send",
        asset=USD,
        amount=10_0000000,
        source_asset=NATIVE,
        source_amount=42_0000000,
    )
    assert run([row("p1", 7, asset=USD, amount=10_0000000)], [path]) == []
    findings = run([row("p1", 7, asset=NATIVE, amount=42_0000000)], [path])
    assert codes(findings) == [("ESCROW_AMOUNT_MISMATCH", h(7))]
    ev = findings[0].evidence
    assert ev["differences"] == ["asset", "amount"]
    assert ev["on_chain"][0]["source_amount"] == "42.0000000"
    assert ev["on_chain"][0]["source_asset"] == "native"
    assert ev["on_chain"][0]["amount"] == "10.0000000"


def test_create_account_moves_the_starting_balance_out() -> None:
    created = pay(8, kind="create_account", dest=CAROL, amount=5_0000000)
    findings = run([], [created])
    assert codes(findings) == [("ESCROW_UNRECORDED_OUTFLOW", h(8))]
    assert findings[0].evidence["amount_at_risk"] == {"native": "5.0000000"}
    assert run([row("p1", 8, dest=CAROL, amount=5_0000000)], [created]) == []


def test_account_merge_counts_with_unknown_amount() -> None:
    merge = pay(9, kind="account_merge", dest=CAROL, amount=None)
    findings = run([], [merge])
    assert codes(findings) == [("ESCROW_UNRECORDED_OUTFLOW", h(9))]
    ev = findings[0].evidence
    assert ev["amount_unknown"] == MERGE_AMOUNT_NOTE
    assert ev["on_chain"][0]["amount"] is None
    assert ev["on_chain"][0]["amount_note"] == MERGE_AMOUNT_NOTE
    assert "unknown amount" in findings[0].summary
    # Matched by tx hash, destination and asset: the amount cannot be checked.
    assert run([row("p1", 9, dest=CAROL, amount=123)], [merge]) == []
    wrong = run([row("p1", 9, dest=BOB, amount=123)], [merge])
    assert codes(wrong) == [("ESCROW_AMOUNT_MISMATCH", h(9))]
    assert wrong[0].evidence["differences"] == ["destination"]
    assert wrong[0].evidence["amount_unknown"] == MERGE_AMOUNT_NOTE


def test_merge_alongside_known_payments_keeps_known_sums() -> None:
    merge = pay(9, kind="account_merge", dest=CAROL, amount=None, op="2")
    findings = run([], [pay(9, dest=BOB, amount=3, op="1"), merge])
    ev = findings[0].evidence
    assert ev["amount_at_risk"] == {"native": "0.0000003"}
    assert "0.0000003 native and an unknown amount" in findings[0].summary


def test_merge_of_another_account_into_the_escrow_is_funding() -> None:
    assert run([], [pay(9, kind="account_merge", src=BOB, dest=ESCROW, amount=None)]) == []


def test_payments_into_the_escrow_are_not_outflows() -> None:
    funding = [pay(11, src=BOB, dest=ESCROW), pay(12, src=CAROL, dest=muxed(ESCROW, 7))]
    assert run([], funding) == []


def test_escrow_paying_itself_is_not_an_outflow() -> None:
    convert = pay(13, kind="path_payment_strict_receive", dest=muxed(ESCROW, 3), asset=USD)
    assert run([], [convert]) == []


def test_payment_from_a_muxed_escrow_source_counts() -> None:
    findings = run([], [pay(14, src=muxed(ESCROW, 99))])
    assert codes(findings) == [("ESCROW_UNRECORDED_OUTFLOW", h(14))]


def test_muxed_destinations_compare_exactly() -> None:
    m1, m2 = muxed(ALICE, 1), muxed(ALICE, 2)
    assert run([row("p1", 1, dest=m1)], [pay(1, dest=m1)]) == []
    for recorded in (ALICE, m2):
        findings = run([row("p1", 1, dest=recorded)], [pay(1, dest=m1)])
        assert codes(findings) == [("ESCROW_AMOUNT_MISMATCH", h(1))]
        assert findings[0].evidence["differences"] == ["destination"]
        assert findings[0].evidence["on_chain"][0]["destination"] == m1
        assert findings[0].evidence["recorded"][0]["destination"] == recorded


def test_amount_mismatch_evidence() -> None:
    findings = run([row("p1", 1, amount=25_0000000)], [pay(1, amount=250_0000000)])
    assert codes(findings) == [("ESCROW_AMOUNT_MISMATCH", h(1))]
    ev = findings[0].evidence
    assert ev["differences"] == ["amount"]
    assert ev["recorded_total"] == {"native": "25.0000000"}
    assert ev["on_chain_total"] == {"native": "250.0000000"}
    assert ev["amount_at_risk"] == {"native": "225.0000000"}
    assert ev["payout_ids"] == ["p1"]
    assert "amount differ" in findings[0].summary


def test_asset_mismatch_same_code_other_issuer() -> None:
    fake_usd = Asset("USD", CAROL)
    findings = run([row("p1", 1, asset=USD, amount=5)], [pay(1, asset=fake_usd, amount=5)])
    assert findings[0].evidence["differences"] == ["asset"]


def test_native_and_xlm_are_the_same_asset() -> None:
    assert run([row("p1", 1, asset=Asset("XLM"))], [pay(1, asset=Asset("native"))]) == []


def test_extra_payment_inside_a_recorded_transaction() -> None:
    payments = [pay(1, op="1"), pay(1, dest=BOB, amount=7, op="2")]
    findings = run([row("p1", 1)], payments)
    assert codes(findings) == [("ESCROW_AMOUNT_MISMATCH", h(1))]
    ev = findings[0].evidence
    assert [p["destination"] for p in ev["unmatched_on_chain"]] == [BOB]
    assert ev["unmatched_recorded"] == []
    assert ev["differences"] == []
    assert "match no row" in findings[0].summary


def test_recorded_row_missing_from_a_batch_transaction() -> None:
    rows = [row("p1", 1), row("p2", 1, dest=BOB)]
    findings = run(rows, [pay(1)])
    assert codes(findings) == [("ESCROW_AMOUNT_MISMATCH", h(1))]
    ev = findings[0].evidence
    assert [r["payout_id"] for r in ev["unmatched_recorded"]] == ["p2"]
    assert "match no payment" in findings[0].summary


def test_batch_transaction_pairs_in_any_order() -> None:
    rows = [row("p1", 1, dest=BOB, amount=2), row("p2", 1, dest=ALICE, amount=1)]
    payments = [pay(1, dest=ALICE, amount=1, op="1"), pay(1, dest=BOB, amount=2, op="2")]
    assert run(rows, payments) == []
    payments = [pay(1, dest=ALICE, amount=2, op="1"), pay(1, dest=BOB, amount=1, op="2")]
    findings = run(rows, payments)
    assert findings[0].evidence["differences"] == ["payments"]


def test_soroban_escrow_contract_transfers() -> None:
    out = pay(20, src=ESCROW_CONTRACT, kind="sac_transfer", dest=ALICE, asset=USD, amount=9)
    into = pay(21, src=BOB, kind="sac_transfer", dest=ESCROW_CONTRACT, asset=USD, amount=9)
    findings = reconcile_escrow([], [out, into], escrow=ESCROW_CONTRACT, window=WINDOW)
    assert codes(findings) == [("ESCROW_UNRECORDED_OUTFLOW", h(20))]
    matched = reconcile_escrow(
        [row("p1", 20, asset=USD, amount=9)], [out, into], escrow=ESCROW_CONTRACT, window=WINDOW
    )
    assert matched == []


# --- the window ----------------------------------------------------------------------------


def test_rows_outside_the_window_are_reported_not_called_missing() -> None:
    early = row("p-early", 30, at=T0 - timedelta(days=2))
    late = row("p-late", 31, at=T0 + timedelta(days=2))
    inside = row("p-in", 32)
    findings = run([early, late, inside], [])
    assert codes(findings) == [
        ("ESCROW_OUTSIDE_WINDOW", ESCROW),
        ("ESCROW_RECORD_NOT_ON_CHAIN", h(32)),
    ]
    outside = findings[0]
    assert outside.severity is Severity.INFO
    assert outside.evidence["payout_ids"] == ["p-early", "p-late"]
    assert outside.evidence["tx_hashes"] == [h(30), h(31)]
    assert "2 confirmed payout row(s)" in outside.summary
    assert "2026-11-27T01:00:00Z .. 2026-11-27T03:00:00Z" in outside.summary


def test_row_outside_the_window_that_matches_is_fine() -> None:
    early = row("p1", 1, at=T0 - timedelta(days=2))
    assert run([early], [pay(1, at=T0 - timedelta(days=2))]) == []


def test_payments_outside_the_window_are_not_judged() -> None:
    old = pay(40, at=T0 - timedelta(days=3))
    findings = run([], [old])
    assert codes(findings) == [("ESCROW_OUTSIDE_WINDOW", ESCROW)]
    assert findings[0].evidence["outside_on_chain"][0]["tx_hash"] == h(40)
    assert "1 escrow payment(s)" in findings[0].summary


def test_open_window_and_unknown_times() -> None:
    window = CoverageWindow()
    assert window.contains(None) and window.contains(T0)
    assert window.to_json() == {"since": None, "until": None, "complete": True, "note": ""}
    findings = run([row("p1", 1, at=T0 - timedelta(days=900))], [pay(2, at=None)], window)
    assert codes(findings) == [
        ("ESCROW_RECORD_NOT_ON_CHAIN", h(1)),
        ("ESCROW_UNRECORDED_OUTFLOW", h(2)),
    ]


def test_incomplete_window_says_so() -> None:
    window = CoverageWindow(
        since=T0, until=None, complete=False, note="RPC retention starts after --since"
    )
    findings = run([], [], window)
    assert codes(findings) == [("ESCROW_COVERAGE_INCOMPLETE", ESCROW)]
    assert "RPC retention starts after --since" in findings[0].summary
    assert findings[0].severity.value == "warning"
    assert findings[0].evidence["window"]["complete"] is False
    assert findings[0].evidence["window"]["until"] is None
    assert findings[0].evidence["rows_not_checked"] == 0
    assert "endpoint" not in findings[0].evidence


def test_failed_source_calls_no_row_missing() -> None:
    """Issue 9 §6: a refused port gave ten false criticals; now none, the rows are counted."""
    window = CoverageWindow(
        complete=False,
        note="paging stopped at the start: Horizon root: no complete answer (refused)",
        failed_endpoint="http://127.0.0.1:9",
        failure="Horizon root: no complete answer (refused)",
    )
    rows = [row(f"p{i}", i, at=T0 + timedelta(minutes=i)) for i in range(10)]
    rows.append(row("pending", 99, at=T0, status="submitted"))
    findings = run(rows, [], window)
    assert codes(findings) == [("ESCROW_COVERAGE_INCOMPLETE", ESCROW)]
    (finding,) = findings
    assert finding.evidence["rows_not_checked"] == 10
    assert finding.evidence["payout_ids"] == [f"p{i}" for i in range(10)]
    assert finding.evidence["endpoint"] == "http://127.0.0.1:9"
    assert finding.evidence["error"] == "Horizon root: no complete answer (refused)"
    assert finding.summary.startswith(
        "chain source http://127.0.0.1:9 failed: Horizon root: no complete answer (refused)"
    )
    assert "10 confirmed payout row(s) could not be checked" in finding.summary
    assert finding.evidence["window"]["failed_endpoint"] == "http://127.0.0.1:9"
    bare = CoverageWindow(complete=False, failed_endpoint="http://h", failure="HTTP 503")
    (only,) = run([], [], bare)
    assert only.summary.startswith("chain source http://h failed: HTTP 503; 0 confirmed")


def test_incomplete_window_still_reports_what_it_saw() -> None:
    """What the source did return still counts: an unrecorded outflow is seen, not assumed."""
    window = CoverageWindow(since=T0, complete=False, note="retention")
    findings = run([row("p1", 1, at=T0 + timedelta(hours=1))], [pay(2, at=T0)], window)
    assert codes(findings) == [
        ("ESCROW_COVERAGE_INCOMPLETE", ESCROW),
        ("ESCROW_UNRECORDED_OUTFLOW", h(2)),
    ]
    assert findings[0].evidence["payout_ids"] == ["p1"]
    assert findings[0].summary.startswith("the chain data does not cover everything asked (")


# --- helpers -------------------------------------------------------------------------------


def test_base_account_of_muxed_address() -> None:
    assert base_account(muxed(ALICE, 12345)) == ALICE
    assert base_account(ALICE) == ALICE
    assert base_account(ESCROW_CONTRACT) == ESCROW_CONTRACT
    not_base32 = "M" + "1" * 68
    assert base_account(not_base32) == not_base32
    bad_checksum = "MAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    assert base_account(bad_checksum) == bad_checksum
    # "MQ..." decodes to version byte 0x64, not a muxed account's 0x60.
    wrong_version = "MQ" + "A" * 67
    assert base_account(wrong_version) == wrong_version


def test_hash_groups_join_transitively() -> None:
    txs = _Transactions()
    txs.join(["d", "e"])
    txs.join(["c", "d"])
    txs.join(["b", "c"])
    txs.join(["a", "b"])
    assert {txs.find(x) for x in "abcde"} == {"a"}
    assert txs.known("e") and not txs.known("z")


def test_is_outflow() -> None:
    assert is_outflow(pay(1), ESCROW)
    assert not is_outflow(pay(1, src=BOB), ESCROW)
    assert not is_outflow(pay(1, dest=ESCROW), ESCROW)


def test_all_hashes_lowercases_and_dedupes() -> None:
    p = pay(h(1).upper(), hashes=(h(1), h(2).upper(), ""))
    assert p.all_hashes == (h(1), h(2))


# --- properties ----------------------------------------------------------------------------

DESTS = [ALICE, BOB, CAROL]
ASSETS = [NATIVE, USD, EURT]


@st.composite
def clean_world(draw: st.DrawFn) -> tuple[list[Payout], list[ChainPayment]]:
    """Payout rows and the chain payments they describe, with every trap mixed in."""
    n = draw(st.integers(0, 12))
    rows: list[Payout] = []
    payments: list[ChainPayment] = []
    for i in range(n):
        dest = draw(st.sampled_from(DESTS))
        if draw(st.booleans()):
            dest = muxed(dest, draw(st.integers(0, 2**64 - 1)))
        asset = draw(st.sampled_from(ASSETS))
        amount = draw(st.integers(1, 2**63 - 1))
        kind = draw(st.sampled_from(["payment", "path_payment_strict_send", "create_account"]))
        at = T0 + timedelta(seconds=draw(st.integers(-3000, 3000)))
        outer, inner = h(1000 + i), h(5000 + i)
        fee_bump = draw(st.booleans())
        recorded = inner if fee_bump and draw(st.booleans()) else outer
        rows.append(row(f"p{i}", recorded, dest=dest, asset=asset, amount=amount, at=at))
        payments.append(
            pay(
                outer,
                hashes=(outer, inner) if fee_bump else (),
                dest=dest,
                asset=asset,
                amount=amount,
                kind=kind,
                at=at + timedelta(seconds=5),
                op=str(i),
                source_amount=amount * 2 if kind.startswith("path") else None,
            )
        )
        if draw(st.booleans()):  # a failed attempt that moved nothing
            payments.append(pay(h(9000 + i), ok=False, dest=dest, amount=amount, at=at))
        if draw(st.booleans()):  # funding into the escrow
            payments.append(pay(h(7000 + i), src=dest, dest=ESCROW, amount=amount, at=at))
        if draw(st.booleans()):  # a row that never got anywhere
            status = draw(st.sampled_from(["pending", "submitted", "failed"]))
            rows.append(row(f"q{i}", None, status=status, at=at))
    return rows, payments


@given(clean_world())
def test_no_false_positives_on_payments_built_from_the_rows(
    world: tuple[list[Payout], list[ChainPayment]],
) -> None:
    rows, payments = world
    assert run(rows, payments) == []


@st.composite
def messy_world(draw: st.DrawFn) -> tuple[list[Payout], list[ChainPayment]]:
    rows, payments = draw(clean_world())
    rows = [
        r
        for r in rows
        if not draw(st.booleans()) or r.status != "confirmed"  # drop some records
    ]
    extra = draw(st.integers(0, 4))
    for i in range(extra):
        payments.append(
            pay(h(20000 + i), dest=draw(st.sampled_from(DESTS)), amount=draw(st.integers(1, 99)))
        )
    for i in range(draw(st.integers(0, 4))):
        tx = draw(st.sampled_from([h(1000 + j) for j in range(4)] + [h(30000 + i)]))
        rows.append(
            row(
                f"x{i}",
                tx,
                amount=draw(st.integers(1, 99)),
                at=T0 + timedelta(hours=draw(st.sampled_from([-30, 0, 30]))),
            )
        )
    return rows, payments


def _key(findings: list) -> list:
    return [(f.code, f.severity, f.subject, f.summary, f.evidence) for f in findings]


@given(messy_world(), st.randoms(use_true_random=False))
def test_order_does_not_matter(
    world: tuple[list[Payout], list[ChainPayment]], rnd: random.Random
) -> None:
    rows, payments = world
    expected = _key(run(rows, payments))
    rnd.shuffle(rows)
    rnd.shuffle(payments)
    assert _key(run(rows, payments)) == expected


@given(messy_world())
def test_every_finding_records_share_its_subject(
    world: tuple[list[Payout], list[ChainPayment]],
) -> None:
    rows, payments = world
    by_id = {r.payout_id: r for r in rows}
    for f in run(rows, payments):
        ev = f.evidence
        if f.code == "ESCROW_OUTSIDE_WINDOW":
            assert f.subject == ESCROW
            assert all(not WINDOW.contains(by_id[p].created_at) for p in ev["payout_ids"])
            continue
        for p in ev.get("on_chain", []):
            assert f.subject in p["tx_hashes"]
        for r in ev.get("recorded", []):
            if f.code == "ESCROW_RECORD_NOT_ON_CHAIN":
                assert f.subject in (r["tx_hash"], r["payout_id"])
            else:
                assert r["tx_hash"] in ev["tx_hashes"]
        assert sorted(ev["payout_ids"]) == sorted(r["payout_id"] for r in ev.get("recorded", []))


@given(messy_world())
def test_evidence_amounts_round_trip(world: tuple[list[Payout], list[ChainPayment]]) -> None:
    rows, payments = world
    by_op = {p.operation_id: p for p in payments if p.operation_id}
    by_id = {r.payout_id: r for r in rows}
    for f in run(rows, payments):
        for p in f.evidence.get("on_chain", []):
            if p["operation_id"] in by_op and p["amount"] is not None:
                assert parse_stroops(p["amount"]) == by_op[p["operation_id"]].amount
        for r in f.evidence.get("recorded", []):
            assert parse_stroops(r["amount"]) == by_id[r["payout_id"]].amount


@given(clean_world(), st.integers(1, 10**12))
def test_an_unrecorded_payment_is_always_found(
    world: tuple[list[Payout], list[ChainPayment]], amount: int
) -> None:
    rows, payments = world
    leak = pay(h(123456), dest=BOB, amount=amount)
    findings = run(rows, [*payments, leak])
    assert codes(findings) == [("ESCROW_UNRECORDED_OUTFLOW", h(123456))]
