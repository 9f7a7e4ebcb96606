"""Issue 9 (verdicts you can bet money on) and issue 12 §1 (backing off), the pure core.

Each test names the section of the issue it pins and starts from the issue's example.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import load_fixture
from streampay_incident import classify_settlements
from streampay_incident.checks.settlements import (
    COUNTED_ACTIONS,
    RETRY_REASONS,
    SAFE_REASONS,
    check_envelope_network,
    count_actions,
    settlement_action,
)
from streampay_incident.codes import Severity
from streampay_incident.io.rows import Row
from streampay_incident.io.settlements import settlements_from_rows
from streampay_incident.io.transactions import chain_transaction_from_rpc
from streampay_incident.model import (
    NATIVE,
    ChainTransaction,
    Payout,
    Settlement,
    SettlementVerdict,
)
from streampay_incident.stellar.envelope import envelope_identity
from streampay_incident.stellar.networks import FUTURENET, PUBLIC, TESTNET, WELL_KNOWN
from test_settlements_rules import settlement as rules_settlement

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
H1, H2, H3, H4 = "a1" * 32, "b2" * 32, "c3" * 32, "d4" * 32
DEST = "G" + "D" * 55

TRIPLES = load_fixture("tx_hash_triples.json")["triples"]
# A real testnet transaction recorded as successful by Stellar RPC, with a max time (2025).
TESTNET_TX = next(t for t in TRIPLES if t["expected_hash"].startswith("32f7e5c3"))
FEE_BUMP = next(t for t in TRIPLES if "inner_transaction_hash" in t)


def settlement(**fields: Any) -> Settlement:
    """``test_settlements_rules``' settlement, ``pending`` unless told otherwise."""
    return rules_settlement(**{"status": "pending", **fields})


def payout(**fields: Any) -> Payout:
    values: dict[str, Any] = {
        "payout_id": "pay-1",
        "settlement_id": "stl-1",
        "destination": DEST,
        "asset": NATIVE,
        "amount": 125_000_000,
        "status": "confirmed",
        "created_at": NOW - timedelta(days=1),
    }
    values.update(fields)
    return Payout(**values)


def tx(tx_hash: str, status: str, **fields: Any) -> ChainTransaction:
    return ChainTransaction(hash=tx_hash, status=status, **fields)  # type: ignore[arg-type]


def triage_one(s: Settlement, transactions: Any = (), **kwargs: Any) -> tuple[Any, list[Any]]:
    triage = classify_settlements([s], transactions=transactions, now=NOW, **kwargs)
    (verdict,) = triage.verdicts
    return verdict, list(triage.findings)


def from_export(envelope_xdr: str, network: str, **fields: Any) -> Settlement:
    record = {
        "settlement_id": "stl-1",
        "status": "processing",
        "created_at": "2026-11-27T02:00:00Z",
        "lease_until": "2026-11-27T02:01:00Z",
        "attempts": "1",
        "envelope_xdr": envelope_xdr,
        **fields,
    }
    (s,) = settlements_from_rows([Row(1, record)], source="s.jsonl", network_passphrase=network)
    return s


# --- §3: decision table v2 ---------------------------------------------------------------------


def test_retry_safety_never_submitted_needs_pending_and_zero_attempts() -> None:
    # §3: a pending row with attempts > 0 went back to pending after an attempt that may
    # have been submitted.
    requeued = settlement(attempts=1)
    verdict, (finding,) = triage_one(requeued)
    assert (verdict.state, verdict.retry_safe, verdict.retry_reason) == (
        "stuck",
        False,
        "unknown_submission",
    )
    assert finding.code == "SETTLEMENT_STUCK_UNSUBMITTED"
    assert verdict.action == "investigate"
    fresh = settlement(attempts=0)
    assert triage_one(fresh)[0].retry_reason == "never_submitted"
    for status in ("processing", "failed", "dead"):
        row = settlement(status=status, attempts=0, lease_until=NOW - timedelta(minutes=1))
        assert triage_one(row)[0].retry_reason == "unknown_submission"


