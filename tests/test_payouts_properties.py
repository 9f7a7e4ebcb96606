"""Properties of the payout rules (hypothesis): what must hold for any export.

The values are drawn from small pools of real recorded addresses, assets and
hashes (``tests/fixtures/stellar``) so that rows collide often.
"""

from __future__ import annotations

import csv
import io
import random
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st
from stellar_sdk import MuxedAccount

from conftest import load_fixture
from streampay_incident import find_payout_anomalies
from streampay_incident.amounts import MAX_INT64, format_stroops, parse_stroops
from streampay_incident.checks.payouts import memo_text
from streampay_incident.io import payout_fields
from streampay_incident.io import payouts as payouts_io
from streampay_incident.io.rows import iter_text_rows
from streampay_incident.model import NATIVE, NO_MEMO, Asset, Finding, Memo, Payout, PayoutPolicy

PAYMENTS = [
    p
    for p in load_fixture("horizon/account_payments_pubnet_docs.json")["_embedded"]["records"]
    if p["type"] == "payment"
]
CREDIT = next(p for p in PAYMENTS if p["asset_type"] != "native")
G_ADDRESSES = sorted({p["to"] for p in PAYMENTS})
ADDRESSES = [*G_ADDRESSES, MuxedAccount(G_ADDRESSES[0], 1).account_muxed]
ASSETS = [NATIVE, Asset("native"), Asset(CREDIT["asset_code"], CREDIT["asset_issuer"])]
HASHES = sorted({p["transaction_hash"] for p in PAYMENTS})
AMOUNTS = [1, 250_000_000, int(CREDIT["amount"].replace(".", ""))]
MEMOS = [
    NO_MEMO,
    Memo("text", b"inv-1"),
    Memo("text", b""),
    Memo("id", 42),
    Memo("hash", bytes(32)),
]
STATUSES = ["pending", "submitted", "confirmed", "failed"]
T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
# Never in the pools above: for records unrelated to anything drawn.
UNRELATED_DEST = load_fixture("horizon/payments_page_pubnet_docs.json")["_embedded"]["records"][1][
    "to"
]


@st.composite
def payout_lists(draw: st.DrawFn) -> list[Payout]:
    """Up to 14 payouts with unique payout_ids and colliding everything else."""
    size = draw(st.integers(0, 14))
    payouts = []
    for i in range(size):
        payouts.append(
            Payout(
                payout_id=f"p{i}",
                settlement_id=draw(st.sampled_from(["s1", "s2", "s3", "s4"])),
                destination=draw(st.sampled_from(ADDRESSES)),
                asset=draw(st.sampled_from(ASSETS)),
                amount=draw(st.sampled_from(AMOUNTS)),
                status=draw(st.sampled_from(STATUSES)),
                created_at=T0 + timedelta(minutes=draw(st.integers(0, 40))),
                tx_hash=draw(st.sampled_from([None, *HASHES[:3]])),
                memo=draw(st.sampled_from(MEMOS)),
                idempotency_key=draw(st.sampled_from([None, "k1", "k2"])),
                ledger=None,
            )
        )
    return payouts


@st.composite
def clean_payout_lists(draw: st.DrawFn) -> list[Payout]:
    """Payouts with no double payout: every key unique, every payment different."""
    size = draw(st.integers(0, 14))
    payouts = []
    for i in range(size):
        status = draw(st.sampled_from(STATUSES))
        payouts.append(
            Payout(
                payout_id=f"p{i}",
                settlement_id=f"s{i}",
                destination=draw(st.sampled_from(ADDRESSES)),
                asset=draw(st.sampled_from(ASSETS)),
                amount=1000 + i,  # never the same payment twice
                status=status,
                created_at=T0 + timedelta(minutes=draw(st.integers(0, 40))),
                tx_hash=None if status == "pending" else f"{i:064x}",
                memo=draw(
                    st.sampled_from([NO_MEMO, Memo("text", f"inv-{i}".encode()), Memo("id", i)])
                ),
                idempotency_key=draw(st.sampled_from([None, f"k{i}"])),
                ledger=None,
            )
        )
    return payouts


def summary(findings: list[Finding]) -> list[dict[str, Any]]:
    return [f.to_json() for f in findings]


@given(payout_lists(), st.randoms(use_true_random=False))
def test_order_does_not_matter(payouts: list[Payout], rnd: random.Random) -> None:
    shuffled = list(payouts)
    rnd.shuffle(shuffled)
    assert summary(find_payout_anomalies(shuffled)) == summary(find_payout_anomalies(payouts))


@given(clean_payout_lists())
def test_no_false_positives_on_clean_data(payouts: list[Payout]) -> None:
    assert find_payout_anomalies(payouts) == []


