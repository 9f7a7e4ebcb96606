"""The --transactions file: recorded Horizon records/pages and RPC results, every shape."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import FIXTURES, load_fixture
from streampay_incident.checks.settlements import index_transactions
from streampay_incident.errors import InputError, SecretSeedError
from streampay_incident.io.transactions import (
    chain_transaction_from_horizon,
    chain_transaction_from_rpc,
    read_transactions,
    transactions_from_json,
)

HORIZON_FILES = sorted((FIXTURES / "horizon").glob("*transaction*"))
RPC_FILES = sorted((FIXTURES / "rpc").glob("getTransaction_*"))
FEE_BUMP = next(
    t for t in load_fixture("tx_hash_triples.json")["triples"] if "inner_transaction_hash" in t
)


def _records(doc: Any) -> list[dict[str, Any]]:
    if "_embedded" in doc:
        return list(doc["_embedded"]["records"])
    return [doc]


def test_fixture_globs_found_the_files() -> None:
    assert len(HORIZON_FILES) == 11
    assert len(RPC_FILES) == 4


@pytest.mark.parametrize("path", HORIZON_FILES, ids=lambda p: p.name)
def test_every_recorded_horizon_transaction_file(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if path.name == "transaction_payments_docs.json":
        # A payments page, not transactions: refused with a reason, not misread.
        with pytest.raises(InputError, match="_embedded.records"):
            read_transactions(path)
        return
    transactions = read_transactions(path)
    records = _records(doc)
    assert [t.hash for t in transactions] == [r["hash"] for r in records]
    for tx, record in zip(transactions, records, strict=True):
        assert tx.status == ("success" if record["successful"] else "failed")
        assert tx.hashes == (record["hash"],)
        assert tx.ledger == record["ledger"]
        assert tx.closed_at is not None and tx.closed_at.tzinfo is not None
        assert tx.source == str(path)


@pytest.mark.parametrize("path", RPC_FILES, ids=lambda p: p.name)
def test_every_recorded_rpc_get_transaction(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    result = doc["result"]
    (tx,) = read_transactions(path)
    assert tx.hash == result["txHash"]
    assert (
        tx.status
        == {"SUCCESS": "success", "FAILED": "failed", "NOT_FOUND": "not_found"}[result["status"]]
    )
    # The same result without the JSON-RPC envelope, through the probes' entry point.
    assert chain_transaction_from_rpc(result, source=str(path)) == tx
    if result["status"] == "NOT_FOUND":
        assert tx.oldest_ledger_close_time == datetime.fromtimestamp(
            int(result["oldestLedgerCloseTime"]), UTC
        )
        assert tx.ledger is None and tx.closed_at is None
    else:
        assert tx.oldest_ledger_close_time is None
        assert tx.ledger == int(result["ledger"])  # a string in the legacy recording
        assert tx.closed_at == datetime.fromtimestamp(int(result["createdAt"]), UTC)


@pytest.mark.parametrize("name", ["getTransactions_docs.json", "getTransactions_py.json"])
def test_rpc_get_transactions_pages(name: str) -> None:
    doc = load_fixture(f"rpc/{name}")
    transactions = read_transactions(FIXTURES / "rpc" / name)
    assert [t.hash for t in transactions] == [r["txHash"] for r in doc["result"]["transactions"]]
    assert {t.status for t in transactions} <= {"success", "failed"}
    assert all(isinstance(t.closed_at, datetime) for t in transactions)  # createdAt as a number


def test_rpc_result_without_tx_hash_uses_the_requested_hash() -> None:
    result = dict(load_fixture("rpc/getTransaction_NOT_FOUND_docs.json")["result"])
    del result["txHash"]
    tx = chain_transaction_from_rpc(result, "AB" * 32)
    assert tx.hash == "ab" * 32 and tx.status == "not_found"
    with pytest.raises(InputError, match="txHash"):
        chain_transaction_from_rpc(result)


def test_rpc_fee_bump_looked_up_by_inner_hash_answers_to_both() -> None:
    result = dict(load_fixture("rpc/getTransaction_SUCCESS_testnet_docs.json")["result"])
    result["feeBump"] = True
    tx = chain_transaction_from_rpc(result, "cd" * 32)
    assert tx.hashes == (result["txHash"], "cd" * 32)
    result["feeBump"] = False
    with pytest.raises(InputError, match="was asked for"):
        chain_transaction_from_rpc(result, "cd" * 32)
    same = chain_transaction_from_rpc(result, result["txHash"].upper())
    assert same.hashes == (result["txHash"],)


def test_horizon_fee_bump_record_answers_to_outer_and_inner_hash() -> None:
    record = copy.deepcopy(load_fixture("horizon/transaction_detail_pubnet_docs.json"))
    outer, inner = FEE_BUMP["expected_hash"], FEE_BUMP["inner_transaction_hash"]
    # Horizon served at /transactions/{inner}: echoes the inner hash in "hash".
    record.update(
        hash=inner,
        id=inner,
        fee_bump_transaction={"hash": outer, "signatures": []},
        inner_transaction={"hash": inner, "signatures": [], "max_fee": "100"},
    )
    tx = chain_transaction_from_horizon(record)
    assert tx.hash == inner and set(tx.hashes) == {inner, outer}
    index = index_transactions([tx])
    assert index[outer] is tx and index[inner] is tx


def test_failed_horizon_record_and_string_booleans() -> None:
    record = dict(load_fixture("horizon/transaction_detail_pubnet_docs.json"))
    record["successful"] = False
    assert chain_transaction_from_horizon(record).status == "failed"
    record["successful"] = "true"
    assert chain_transaction_from_horizon(record).status == "success"


def test_json_lines_mixing_horizon_records_and_rpc_envelopes(tmp_path: Path) -> None:
    horizon = load_fixture("horizon/transaction_detail_testnet_2019_memo_text.json")
    rpc = load_fixture("rpc/getTransaction_FAILED_testnet_docs.json")
    path = tmp_path / "tx.jsonl"
    path.write_text(
        json.dumps(horizon) + "\n\n" + json.dumps(rpc) + "\n" + json.dumps(rpc["result"]) + "\n",
        encoding="utf-8",
    )
    transactions = read_transactions(path)
    assert [t.status for t in transactions] == ["success", "failed", "failed"]


def test_json_array_of_envelopes_and_records() -> None:
    doc = [
        load_fixture("rpc/getTransaction_NOT_FOUND_docs.json"),
        load_fixture("horizon/transaction_detail_pubnet_docs.json"),
    ]
    transactions = transactions_from_json(doc, source="mem")
    assert [t.status for t in transactions] == ["not_found", "success"]
    assert transactions_from_json(json.dumps(doc), source="mem") == transactions


def test_list_of_json_lines_strings() -> None:
    lines = [
        json.dumps(load_fixture("horizon/transaction_detail_pubnet_docs.json")),
        json.dumps(load_fixture("rpc/getTransaction_SUCCESS_testnet_docs.json")),
    ]
    assert len(transactions_from_json(lines, source="mem")) == 2


def test_recorded_corpus_without_successful_is_refused_per_record() -> None:
    with pytest.raises(InputError) as info:
        read_transactions(FIXTURES / "corpus" / "horizon_pubnet_transactions_50.json")
    assert len(info.value.problems) == 50
    assert {p.field for p in info.value.problems} == {"successful"}


def test_every_bad_record_is_reported_with_line_and_field(tmp_path: Path) -> None:
    good = load_fixture("horizon/transaction_detail_pubnet_docs.json")
    lines = [
        json.dumps(good),
        json.dumps({**good, "hash": "nothex"}),
        json.dumps({"txHash": "ab" * 32, "status": "PENDING"}),
        "{not json",
        json.dumps({"txHash": "ab" * 32, "status": "SUCCESS", "ledger": True}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_transactions(path)
    assert [(p.line, p.field) for p in info.value.problems] == [(4, None)]  # JSON first
    path.write_text("\n".join(lines[:3] + lines[4:]) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_transactions(path)
    assert [(p.line, p.field) for p in info.value.problems] == [
        (2, "hash"),
        (3, "status"),
        (4, "ledger"),
    ]
    assert all(p.source == str(path) for p in info.value.problems)


@pytest.mark.parametrize(
    ("doc", "field", "message"),
    [
        (load_fixture("rpc/errors/derived/getTransaction_bad_hash_-32602.json"), "error", "-32602"),
        (load_fixture("horizon/problems/404_not_found_py.json"), None, "Horizon error document"),
        ({"foo": 1}, None, "neither a Horizon"),
        ([1, 2], None, "JSON object"),
        ({"_embedded": {"records": {"hash": "x"}}}, "_embedded.records", "list"),
        ({"hash": "ab" * 32}, "successful", "missing"),
        ({"successful": True}, "hash", "missing"),
        ({"hash": "ab" * 32, "successful": True, "created_at": "yesterday"}, "created_at", "RFC"),
        ({"hash": "ab" * 32, "successful": True, "ledger": "12x"}, "ledger", "whole number"),
        (
            {"hash": "ab" * 32, "successful": True, "inner_transaction": {"hash": "zz"}},
            "inner_transaction.hash",
            "64 hex",
        ),
        ({"txHash": "ab" * 32, "status": "SUCCESS", "createdAt": "9" * 30}, "createdAt", "range"),
        ("plain text", None, "not valid JSON"),
        (json.dumps([{"hash": 1}], indent=1), "hash", "64 hex"),
        ({"jsonrpc": "2.0", "id": 1, "error": "boom"}, "error", "boom"),
        ({"status": 3}, None, "neither"),
        (42, None, "JSON object or array"),
        ({"jsonrpc": "2.0", "id": 1, "result": None}, None, "JSON object or array"),
    ],
)
def test_bad_documents(doc: Any, field: str | None, message: str) -> None:
    with pytest.raises(InputError) as info:
        transactions_from_json(doc, source="t.json")
    problem = info.value.problems[0]
    assert problem.field == field
    assert message in problem.message


def test_invalid_pretty_json_names_its_line() -> None:
    text = '[\n  {"hash": "ab",\n  "successful": tru}\n]'
    with pytest.raises(InputError) as info:
        transactions_from_json(text, source="t.json")
    assert info.value.problems[0].line == 3


def test_one_object_on_one_line_names_line_one() -> None:
    with pytest.raises(InputError) as info:
        transactions_from_json('{"hash": "ab"}\n', source="t.jsonl")
    assert info.value.problems[0].line == 1


def test_single_record_and_single_rpc_result() -> None:
    (tx,) = transactions_from_json(
        load_fixture("horizon/transaction_detail_pubnet_docs.json"), source="m"
    )
    assert tx.status == "success"


def test_empty_file_is_no_transactions(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("\n", encoding="utf-8")
    assert read_transactions(path) == []


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_transactions(tmp_path / "nope.json")
    with pytest.raises(InputError, match="cannot read"):
        read_transactions(tmp_path)
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="not UTF-8 text"):
        read_transactions(binary)


def test_secret_seed_is_refused_without_echo(tmp_path: Path) -> None:
    from stellar_sdk import Keypair

    seed = Keypair.random().secret
    record = dict(load_fixture("horizon/transaction_detail_pubnet_docs.json"))
    record["memo"] = seed
    path = tmp_path / "leak.jsonl"
    path.write_text("{}\n" + json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(SecretSeedError) as info:
        read_transactions(path)
    assert seed not in str(info.value)
    assert [p.line for p in info.value.problems] == [2]


def test_rpc_entry_point_rejects_non_objects_and_bad_hashes() -> None:
    with pytest.raises(InputError, match="JSON object"):
        chain_transaction_from_rpc([])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="JSON object"):
        chain_transaction_from_horizon("x")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="64 hex"):
        chain_transaction_from_rpc({"status": "SUCCESS"}, "short")
    with pytest.raises(InputError, match="whole number"):
        chain_transaction_from_rpc({"status": "SUCCESS", "txHash": "ab" * 32, "ledger": [1]})
