"""Each pinned settlement rule, each retry-safety branch, and the issue-3 extensions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conftest import load_fixture
from streampay_incident import classify_settlements
from streampay_incident.checks.settlements import (
    TransactionIndex,
    classify_settlement,
    index_transactions,
    settlement_findings,
)
from streampay_incident.codes import Severity
from streampay_incident.io.transactions import chain_transaction_from_rpc
from streampay_incident.model import (
    ChainTransaction,
    Settlement,
    SettlementContext,
    SettlementPolicy,
)
from streampay_incident.registry import get_plugin_manager, run_checks, run_settlement_checks

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
H1, H2, H3 = "a1" * 32, "b2" * 32, "c3" * 32


def settlement(**fields: Any) -> Settlement:
    values: dict[str, Any] = {
        "settlement_id": "stl-1",
        "status": "processing",
        "created_at": NOW - timedelta(hours=1),
        "updated_at": NOW - timedelta(minutes=20),
    }
    values.update(fields)
    return Settlement(**values)


def tx(tx_hash: str, status: str, **fields: Any) -> ChainTransaction:
    return ChainTransaction(hash=tx_hash, status=status, **fields)  # type: ignore[arg-type]


def verdict_of(s: Settlement, transactions: Any = (), **kwargs: Any) -> tuple[Any, Any]:
    triage = classify_settlements([s], transactions=transactions, now=NOW, **kwargs)
    (verdict,) = triage.verdicts
    # The decision table's own finding comes first; overlays add theirs after it.
    finding = triage.findings[0] if triage.findings else None
    assert verdict.codes == tuple(f.code for f in triage.findings)
    return verdict, finding


def brief(s: Settlement, transactions: Any = (), **kwargs: Any) -> tuple[Any, ...]:
    verdict, finding = verdict_of(s, transactions, **kwargs)
    return (
        verdict.state,
        verdict.retry_safe,
        verdict.retry_reason,
        None if finding is None else finding.code,
        None if finding is None else finding.severity,
    )


# --- rule 1: found successful ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "lease", "severity"),
    [
        # The lease reaper re-runs a pending row or an expired lease: a replay pays twice.
        ("pending", None, Severity.CRITICAL),
        ("processing", None, Severity.CRITICAL),
        ("processing", NOW - timedelta(seconds=1), Severity.CRITICAL),
        ("processing", NOW, Severity.WARNING),
        ("processing", NOW + timedelta(seconds=30), Severity.WARNING),
        ("pending", NOW + timedelta(seconds=30), Severity.CRITICAL),
        ("failed", None, Severity.CRITICAL),
        ("dead", None, Severity.CRITICAL),
    ],
)
def test_rule1_landed_but_not_recorded(
    status: str, lease: datetime | None, severity: Severity
) -> None:
    s = settlement(status=status, tx_hash=H1, lease_until=lease)
    assert brief(s, [tx(H1, "success")]) == (
        "settled",
        False,
        "tx_landed",
        "SETTLEMENT_CONFIRMED_NOT_RECORDED",
        severity,
    )


def test_rule1_landed_and_recorded_is_clean() -> None:
    s = settlement(status="succeeded", tx_hash=H1)
    assert brief(s, [tx(H1, "success")]) == ("settled", False, "tx_landed", None, None)


def test_hashes_match_in_any_case_and_through_either_fee_bump_hash() -> None:
    upper = settlement(tx_hash=H1.upper(), status="dead")
    assert brief(upper, [tx(H1, "success")])[0] == "settled"
    assert brief(settlement(tx_hash=H1), [tx(H1.upper(), "success")])[0] == "settled"
    fee_bump = settlement(tx_hash=H1, tx_hashes=(H1, H2))
    assert brief(fee_bump, [tx(H2, "success")])[2] == "tx_landed"
    record_with_both = tx(H3, "success", hashes=(H3, H1))
    assert brief(settlement(tx_hash=H1), [record_with_both])[2] == "tx_landed"


# --- rule 2: found failed ----------------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "processing", "failed", "succeeded"])
def test_rule3_failed_on_chain(status: str) -> None:
    s = settlement(status=status, tx_hash=H1, attempts=9)
    assert brief(s, [tx(H1, "failed")]) == (
        "failed",
        True,
        "tx_failed",
        "SETTLEMENT_TX_FAILED",
        Severity.WARNING,
    )


def test_success_beats_failed_across_fee_bump_hashes() -> None:
    s = settlement(tx_hash=H1, tx_hashes=(H1, H2))
    assert brief(s, [tx(H1, "failed"), tx(H2, "success")])[2] == "tx_landed"


# --- rules 3-9 ---------------------------------------------------------------------------------


def test_rule2_dead_letter_whose_tx_failed_quotes_last_error() -> None:
    # Issue 9 §3 rule 2: critical always; tx failed on chain -> true/tx_failed, fix the cause.
    s = settlement(status="dead", tx_hash=H1, attempts=8, last_error="op_underfunded")
    verdict, finding = verdict_of(s, [tx(H1, "failed")])
    assert brief(s, [tx(H1, "failed")]) == (
        "stuck",
        True,
        "tx_failed",
        "SETTLEMENT_DEAD_LETTERED",
        Severity.CRITICAL,
    )
    assert "last_error 'op_underfunded'" in finding.summary
    assert "fix the cause first" in finding.summary
    assert verdict.action == "retry"
    unrecorded = settlement(status="dead", tx_hash=H1)
    assert "last_error not recorded" in verdict_of(unrecorded, [tx(H1, "failed")])[1].summary


def test_rule4_recorded_succeeded() -> None:
    s = settlement(status="succeeded", tx_hash=H1)
    assert brief(s) == ("settled", False, "recorded_succeeded", None, None)


def test_rule2_dead_lettered_without_a_chain_answer() -> None:
    s = settlement(status="dead")
    assert brief(s) == (
        "stuck",
        False,
        "unknown_submission",
        "SETTLEMENT_DEAD_LETTERED",
        Severity.CRITICAL,
    )


@pytest.mark.parametrize(("attempts", "code"), [(8, "SETTLEMENT_RETRIES_EXHAUSTED"), (9, "x")])
def test_rule5_retries_exhausted(attempts: int, code: str) -> None:
    s = settlement(status="failed", attempts=attempts, max_attempts=8)
    assert brief(s)[3] == "SETTLEMENT_RETRIES_EXHAUSTED"
    assert brief(s)[4] is Severity.CRITICAL


def test_rule5_not_exhausted_falls_through() -> None:
    fresh = settlement(status="failed", attempts=7, created_at=NOW - timedelta(minutes=10))
    assert brief(fresh) == ("in_flight", False, "in_flight", None, None)
    old = settlement(status="failed", attempts=7)
    assert brief(old)[3] == "SETTLEMENT_STUCK_UNSUBMITTED"


def test_rule6_lease_expired() -> None:
    s = settlement(status="processing", lease_until=NOW - timedelta(seconds=1))
    assert brief(s)[:4] == ("stuck", False, "unknown_submission", "SETTLEMENT_LEASE_EXPIRED")
    at_now = settlement(status="processing", lease_until=NOW, created_at=NOW - timedelta(minutes=1))
    assert brief(at_now)[0] == "in_flight"  # lease_until < now is strict
    pending = settlement(
        status="pending",
        lease_until=NOW - timedelta(hours=1),
        created_at=NOW - timedelta(minutes=1),
    )
    assert brief(pending)[0] == "in_flight"  # only a processing lease counts


def test_rule7_unsubmitted_threshold_is_strict() -> None:
    exactly = settlement(status="pending", created_at=NOW - timedelta(minutes=30))
    assert brief(exactly)[0] == "in_flight"
    older = settlement(status="pending", created_at=NOW - timedelta(minutes=30, seconds=1))
    assert brief(older) == (
        "stuck",
        True,
        "never_submitted",
        "SETTLEMENT_STUCK_UNSUBMITTED",
        Severity.WARNING,
    )
    processing = settlement(status="processing", created_at=NOW - timedelta(hours=2))
    assert brief(processing)[1:3] == (False, "unknown_submission")


def test_rule8_unconfirmed_threshold_from_updated_else_created() -> None:
    exactly = settlement(tx_hash=H1, updated_at=NOW - timedelta(minutes=5))
    assert brief(exactly)[0] == "in_flight"
    older = settlement(tx_hash=H1, updated_at=NOW - timedelta(minutes=5, seconds=1))
    assert brief(older)[:4] == (
        "stuck",
        False,
        "tx_may_still_land",
        "SETTLEMENT_STUCK_UNCONFIRMED",
    )
    no_update = settlement(tx_hash=H1, updated_at=None, created_at=NOW - timedelta(minutes=6))
    assert brief(no_update)[3] == "SETTLEMENT_STUCK_UNCONFIRMED"


def test_rpc_not_found_and_absent_mean_not_found() -> None:
    s = settlement(tx_hash=H1, tx_max_time=NOW - timedelta(minutes=1))
    close = NOW - timedelta(seconds=5)
    not_found = tx(H1, "not_found", oldest_ledger_close_time=NOW - timedelta(days=7))
    for transactions in ([], [not_found], [tx(H2, "success")]):
        assert brief(s, transactions, latest_ledger_close_time=close)[:4] == (
            "stuck",
            True,
            "tx_expired",
            "SETTLEMENT_STUCK_UNCONFIRMED",
        )


def test_rule9_in_flight() -> None:
    s = settlement(status="pending", created_at=NOW - timedelta(minutes=1), updated_at=None)
    assert brief(s) == ("in_flight", False, "in_flight", None, None)


# --- retry safety ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_time", "close_time", "expected"),
    [
        (None, None, (False, "tx_may_still_land")),
        (None, NOW, (False, "tx_may_still_land")),
        (NOW - timedelta(minutes=10), NOW - timedelta(seconds=5), (True, "tx_expired")),
        (NOW - timedelta(minutes=10), NOW - timedelta(minutes=10), (False, "tx_may_still_land")),
        (NOW - timedelta(minutes=10), NOW - timedelta(minutes=11), (False, "tx_may_still_land")),
        (NOW + timedelta(minutes=10), None, (False, "tx_may_still_land")),
        (NOW, None, (False, "tx_may_still_land")),
        (NOW - timedelta(seconds=1), None, (False, "no_ledger_after_max_time")),
    ],
)
def test_retry_safety_with_a_tx_hash(
    max_time: datetime | None, close_time: datetime | None, expected: tuple[bool, str]
) -> None:
    s = settlement(status="dead", tx_hash=H1, tx_max_time=max_time)
    verdict, finding = verdict_of(s, latest_ledger_close_time=close_time)
    assert (verdict.retry_safe, verdict.retry_reason) == expected
    assert finding.evidence["retry_safe"] is expected[0]
    assert finding.evidence["retry_reason"] == expected[1]


def test_retry_safety_without_a_tx_hash() -> None:
    assert brief(settlement(status="dead"))[1:3] == (False, "unknown_submission")
    pending_lease = settlement(status="processing", lease_until=NOW - timedelta(minutes=1))
    assert brief(pending_lease)[1:3] == (False, "unknown_submission")
    assert brief(settlement(status="pending", created_at=NOW - timedelta(hours=3)))[1:3] == (
        True,
        "never_submitted",
    )


# --- issue 3: unknown, retention window, sequence numbers, chain outage ------------------------


def test_unknown_lookup_is_not_found_but_never_retry_safe() -> None:
    s = settlement(status="dead", tx_hash=H1, tx_max_time=NOW - timedelta(hours=1))
    close = NOW - timedelta(seconds=5)
    assert brief(s, [tx(H1, "unknown")], latest_ledger_close_time=close)[:4] == (
        "stuck",
        False,
        "tx_status_unknown",
        "SETTLEMENT_DEAD_LETTERED",
    )


def test_rpc_not_found_outside_its_retention_window_is_unknown() -> None:
    updated = NOW - timedelta(minutes=20)
    s = settlement(tx_hash=H1, updated_at=updated, tx_max_time=NOW - timedelta(minutes=15))
    close = NOW - timedelta(seconds=5)
    window_after = tx(H1, "not_found", oldest_ledger_close_time=updated + timedelta(seconds=1))
    assert brief(s, [window_after], latest_ledger_close_time=close)[:4] == (
        "stuck",
        False,
        "tx_status_unknown",
        "SETTLEMENT_STUCK_UNCONFIRMED",
    )
    window_at = tx(H1, "not_found", oldest_ledger_close_time=updated)
    assert brief(s, [window_at], latest_ledger_close_time=close)[1:3] == (True, "tx_expired")


def test_retention_window_measured_from_created_at_without_update() -> None:
    created = NOW - timedelta(hours=1)
    s = settlement(tx_hash=H1, updated_at=None, created_at=created)
    window = tx(H1, "not_found", oldest_ledger_close_time=created + timedelta(minutes=1))
    assert brief(s, [window])[2] == "tx_status_unknown"


def test_recorded_rpc_not_found_fixture() -> None:
    result = load_fixture("rpc/getTransaction_NOT_FOUND_docs.json")["result"]
    record = chain_transaction_from_rpc(result)
    # oldestLedgerCloseTime 2023-11-15T20:08:33Z
    before = settlement(
        tx_hash=record.hash,
        updated_at=datetime(2023, 11, 15, 20, 0, tzinfo=UTC),
        created_at=datetime(2023, 11, 15, 19, 0, tzinfo=UTC),
    )
    assert brief(before, [record])[2] == "tx_status_unknown"
    after = settlement(tx_hash=record.hash, created_at=NOW - timedelta(hours=1))
    assert brief(after, [record])[2] == "tx_may_still_land"


@pytest.mark.parametrize(
    ("account_sequence", "expected"),
    [
        (99, (False, "tx_may_still_land")),
        (100, (True, "sequence_consumed")),
        (150, (True, "sequence_consumed")),
    ],
)
def test_sequence_consumed(account_sequence: int, expected: tuple[bool, str]) -> None:
    source = "G" + "A" * 55
    s = settlement(tx_hash=H1, source_account=source, sequence=100)
    sequences = {source: account_sequence}
    assert brief(s, account_sequences=sequences)[1:3] == expected
    # Not when the lookup could not tell: it may have landed with that very sequence.
    assert brief(s, [tx(H1, "unknown")], account_sequences=sequences)[1:3] == (
        False,
        "tx_status_unknown",
    )
    other = {"G" + "B" * 55: 10**9}
    assert brief(s, account_sequences=other)[1:3] == (False, "tx_may_still_land")


def test_sequence_evidence() -> None:
    source = "G" + "A" * 55
    s = settlement(tx_hash=H1, source_account=source, sequence=100)
    _, finding = verdict_of(s, account_sequences={source: 100})
    assert finding.evidence["sequence"] == "100"
    assert finding.evidence["account_sequence"] == "100"


@pytest.mark.parametrize(
    ("s", "normal_code"),
    [
        (
            settlement(status="pending", created_at=NOW - timedelta(hours=1)),
            "SETTLEMENT_STUCK_UNSUBMITTED",
        ),
        (
            settlement(tx_hash=H1, tx_max_time=NOW - timedelta(hours=1)),
            "SETTLEMENT_STUCK_UNCONFIRMED",
        ),
    ],
)
def test_chain_outage_blocks_retries(s: Settlement, normal_code: str) -> None:
    close = NOW - timedelta(seconds=5)
    assert brief(s, latest_ledger_close_time=close, chain_status="warn")[3] == normal_code
    # The rule's own finding stays; SETTLEMENT_CHAIN_BLOCKED is added beside it.
    assert brief(s, latest_ledger_close_time=close, chain_status="fail") == (
        "stuck",
        False,
        "chain_unhealthy",
        normal_code,
        Severity.WARNING,
    )
    triage = classify_settlements([s], now=NOW, latest_ledger_close_time=close, chain_status="fail")
    assert [f.code for f in triage.findings] == [normal_code, "SETTLEMENT_CHAIN_BLOCKED"]
    blocked = triage.findings[1]
    assert blocked.severity is Severity.WARNING
    assert blocked.evidence["retry_reason"] == "chain_unhealthy"
    assert triage.findings[0].evidence["retry_reason_when_healthy"] in (
        "never_submitted",
        "tx_expired",
    )
    assert "do NOT retry (chain_unhealthy)" in triage.findings[0].summary


@pytest.mark.parametrize(
    ("s", "transactions", "code", "when_healthy"),
    [
        (settlement(tx_hash=H1), [tx(H1, "failed")], "SETTLEMENT_TX_FAILED", "tx_failed"),
        (
            settlement(status="dead", tx_hash=H1),
            [tx(H1, "failed")],
            "SETTLEMENT_DEAD_LETTERED",
            "tx_failed",
        ),
        (
            settlement(
                status="failed", attempts=8, tx_hash=H1, source_account="G" + "A" * 55, sequence=5
            ),
            [],
            "SETTLEMENT_RETRIES_EXHAUSTED",
            "sequence_consumed",
        ),
    ],
)
def test_chain_outage_blocks_every_retry_safe_rule(
    s: Settlement, transactions: Any, code: str, when_healthy: str
) -> None:
    # Issue 9 §3: chain status fail blocks every retry-safe verdict, not only rules 7 and 8.
    kwargs: dict[str, Any] = {"account_sequences": {"G" + "A" * 55: 9}}
    assert brief(s, transactions, **kwargs)[1:3] == (True, when_healthy)
    triage = classify_settlements(
        [s], transactions=transactions, now=NOW, chain_status="fail", **kwargs
    )
    (verdict,) = triage.verdicts
    assert (verdict.retry_safe, verdict.retry_reason) == (False, "chain_unhealthy")
    assert [f.code for f in triage.findings] == [code, "SETTLEMENT_CHAIN_BLOCKED"]
    assert all(f.evidence["retry_reason_when_healthy"] == when_healthy for f in triage.findings)


def test_chain_outage_leaves_unsafe_verdicts_alone() -> None:
    dead = settlement(status="dead")
    assert brief(dead, chain_status="fail")[:4] == (
        "stuck",
        False,
        "unknown_submission",
        "SETTLEMENT_DEAD_LETTERED",
    )
    may_land = settlement(tx_hash=H1, tx_max_time=NOW + timedelta(minutes=5))
    assert brief(may_land, chain_status="fail")[2:4] == (
        "tx_may_still_land",
        "SETTLEMENT_STUCK_UNCONFIRMED",
    )
    fresh = settlement(status="pending", created_at=NOW - timedelta(minutes=1))
    assert brief(fresh, chain_status="fail")[0] == "in_flight"


# --- conflicting records, indexing, evidence, the plugin path ----------------------------------


def test_strongest_record_wins_per_hash() -> None:
    window = NOW - timedelta(days=1)
    records = [
        tx(H1, "not_found", oldest_ledger_close_time=window),
        tx(H1, "not_found"),
        tx(H1, "unknown"),
    ]
    for ordering in (records, records[::-1]):
        assert index_transactions(ordering)[H1].status == "unknown"
    windows = [
        tx(H1, "not_found", oldest_ledger_close_time=window),
        tx(H1, "not_found", oldest_ledger_close_time=window - timedelta(days=1)),
    ]
    for ordering in (windows, windows[::-1]):
        assert index_transactions(ordering)[H1].oldest_ledger_close_time == window - timedelta(
            days=1
        )
    authoritative = [windows[0], tx(H1, "not_found")]
    assert index_transactions(authoritative)[H1].oldest_ledger_close_time is None
    assert index_transactions([tx(H1, "failed"), tx(H1, "success")])[H1].status == "success"


def test_mapping_input_is_indexed_by_key_and_hashes() -> None:
    record = tx(H2, "success", hashes=(H2, H3))
    index = index_transactions({H1.upper(): record})
    assert set(index) == {H1, H2, H3}
    assert index_transactions(index) is index
    assert brief(settlement(tx_hash=H1, status="dead"), {H1: record})[2] == "tx_landed"


def test_evidence_and_summary() -> None:
    s = settlement(
        status="dead",
        tx_hash=H1,
        tx_hashes=(H1, H2),
        attempts=8,
        lease_until=NOW - timedelta(hours=2),
        tx_max_time=NOW - timedelta(minutes=30),
        last_error="timeout",
    )
    _, finding = verdict_of(
        s, latest_ledger_close_time=NOW - timedelta(seconds=4), chain_status="pass"
    )
    ev = finding.evidence
    assert finding.subject == "stl-1"
    assert ev["status"] == "dead" and ev["attempts"] == 8 and ev["max_attempts"] == 8
    assert ev["tx_hash"] == H1 and ev["tx_hashes"] == [H1, H2]
    assert ev["age_seconds"] == 3600 and ev["since_update_seconds"] == 1200
    assert ev["max_time"] == "2026-11-27T02:30:00Z"
    assert ev["latest_ledger_close_time"] == "2026-11-27T02:59:56Z"
    assert ev["lease_until"] == "2026-11-27T01:00:00Z"
    assert ev["chain"] == "not_found" and ev["chain_status"] == "pass"
    assert ev["last_error"] == "timeout"
    assert "retry is safe (tx_expired)" in finding.summary
    assert finding.runbook.endswith("stuck-settlement.md#settlement-dead-lettered")


@pytest.mark.parametrize(
    ("s", "transactions", "kwargs", "words"),
    [
        (settlement(status="dead", tx_hash=H1), [tx(H1, "success")], {}, "pay twice"),
        (settlement(tx_hash=H1), [tx(H1, "failed")], {}, "failed on chain"),
        (settlement(status="failed", attempts=8), [], {}, "8 of 8"),
        (settlement(lease_until=NOW - timedelta(seconds=30)), [], {}, "30s ago"),
        (
            settlement(status="pending", created_at=NOW - timedelta(hours=2, minutes=5)),
            [],
            {},
            "2h05m after creation",
        ),
        (settlement(tx_hash=H1), [], {}, "20m after the last update"),
        (settlement(tx_hash=H1), [], {"chain_status": "fail"}, "do NOT retry (tx_may_still_land)"),
        (
            settlement(status="pending"),
            [],
            {"chain_status": "fail"},
            "do NOT retry (chain_unhealthy)",
        ),
        (settlement(status="pending"), [], {}, "no tx hash in the outbox; payouts not checked"),
        (
            settlement(status="pending"),
            [],
            {"payouts": []},
            "no tx hash in the outbox; no payout for it in the payouts given",
        ),
        (
            settlement(status="processing", lease_until=NOW, tx_hash=H1),
            [tx(H1, "success")],
            {},
            "while a worker holds the lease",
        ),
        (settlement(status="dead", attempts=3), [], {}, "dead-lettered after 3 attempt(s)"),
    ],
)
def test_summaries_say_what_happened(
    s: Settlement, transactions: Any, kwargs: dict[str, Any], words: str
) -> None:
    _, finding = verdict_of(s, transactions, **kwargs)
    assert words in finding.summary


def test_classify_settlement_alone_and_policy() -> None:
    s = settlement(status="pending", created_at=NOW - timedelta(minutes=10))
    strict = SettlementPolicy(unsubmitted_after=timedelta(minutes=5))
    verdict, finding = classify_settlement(s, transactions={}, now=NOW, policy=strict)
    assert verdict.code == finding.code == "SETTLEMENT_STUCK_UNSUBMITTED"
    assert "threshold 5m" in finding.summary


def test_verdicts_keep_input_order() -> None:
    ids = ["c", "a", "b"]
    triage = classify_settlements([settlement(settlement_id=i) for i in ids], now=NOW)
    assert [v.settlement_id for v in triage.verdicts] == ids


def test_builtin_check_through_the_registry_uses_the_typed_context() -> None:
    s = settlement(tx_hash=H1, tx_max_time=NOW - timedelta(minutes=10))
    context = SettlementContext(
        latest_ledger_close_time=NOW - timedelta(seconds=5), chain_status="fail"
    )
    pm = get_plugin_manager(load_entry_points=False)
    triage = run_settlement_checks(
        pm,
        [s],
        transactions=TransactionIndex([]),
        now=NOW,
        policy=SettlementPolicy(),
        context=context,
    )
    assert [f.code for f in triage.findings] == [
        "SETTLEMENT_STUCK_UNCONFIRMED",
        "SETTLEMENT_CHAIN_BLOCKED",
    ]
    assert [v.retry_reason for v in triage.verdicts] == ["chain_unhealthy"]
    # Without the verdicts, run_checks still gives the findings of the same pass.
    findings = run_checks(
        pm,
        "streampay_incident_register_settlement_checks",
        [s],
        transactions={},
        now=NOW,
        policy=SettlementPolicy(),
    )
    assert [f.evidence["retry_reason"] for f in findings] == ["no_ledger_after_max_time"]
    plain = settlement_findings([s], transactions={}, now=NOW)
    assert [f.evidence["retry_reason"] for f in plain] == ["no_ledger_after_max_time"]
    with_close = settlement_findings(
        [s], transactions={}, now=NOW, context=SettlementContext(latest_ledger_close_time=NOW)
    )
    assert [f.evidence["retry_reason"] for f in with_close] == ["tx_expired"]