def test_rule2_dead_letter_wins_over_a_failed_transaction() -> None:
    # §3 rule 2 before rule 3: the DLQ page is critical, the tx failure gives the retry proof.
    s = settlement(status="dead", tx_hash=H1, attempts=8, last_error="tx_bad_seq")
    verdict, findings = triage_one(s, [tx(H1, "failed")])
    assert [(f.code, f.severity) for f in findings] == [
        ("SETTLEMENT_DEAD_LETTERED", Severity.CRITICAL)
    ]
    assert (verdict.state, verdict.retry_safe, verdict.retry_reason) == ("stuck", True, "tx_failed")
    assert "last_error 'tx_bad_seq': fix the cause first" in findings[0].summary


def test_rule1_confirmed_not_recorded_is_critical_unless_a_live_lease_holds_it() -> None:
    # §3 rule 1: a pending row or an expired lease is re-run by the lease reaper.
    landed = [tx(H1, "success")]
    live = settlement(status="processing", tx_hash=H1, lease_until=NOW + timedelta(seconds=20))
    expired = settlement(status="processing", tx_hash=H1, lease_until=NOW - timedelta(seconds=1))
    pending = settlement(status="pending", tx_hash=H1)
    assert triage_one(live, landed)[1][0].severity is Severity.WARNING
    assert triage_one(expired, landed)[1][0].severity is Severity.CRITICAL
    verdict, (finding,) = triage_one(pending, landed)
    assert finding.severity is Severity.CRITICAL
    assert (verdict.retry_reason, verdict.action) == ("tx_landed", "do_not_retry")


# --- issue 12 §1: backing off ------------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "failed"])
def test_backing_off_is_not_stuck(status: str) -> None:
    # Issue 12 §1: available_at after now -> backing_off, action wait; after rules 1-4.
    s = settlement(status=status, attempts=3, tx_hash=H1, available_at=NOW + timedelta(seconds=40))
    verdict, findings = triage_one(s)
    assert findings == []
    assert (verdict.state, verdict.retry_safe, verdict.retry_reason, verdict.action) == (
        "backing_off",
        False,
        "backing_off",
        "wait",
    )
    exhausted = settlement(status="failed", attempts=8, available_at=NOW + timedelta(minutes=1))
    assert triage_one(exhausted)[0].state == "backing_off"  # before rule 5
    due = settlement(status=status, attempts=3, tx_hash=H1, available_at=NOW)
    assert triage_one(due)[0].state == "stuck"


def test_backing_off_comes_after_rules_1_to_4() -> None:
    later = NOW + timedelta(minutes=5)
    landed = settlement(tx_hash=H1, available_at=later)
    assert triage_one(landed, [tx(H1, "success")])[0].state == "settled"
    failed = settlement(status="failed", tx_hash=H1, available_at=later)
    assert triage_one(failed, [tx(H1, "failed")])[0].state == "failed"
    dead = settlement(status="dead", available_at=later)
    assert triage_one(dead)[0].state == "stuck"
    processing = settlement(
        status="processing", lease_until=NOW - timedelta(minutes=1), available_at=later
    )
    assert triage_one(processing)[0].state == "stuck"  # only pending and failed rows back off


# --- §2: never submitted is not "not paid" -----------------------------------------------------


def test_requeue_of_an_already_paid_settlement() -> None:
    # §2: a pending row without a tx hash, re-queued by an admin, already paid yesterday.
    requeued = settlement(status="pending", attempts=0)
    paid = payout(payout_id="pay-7", tx_hash=H2.upper(), idempotency_key="idem-7")
    verdict, findings = triage_one(requeued, payouts=[paid])
    assert [f.code for f in findings] == [
        "SETTLEMENT_STUCK_UNSUBMITTED",
        "SETTLEMENT_ALREADY_PAID",
    ]
    own, already = findings
    assert already.severity is Severity.CRITICAL
    assert (verdict.retry_safe, verdict.retry_reason, verdict.action) == (
        False,
        "already_paid",
        "do_not_retry",
    )
    assert already.evidence["payout_ids"] == ["pay-7"]
    assert already.evidence["payout_tx_hashes"] == [H2]
    assert already.evidence["amounts"] == {"native": "12.5000000"}
    assert already.evidence["rule_retry_reason"] == "never_submitted"
    assert "pay-7 (confirmed, tx " + H2 in already.summary
    assert own.evidence["payouts_checked"] is True
    assert own.evidence["retry_reason"] == "already_paid"


def test_without_payouts_a_never_submitted_verdict_says_what_it_rests_on() -> None:
    verdict, (finding,) = triage_one(settlement())
    assert verdict.retry_reason == "never_submitted"
    assert "no tx hash in the outbox; payouts not checked" in finding.summary
    assert finding.evidence["payouts_checked"] is False
    _, (checked,) = triage_one(settlement(), payouts=[])
    assert checked.evidence["payouts_checked"] is True
    assert "payouts not checked" not in checked.summary


