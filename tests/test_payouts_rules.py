"""The five pinned payout rules, one test per rule and edge.

Addresses, assets, amounts and hashes come from the real recorded Horizon
payments in ``tests/fixtures/stellar``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from stellar_sdk import MuxedAccount

from conftest import load_fixture
from streampay_incident import find_payout_anomalies
from streampay_incident.checks import payouts as rules
from streampay_incident.codes import Severity
from streampay_incident.io.payouts import payouts_from_rows
from streampay_incident.io.rows import Row
from streampay_incident.model import NATIVE, NO_MEMO, Asset, Finding, Memo, Payout, PayoutPolicy
from streampay_incident.registry import get_plugin_manager, run_checks

PAYMENTS = [
    p
    for p in load_fixture("horizon/account_payments_pubnet_docs.json")["_embedded"]["records"]
    if p["type"] == "payment"
]
CREDIT = next(p for p in PAYMENTS if p["asset_type"] != "native")
DEST = PAYMENTS[0]["to"]
OTHER_DEST = CREDIT["to"]
USD = Asset(CREDIT["asset_code"], CREDIT["asset_issuer"])
HASHES = [p["transaction_hash"] for p in PAYMENTS]
T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


def payout(pid: str, **changes: Any) -> Payout:
    fields: dict[str, Any] = {
        "payout_id": pid,
        "settlement_id": f"stl-{pid}",
        "destination": DEST,
        "asset": NATIVE,
        "amount": 250_000_000,
        "status": "confirmed",
        "created_at": T0,
        "tx_hash": None,
        "memo": NO_MEMO,
        "idempotency_key": None,
        "ledger": None,
    }
    fields.update(changes)
    return Payout(**fields)


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def only(findings: list[Finding], code: str) -> Finding:
    [finding] = [f for f in findings if f.code == code]
    return finding


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# -- rule 1: duplicate tx record ---------------------------------------------------------------


def test_rows_sharing_a_tx_hash_any_case() -> None:
    # Parsed from an export: the same hash in upper and lower case is one hash.
    base = {
        "settlement_id": "stl-1",
        "destination": DEST,
        "asset": "native",
        "amount": "10",
        "status": "confirmed",
        "created_at": "2026-11-27T01:00:00Z",
    }
    rows = [
        Row(2, {**base, "payout_id": "b", "tx_hash": HASHES[0]}),
        Row(3, {**base, "payout_id": "a", "tx_hash": HASHES[0].upper()}),
    ]
    findings = find_payout_anomalies(payouts_from_rows(rows, source="t.csv"))
    finding = only(findings, "PAYOUT_DUPLICATE_TX_RECORD")
    assert finding.severity is Severity.WARNING
    assert finding.subject == HASHES[0]
    assert finding.evidence["payout_ids"] == ["a", "b"]
    # One transaction recorded twice moved money once: nothing at risk by itself.
    assert finding.evidence["amount_at_risk"] == {}
    assert finding.evidence["transfers"] == 1
    assert finding.runbook == "docs/runbooks/double-payout.md#payout-duplicate-tx-record"
    assert codes(findings) == ["PAYOUT_DUPLICATE_TX_RECORD"]


def test_hashes_from_a_host_are_compared_lower_cased_too() -> None:
    # A host building Payouts itself may keep its database's upper-case hashes.
    upper = [
        payout("a", settlement_id="s", tx_hash=HASHES[0].upper()),
        payout("b", settlement_id="s", tx_hash=HASHES[0], status="submitted"),
    ]
    findings = find_payout_anomalies(upper)
    assert codes(findings) == ["PAYOUT_DUPLICATE_TX_RECORD"]  # one transfer, not two
    assert findings[0].subject == HASHES[0]
    assert findings[0].evidence["tx_hashes"] == [HASHES[0]]
    assert codes(rules.duplicate_tx_records(upper)) == ["PAYOUT_DUPLICATE_TX_RECORD"]
    assert rules.duplicate_settlements(upper) == []
    assert upper[0].tx_hash == HASHES[0].upper()  # the caller's values are left alone


def test_an_upper_case_hash_is_found_after_many_lower_case_ones() -> None:
    # Hashes are checked a block at a time: one past the first block still counts.
    many = rules._HASHES_PER_CHECK + 5
    rows = [payout(f"p{i}", amount=i + 1, tx_hash=f"{i:064x}") for i in range(many)]
    rows.append(payout("late", amount=many + 1, tx_hash="A" + "0" * 62 + "F"))
    rows.append(payout("twin", amount=many + 2, tx_hash="a" + "0" * 62 + "f"))
    findings = find_payout_anomalies(rows)
    assert codes(findings) == ["PAYOUT_DUPLICATE_TX_RECORD"]
    assert findings[0].evidence["payout_ids"] == ["late", "twin"]


def test_one_finding_per_tx_hash_whatever_the_rows_and_statuses() -> None:
    findings = find_payout_anomalies(
        [
            payout("a", tx_hash=HASHES[0]),
            payout("b", tx_hash=HASHES[0], status="failed"),
            payout("c", tx_hash=HASHES[0], status="pending", settlement_id="stl-x"),
            payout("d", tx_hash=HASHES[1]),
        ]
    )
    finding = only(findings, "PAYOUT_DUPLICATE_TX_RECORD")
    assert finding.evidence["payout_ids"] == ["a", "b", "c"]
    assert finding.evidence["settlement_ids"] == ["stl-a", "stl-b", "stl-x"]


# -- rule 2: duplicate settlement --------------------------------------------------------------


def test_two_confirmed_transfers_for_one_settlement_is_critical() -> None:
    findings = find_payout_anomalies(
        [
            payout("p2", settlement_id="s", tx_hash=HASHES[1], created_at=at(6)),
            payout("p1", settlement_id="s", tx_hash=HASHES[0]),
        ]
    )
    finding = only(findings, "PAYOUT_DUPLICATE_SETTLEMENT")
    assert finding.severity is Severity.CRITICAL
    assert finding.subject == "s"
    assert finding.evidence["payout_ids"] == ["p1", "p2"]
    assert finding.evidence["amount_at_risk"] == {"native": "25.0000000"}
    assert finding.evidence["confirmed_transfers"] == 2


def test_a_second_transfer_not_yet_confirmed_is_a_warning() -> None:
    findings = find_payout_anomalies(
        [
            payout("p1", settlement_id="s", tx_hash=HASHES[0]),
            payout("p2", settlement_id="s", tx_hash=HASHES[1], status="submitted"),
        ]
    )
    assert only(findings, "PAYOUT_DUPLICATE_SETTLEMENT").severity is Severity.WARNING


def test_failed_and_pending_rows_are_not_transfers() -> None:
    findings = find_payout_anomalies(
        [
            payout("p1", settlement_id="s", tx_hash=HASHES[0], status="failed"),
            payout("p2", settlement_id="s", status="pending"),
            payout("p3", settlement_id="s", tx_hash=HASHES[1]),
        ]
    )
    assert findings == []


def test_transfers_without_hash_told_apart_by_payout_id() -> None:
    findings = find_payout_anomalies(
        [
            payout("p1", settlement_id="s", status="submitted"),
            payout("p2", settlement_id="s", status="submitted", amount=260_000_000),
        ]
    )
    finding = only(findings, "PAYOUT_DUPLICATE_SETTLEMENT")
    assert finding.severity is Severity.WARNING
    assert finding.evidence["transfers"] == 2


def test_rows_are_every_row_of_those_transfers_each_transfer_counted_once() -> None:
    findings = find_payout_anomalies(
        [
            payout("p1", settlement_id="s", tx_hash=HASHES[0]),
            payout("p1-copy", settlement_id="s", tx_hash=HASHES[0], status="submitted"),
            payout("p2", settlement_id="s", tx_hash=HASHES[1], created_at=at(1)),
            payout("p3", settlement_id="s", status="failed"),
        ]
    )
    finding = only(findings, "PAYOUT_DUPLICATE_SETTLEMENT")
    assert finding.evidence["payout_ids"] == ["p1", "p1-copy", "p2"]
    assert finding.evidence["transfers"] == 2
    assert finding.evidence["amount_at_risk"] == {"native": "25.0000000"}
    assert finding.severity is Severity.CRITICAL


def test_two_rows_of_one_transfer_are_not_a_duplicate_settlement() -> None:
    findings = find_payout_anomalies(
        [
            payout("p1", settlement_id="s", tx_hash=HASHES[0]),
            payout("p2", settlement_id="s", tx_hash=HASHES[0]),
        ]
    )
    assert codes(findings) == ["PAYOUT_DUPLICATE_TX_RECORD"]


# -- rule 3: duplicate memo --------------------------------------------------------------------


def test_one_memo_paid_for_two_settlements() -> None:
    memo = Memo("text", b"inv-2010")
    findings = find_payout_anomalies(
        [
            payout("a", memo=memo, tx_hash=HASHES[0]),
            payout("b", memo=memo, tx_hash=HASHES[1], destination=OTHER_DEST, amount=1),
        ]
    )
    finding = only(findings, "PAYOUT_DUPLICATE_MEMO")
    assert finding.severity is Severity.CRITICAL
    assert finding.subject == "text:inv-2010"
    assert finding.evidence["memo_type"] == "text"
    assert finding.evidence["memo"] == "inv-2010"
    assert finding.evidence["settlement_ids"] == ["stl-a", "stl-b"]
    assert finding.evidence["destinations"] == sorted([DEST, OTHER_DEST])
    assert finding.evidence["amount_at_risk"] == {"native": "0.0000001"}


def test_memo_subjects_are_readable() -> None:
    raw = bytes(range(32))
    cases = {
        Memo("id", 42): "id:42",
        Memo("hash", raw): f"hash:{raw.hex()}",
        Memo("return", raw): f"return:{raw.hex()}",
        Memo("text", "Airdrop invite✅".encode()): "text:Airdrop invite✅",
    }
    for memo, subject in cases.items():
        findings = find_payout_anomalies([payout("a", memo=memo), payout("b", memo=memo)])
        assert only(findings, "PAYOUT_DUPLICATE_MEMO").subject == subject
    assert rules.memo_text(Memo("text", b"\xffok")) == "text:\\xffok"
    assert rules.memo_text(Memo("text", "plain")) == "text:plain"  # type: ignore[arg-type]
    assert rules.memo_text(NO_MEMO) == "none"


def test_memo_type_is_part_of_the_memo() -> None:
    raw = bytes(32)
    findings = find_payout_anomalies(
        [
            payout("a", memo=Memo("hash", raw), amount=1),
            payout("b", memo=Memo("return", raw), amount=2),
            payout("c", memo=Memo("text", b"42"), amount=3),
            payout("d", memo=Memo("id", 42), amount=4),
        ]
    )
    assert findings == []


def test_id_memos_compare_as_numbers() -> None:
    base = {
        "destination": DEST,
        "asset": "native",
        "amount": "10",
        "status": "confirmed",
        "created_at": "2026-11-27T01:00:00Z",
        "memo_type": "id",
    }
    rows = [
        Row(2, {**base, "payout_id": "a", "settlement_id": "s1", "memo": "4242"}),
        Row(3, {**base, "payout_id": "b", "settlement_id": "s2", "memo": "004242", "amount": "11"}),
    ]
    finding = only(
        find_payout_anomalies(payouts_from_rows(rows, source="t")), "PAYOUT_DUPLICATE_MEMO"
    )
    assert finding.subject == "id:4242"


def test_empty_and_none_memos_never_group() -> None:
    empties = [NO_MEMO, Memo("text", b""), Memo("id", None), Memo("hash", None), Memo("none", b"x")]
    payouts = [payout(f"p{i}", memo=m, amount=i + 1) for i, m in enumerate(empties)]
    payouts += [payout(f"q{i}", memo=m, amount=i + 10) for i, m in enumerate(empties)]
    assert find_payout_anomalies(payouts) == []


def test_duplicate_memo_needs_two_settlements_two_transfers_and_confirmed_rows() -> None:
    memo = Memo("text", b"x")
    one_settlement = [
        payout("a", memo=memo, settlement_id="s", tx_hash=HASHES[0]),
        payout("b", memo=memo, settlement_id="s", tx_hash=HASHES[1], amount=1),
    ]
    assert "PAYOUT_DUPLICATE_MEMO" not in codes(find_payout_anomalies(one_settlement))
    one_transfer = [
        payout("a", memo=memo, tx_hash=HASHES[0]),
        payout("b", memo=memo, tx_hash=HASHES[0]),
    ]
    assert "PAYOUT_DUPLICATE_MEMO" not in codes(find_payout_anomalies(one_transfer))
    not_confirmed = [
        payout("a", memo=memo),
        payout("b", memo=memo, status="submitted", amount=1),
    ]
    assert find_payout_anomalies(not_confirmed) == []


# -- rule 4: idempotency conflict --------------------------------------------------------------


def test_idempotency_key_reused_with_another_amount() -> None:
    findings = find_payout_anomalies(
        [
            payout("p-030", settlement_id="s", idempotency_key="k", amount=500_000_000),
            payout(
                "p-031",
                settlement_id="s",
                idempotency_key="k",
                status="pending",
                amount=5_000_000_000,
            ),
        ]
    )
    finding = only(findings, "PAYOUT_IDEMPOTENCY_CONFLICT")
    assert finding.severity is Severity.CRITICAL
    assert finding.subject == "k"
    assert finding.evidence["differs_in"] == ["amount"]
    assert finding.evidence["payout_ids"] == ["p-030", "p-031"]  # the pending row too
    assert finding.evidence["amounts"] == ["50.0000000", "500.0000000"]
    assert finding.evidence["amount_at_risk"] == {}  # one transfer so far


def test_idempotency_conflict_on_each_field() -> None:
    muxed = MuxedAccount(DEST, 7).account_muxed
    variants = {
        "settlement_id": {"settlement_id": "other"},
        "destination": {"destination": muxed},
        "asset": {"asset": USD},
    }
    for field, change in variants.items():
        same = {"idempotency_key": "k", "settlement_id": "s"}
        findings = find_payout_anomalies([payout("a", **same), payout("b", **{**same, **change})])
        assert only(findings, "PAYOUT_IDEMPOTENCY_CONFLICT").evidence["differs_in"] == [field]


def test_a_retry_under_the_same_key_is_fine_and_native_is_xlm() -> None:
    findings = find_payout_anomalies(
        [
            payout("a", idempotency_key="k", settlement_id="s", status="failed"),
            payout("b", idempotency_key="k", settlement_id="s", asset=Asset("native")),
        ]
    )
    assert findings == []


def test_amount_at_risk_per_asset_beyond_the_first_transfer() -> None:
    findings = find_payout_anomalies(
        [
            payout("a", idempotency_key="k", tx_hash=HASHES[0], asset=USD, amount=849_410_878),
            payout("b", idempotency_key="k", tx_hash=HASHES[1], created_at=at(1)),
            payout("c", idempotency_key="k", tx_hash=HASHES[2], created_at=at(2), amount=1),
        ]
    )
    finding = only(findings, "PAYOUT_IDEMPOTENCY_CONFLICT")
    assert finding.evidence["amount_at_risk"] == {"native": "25.0000001"}
    assert finding.evidence["assets"] == sorted(["native", str(USD)])


# -- rule 5: suspected repeat ------------------------------------------------------------------


def test_same_payment_again_for_another_settlement() -> None:
    findings = find_payout_anomalies(
        [payout("a", tx_hash=HASHES[0]), payout("b", tx_hash=HASHES[1], created_at=at(4))]
    )
    finding = only(findings, "PAYOUT_SUSPECTED_REPEAT")
    assert finding.severity is Severity.WARNING
    assert finding.subject == DEST
    assert finding.evidence["amount_at_risk"] == {"native": "25.0000000"}
    assert finding.evidence["amount"] == "25.0000000"
    assert finding.evidence["asset"] == "native"
    assert finding.evidence["largest_gap_seconds"] == 240.0
    assert finding.evidence["first_created_at"] == "2026-11-27T01:00:00Z"


def test_gap_exactly_the_window_chains_one_second_more_does_not() -> None:
    exactly = [payout("a"), payout("b", created_at=at(10))]
    assert codes(find_payout_anomalies(exactly)) == ["PAYOUT_SUSPECTED_REPEAT"]
    beyond = [payout("a"), payout("b", created_at=at(10) + timedelta(seconds=1))]
    assert find_payout_anomalies(beyond) == []


def test_chains_grow_while_each_gap_fits() -> None:
    payouts = [payout("a"), payout("b", created_at=at(9)), payout("c", created_at=at(18))]
    finding = only(find_payout_anomalies(payouts), "PAYOUT_SUSPECTED_REPEAT")
    assert finding.evidence["payout_ids"] == ["a", "b", "c"]
    assert finding.evidence["amount_at_risk"] == {"native": "50.0000000"}
    # The window is a policy: 90 s breaks the same chain apart.
    short = PayoutPolicy(repeat_window=timedelta(seconds=90))
    assert find_payout_anomalies(payouts, policy=short) == []


def test_two_chains_for_one_destination_are_two_findings() -> None:
    payouts = [
        payout("a"),
        payout("b", created_at=at(5)),
        payout("c", created_at=at(60)),
        payout("d", created_at=at(65)),
    ]
    findings = [f for f in find_payout_anomalies(payouts) if f.code == "PAYOUT_SUSPECTED_REPEAT"]
    assert [f.evidence["payout_ids"] for f in findings] == [["a", "b"], ["c", "d"]]
    assert {f.subject for f in findings} == {DEST}


def test_repeat_needs_two_settlements_and_two_transfers() -> None:
    same_settlement = [
        payout("a", settlement_id="s"),
        payout("b", settlement_id="s", created_at=at(1)),
    ]
    assert "PAYOUT_SUSPECTED_REPEAT" not in codes(find_payout_anomalies(same_settlement))
    one_transfer = [
        payout("a", tx_hash=HASHES[0]),
        payout("b", tx_hash=HASHES[0], created_at=at(1)),
    ]
    assert "PAYOUT_SUSPECTED_REPEAT" not in codes(find_payout_anomalies(one_transfer))
    pending = [payout("a"), payout("b", status="pending", created_at=at(1))]
    assert find_payout_anomalies(pending) == []


def test_muxed_differs_from_its_base_account_and_other_ids() -> None:
    m1 = MuxedAccount(DEST, 1).account_muxed
    m2 = MuxedAccount(DEST, 2).account_muxed
    payouts = [payout("a"), payout("b", destination=m1), payout("c", destination=m2)]
    assert find_payout_anomalies(payouts) == []


def test_native_equals_xlm_and_amounts_compare_as_stroops() -> None:
    base = {"destination": DEST, "status": "confirmed"}
    rows = [
        Row(
            2,
            {
                **base,
                "payout_id": "a",
                "settlement_id": "s1",
                "asset": "native",
                "amount": "25",
                "created_at": "2026-11-27T01:00:00Z",
            },
        ),
        Row(
            3,
            {
                **base,
                "payout_id": "b",
                "settlement_id": "s2",
                "asset": "XLM",
                "amount": "25.0000000",
                "created_at": "2026-11-27T01:05:00Z",
            },
        ),
    ]
    findings = find_payout_anomalies(payouts_from_rows(rows, source="t"))
    assert codes(findings) == ["PAYOUT_SUSPECTED_REPEAT"]
    assert [f.code for f in find_payout_anomalies([payout("a"), payout("b", amount=1)])] == []


def test_different_assets_or_amounts_are_not_repeats() -> None:
    payouts = [payout("a"), payout("b", asset=USD), payout("c", amount=250_000_001)]
    assert find_payout_anomalies(payouts) == []


# -- all together --------------------------------------------------------------------------------


def test_demo_export_finds_every_rule() -> None:
    from importlib import resources

    from streampay_incident.io.payouts import read_payouts

    demo = resources.files("streampay_incident") / "demo_data" / "payouts.csv"
    findings = find_payout_anomalies(read_payouts(str(demo)))
    assert sorted(set(codes(findings))) == sorted(rules._CODE_ORDER)
    for finding in findings:
        assert finding.evidence["payout_ids"] == sorted(finding.evidence["payout_ids"])
        for amount in finding.evidence["amount_at_risk"].values():
            assert isinstance(amount, str) and amount.count(".") == 1


def test_registered_as_a_plugin_and_run_through_the_registry() -> None:
    assert rules.streampay_incident_register_payout_checks() == [find_payout_anomalies]
    pm = get_plugin_manager(load_entry_points=False)
    payouts = [
        payout("a", settlement_id="s", tx_hash=HASHES[0]),
        payout("b", settlement_id="s", tx_hash=HASHES[1]),
    ]
    findings = run_checks(
        pm, "streampay_incident_register_payout_checks", payouts, policy=PayoutPolicy()
    )
    assert "PAYOUT_DUPLICATE_SETTLEMENT" in codes(list(findings))


def test_accepts_any_iterable_and_the_public_rule_functions() -> None:
    payouts = [payout("a", settlement_id="s"), payout("b", settlement_id="s", created_at=at(2))]
    assert find_payout_anomalies(iter(payouts)) == find_payout_anomalies(payouts)
    assert codes(rules.duplicate_settlements(payouts)) == ["PAYOUT_DUPLICATE_SETTLEMENT"]
    assert rules.suspected_repeats(payouts) == []  # one settlement
    assert rules.duplicate_memos(payouts) == []
    assert rules.idempotency_conflicts(payouts) == []


def test_findings_come_in_a_stable_order() -> None:
    memo = Memo("id", 1)
    payouts = [
        payout("z", idempotency_key="k", memo=memo, tx_hash=HASHES[0]),
        payout("y", idempotency_key="k", memo=memo, tx_hash=HASHES[0], settlement_id="o"),
    ]
    assert codes(find_payout_anomalies(payouts)) == [
        "PAYOUT_DUPLICATE_TX_RECORD",
        "PAYOUT_IDEMPOTENCY_CONFLICT",
    ]


def test_large_inputs_are_deduplicated_in_blocks(monkeypatch: Any) -> None:
    monkeypatch.setattr(rules, "_KEYS_PER_SET", 3)
    payouts = [
        payout(f"p{i}", amount=i + 1, tx_hash=HASHES[i % 2] if i < 4 else None) for i in range(10)
    ]
    findings = find_payout_anomalies(payouts)
    assert [f.subject for f in findings] == sorted(HASHES[:2])


def test_summaries_and_windows_read_well() -> None:
    finding = only(
        find_payout_anomalies([payout("a"), payout("b", created_at=at(1))]),
        "PAYOUT_SUSPECTED_REPEAT",
    )
    assert finding.summary.startswith("2 transfers of 25.0000000 native")
    assert "2 settlements" in finding.summary
