"""Properties of the settlement classifier over generated settlements and chain records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streampay_incident import classify_settlements
from streampay_incident.checks.settlements import RETRY_REASONS, SAFE_REASONS
from streampay_incident.model import ChainTransaction, Settlement, SettlementPolicy

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
HASHES = [f"{i:02x}" * 32 for i in range(6)]
SOURCES = ["G" + c * 55 for c in "ABC"]
STATUSES = ["pending", "processing", "succeeded", "failed", "dead"]
CHAIN_STATUSES = ["success", "failed", "not_found", "unknown"]

offsets = st.integers(min_value=-3 * 3600, max_value=3 * 3600).map(lambda s: timedelta(seconds=s))
past = st.integers(min_value=0, max_value=4 * 3600).map(lambda s: NOW - timedelta(seconds=s))
maybe_time = st.none() | offsets.map(lambda d: NOW + d)


@st.composite
def settlements_strategy(draw: Any, settlement_id: str) -> Settlement:
    created = draw(past)
    later = st.integers(0, 4 * 3600).map(lambda s: created + timedelta(seconds=s))
    updated = draw(st.none() | later)
    tx_hashes = draw(st.lists(st.sampled_from(HASHES), max_size=2, unique=True))
    hashed = bool(tx_hashes)
    return Settlement(
        settlement_id=settlement_id,
        status=draw(st.sampled_from(STATUSES)),
        created_at=created,
        updated_at=updated,
        attempts=draw(st.integers(0, 10)),
        max_attempts=draw(st.integers(1, 10)),
        lease_until=draw(maybe_time),
        tx_hash=tx_hashes[0].upper() if hashed and draw(st.booleans()) else None,
        tx_hashes=tuple(tx_hashes),
        tx_max_time=draw(maybe_time) if hashed else None,
        source_account=draw(st.sampled_from(SOURCES)) if hashed else None,
        sequence=draw(st.integers(1, 20)) if hashed else None,
    )


@st.composite
def batches(draw: Any) -> list[Settlement]:
    count = draw(st.integers(0, 8))
    return [draw(settlements_strategy(f"stl-{i}")) for i in range(count)]


chain_records = st.lists(
    st.builds(
        ChainTransaction,
        hash=st.sampled_from(HASHES),
        status=st.sampled_from(CHAIN_STATUSES),
        oldest_ledger_close_time=maybe_time,
    ),
    max_size=8,
)
contexts = st.fixed_dictionaries(
    {
        "latest_ledger_close_time": maybe_time,
        "chain_status": st.sampled_from([None, "pass", "warn", "fail"]),
        "account_sequences": st.none()
        | st.dictionaries(st.sampled_from(SOURCES), st.integers(0, 20), max_size=3),
    }
)


def _classify(settlements: list[Settlement], records: list[ChainTransaction], ctx: Any) -> Any:
    return classify_settlements(settlements, transactions=records, now=NOW, **ctx)


def _finding_keys(triage: Any) -> set[tuple[str, str, str]]:
    return {(f.code, f.subject, f.severity.value) for f in triage.findings}


@given(batches(), chain_records, contexts, st.randoms(use_true_random=False))
def test_order_does_not_matter(
    settlements: list[Settlement], records: list[ChainTransaction], ctx: Any, rnd: Any
) -> None:
    first = _classify(settlements, records, ctx)
    shuffled_settlements, shuffled_records = settlements[:], records[:]
    rnd.shuffle(shuffled_settlements)
    rnd.shuffle(shuffled_records)
    second = _classify(shuffled_settlements, shuffled_records, ctx)
    assert _finding_keys(first) == _finding_keys(second)
    assert set(first.verdicts) == set(second.verdicts)


@given(batches(), chain_records, contexts)
def test_every_finding_belongs_to_its_settlement(
    settlements: list[Settlement], records: list[ChainTransaction], ctx: Any
) -> None:
    triage = _classify(settlements, records, ctx)
    verdicts = {v.settlement_id: v for v in triage.verdicts}
    assert len(triage.verdicts) == len(settlements)
    for finding in triage.findings:
        verdict = verdicts[finding.subject]
        assert finding.code in verdict.codes
        assert finding.evidence["settlement_id"] == finding.subject
        assert finding.evidence["retry_safe"] is verdict.retry_safe
        assert finding.evidence["retry_reason"] == verdict.retry_reason
    for verdict in triage.verdicts:
        mine = [f.code for f in triage.findings if f.subject == verdict.settlement_id]
        assert list(verdict.codes) == mine
        assert verdict.code == (mine[0] if mine else None)


@given(batches(), chain_records, contexts)
def test_retry_is_safe_only_with_a_proof(
    settlements: list[Settlement], records: list[ChainTransaction], ctx: Any
) -> None:
    for verdict in _classify(settlements, records, ctx).verdicts:
        assert verdict.retry_reason in RETRY_REASONS
        assert verdict.retry_safe == (verdict.retry_reason in SAFE_REASONS)
        if verdict.state in ("settled", "in_flight"):
            assert not verdict.retry_safe


@given(batches(), chain_records, contexts)
def test_a_tx_that_can_still_land_is_never_retry_safe(
    settlements: list[Settlement], records: list[ChainTransaction], ctx: Any
) -> None:
    triage = _classify(settlements, records, ctx)
    close = ctx["latest_ledger_close_time"]
    for s, verdict in zip(settlements, triage.verdicts, strict=True):
        if verdict.state != "stuck" or not s.all_tx_hashes or verdict.retry_reason == "tx_failed":
            continue
        provably_passed = s.tx_max_time is not None and close is not None and close > s.tx_max_time
        if not provably_passed:
            # Only a consumed sequence number proves it can never land.
            assert not verdict.retry_safe or verdict.retry_reason == "sequence_consumed"
        if ctx["account_sequences"] is None and not provably_passed:
            assert not verdict.retry_safe


@given(batches(), contexts)
def test_unknown_chain_answers_never_make_a_retry_safe(
    settlements: list[Settlement], ctx: Any
) -> None:
    unknown = [ChainTransaction(hash=h, status="unknown") for h in HASHES]
    for s, verdict in zip(settlements, _classify(settlements, unknown, ctx).verdicts, strict=True):
        if s.all_tx_hashes:
            assert not verdict.retry_safe


@st.composite
def clean_settlements(draw: Any) -> tuple[list[Settlement], list[ChainTransaction]]:
    """Settled ones (recorded succeeded, landed) and fresh in-flight ones: nothing wrong."""
    settlements, records = [], []
    policy = SettlementPolicy()
    for i in range(draw(st.integers(0, 8))):
        created = NOW - timedelta(seconds=draw(st.integers(0, 4 * 3600)))
        if draw(st.booleans()):
            tx_hash = f"{i:064x}"
            settlements.append(
                Settlement(f"stl-{i}", "succeeded", created, tx_hash=tx_hash, attempts=1)
            )
            if draw(st.booleans()):
                records.append(ChainTransaction(hash=tx_hash, status="success"))
            continue
        age = timedelta(seconds=draw(st.integers(0, int(policy.unconfirmed_after.total_seconds()))))
        submitted = draw(st.booleans())
        settlements.append(
            Settlement(
                f"stl-{i}",
                draw(st.sampled_from(["pending", "processing", "failed"])),
                NOW - age,
                attempts=draw(st.integers(0, 7)),
                lease_until=draw(st.none() | st.just(NOW + timedelta(minutes=5))),
                tx_hash=f"{i:064x}" if submitted else None,
                tx_max_time=NOW + timedelta(minutes=10) if submitted else None,
            )
        )
        if submitted and draw(st.booleans()):
            records.append(ChainTransaction(hash=f"{i:064x}", status="not_found"))
    return settlements, records


@given(clean_settlements(), st.sampled_from([None, "pass", "warn", "fail"]))
def test_no_findings_on_clean_data(clean: Any, chain_status: str | None) -> None:
    settlements, records = clean
    triage = classify_settlements(
        settlements,
        transactions=records,
        now=NOW,
        chain_status=chain_status,  # type: ignore[arg-type]
    )
    assert triage.findings == ()
    assert {v.state for v in triage.verdicts} <= {"settled", "in_flight"}


@given(batches(), chain_records, contexts, settlements_strategy("stl-extra"))
def test_an_unrelated_settlement_changes_no_other_verdict(
    settlements: list[Settlement], records: list[ChainTransaction], ctx: Any, extra: Settlement
) -> None:
    before = _classify(settlements, records, ctx)
    after = _classify([*settlements, extra], records, ctx)
    assert after.verdicts[:-1] == before.verdicts
    assert _finding_keys(before) <= _finding_keys(after)