@pytest.mark.parametrize(
    "matching",
    [
        payout(settlement_id="stl-1"),
        payout(settlement_id="other", idempotency_key="stl-1"),
        payout(settlement_id="settlement:stream-9:1200"),
        payout(settlement_id="other", idempotency_key="settlement:stream-9:1200"),
        payout(status="submitted", tx_hash=H2),
    ],
)
def test_a_payout_matches_by_settlement_id_or_key(matching: Payout) -> None:
    s = settlement(event_key="settlement:stream-9:1200")
    assert triage_one(s, payouts=[matching])[0].retry_reason == "already_paid"


@pytest.mark.parametrize(
    "not_paid",
    [
        payout(status="pending"),
        payout(status="failed", tx_hash=H2),
        payout(status="submitted"),  # no hash: no transfer to point at
        payout(status="submitted", tx_hash=H1),  # the settlement's own transaction
        payout(status="confirmed", tx_hash=H3.upper()),  # the inner hash of its fee-bump
        payout(payout_id="stl-1", status="confirmed"),  # its own outbox row
        payout(settlement_id="stl-2"),
    ],
)
def test_the_own_attempt_and_non_transfers_never_count(not_paid: Payout) -> None:
    s = settlement(tx_hash=H1, tx_hashes=(H1, H3), tx_max_time=NOW - timedelta(minutes=30))
    verdict, findings = triage_one(
        s, latest_ledger_close_time=NOW - timedelta(seconds=5), payouts=[not_paid]
    )
    assert (verdict.retry_safe, verdict.retry_reason) == (True, "tx_expired")
    assert [f.code for f in findings] == ["SETTLEMENT_STUCK_UNCONFIRMED"]


def test_own_outbox_row_with_another_hash_counts() -> None:
    other = payout(payout_id="stl-1", status="confirmed", tx_hash=H2)
    assert triage_one(settlement(), payouts=[other])[0].retry_reason == "already_paid"


def test_already_paid_never_touches_settled_verdicts() -> None:
    done = settlement(status="succeeded", tx_hash=H1)
    verdict, findings = triage_one(done, payouts=[payout(tx_hash=H2)])
    assert (verdict.state, verdict.retry_reason, verdict.action, findings) == (
        "settled",
        "recorded_succeeded",
        "none",
        [],
    )


def test_already_paid_over_an_in_flight_verdict() -> None:
    fresh = settlement(created_at=NOW - timedelta(minutes=1), updated_at=None)
    paid = [
        payout(tx_hash=H2),
        payout(payout_id="pay-2", tx_hash=H2),
        payout(payout_id="pay-3", tx_hash=H4),
    ]
    verdict, (finding,) = triage_one(fresh, payouts=paid)
    assert verdict.state == "in_flight"
    assert (verdict.code, verdict.retry_reason) == ("SETTLEMENT_ALREADY_PAID", "already_paid")
    assert finding.evidence["payout_ids"] == ["pay-1", "pay-2", "pay-3"]
    # The transfer recorded twice (H2) counts once.
    assert finding.evidence["amounts"] == {"native": "25.0000000"}


# --- §1: network mismatch ----------------------------------------------------------------------


def test_envelope_hashes_under_every_well_known_network() -> None:
    identity = envelope_identity(
        TESTNET_TX["envelope_xdr"], network_passphrase=PUBLIC, also_under=WELL_KNOWN
    )
    by_network = dict(identity.network_hashes)
    assert by_network["testnet"] == (TESTNET_TX["expected_hash"],)
    assert by_network["public"] == identity.hashes
    for name, passphrase in (("futurenet", FUTURENET), ("testnet", TESTNET)):
        again = envelope_identity(TESTNET_TX["envelope_xdr"], network_passphrase=passphrase)
        assert by_network[name] == again.hashes
    fee_bump = envelope_identity(
        FEE_BUMP["envelope_xdr"], network_passphrase=TESTNET, also_under=WELL_KNOWN
    )
    assert dict(fee_bump.network_hashes)["public"] == (
        FEE_BUMP["expected_hash"],
        FEE_BUMP["inner_transaction_hash"],
    )


