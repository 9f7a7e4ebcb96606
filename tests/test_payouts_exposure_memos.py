"""Issue 9 §7 (money about to leave: ``amount_exposed``) and §8 (repeats and memos)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from streampay_incident import find_payout_anomalies
from streampay_incident.checks import payouts as rules
from streampay_incident.model import NO_MEMO, Memo
from streampay_incident.report import _evidence_line
from test_payouts_rules import DEST, HASHES, T0, USD, only, payout


def test_a_queued_row_under_a_conflicting_idempotency_key_is_exposed() -> None:
    # §7: one confirmed transfer under key idem-9 and a queued row under the same key with
    # another amount: nothing sent twice yet, but 30 XLM is about to leave.
    rows = [
        payout("p1", idempotency_key="idem-9", tx_hash=HASHES[0]),
        payout(
            "p2",
            idempotency_key="idem-9",
            status="pending",
            amount=300_000_000,
            created_at=T0 + timedelta(minutes=1),
        ),
    ]
    finding = only(find_payout_anomalies(rows), "PAYOUT_IDEMPOTENCY_CONFLICT")
    assert finding.evidence["amount_at_risk"] == {}
    assert finding.evidence["amount_exposed"] == {"native": "30.0000000"}
    assert "about to leave: 30.0000000 native" in _evidence_line(finding)


def test_without_a_transfer_the_earliest_queued_row_is_the_intended_one() -> None:
    rows = [
        payout("p1", idempotency_key="k", status="pending", amount=100_000_000),
        payout(
            "p2",
            idempotency_key="k",
            status="pending",
            asset=USD,
            amount=70_000_000,
            created_at=T0 + timedelta(seconds=5),
        ),
        payout("p3", idempotency_key="k", status="failed", amount=1),
    ]
    finding = only(find_payout_anomalies(rows), "PAYOUT_IDEMPOTENCY_CONFLICT")
    assert finding.evidence["amount_exposed"] == {str(USD): "7.0000000"}
    assert finding.evidence["amount_at_risk"] == {}


def test_every_finding_carries_amount_exposed() -> None:
    rows = [payout("a", tx_hash=HASHES[0]), payout("b", tx_hash=HASHES[0])]
    for finding in find_payout_anomalies(rows):
        assert finding.evidence["amount_exposed"] == {}


def text_memo(text: str) -> Memo:
    return Memo("text", text.encode())


def test_two_customers_of_an_exchange_are_not_a_repeat() -> None:
    # §8: same destination, asset and amount a minute apart, memos 1001 and 1002: two
    # customers of the exchange, not a repeat.
    rows = [
        payout("p1", memo=Memo("id", 1001)),
        payout("p2", memo=Memo("id", 1002), created_at=T0 + timedelta(minutes=1)),
    ]
    assert rules.suspected_repeats(rows) == []


def test_equal_memos_or_one_absent_still_chain() -> None:
    same = [
        payout("p1", memo=text_memo("cust-7")),
        payout("p2", memo=text_memo("cust-7"), created_at=T0 + timedelta(minutes=1)),
    ]
    assert len(rules.suspected_repeats(same)) == 1
    one_absent = [
        payout("p1", memo=text_memo("cust-7")),
        payout("p2", memo=NO_MEMO, created_at=T0 + timedelta(minutes=1)),
    ]
    assert len(rules.suspected_repeats(one_absent)) == 1


def test_a_memo_less_transfer_chains_with_each_memo_but_never_links_them() -> None:
    rows = [
        payout("p1", memo=Memo("id", 1001)),
        payout("p2", memo=NO_MEMO, created_at=T0 + timedelta(minutes=1)),
        payout("p3", memo=Memo("id", 1002), created_at=T0 + timedelta(minutes=2)),
        payout("p4", memo=Memo("id", 1001), created_at=T0 + timedelta(minutes=3)),
    ]
    chains = sorted(tuple(f.evidence["payout_ids"]) for f in rules.suspected_repeats(rows))
    assert chains == [("p1", "p2", "p4"), ("p2", "p3")]
    # Memo-less transfers only, with memos elsewhere in the group: reported once.
    far = T0 + timedelta(hours=5)
    lonely = [
        payout("p1", memo=Memo("id", 1001)),
        payout("p5", memo=Memo("id", 1002), created_at=T0 + timedelta(hours=1)),
        payout("p6", created_at=far),
        payout("p7", created_at=far + timedelta(minutes=1)),
    ]
    assert [f.evidence["payout_ids"] for f in rules.suspected_repeats(lonely)] == [["p6", "p7"]]


memos = st.sampled_from([NO_MEMO, Memo("id", 1), Memo("id", 2), Memo("text", b"a")])


@given(st.lists(st.tuples(memos, st.integers(0, 1200)), min_size=2, max_size=7))
def test_no_repeat_chain_holds_two_present_and_different_memos(
    draws: list[tuple[Memo, int]],
) -> None:
    rows = [
        payout(f"p{i}", memo=memo, created_at=T0 + timedelta(seconds=offset), destination=DEST)
        for i, (memo, offset) in enumerate(draws)
    ]
    by_id = {p.payout_id: p for p in rows}
    for finding in rules.suspected_repeats(rows):
        present = {
            rules.memo_text(by_id[pid].memo)
            for pid in finding.evidence["payout_ids"]
            if not by_id[pid].memo.is_empty
        }
        assert len(present) <= 1
