"""Parsing --chain-payments files: recorded Horizon payment pages and RPC getEvents bodies."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import FIXTURES, load_fixture
from streampay_incident.errors import InputError, SecretSeedError
from streampay_incident.io.chain_payments import (
    RecordProblem,
    chain_payment_from_rpc_event,
    chain_payments_from_horizon,
    parse_chain_payments,
    read_chain_payments,
)
from streampay_incident.model import NATIVE, Asset, Memo

TESTNET = "Test SDF Network ; September 2015"
PUBNET = "Public Global Stellar Network ; September 2015"
ACCOUNT = "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"
USD = Asset("USD", "GDUKMGUGDZQK6YHYA5Z6AY2G4XDSZPSZ3SW5UN3ARVMO6QSRDWP5YLEX")
# A real pubnet fee-bump (tests/fixtures/stellar/tx_hash_triples.json).
OUTER = "fd976c454dd44dfbf0a4a52bdaee7f9ebbf1f3c8ec4e87d81ef2954098ee3494"
INNER = "93ec3c891574e9857c98ff11e81f4ed42a5dd944d08dbfbc5e1f8f7b0640c48e"


def records(relative: str) -> list[dict[str, Any]]:
    return copy.deepcopy(load_fixture(relative)["_embedded"]["records"])


def payment_record(kind: str = "payment") -> dict[str, Any]:
    """The recorded USD payment out of ACCOUNT, as another payment-like type when asked."""
    rec = records("horizon/account_payments_pubnet_docs.json")[4]
    assert rec["transaction_hash"].startswith("b9d7c534")
    rec["type"] = kind
    return rec


def sac_event(index: int = 1) -> dict[str, Any]:
    return copy.deepcopy(load_fixture("rpc/getEvents_docs.json")["result"]["events"][index])


def scv(kind: str, value: Any) -> str:
    from stellar_sdk import Address, scval

    builders = {
        "symbol": scval.to_symbol,
        "string": scval.to_string,
        "i128": scval.to_int128,
        "u64": scval.to_uint64,
        "bytes": scval.to_bytes,
        "address": lambda v: Address(v).to_xdr_sc_val(),
        "bool": scval.to_bool,
    }
    return builders[kind](value).to_xdr()


def amount_map(amount: int, muxed: tuple[str, Any] | None) -> str:
    from stellar_sdk import scval

    entries = {scval.to_symbol("amount"): scval.to_int128(amount)}
    if muxed is not None:
        entries[scval.to_symbol("to_muxed_id")] = {
            "u64": scval.to_uint64,
            "string": scval.to_string,
            "bytes": scval.to_bytes,
        }[muxed[0]](muxed[1])
    return scval.to_map(entries).to_xdr()


# --- Horizon -------------------------------------------------------------------------------


def test_account_payments_page() -> None:
    batch = read_chain_payments(FIXTURES / "horizon/account_payments_pubnet_docs.json")
    kinds = [p.kind for p in batch.payments]
    assert kinds == ["create_account", "account_merge"] + ["payment"] * 8
    created, merged, first = batch.payments[0], batch.payments[1], batch.payments[2]
    assert created.from_account == "GB44UMO65PK5NWMRP4S2OSZA5BD4ACOW5KQ6TWLLO2MP7S7N5MJ2MJVI"
    assert created.to_account == ACCOUNT
    assert created.amount == 1_0000000 and created.asset == NATIVE
    assert created.tx_hash == "26c996aa6afb299b6761f2335277196715160ade6aa001a755116448b145d3a7"
    assert created.closed_at == datetime(2019, 9, 11, 13, 16, 44, tzinfo=UTC)
    assert created.operation_id == "110694007436259329"
    assert created.ledger == 110694007436259329 >> 32
    assert merged.amount is None and merged.to_account == ACCOUNT
    assert merged.from_account == "GB44UMO65PK5NWMRP4S2OSZA5BD4ACOW5KQ6TWLLO2MP7S7N5MJ2MJVI"
    assert first.amount == 688_4065454
    usd = batch.payments[4]
    assert usd.from_account == ACCOUNT and usd.asset == USD and usd.amount == 84_9410878
    assert all(p.successful for p in batch.payments)
    assert batch.cursor == "148289273518190684"
    assert batch.oldest_ledger is None


@pytest.mark.parametrize(
    ("relative", "count"),
    [("horizon/payments_page_pubnet_docs.json", 3), ("horizon/payments_page_testnet_2019.json", 2)],
)
def test_payments_pages(relative: str, count: int) -> None:
    batch = read_chain_payments(FIXTURES / relative)
    assert len(batch.payments) == count


def test_huge_recorded_amount_is_exact() -> None:
    batch = read_chain_payments(FIXTURES / "horizon/payments_page_pubnet_docs.json")
    assert batch.payments[1].amount == 99999999959_9999700


def test_transaction_payments_with_a_single_embedded_record() -> None:
    batch = read_chain_payments(FIXTURES / "horizon/transaction_payments_docs.json")
    (merge,) = batch.payments
    assert merge.kind == "account_merge"
    assert merge.to_account == "GBFAIH5WKAJQ77NG6BZG7TGVGXHPX4SQLIJ7BENJMCVCZSUZPSISCLU5"


def test_joined_transaction_gives_memo_ledger_and_hashes() -> None:
    page = load_fixture("horizon/payments_page_pubnet_docs.json")
    tx = load_fixture("horizon/transactions_page_pubnet_docs_memo_text.json")["_embedded"][
        "records"
    ][0]
    for rec in page["_embedded"]["records"][:2]:
        rec["transaction"] = tx
    batch = parse_chain_payments(json.dumps(page), source="page.json")
    created = batch.payments[0]
    assert created.memo == Memo("text", b"hello world")
    assert created.ledger == 3
    assert created.all_hashes == (tx["hash"],)


def test_fee_bump_join_lists_outer_and_inner() -> None:
    rec = payment_record()
    rec["transaction_hash"] = OUTER
    rec["transaction"] = {
        "hash": OUTER,
        "successful": True,
        "ledger": 27800145,
        "memo_type": "id",
        "memo": "18446744073709551615",
        "fee_bump_transaction": {"hash": OUTER},
        "inner_transaction": {"hash": INNER.upper()},
    }
    (p,) = chain_payments_from_horizon(rec)
    assert p.all_hashes == (OUTER, INNER)
    assert p.memo == Memo("id", 2**64 - 1)
    assert p.ledger == 27800145


@pytest.mark.parametrize(
    ("memo_type", "fields", "expected"),
    [
        ("text", {"memo": "caf?", "memo_bytes": "Y2Fm6Q=="}, Memo("text", b"caf\xe9")),
        ("text", {"memo": "plain"}, Memo("text", b"plain")),
        (
            "hash",
            {"memo": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
            Memo("hash", bytes(range(32))),
        ),
        (
            "return",
            {"memo": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
            Memo("return", bytes(range(32))),
        ),
        ("none", {}, Memo()),
    ],
)
def test_memos(memo_type: str, fields: dict[str, str], expected: Memo) -> None:
    rec = payment_record()
    rec["transaction"] = {"hash": rec["transaction_hash"], "memo_type": memo_type, **fields}
    assert chain_payments_from_horizon(rec)[0].memo == expected


def test_failed_transaction_is_kept_as_unsuccessful() -> None:
    rec = payment_record()
    rec["transaction_successful"] = False
    assert chain_payments_from_horizon(rec)[0].successful is False
    del rec["transaction_successful"]
    rec["transaction"] = {"hash": rec["transaction_hash"], "successful": False}
    assert chain_payments_from_horizon(rec)[0].successful is False


def test_path_payment_keeps_destination_amount_and_source_side() -> None:
    rec = payment_record("path_payment_strict_send")
    rec.update(source_asset_type="native", source_amount="42.0000000")
    (p,) = chain_payments_from_horizon(rec)
    assert p.kind == "path_payment_strict_send"
    assert (p.asset, p.amount) == (USD, 84_9410878)
    assert (p.source_asset, p.source_amount) == (NATIVE, 42_0000000)
    rec["type"] = "path_payment"  # the pre-protocol-12 name
    assert chain_payments_from_horizon(rec)[0].kind == "path_payment_strict_receive"


def test_muxed_destination_is_kept_exactly() -> None:
    from stellar_sdk import MuxedAccount

    rec = payment_record()
    m = MuxedAccount(rec["to"], 42).account_muxed
    rec.update(to_muxed=m, to_muxed_id="42")
    assert chain_payments_from_horizon(rec)[0].to_account == m


def test_merge_amount_added_by_the_live_probe() -> None:
    rec = copy.deepcopy(
        load_fixture("horizon/transaction_payments_docs.json")["_embedded"]["records"]
    )
    rec["amount"] = "9.9999900"
    assert chain_payments_from_horizon(rec)[0].amount == 9_9999900


def test_invoke_host_function_balance_changes() -> None:
    rec = payment_record("invoke_host_function")
    for key in ("asset_type", "asset_code", "asset_issuer", "from", "to", "amount"):
        rec.pop(key)
    contract = "CDLZFC3SYJYDZT7K67VZ75HPJVIEUVNIXF47ZG2FB2RMQQVU2HHGCYSC"
    base = {"asset_type": "credit_alphanum4", "asset_code": "USD", "asset_issuer": USD.issuer}
    rec["asset_balance_changes"] = [
        {
            **base,
            "type": "transfer",
            "from": contract,
            "to": ACCOUNT,
            "amount": "10.0000000",
            "destination_muxed_id": "999",
        },
        {**base, "type": "mint", "to": ACCOUNT, "amount": "1.0000000"},
        {
            **base,
            "type": "transfer",
            "from": contract,
            "to": ACCOUNT,
            "amount": "2.0000000",
            "destination_muxed_id": "invoice-7",
            "destination_muxed_id_type": "string",
        },
        {**base, "type": "transfer", "from": ACCOUNT, "to": contract, "amount": "3.0000000"},
        {
            **base,
            "type": "transfer",
            "from": contract,
            "to": ACCOUNT,
            "amount": "4.0000000",
            "destination_muxed_id": "AAEC",
            "destination_muxed_id_type": "bytes",
        },
    ]
    payments = chain_payments_from_horizon(rec)
    assert [p.amount for p in payments] == [10_0000000, 2_0000000, 3_0000000, 4_0000000]
    assert payments[3].to_account == ACCOUNT
    assert payments[0].to_account.startswith("M") and payments[0].from_account == contract
    assert payments[1].to_account == ACCOUNT
    assert payments[1].memo == Memo("text", b"invoice-7")
    assert [p.operation_id for p in payments] == [
        f"{rec['id']}:0",
        f"{rec['id']}:2",
        f"{rec['id']}:3",
        f"{rec['id']}:4",
    ]
    assert {p.kind for p in payments} == {"invoke_host_function"}


def test_other_operation_types_are_skipped() -> None:
    assert chain_payments_from_horizon({"type": "change_trust", "id": "1"}) == []


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"type": None}, "type", "missing operation type"),
        ({"transaction_hash": "xyz"}, "transaction_hash", "64-hex"),
        ({"amount": "1e5"}, "amount", "exponent"),
        ({"amount": 5}, "amount", "decimal string"),
        ({"to": "GBAD"}, "to", "address"),
        ({"from": None}, "from", "missing"),
        ({"asset_type": "liquidity_pool_shares"}, "asset_type", "native/credit"),
        ({"asset_code": "TOO-LONG-CODE!"}, "asset_code", "asset code"),
        ({"asset_issuer": "nope"}, "asset_issuer", "issuer"),
        ({"created_at": "yesterday"}, "created_at", "RFC 3339"),
        ({"created_at": [1]}, "created_at", "timestamp"),
        ({"transaction_successful": "yes"}, "transaction_successful", "true/false"),
        ({"transaction": {"ledger": "x"}}, "transaction.ledger", "integer"),
        ({"transaction": {"memo_type": "id", "memo": "x"}}, "transaction.memo_type", "unexpected"),
        ({"transaction": {"memo_type": "hash", "memo": "@@"}}, "transaction.memo", "hash memo"),
        ({"transaction": {"hash": "00"}}, "transaction.hash", "64-hex"),
        ({"asset_balance_changes": {}}, None, None),
    ],
)
def test_bad_horizon_fields_are_named(
    change: dict[str, Any], field: str | None, message: str | None
) -> None:
    rec = payment_record()
    rec.update(change)
    if field is None:  # a key only invoke_host_function reads: ignored on a payment
        chain_payments_from_horizon(rec)
        return
    with pytest.raises(RecordProblem) as info:
        chain_payments_from_horizon(rec)
    assert info.value.field == field
    assert message in info.value.message


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({}, "asset_balance_changes"),
        ([1], "asset_balance_changes[0]"),
        ([{"type": "transfer", "from": "nope"}], "asset_balance_changes[0].from"),
    ],
)
def test_bad_balance_changes(changes: Any, field: str) -> None:
    rec = payment_record("invoke_host_function")
    rec["asset_balance_changes"] = changes
    with pytest.raises(RecordProblem) as info:
        chain_payments_from_horizon(rec)
    assert info.value.field == field


# --- Stellar RPC ---------------------------------------------------------------------------


def test_get_events_docs_decodes_sac_transfers() -> None:
    batch = read_chain_payments(FIXTURES / "rpc/getEvents_docs.json", network_passphrase=TESTNET)
    first, second = batch.payments
    assert first.kind == "sac_transfer"
    assert first.from_account == "GCHHLGOJVLRAPYBB6TR4NS4VRF5VW5RKZXQCVQUGMLGLXPTKJFCINQVE"
    assert first.to_account == "CCXP6YNFJZIDQD6N37DPCEKXJGLL56ZSAT5D5RPZG4NONL7IRAGWKFD2"
    assert first.asset == NATIVE and first.amount == 3000000000
    assert second.from_account == "CBXVVJ5BOTUVRPXUY54LXFILWC4ZTJWRP2GIVHBMOEAOPHSLGHBG3NNP"
    assert second.amount == 42558863
    assert second.tx_hash == "a5c9247b77eb04c0d857934a2e988c408167976c8acbdf3d8acf64c44deb3beb"
    assert second.ledger == 3727845
    assert second.closed_at == datetime(2026, 7, 21, 18, 1, 10, tzinfo=UTC)
    assert second.operation_id == "0016010972359577600-0000000008"
    assert batch.oldest_ledger == 3609884 and batch.latest_ledger == 3730843
    assert batch.oldest_ledger_close_time == datetime.fromtimestamp(1784066056, UTC)
    assert batch.latest_ledger_close_time == datetime.fromtimestamp(1784671886, UTC)
    assert batch.cursor == "0016010972359577600-0000000008"


def test_asset_contract_is_checked_against_the_network() -> None:
    # The native asset's contract on testnet is not the native contract on pubnet.
    batch = read_chain_payments(FIXTURES / "rpc/getEvents_docs.json", network_passphrase=PUBNET)
    assert {str(p.asset) for p in batch.payments} == {
        "token:CDLZFC3SYJYDZT7K67VZ75HPJVIEUVNIXF47ZG2FB2RMQQVU2HHGCYSC"
    }


def test_empty_get_events_result_keeps_the_retention_window() -> None:
    batch = read_chain_payments(FIXTURES / "rpc/getEvents_py.json")
    assert batch.payments == ()
    assert batch.oldest_ledger == 317964
    assert batch.latest_ledger_close_time == datetime.fromtimestamp(1751863824, UTC)


def test_several_get_events_results_widen_the_window(tmp_path: Path) -> None:
    docs = load_fixture("rpc/getEvents_docs.json"), load_fixture("rpc/getEvents_py.json")
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    batch = read_chain_payments(path)
    assert len(batch.payments) == 2
    assert batch.oldest_ledger == 317964 and batch.latest_ledger == 3730843
    assert batch.oldest_ledger_close_time == datetime.fromtimestamp(1751858705, UTC)


def test_cap67_value_map_and_muxed_destination() -> None:
    from stellar_sdk import MuxedAccount

    g = "GCHHLGOJVLRAPYBB6TR4NS4VRF5VW5RKZXQCVQUGMLGLXPTKJFCINQVE"
    event = sac_event(0)
    event["topic"][2] = scv("address", g)
    event["value"] = amount_map(5, ("u64", 7))
    p = chain_payment_from_rpc_event(event)
    assert p is not None and p.amount == 5
    assert p.to_account == MuxedAccount(g, 7).account_muxed
    event["value"] = amount_map(5, ("string", "inv-1"))
    p = chain_payment_from_rpc_event(event)
    assert p is not None and p.to_account == g and p.memo == Memo("text", b"inv-1")
    event["value"] = amount_map(5, ("bytes", bytes(32)))
    p = chain_payment_from_rpc_event(event)
    assert p is not None and p.memo == Memo("hash", bytes(32))
    event["value"] = amount_map(6, None)
    assert chain_payment_from_rpc_event(event).amount == 6  # type: ignore[union-attr]


def test_muxed_topic_address_and_credit_asset() -> None:
    from stellar_sdk import MuxedAccount

    m = MuxedAccount("GCHHLGOJVLRAPYBB6TR4NS4VRF5VW5RKZXQCVQUGMLGLXPTKJFCINQVE", 9).account_muxed
    event = sac_event(0)
    event["topic"][2] = scv("address", m)
    event["topic"][3] = scv("string", f"USD:{USD.issuer}")
    p = chain_payment_from_rpc_event(event)
    assert p is not None and p.to_account == m and p.asset == USD


def test_custom_token_without_asset_topic_and_other_events() -> None:
    event = sac_event(1)
    event["topic"] = event["topic"][:3]
    p = chain_payment_from_rpc_event(event)
    assert p is not None and str(p.asset) == f"token:{event['contractId']}"
    event["topic"][0] = scv("symbol", "mint")
    assert chain_payment_from_rpc_event(event) is None
    event["topic"][0] = scv("string", "transfer")  # a string, not a symbol
    assert chain_payment_from_rpc_event(event) is None


def test_event_in_failed_call_and_old_rpc_string_numbers() -> None:
    event = sac_event(1)
    event["inSuccessfulContractCall"] = False
    event["ledger"] = "3727845"
    p = chain_payment_from_rpc_event(event)
    assert p is not None and p.successful is False and p.ledger == 3727845
    del event["ledgerClosedAt"], event["id"], event["ledger"]
    p = chain_payment_from_rpc_event(event)
    assert p is not None and p.closed_at is None and p.operation_id is None and p.ledger is None


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda e: e.pop("topic"), "topic", "list"),
        (lambda e: e["topic"].append(e["topic"][3]), "topic", "3 or 4"),
        (lambda e: e["topic"].__setitem__(1, "!!"), "topic[1]", "XDR"),
        (lambda e: e["topic"].__setitem__(1, 5), "topic[1]", "base64"),
        (lambda e: e["topic"].__setitem__(1, scv("u64", 1)), "topic[1]", "address"),
        (lambda e: e["topic"].__setitem__(3, scv("u64", 1)), "topic[3]", "string"),
        (lambda e: e["topic"].__setitem__(3, scv("string", "USD")), "topic", "CODE:ISSUER"),
        (lambda e: e.__setitem__("contractId", "nope"), "contractId", "contract"),
        (lambda e: e.__setitem__("value", scv("u64", 1)), "value", "i128"),
        (lambda e: e.__setitem__("value", scv("i128", -1)), "value", "negative"),
        (lambda e: e.pop("txHash"), "txHash", "64-hex"),
        (
            lambda e: e.__setitem__("inSuccessfulContractCall", "yes"),
            "inSuccessfulContractCall",
            "true",
        ),
        (lambda e: e.__setitem__("ledger", "abc"), "ledger", "integer"),
        (lambda e: e.__setitem__("ledgerClosedAt", "never"), "ledgerClosedAt", "RFC 3339"),
    ],
)
def test_bad_event_fields_are_named(mutate: Any, field: str, message: str | None) -> None:
    event = sac_event(1)
    mutate(event)
    with pytest.raises(RecordProblem) as info:
        chain_payment_from_rpc_event(event)
    assert info.value.field == field
    if message:
        assert message in info.value.message


def test_value_map_without_amount() -> None:
    from stellar_sdk import scval

    event = sac_event(1)
    event["value"] = scval.to_map({scval.to_symbol("to_muxed_id"): scval.to_uint64(1)}).to_xdr()
    with pytest.raises(RecordProblem, match="no amount"):
        chain_payment_from_rpc_event(event)


def test_unsupported_address_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    import stellar_sdk

    def refuse(_address: Any) -> Any:
        raise ValueError("unknown address type")

    monkeypatch.setattr(stellar_sdk.Address, "from_xdr_sc_address", staticmethod(refuse))
    with pytest.raises(RecordProblem) as info:
        chain_payment_from_rpc_event(sac_event(1))
    assert info.value.field == "topic[1]"


def test_odd_but_valid_event_values() -> None:
    from stellar_sdk import scval

    event = sac_event(1)
    event["value"] = scval.to_map(
        {
            scval.to_uint64(1): scval.to_uint64(2),  # a key that is not a symbol is ignored
            scval.to_symbol("amount"): scval.to_int128(3),
            scval.to_symbol("to_muxed_id"): scval.to_bool(True),  # unknown kind: ignored
        }
    ).to_xdr()
    event["ledgerClosedAt"] = 1784656870
    p = chain_payment_from_rpc_event(event)
    assert p is not None and p.amount == 3 and p.to_account == event_destination(event)
    assert p.closed_at == datetime.fromtimestamp(1784656870, UTC)
    event["ledgerClosedAt"] = "1784656870"
    assert chain_payment_from_rpc_event(event).closed_at == p.closed_at  # type: ignore[union-attr]


def event_destination(event: dict[str, Any]) -> str:
    from stellar_sdk import Address, xdr

    val = xdr.SCVal.from_xdr(event["topic"][2])
    return Address.from_xdr_sc_address(val.address).address


# --- documents -----------------------------------------------------------------------------


def test_json_array_and_json_lines_of_records(tmp_path: Path) -> None:
    recs = records("horizon/account_payments_pubnet_docs.json")
    events = load_fixture("rpc/getEvents_docs.json")["result"]["events"]
    mixed = [*recs[:3], *events]
    as_array = parse_chain_payments(json.dumps(mixed), source="a.json")
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in mixed) + "\n\n")
    as_lines = read_chain_payments(path)
    assert as_array.payments == as_lines.payments
    assert len(as_lines.payments) == 5


def test_single_record_and_envelope() -> None:
    rec = payment_record()
    del rec["paging_token"]
    batch = parse_chain_payments(json.dumps(rec), source="r.json")
    assert len(batch.payments) == 1 and batch.cursor is None
    other = sac_event(1)
    other["topic"][0] = scv("symbol", "mint")
    bare = parse_chain_payments(json.dumps({"events": [other]}), source="r.json")
    assert bare.payments == () and bare.oldest_ledger is None and bare.cursor is None
    assert parse_chain_payments(json.dumps(other), source="r.json").payments == ()
    result = load_fixture("rpc/getEvents_docs.json")["result"]
    assert len(parse_chain_payments(json.dumps(result), source="r.json").payments) == 2


def test_every_bad_record_is_reported_with_its_line(tmp_path: Path) -> None:
    recs = records("horizon/account_payments_pubnet_docs.json")[:4]
    del recs[0]["funder"]
    recs[3]["amount"] = "1.00000001"
    lines = [json.dumps(r) for r in recs] + ["[1]", "{not json", json.dumps({"hello": 1})]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_chain_payments(path)
    problems = [(p.line, p.field) for p in info.value.problems]
    assert problems == [(1, "funder"), (4, "amount"), (5, None), (6, None), (7, None)]
    messages = " ".join(p.message for p in info.value.problems)
    assert "7 fraction digits" in messages and "not valid JSON" in messages
    assert all(p.source == str(path) for p in info.value.problems)


def test_problems_in_a_document_name_the_record_index() -> None:
    page = load_fixture("horizon/account_payments_pubnet_docs.json")
    page["_embedded"]["records"][2]["amount"] = "x"
    page["_embedded"]["records"][5]["to"] = "nobody"
    with pytest.raises(InputError) as info:
        parse_chain_payments(json.dumps(page), source="page.json")
    assert [(p.line, p.field) for p in info.value.problems] == [(2, "amount"), (5, "to")]


def test_bad_events_are_reported_per_event() -> None:
    doc = load_fixture("rpc/getEvents_docs.json")
    doc["result"]["events"][0]["txHash"] = "nope"
    doc["result"]["events"][1] = "not an event"
    doc["result"]["oldestLedger"] = "old"
    with pytest.raises(InputError) as info:
        parse_chain_payments(json.dumps(doc), source="events.json")
    fields = [p.field for p in info.value.problems]
    assert fields == ["oldestLedger", "events[0].txHash", "events[1]"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": -32600, "message": "bad"}}, "-32600: bad"),
        ({"_embedded": {"records": 3}}, "not a list"),
        ({"events": {}}, "not a list of events"),
        ([1], "expected a JSON object"),
    ],
)
def test_document_shapes_that_are_refused(doc: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_chain_payments(json.dumps(doc), source="x.json")


def test_not_json_at_all_names_the_line() -> None:
    with pytest.raises(InputError) as info:
        parse_chain_payments('{\n  "a": 1,\n  oops\n}', source="broken.json")
    assert info.value.problems[0].line == 3
    with pytest.raises(InputError, match="empty input"):
        parse_chain_payments("  \n", source="empty.json")


def test_secret_seeds_are_refused_without_echo(tmp_path: Path) -> None:
    from stellar_sdk import Keypair

    seed = Keypair.random().secret
    rec = payment_record()
    rec["memo"] = seed
    for text in (
        json.dumps(rec),
        json.dumps(rec) + "\n" + json.dumps(payment_record()),
        json.dumps(rec, indent=2)[:-1],
    ):
        with pytest.raises(SecretSeedError) as info:
            parse_chain_payments(text, source="seed.json")
        assert seed not in str(info.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_chain_payments(tmp_path / "missing.json")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="not UTF-8 text"):
        read_chain_payments(binary)