def test_a_testnet_envelope_triaged_with_network_public() -> None:
    # §1: recorded as successful on testnet, triaged with --network public: it gave
    # "tx_expired, retry is safe" because the public hash is simply not found.
    s = from_export(TESTNET_TX["envelope_xdr"], PUBLIC)
    assert s.all_tx_hashes != (TESTNET_TX["expected_hash"],)
    record = chain_transaction_from_rpc(
        load_fixture("rpc/getTransaction_SUCCESS_testnet_docs.json")["result"]
    )
    assert record.status == "success" and record.hash == TESTNET_TX["expected_hash"]
    close = NOW - timedelta(seconds=4)
    verdict, findings = triage_one(s, [record], latest_ledger_close_time=close)
    assert [f.code for f in findings] == [
        "SETTLEMENT_LEASE_EXPIRED",
        "SETTLEMENT_NETWORK_MISMATCH",
    ]
    mismatch = findings[1]
    assert mismatch.severity is Severity.CRITICAL
    assert (verdict.retry_safe, verdict.retry_reason, verdict.action) == (
        False,
        "network_mismatch",
        "do_not_retry",
    )
    assert mismatch.evidence["matched_network"] == "testnet"
    assert mismatch.evidence["matched_hash"] == TESTNET_TX["expected_hash"]
    assert mismatch.evidence["rule_retry_reason"] == "tx_expired"
    assert "on testnet" in mismatch.summary
    # Under the right network the same record settles it.
    right = from_export(TESTNET_TX["envelope_xdr"], TESTNET)
    assert triage_one(right, [record])[0].retry_reason == "tx_landed"


def test_a_pubnet_fee_bump_found_through_its_inner_hash_under_testnet() -> None:
    s = from_export(FEE_BUMP["envelope_xdr"], TESTNET)
    inner = tx(FEE_BUMP["inner_transaction_hash"], "failed")
    verdict, findings = triage_one(s, [inner])
    assert findings[-1].code == "SETTLEMENT_NETWORK_MISMATCH"
    assert findings[-1].evidence["matched_network"] == "public"
    assert findings[-1].evidence["matched_status"] == "failed"
    assert verdict.retry_reason == "network_mismatch"
    # A "not found" under another network is no evidence at all.
    unseen = tx(FEE_BUMP["expected_hash"], "not_found")
    assert triage_one(s, [unseen])[0].retry_reason != "network_mismatch"


def test_both_overlays_report_both_findings_and_already_paid_wins() -> None:
    s = from_export(TESTNET_TX["envelope_xdr"], PUBLIC, settlement_id="stl-1")
    record = tx(TESTNET_TX["expected_hash"], "success", ledger=438134)
    verdict, findings = triage_one(s, [record], payouts=[payout(tx_hash=H4)])
    assert [f.code for f in findings] == [
        "SETTLEMENT_LEASE_EXPIRED",
        "SETTLEMENT_ALREADY_PAID",
        "SETTLEMENT_NETWORK_MISMATCH",
    ]
    assert verdict.retry_reason == "already_paid"
    assert findings[2].evidence["matched_ledger"] == 438134


def test_none_of_the_envelopes_found_under_network_but_some_on_testnet() -> None:
    # §1: exit 2, "--network public: none of N envelopes was found; M match testnet".
    rows = [
        from_export(TESTNET_TX["envelope_xdr"], PUBLIC, settlement_id="stl-1"),
        from_export(FEE_BUMP["envelope_xdr"], PUBLIC, settlement_id="stl-2"),
        settlement(settlement_id="stl-3", tx_hash=H1),  # no envelope: not counted
    ]
    record = tx(TESTNET_TX["expected_hash"], "success")
    check = check_envelope_network(rows, transactions=[record], network="public")
    assert (check.envelopes, check.found, check.elsewhere) == (2, 0, (("testnet", 1),))
    assert check.wrong_network
    assert check.message == "--network public: none of 2 envelopes was found; 1 match testnet"
    # One found under --network: the run goes on (the other gets its own finding).
    found = tx(FEE_BUMP["expected_hash"], "success")
    fine = check_envelope_network(rows, transactions=[record, found], network="public")
    assert (fine.found, fine.wrong_network, fine.message) == (1, False, None)
    nothing = check_envelope_network(rows, transactions=[], network="public")
    assert (nothing.elsewhere, nothing.wrong_network) == ((), False)