@given(payout_lists(), st.sampled_from([timedelta(seconds=90), timedelta(minutes=10)]))
def test_every_finding_s_records_share_its_key(payouts: list[Payout], window: timedelta) -> None:
    by_id = {p.payout_id: p for p in payouts}
    for finding in find_payout_anomalies(payouts, policy=PayoutPolicy(repeat_window=window)):
        rows = [by_id[i] for i in finding.evidence["payout_ids"]]
        assert finding.evidence["payout_ids"] == sorted(finding.evidence["payout_ids"])
        assert len(rows) >= 2
        if finding.code == "PAYOUT_DUPLICATE_TX_RECORD":
            assert {p.tx_hash for p in rows} == {finding.subject}
        elif finding.code == "PAYOUT_DUPLICATE_SETTLEMENT":
            assert {p.settlement_id for p in rows} == {finding.subject}
            assert all(p.is_transfer for p in rows)
            assert len({p.transfer_key for p in rows}) >= 2
        elif finding.code == "PAYOUT_DUPLICATE_MEMO":
            assert {memo_text(p.memo) for p in rows} == {finding.subject}
            assert all(p.status == "confirmed" for p in rows)
            assert len({p.settlement_id for p in rows}) >= 2
        elif finding.code == "PAYOUT_IDEMPOTENCY_CONFLICT":
            assert {p.idempotency_key for p in rows} == {finding.subject}
        else:
            assert finding.code == "PAYOUT_SUSPECTED_REPEAT"
            assert {p.destination for p in rows} == {finding.subject}
            assert len({(str(p.asset), p.amount) for p in rows}) == 1
            assert all(p.is_transfer for p in rows)
            assert len({p.settlement_id for p in rows}) >= 2
            first_seen: dict[str, datetime] = {}
            for p in rows:  # a transfer is as old as its earliest row
                first_seen[p.transfer_key] = min(
                    first_seen.get(p.transfer_key, p.created_at), p.created_at
                )
            times = sorted(first_seen.values())
            assert len(times) >= 2
            assert all(b - a <= window for a, b in zip(times, times[1:], strict=False))


@given(payout_lists(), st.sampled_from(STATUSES), st.integers(0, 40))
def test_an_unrelated_record_never_removes_a_finding(
    payouts: list[Payout], status: str, minute: int
) -> None:
    unrelated = Payout(
        payout_id="unrelated",
        settlement_id="s-unrelated",
        destination=UNRELATED_DEST,
        asset=NATIVE,
        amount=7,
        status=status,  # type: ignore[arg-type]
        created_at=T0 + timedelta(minutes=minute),
        tx_hash=None if status == "pending" else "f" * 64,
        memo=Memo("text", b"unrelated"),
        idempotency_key="k-unrelated",
    )
    before = summary(find_payout_anomalies(payouts))
    after = summary(find_payout_anomalies([*payouts, unrelated]))
    assert after == before


@given(payout_lists())
def test_amount_at_risk_is_exact_and_bounded_by_the_rows(payouts: list[Payout]) -> None:
    by_id = {p.payout_id: p for p in payouts}
    for finding in find_payout_anomalies(payouts):
        rows = [by_id[i] for i in finding.evidence["payout_ids"]]
        spent: dict[str, int] = defaultdict(int)
        for p in rows:
            spent[str(p.asset)] += p.amount
        at_risk = 0
        for asset, text in finding.evidence["amount_at_risk"].items():
            stroops = parse_stroops(text)
            assert format_stroops(stroops) == text  # a 7-decimal string, exactly
            assert 0 < stroops <= spent[asset]
            at_risk += stroops
        # The first transfer is presumed intended: never counted at risk.
        assert at_risk < sum(spent.values())


@given(st.integers(1, MAX_INT64))
def test_amounts_round_trip(stroops: int) -> None:
    text = format_stroops(stroops)
    assert parse_stroops(text) == stroops
    assert payout_fields._amounts([text, text.rstrip("0").rstrip(".")]) == [stroops, stroops]


def export_text(payouts: list[Payout], rnd: random.Random) -> str:
    """The payouts as a CSV export, spelt in the many ways exporters spell things."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=rnd.choice(["\n", "\r\n"]))
    writer.writerow(
        [
            "payout_id",
            "settlement_id",
            "destination",
            "asset",
            "amount",
            "status",
            "tx_hash",
            "memo_type",
            "memo",
            "idempotency_key",
            "created_at",
            "ledger",
        ]
    )
    for p in payouts:
        amount = format_stroops(p.amount)
        if rnd.random() < 0.5:
            amount = amount.rstrip("0").rstrip(".")
        asset = str(p.asset) if not p.asset.is_native else rnd.choice(["native", "XLM"])
        tx = p.tx_hash or ""
        memo_type, memo = p.memo.type, p.memo.value
        memo_cell = (
            ""
            if memo is None
            else str(memo)
            if isinstance(memo, int)
            else memo.decode()
            if memo_type == "text"
            else memo.hex()
        )
        writer.writerow(
            [
                p.payout_id,
                p.settlement_id,
                p.destination,
                asset,
                amount,
                p.status,
                tx.upper() if rnd.random() < 0.3 else tx,
                memo_type if memo_type != "none" or rnd.random() < 0.5 else "",
                memo_cell,
                p.idempotency_key or "",
                p.created_at.isoformat().replace("+00:00", rnd.choice(["Z", "+00:00"])),
                str(p.ledger or ""),
            ]
        )
    return out.getvalue()


@given(payout_lists(), st.randoms(use_true_random=False))
def test_exports_round_trip_and_fast_equals_careful(
    payouts: list[Payout], rnd: random.Random
) -> None:
    text = export_text(payouts, rnd)
    careful = payouts_io._careful_payouts_from_rows(
        iter_text_rows(text, source="t.csv", fmt="csv"), source="t.csv"
    )
    rows_path = payouts_io.payouts_from_rows(
        iter_text_rows(text, source="t.csv", fmt="csv"), source="t.csv"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "payouts.csv"
        path.write_text(text, encoding="utf-8", newline="")
        fast = payouts_io.read_payouts(path, source="t.csv")
    expected = [
        Payout(
            **{
                **_fields(p),
                "asset": NATIVE if p.asset.is_native else p.asset,
                "memo": _parsed_memo(p.memo),
            }
        )
        for p in payouts
    ]
    assert careful == rows_path == fast == expected


def _fields(payout: Payout) -> dict[str, Any]:
    return {field.name: getattr(payout, field.name) for field in attrs.fields(Payout)}


def _parsed_memo(memo: Memo) -> Memo:
    # An empty text memo written to CSV reads back as an empty memo of that type.
    return memo if not memo.is_empty else payouts_io.parse_memo(memo.type, None)
