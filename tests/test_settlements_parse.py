"""Settlement records (settlement_outbox exports) into Settlement values, every pinned field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import load_fixture
from streampay_incident.errors import InputError, SecretSeedError
from streampay_incident.io.rows import Row, iter_text_rows
from streampay_incident.io.settlements import read_settlements, settlements_from_rows
from streampay_incident.stellar.networks import PUBLIC, TESTNET
from test_envelope import build_envelope, public_key

TRIPLES = load_fixture("tx_hash_triples.json")["triples"]
V0_TESTNET = next(t for t in TRIPLES if t["expected_hash"].startswith("5131aed2"))
FEE_BUMP = next(t for t in TRIPLES if "inner_transaction_hash" in t)
BASE = {"settlement_id": "stl-1", "status": "pending", "created_at": "2026-11-27T02:00:00Z"}


def parse(*records: dict[str, Any], network: str | None = None) -> list[Any]:
    rows = [Row(n, {k: v for k, v in r.items() if v is not None}) for n, r in enumerate(records, 1)]
    return settlements_from_rows(rows, source="s.jsonl", network_passphrase=network)


def problems(*records: dict[str, Any], network: str | None = None) -> list[tuple[Any, ...]]:
    with pytest.raises(InputError) as info:
        parse(*records, network=network)
    return [(p.line, p.field) for p in info.value.problems]


def test_minimal_record_and_defaults() -> None:
    (s,) = parse(BASE)
    assert s.settlement_id == "stl-1" and s.status == "pending"
    assert s.created_at == datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    assert (s.attempts, s.max_attempts) == (0, 8)
    assert s.updated_at is s.lease_until is s.tx_hash is s.tx_max_time is None
    assert s.tx_hashes == () and s.source_account is None and s.sequence is None


def test_every_field_from_csv() -> None:
    text = (
        "settlement_id,status,created_at,updated_at,attempts,max_attempts,lease_until,tx_hash,"
        "tx_max_time,last_error,extra_column\n"
        f"stl-9,PROCESSING,2026-11-27T02:00:00+01:00,2026-11-27T02:05:00Z,3,5,"
        f"2026-11-27T02:10:00Z,{'AB' * 32},1800000000,timeout,ignored\n"
        "stl-10,pending,2026-11-27T02:00:00Z,,,,,,,,\n"
    )
    first, second = settlements_from_rows(
        iter_text_rows(text, source="s.csv"), source="s.csv", network_passphrase=None
    )
    assert first.status == "processing"
    assert first.created_at == datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
    assert first.updated_at == datetime(2026, 11, 27, 2, 5, tzinfo=UTC)
    assert (first.attempts, first.max_attempts) == (3, 5)
    assert first.lease_until == datetime(2026, 11, 27, 2, 10, tzinfo=UTC)
    assert first.tx_hash == "ab" * 32 and first.all_tx_hashes == ("ab" * 32,)
    assert first.tx_max_time == datetime.fromtimestamp(1_800_000_000, UTC)
    assert first.last_error == "timeout"
    assert second.updated_at is None and second.attempts == 0 and second.max_attempts == 8


def test_json_numbers_are_read_exactly() -> None:
    text = json.dumps({**BASE, "settlement_id": 42, "attempts": 2, "tx_max_time": 1800000000})
    (s,) = settlements_from_rows(
        iter_text_rows(text, source="s.jsonl"), source="s.jsonl", network_passphrase=None
    )
    assert s.settlement_id == "42" and s.attempts == 2
    assert s.tx_max_time == datetime.fromtimestamp(1_800_000_000, UTC)


@pytest.mark.parametrize("value", ["0", 0, "000", "1970-01-01T00:00:00Z"])
def test_zero_max_time_means_no_bound(value: Any) -> None:
    (s,) = parse({**BASE, "tx_max_time": str(value)})
    assert s.tx_max_time is None


def test_rfc3339_max_time() -> None:
    (s,) = parse({**BASE, "tx_max_time": "2026-11-27T02:45:00Z"})
    assert s.tx_max_time == datetime(2026, 11, 27, 2, 45, tzinfo=UTC)


@pytest.mark.parametrize("field", ["settlement_id", "status", "created_at"])
def test_required_fields(field: str) -> None:
    assert problems({**BASE, field: None}) == [(1, field)]
    assert problems({**BASE, field: "  "}) == [(1, field)]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "queued"),
        ("created_at", "2026-11-27T02:00:00"),  # naive: ambiguous
        ("updated_at", "yesterday"),
        ("lease_until", "2026-13-01T00:00:00Z"),
        ("attempts", "-1"),
        ("attempts", "1.5"),
        ("max_attempts", "many"),
        ("max_attempts", "0"),
        ("tx_hash", "abc"),
        ("tx_max_time", "soon"),
        ("tx_max_time", "99999999999999999"),
        ("settlement_id", {"nested": 1}),
        ("status", True),
    ],
)
def test_bad_values_name_the_field(field: str, value: Any) -> None:
    assert problems({**BASE, field: value}) == [(1, field)]


def test_every_bad_record_is_reported() -> None:
    found = problems(
        BASE,
        {"status": "nope"},
        {**BASE, "attempts": "x", "tx_hash": "zz"},
    )
    assert found == [
        (2, "settlement_id"),
        (2, "created_at"),
        (2, "status"),
        (3, "attempts"),
        (3, "tx_hash"),
    ]


def test_envelope_gives_hash_max_time_source_and_sequence() -> None:
    (s,) = parse({**BASE, "envelope_xdr": V0_TESTNET["envelope_xdr"]}, network=TESTNET)
    assert s.tx_hash == V0_TESTNET["expected_hash"]
    assert s.tx_hashes == (V0_TESTNET["expected_hash"],)
    assert s.source_account == "GC3IMK2BSHNZZ4WAC3AXQYA7HQTZKUUDJ7UYSA2HTNCIX5S5A5NVD3FD"
    assert s.sequence == 1881766906298369
    assert s.tx_max_time is None  # this recorded envelope has no upper bound


def test_envelope_max_time_and_matching_columns() -> None:
    source = public_key()
    xdr, sdk = build_envelope(source=source, sequence=500, max_time=1_800_000_000)
    record = {
        **BASE,
        "envelope_xdr": xdr,
        "tx_hash": sdk.hash_hex().upper(),
        "tx_max_time": "2027-01-15T08:00:00Z",
    }
    (s,) = parse(record, network=TESTNET)
    assert s.tx_hash == sdk.hash_hex()
    assert s.tx_max_time == datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
    assert (s.source_account, s.sequence) == (source, 500)


def test_fee_bump_is_identified_by_both_hashes() -> None:
    outer, inner = FEE_BUMP["expected_hash"], FEE_BUMP["inner_transaction_hash"]
    (s,) = parse({**BASE, "envelope_xdr": FEE_BUMP["envelope_xdr"]}, network=PUBLIC)
    assert s.tx_hash == outer and s.tx_hashes == (outer, inner)
    # StreamPay may have recorded the inner hash: that is the same transaction.
    recorded_inner = {**BASE, "envelope_xdr": FEE_BUMP["envelope_xdr"], "tx_hash": inner}
    (t,) = parse(recorded_inner, network=PUBLIC)
    assert t.tx_hash == inner and set(t.all_tx_hashes) == {outer, inner}


def test_envelope_without_network_is_an_input_error() -> None:
    with pytest.raises(InputError) as info:
        parse({**BASE, "envelope_xdr": V0_TESTNET["envelope_xdr"]})
    (problem,) = info.value.problems
    assert problem.field == "envelope_xdr" and "--network" in problem.message


def test_hash_disagreeing_with_envelope_is_an_input_error() -> None:
    record = {**BASE, "envelope_xdr": V0_TESTNET["envelope_xdr"], "tx_hash": "ab" * 32}
    with pytest.raises(InputError) as info:
        parse(record, network=TESTNET)
    (problem,) = info.value.problems
    assert problem.field == "tx_hash" and "wrong --network" in problem.message


def test_wrong_network_shows_up_as_a_hash_mismatch() -> None:
    record = {
        **BASE,
        "envelope_xdr": V0_TESTNET["envelope_xdr"],
        "tx_hash": V0_TESTNET["expected_hash"],
    }
    assert problems(record, network=PUBLIC) == [(1, "tx_hash")]


def test_max_time_disagreeing_with_envelope_is_an_input_error() -> None:
    xdr, _ = build_envelope(max_time=1_800_000_000)
    assert problems({**BASE, "envelope_xdr": xdr, "tx_max_time": "0"}, network=TESTNET) == [
        (1, "tx_max_time")
    ]


def test_not_an_envelope_names_the_field() -> None:
    assert problems({**BASE, "envelope_xdr": "bm90IGFuIGVudmVsb3Bl"}, network=TESTNET) == [
        (1, "envelope_xdr")
    ]


def test_read_settlements_from_files(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps([BASE, {**BASE, "settlement_id": "stl-2"}]), encoding="utf-8")
    assert [s.settlement_id for s in read_settlements(path, network_passphrase=None)] == [
        "stl-1",
        "stl-2",
    ]
    with pytest.raises(InputError, match="file not found"):
        read_settlements(tmp_path / "missing.jsonl", network_passphrase=None)


def test_secret_seed_anywhere_is_refused_without_echo(tmp_path: Path) -> None:
    from stellar_sdk import Keypair

    seed = Keypair.random().secret
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({**BASE, "last_error": f"signer {seed}"}) + "\n", encoding="utf-8")
    with pytest.raises(SecretSeedError) as info:
        read_settlements(path, network_passphrase=TESTNET)
    assert seed not in str(info.value)