# --- §9: actions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (("stuck", True, "tx_expired", True, None), "retry"),
        (("settled", False, "tx_landed", False, None), "none"),
        (("settled", False, "recorded_succeeded", False, None), "none"),
        (("settled", False, "tx_landed", True, None), "do_not_retry"),
        (("settled", False, "recorded_succeeded", True, None), "do_not_retry"),
        (("stuck", False, "already_paid", True, None), "do_not_retry"),
        (("stuck", False, "network_mismatch", True, None), "do_not_retry"),
        (("in_flight", False, "in_flight", False, None), "wait"),
        (("backing_off", False, "backing_off", False, None), "wait"),
        (("stuck", False, "tx_may_still_land", True, NOW), "wait"),
        (("stuck", False, "tx_may_still_land", True, None), "investigate"),
        (("stuck", False, "no_ledger_after_max_time", True, NOW), "investigate"),
        (("stuck", False, "unknown_submission", True, None), "investigate"),
        (("stuck", False, "tx_status_unknown", True, None), "investigate"),
        (("stuck", False, "chain_unhealthy", True, None), "investigate"),
    ],
)
def test_action_mapping(verdict: tuple[Any, ...], expected: str) -> None:
    state, safe, reason, has_finding, max_time = verdict
    assert (
        settlement_action(
            state=state,
            retry_safe=safe,
            retry_reason=reason,
            has_finding=has_finding,
            max_time=max_time,
        )
        == expected
    )


def test_summary_actions_counts_every_action_but_none() -> None:
    rows = [
        settlement(settlement_id="a"),  # never_submitted: retry
        settlement(settlement_id="b", status="succeeded"),  # none
        settlement(settlement_id="c", created_at=NOW - timedelta(minutes=1)),  # in flight: wait
        settlement(settlement_id="d", status="dead"),  # unknown_submission: investigate
        settlement(settlement_id="e", attempts=2, available_at=NOW + timedelta(seconds=5)),
    ]
    triage = classify_settlements(rows, now=NOW)
    assert [v.action for v in triage.verdicts] == ["retry", "none", "wait", "investigate", "wait"]
    assert count_actions(triage.verdicts) == {
        "retry": 1,
        "do_not_retry": 0,
        "wait": 2,
        "investigate": 1,
    }
    assert tuple(count_actions([])) == COUNTED_ACTIONS
    assert triage.verdicts[0].to_json()["action"] == "retry"
    assert SettlementVerdict("x", "stuck", False, "tx_status_unknown").action == "investigate"


# --- the property: no false "retry is safe" ----------------------------------------------------

HASHES = [f"{i:02x}" * 32 for i in range(8)]
NETWORKS = ["public", "testnet", "futurenet"]
offsets = st.integers(-3 * 3600, 3 * 3600).map(lambda s: timedelta(seconds=s))
maybe_time = st.none() | offsets.map(lambda d: NOW + d)


@st.composite
def settlements_with_networks(draw: Any, settlement_id: str) -> Settlement:
    created = NOW - timedelta(seconds=draw(st.integers(0, 4 * 3600)))
    own = draw(st.lists(st.sampled_from(HASHES), max_size=2, unique=True))
    others = [h for h in HASHES if h not in own]
    network_hashes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if own and draw(st.booleans()):
        own_network = draw(st.sampled_from(NETWORKS))
        network_hashes = tuple(
            (name, tuple(own) if name == own_network else (draw(st.sampled_from(others)),))
            for name in NETWORKS
        )
    return Settlement(
        settlement_id=settlement_id,
        status=draw(st.sampled_from(["pending", "processing", "succeeded", "failed", "dead"])),
        created_at=created,
        updated_at=draw(st.none() | st.just(created + timedelta(minutes=1))),
        attempts=draw(st.integers(0, 9)),
        max_attempts=draw(st.integers(1, 9)),
        lease_until=draw(maybe_time),
        available_at=draw(maybe_time),
        tx_hash=own[0] if own else None,
        tx_hashes=tuple(own),
        tx_max_time=draw(maybe_time) if own else None,
        source_account="G" + "A" * 55 if own else None,
        sequence=draw(st.integers(1, 9)) if own else None,
        network_hashes=network_hashes,
        event_key=draw(st.none() | st.just(f"key-{settlement_id}")),
    )


