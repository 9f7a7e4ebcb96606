"""Envelope decoding and hashing: every real triple reproduces; every shape is described.

Envelopes beyond the recorded ones are built here at run time from random
public keys and are never signed: the "signatures" are random bytes, which is
all the hashing code needs (it measures them to find the transaction bytes).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import warnings
from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import load_fixture
from streampay_incident.errors import InputError
from streampay_incident.stellar.envelope import (
    EnvelopeError,
    envelope_identity,
    inspect_transaction,
    network_id,
    transaction_hashes,
)
from streampay_incident.stellar.networks import PUBLIC, TESTNET

TRIPLES: list[dict[str, Any]] = load_fixture("tx_hash_triples.json")["triples"]
CORPUS: list[dict[str, Any]] = load_fixture("corpus/horizon_pubnet_transactions_50.json")["records"]
ENVELOPE_TYPES = {
    "ENVELOPE_TYPE_TX_V0": "tx_v0",
    "ENVELOPE_TYPE_TX": "tx",
    "ENVELOPE_TYPE_TX_FEE_BUMP": "tx_fee_bump",
}


# --- builders shared with the settlement tests -------------------------------------------------


def public_key() -> str:
    """A fresh G... address (the secret is never used or kept)."""
    from stellar_sdk import Keypair

    return Keypair.random().public_key


def _fake_signatures(envelope: Any, count: int) -> None:
    from stellar_sdk import DecoratedSignature

    for size in (64, 5, 64, 7)[:count]:  # odd sizes exercise the XDR padding
        envelope.signatures.append(DecoratedSignature(os.urandom(4), os.urandom(size)))


def build_envelope(
    *,
    network: str = TESTNET,
    source: str | None = None,
    sequence: int = 123456789,
    max_time: int | None = 1_900_000_000,
    min_time: int = 0,
    memo: Any = None,
    operations: tuple[str, ...] = ("payment",),
    fee_bump: bool = False,
    fee_source: str | None = None,
    v0: bool = False,
    signatures: int = 1,
) -> tuple[str, Any]:
    """``(envelope_xdr, sdk_envelope)`` for an unsigned transaction with fake signatures."""
    from stellar_sdk import Account, Asset, TransactionBuilder

    source = source or public_key()
    issuer = public_key()
    usd = Asset("USD", issuer)
    account = Account(source, sequence - 1)
    builder = TransactionBuilder(account, network_passphrase=network, base_fee=100, v1=not v0)
    if max_time is not None:
        builder.add_time_bounds(min_time, max_time)
    if memo is not None:
        builder.add_memo(memo)
    for op in operations:
        if op == "payment":
            builder.append_payment_op(public_key(), usd, "25.5")
        elif op == "create_account":
            builder.append_create_account_op(public_key(), "1.0000001")
        elif op == "strict_receive":
            builder.append_path_payment_strict_receive_op(
                public_key(), Asset.native(), "10", usd, "9.5", []
            )
        elif op == "strict_send":
            builder.append_path_payment_strict_send_op(
                public_key(), usd, "10", Asset("LONGASSET12", issuer), "0.0000001", []
            )
        elif op == "account_merge":
            builder.append_account_merge_op(public_key())
        elif op == "claimable_balance":
            from stellar_sdk import Claimant

            builder.append_create_claimable_balance_op(usd, "3", [Claimant(public_key())])
        elif op == "clawback":
            builder.append_clawback_op(usd, public_key(), "4")
        elif op == "bump_sequence":
            builder.append_bump_sequence_op(99)
        elif op == "muxed_payment":
            from stellar_sdk import MuxedAccount

            builder.append_payment_op(MuxedAccount(public_key(), 42).account_muxed, usd, "1")
        else:  # pragma: no cover - a typo in a test
            raise AssertionError(op)
    with warnings.catch_warnings():  # the SDK nags about missing time bounds: on purpose here
        warnings.simplefilter("ignore", UserWarning)
        envelope = builder.build()
    _fake_signatures(envelope, signatures)
    if fee_bump:
        outer = TransactionBuilder.build_fee_bump_transaction(
            fee_source or public_key(), 200, envelope, network
        )
        _fake_signatures(outer, signatures)
        return outer.to_xdr(), outer
    return envelope.to_xdr(), envelope


# --- the real triples --------------------------------------------------------------------------


@pytest.mark.parametrize("triple", TRIPLES, ids=[t["expected_hash"][:12] for t in TRIPLES])
def test_every_recorded_triple_reproduces(triple: dict[str, Any]) -> None:
    summary = inspect_transaction(
        triple["envelope_xdr"], network_passphrase=triple["network_passphrase"]
    )
    assert summary.hash == triple["expected_hash"]
    assert summary.inner_hash == triple.get("inner_transaction_hash")
    assert summary.envelope_type == ENVELOPE_TYPES[triple["envelope_type"]]
    assert summary.memo_type == triple["memo_type"]
    expected_memo = triple["memo_value"]
    if triple["memo_type"] in ("hash", "return"):
        # Horizon prints hash memos as base64; the tool prints hex.
        expected_memo = base64.b64decode(expected_memo).hex()
    assert summary.memo == expected_memo
    hashes = tuple(h for h in (triple["expected_hash"], triple.get("inner_transaction_hash")) if h)
    assert (
        transaction_hashes(triple["envelope_xdr"], network_passphrase=triple["network_passphrase"])
        == hashes
    )
    identity = envelope_identity(
        triple["envelope_xdr"], network_passphrase=triple["network_passphrase"]
    )
    assert identity.hashes == hashes
    assert identity.source_account == summary.source_account
    assert identity.sequence == summary.sequence and identity.max_time == summary.max_time


def test_triples_cover_every_envelope_type_and_memo_kind_recorded() -> None:
    assert {t["envelope_type"] for t in TRIPLES} == set(ENVELOPE_TYPES)
    assert {t["memo_type"] for t in TRIPLES} >= {"none", "text", "hash"}
    assert len(TRIPLES) == 26


def test_corpus_hashes_match_horizon_and_the_sdk() -> None:
    from stellar_sdk import TransactionBuilder

    for record in CORPUS:
        hashes = transaction_hashes(record["envelope_xdr"], network_passphrase=PUBLIC)
        assert hashes[0] == record["hash"]
        sdk = TransactionBuilder.from_xdr(record["envelope_xdr"], PUBLIC)
        assert hashes[1] == sdk.transaction.inner_transaction_envelope.hash_hex()


def test_wrong_network_gives_another_hash() -> None:
    triple = TRIPLES[0]
    other = inspect_transaction(triple["envelope_xdr"], network_passphrase=TESTNET)
    assert other.hash != triple["expected_hash"]


def test_network_id_is_sha256_of_the_passphrase() -> None:
    assert network_id(PUBLIC).hex() == (
        "7ac33997544e3175d266bd022439b22cdb16508c01163f26e5cb2a3e1045a979"
    )


# --- shapes built at run time ------------------------------------------------------------------


@pytest.mark.parametrize("signatures", [0, 1, 2, 4])
@pytest.mark.parametrize("kind", ["v0", "v1", "fee_bump", "fee_bump_muxed"])
def test_hash_matches_the_sdk_for_every_envelope_shape(kind: str, signatures: int) -> None:
    from stellar_sdk import MuxedAccount

    muxed_fee_source = MuxedAccount(public_key(), 7).account_muxed
    xdr, sdk = build_envelope(
        v0=kind == "v0",
        fee_bump=kind.startswith("fee_bump"),
        fee_source=muxed_fee_source if kind == "fee_bump_muxed" else None,
        signatures=signatures,
        network=PUBLIC,
    )
    summary = inspect_transaction(xdr, network_passphrase=PUBLIC)
    assert summary.hash == sdk.hash_hex()
    assert summary.signature_count == signatures * (2 if kind.startswith("fee_bump") else 1)
    if kind.startswith("fee_bump"):
        assert summary.envelope_type == "tx_fee_bump"
        assert summary.inner_hash == sdk.transaction.inner_transaction_envelope.hash_hex()
        assert summary.fee_source == (
            muxed_fee_source if kind == "fee_bump_muxed" else summary.fee_source
        )
        assert summary.fee == 400 and summary.inner_fee == 100
        doc = summary.to_json()
        assert doc["inner_hash"] == summary.inner_hash and doc["inner_fee"] == 100
    else:
        assert summary.envelope_type == ("tx_v0" if kind == "v0" else "tx")
        assert summary.inner_hash is None and "inner_hash" not in summary.to_json()


def test_fields_of_a_v1_payment() -> None:
    source = public_key()
    xdr, _ = build_envelope(source=source, sequence=2**62 + 5, min_time=1_700_000_000)
    doc = inspect_transaction(xdr, network_passphrase=TESTNET).to_json()
    assert doc["source_account"] == source
    assert doc["sequence"] == str(2**62 + 5)
    assert doc["fee"] == 100
    assert doc["min_time"] == "2023-11-14T22:13:20Z"
    assert doc["max_time"] == "2030-03-17T17:46:40Z"
    assert doc["memo_type"] == "none" and doc["memo"] is None
    assert "memo_encoding" not in doc
    (op,) = doc["operations"]
    assert op["type"] == "payment" and op["amount"] == "25.5000000"
    assert op["asset"].startswith("USD:G") and op["destination"].startswith("G")


def test_no_time_bounds_and_zero_bounds_are_null() -> None:
    xdr, _ = build_envelope(max_time=None)
    doc = inspect_transaction(xdr, network_passphrase=TESTNET).to_json()
    assert doc["min_time"] is None and doc["max_time"] is None
    xdr0, _ = build_envelope(max_time=0)
    identity = envelope_identity(xdr0, network_passphrase=TESTNET)
    assert identity.max_time is None and identity.min_time is None


def test_v0_without_time_bounds() -> None:
    xdr, sdk = build_envelope(v0=True, max_time=None, network=PUBLIC)
    summary = inspect_transaction(xdr, network_passphrase=PUBLIC)
    assert summary.envelope_type == "tx_v0"
    assert summary.hash == sdk.hash_hex()
    assert summary.max_time is None


def test_preconditions_v2_time_bounds() -> None:
    from stellar_sdk import Account, TransactionBuilder

    builder = TransactionBuilder(Account(public_key(), 1), network_passphrase=TESTNET)
    builder.add_time_bounds(0, 1_800_000_000).set_min_sequence_ledger_gap(3)
    builder.append_bump_sequence_op(5)
    envelope = builder.build()
    summary = inspect_transaction(envelope.to_xdr(), network_passphrase=TESTNET)
    assert summary.hash == envelope.hash_hex()
    assert summary.max_time == datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
    assert summary.operations[0].to_json() == {"type": "bump_sequence"}


def test_preconditions_v2_without_time_bounds() -> None:
    from stellar_sdk import Account, TransactionBuilder

    builder = TransactionBuilder(Account(public_key(), 1), network_passphrase=TESTNET)
    builder.set_min_sequence_ledger_gap(3).append_bump_sequence_op(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        envelope = builder.build()
    summary = inspect_transaction(envelope.to_xdr(), network_passphrase=TESTNET)
    assert summary.min_time is None and summary.max_time is None


def test_max_time_beyond_year_9999_is_clamped_not_dropped() -> None:
    xdr, _ = build_envelope(max_time=2**63)
    summary = inspect_transaction(xdr, network_passphrase=TESTNET)
    assert summary.max_time == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("memo", "memo_type", "value", "encoding"),
    [
        ("text", "text", "payout 42 ✅", None),
        ("binary", "text", base64.b64encode(b"\xff\xfe\x00x").decode(), "base64"),
        ("id", "id", "18446744073709551615", None),
        ("hash", "hash", "ab" * 32, None),
        ("return", "return", "cd" * 32, None),
    ],
)
def test_memo_kinds(memo: str, memo_type: str, value: str, encoding: str | None) -> None:
    from stellar_sdk import HashMemo, IdMemo, ReturnHashMemo, TextMemo

    sdk_memo = {
        "text": lambda: TextMemo("payout 42 ✅"),
        "binary": lambda: TextMemo(b"\xff\xfe\x00x"),
        "id": lambda: IdMemo(2**64 - 1),
        "hash": lambda: HashMemo("ab" * 32),
        "return": lambda: ReturnHashMemo("cd" * 32),
    }[memo]()
    xdr, _ = build_envelope(memo=sdk_memo)
    doc = inspect_transaction(xdr, network_passphrase=TESTNET).to_json()
    assert doc["memo_type"] == memo_type
    assert doc["memo"] == value
    assert doc.get("memo_encoding") == encoding


def test_operations_that_move_money_are_described() -> None:
    xdr, _ = build_envelope(
        operations=(
            "create_account",
            "strict_receive",
            "strict_send",
            "account_merge",
            "claimable_balance",
            "clawback",
            "muxed_payment",
        )
    )
    ops = [op.to_json() for op in inspect_transaction(xdr, network_passphrase=TESTNET).operations]
    create, receive, send, merge, claimable, clawback, muxed = ops
    assert create["type"] == "create_account" and create["amount"] == "1.0000001"
    assert create["asset"] == "native"
    assert receive["type"] == "path_payment_strict_receive"
    assert receive["amount"] == "9.5000000" and receive["send_max"] == "10.0000000"
    assert receive["send_asset"] == "native" and receive["asset"].startswith("USD:")
    assert send["type"] == "path_payment_strict_send"
    assert send["send_amount"] == "10.0000000" and send["dest_min"] == "0.0000001"
    assert "amount" not in send and send["asset"].startswith("LONGASSET12:")
    assert merge == {
        "type": "account_merge",
        "destination": merge["destination"],
        "asset": "native",
    }
    assert claimable["amount"] == "3.0000000" and "destination" not in claimable
    assert clawback["from"].startswith("G") and clawback["amount"] == "4.0000000"
    assert muxed["destination"].startswith("M")


def test_invoke_host_function_is_just_its_type() -> None:
    triple = next(t for t in TRIPLES if t["expected_hash"].startswith("32f7e5c3"))
    summary = inspect_transaction(triple["envelope_xdr"], network_passphrase=TESTNET)
    op = summary.operations[0].to_json()
    assert op["type"] == "invoke_host_function"
    assert set(op) <= {"type", "source_account"}


def test_muxed_source_identity_uses_the_base_account() -> None:
    from stellar_sdk import MuxedAccount

    base = public_key()
    muxed = MuxedAccount(base, 99).account_muxed
    xdr, _ = build_envelope(source=muxed)
    assert inspect_transaction(xdr, network_passphrase=TESTNET).source_account == muxed
    assert envelope_identity(xdr, network_passphrase=TESTNET).source_account == base


def test_identity_of_a_fee_bump() -> None:
    source = public_key()
    xdr, sdk = build_envelope(fee_bump=True, source=source, sequence=77, max_time=1_800_000_000)
    identity = envelope_identity(xdr, network_passphrase=TESTNET)
    inner = sdk.transaction.inner_transaction_envelope.hash_hex()
    assert identity.hashes == (sdk.hash_hex(), inner)
    assert identity.source_account == source and identity.sequence == 77
    assert identity.max_time == datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


# --- not an envelope ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty envelope"),
        ("   ", "empty envelope"),
        ("not an envelope!", "not base64"),
        ("AAAA", "XDR decoding failed"),
        (base64.b64encode(b"\x00\x00\x00\x07" + b"\x00" * 40).decode(), "XDR decoding failed"),
        (TRIPLES[0]["envelope_xdr"][:-8], "XDR decoding failed"),
    ],
)
def test_not_an_envelope(text: str, reason: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        inspect_transaction(text, network_passphrase=PUBLIC)
    assert reason in info.value.reason
    assert isinstance(info.value, InputError)
    if text.strip():
        assert text not in str(info.value)  # never echoed


def test_trailing_bytes_are_not_an_envelope() -> None:
    raw = base64.b64decode(TRIPLES[0]["envelope_xdr"]) + b"\x00\x00\x00\x00"
    with pytest.raises(EnvelopeError, match="XDR decoding failed"):
        inspect_transaction(base64.b64encode(raw).decode(), network_passphrase=PUBLIC)


def test_a_transaction_result_is_not_an_envelope() -> None:
    result_xdr = CORPUS[0]["result_xdr"]
    with pytest.raises(EnvelopeError):
        inspect_transaction(result_xdr, network_passphrase=PUBLIC)


def test_non_text_and_missing_passphrase_are_errors() -> None:
    with pytest.raises(EnvelopeError, match="base64 XDR text"):
        inspect_transaction(b"AAAA", network_passphrase=PUBLIC)  # type: ignore[arg-type]
    with pytest.raises(EnvelopeError, match="passphrase is required"):
        inspect_transaction(TRIPLES[0]["envelope_xdr"], network_passphrase="")


def test_surrounding_whitespace_is_ignored() -> None:
    triple = TRIPLES[3]
    summary = inspect_transaction(
        f"  {triple['envelope_xdr']}\n", network_passphrase=triple["network_passphrase"]
    )
    assert summary.hash == triple["expected_hash"]


def test_package_import_does_not_import_stellar_sdk() -> None:
    code = (
        "import sys, streampay_incident, streampay_incident.stellar.envelope, "
        "streampay_incident.io.settlements, streampay_incident.io.transactions, "
        "streampay_incident.checks.settlements, streampay_incident.cli.settlements, "
        "streampay_incident.cli.tx\n"
        "assert 'stellar_sdk' not in sys.modules, 'stellar_sdk imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