@st.composite
def evidence(draw: Any) -> dict[str, Any]:
    count = draw(st.integers(0, 6))
    settlements = [draw(settlements_with_networks(f"stl-{i}")) for i in range(count)]
    ids = [s.settlement_id for s in settlements] + [f"key-stl-{i}" for i in range(count)] + ["x"]
    records = draw(
        st.lists(
            st.builds(
                ChainTransaction,
                hash=st.sampled_from(HASHES),
                status=st.sampled_from(["success", "failed", "not_found", "unknown"]),
                oldest_ledger_close_time=maybe_time,
            ),
            max_size=8,
        )
    )
    payouts = draw(
        st.none()
        | st.lists(
            st.builds(
                payout,
                payout_id=st.sampled_from(["p1", "p2", "p3", *ids]),
                settlement_id=st.sampled_from(ids),
                idempotency_key=st.none() | st.sampled_from(ids),
                status=st.sampled_from(["pending", "submitted", "confirmed", "failed"]),
                tx_hash=st.none() | st.sampled_from(HASHES),
            ),
            max_size=6,
        )
    )
    return {
        "settlements": settlements,
        "records": records,
        "payouts": payouts,
        "latest_ledger_close_time": draw(maybe_time),
        "chain_status": draw(st.sampled_from([None, "pass", "warn", "fail"])),
        "account_sequences": draw(st.none() | st.just({"G" + "A" * 55: 5})),
    }


def _shows_a_transfer(s: Settlement, ev: dict[str, Any]) -> bool:
    """Whether the evidence shows a transfer for ``s`` that landed or may still land."""
    own = set(s.all_tx_hashes)
    every_hash = own | {h for _, hashes in s.network_hashes for h in hashes}
    by_hash: dict[str, set[str]] = {}
    for record in ev["records"]:
        by_hash.setdefault(record.hash, set()).add(record.status)
    if any("success" in by_hash.get(h, ()) for h in every_hash):
        return True  # landed, under --network or another network
    if any(by_hash.get(h, set()) & {"failed"} for h in every_hash - own):
        return True  # applied on another network: the envelope is not what --network thinks
    applied = any(by_hash.get(h, set()) & {"failed"} for h in own)
    if not applied and any("unknown" in by_hash.get(h, ()) for h in own):
        return True  # may have landed (a failed record of either fee-bump hash is conclusive)
    keys = {s.settlement_id, s.event_key} - {None}
    for p in ev["payouts"] or ():
        mine = p.settlement_id in keys or p.idempotency_key in keys
        own_attempt = (p.tx_hash in own) or (p.tx_hash is None and p.payout_id == s.settlement_id)
        if (
            mine
            and not own_attempt
            and (p.status == "confirmed" or (p.status == "submitted" and p.tx_hash))
        ):
            return True
    return False


@given(evidence())
def test_never_retry_safe_when_evidence_shows_a_transfer_or_the_chain_fails(
    ev: dict[str, Any],
) -> None:
    triage = classify_settlements(
        ev["settlements"],
        transactions=ev["records"],
        now=NOW,
        latest_ledger_close_time=ev["latest_ledger_close_time"],
        chain_status=ev["chain_status"],
        account_sequences=ev["account_sequences"],
        payouts=ev["payouts"],
    )
    for s, verdict in zip(ev["settlements"], triage.verdicts, strict=True):
        assert verdict.retry_reason in RETRY_REASONS
        assert verdict.retry_safe == (verdict.retry_reason in SAFE_REASONS)
        assert (verdict.action == "retry") == verdict.retry_safe
        if ev["chain_status"] == "fail" or _shows_a_transfer(s, ev):
            assert not verdict.retry_safe, (s, verdict)
        if verdict.retry_safe and not s.all_tx_hashes:
            assert s.status == "pending" and s.attempts == 0
    findings_by_subject: dict[str, list[str]] = {}
    for finding in triage.findings:
        findings_by_subject.setdefault(finding.subject, []).append(finding.code)
    for verdict in triage.verdicts:
        codes = findings_by_subject.get(verdict.settlement_id, [])
        if verdict.retry_reason == "chain_unhealthy":
            assert "SETTLEMENT_CHAIN_BLOCKED" in codes
        if verdict.retry_reason == "already_paid":
            assert "SETTLEMENT_ALREADY_PAID" in codes
        if verdict.state == "settled":
            assert not {"SETTLEMENT_ALREADY_PAID", "SETTLEMENT_NETWORK_MISMATCH"} & set(codes)
