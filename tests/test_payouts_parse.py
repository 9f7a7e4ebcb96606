"""Payout exports -> Payout values: the pinned record format, every error named, fast == careful.

Records are built from real recorded Horizon bodies (payments, memos, hashes)
in ``tests/fixtures/stellar``; only the StreamPay-side columns (ids, status,
idempotency keys) are made up.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stellar_sdk import Keypair, MuxedAccount, StrKey

from conftest import load_fixture
from streampay_incident.errors import InputError, SecretSeedError
from streampay_incident.io import payouts as payouts_io
from streampay_incident.io.payouts import (
    FIELDS,
    json_integer,
    parse_memo,
    parse_time,
    payouts_from_rows,
    read_payouts,
)
from streampay_incident.io.rows import JsonNumber, Row, iter_rows, iter_text_rows
from streampay_incident.model import NATIVE, NO_MEMO, Asset, Memo, Payout
from streampay_incident.stellar import strkey
from streampay_incident.timefmt import parse_rfc3339

PAYMENTS = load_fixture("horizon/account_payments_pubnet_docs.json")["_embedded"]["records"]
TEXT_MEMOS = load_fixture("horizon/account_transactions_pubnet_docs_memo_text_unicode.json")
HASH_MEMO_TX = load_fixture("horizon/ledger_transactions_pubnet_docs_memo_hash.json")

# Real addresses and assets from the recorded payments.
PAID = [p for p in PAYMENTS if p["type"] == "payment"]
NATIVE_PAYMENT = next(p for p in PAID if p["asset_type"] == "native")
CREDIT_PAYMENT = next(p for p in PAID if p["asset_type"] != "native")
DESTINATION = NATIVE_PAYMENT["to"]
ISSUER = CREDIT_PAYMENT["asset_issuer"]
CREDIT = f"{CREDIT_PAYMENT['asset_code']}:{ISSUER}"
UNICODE_MEMO = next(
    r["memo"] for r in TEXT_MEMOS["_embedded"]["records"] if r.get("memo", "").endswith(".org")
)
HASH_MEMO = next(
    r["memo"] for r in HASH_MEMO_TX["_embedded"]["records"] if r.get("memo_type") == "hash"
)


def horizon_records() -> list[dict[str, Any]]:
    """One payout record per recorded Horizon payment (StreamPay's columns added)."""
    records = []
    for i, payment in enumerate(PAID):
        asset = (
            "native"
            if payment["asset_type"] == "native"
            else f"{payment['asset_code']}:{payment['asset_issuer']}"
        )
        records.append(
            {
                "payout_id": f"p-{i}",
                "settlement_id": f"stl-{i}",
                "destination": payment["to"],
                "asset": asset,
                "amount": payment["amount"],
                "status": "confirmed",
                "tx_hash": payment["transaction_hash"].upper()
                if i % 2
                else payment["transaction_hash"],
                "idempotency_key": f"idem-{i}",
                "created_at": payment["created_at"],
                "ledger": str(7000 + i),
            }
        )
    records[0].update(memo=UNICODE_MEMO)  # memo_type absent: text
    records[1].update(memo_type="hash", memo=HASH_MEMO)  # base64, as Horizon prints it
    return records


def csv_text(records: list[dict[str, Any]], *, newline: str = "\n") -> str:
    columns = list(dict.fromkeys(k for r in records for k in r))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator=newline)
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def jsonl_text(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def one(record: dict[str, Any]) -> Payout:
    [payout] = payouts_from_rows([Row(2, record)], source="t.csv")
    return payout


def problems(record: dict[str, Any] | list[dict[str, Any]]) -> list[tuple[int | None, str | None]]:
    records = record if isinstance(record, list) else [record]
    rows = [Row(i + 2, r) for i, r in enumerate(records)]
    with pytest.raises(InputError) as info:
        payouts_from_rows(rows, source="t.csv")
    for p in info.value.problems:
        assert p.source == "t.csv"
    return [(p.line, p.field) for p in info.value.problems]


def base(**changes: Any) -> dict[str, Any]:
    record = {
        "payout_id": "p-1",
        "settlement_id": "stl-1",
        "destination": DESTINATION,
        "asset": "native",
        "amount": "25",
        "status": "confirmed",
        "created_at": "2026-11-27T01:00:00Z",
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


# -- the real recorded payments ---------------------------------------------------------------


def test_horizon_payments_parse_from_csv_and_jsonl(tmp_path: Path) -> None:
    records = horizon_records()
    from_csv = read_payouts(write(tmp_path, "payouts.csv", csv_text(records)))
    from_jsonl = read_payouts(write(tmp_path, "payouts.jsonl", jsonl_text(records)))
    assert from_csv == from_jsonl
    assert len(from_csv) == len(PAID)
    first, second = from_csv[0], from_csv[1]
    assert first.destination == DESTINATION
    assert first.asset is NATIVE
    assert first.amount == int(NATIVE_PAYMENT["amount"].replace(".", ""))
    assert first.memo == Memo("text", UNICODE_MEMO.encode())  # 27 bytes with the emoji: allowed
    assert second.memo == Memo("hash", base64.b64decode(HASH_MEMO))
    assert all(p.tx_hash == p.tx_hash.lower() for p in from_csv if p.tx_hash)
    credit = next(p for p in from_csv if not p.asset.is_native)
    assert str(credit.asset) == CREDIT
    assert first.created_at == parse_rfc3339(NATIVE_PAYMENT["created_at"])
    assert first.ledger == 7000


def test_fast_path_builds_what_the_careful_path_builds(tmp_path: Path) -> None:
    records = horizon_records() * 1
    path = write(tmp_path, "payouts.csv", csv_text(records))
    careful = payouts_io._careful_payouts_from_rows(iter_rows(path), source=str(path))
    assert read_payouts(path) == careful
    assert payouts_from_rows(iter_rows(path), source=str(path)) == careful
    assert [hash(p) for p in read_payouts(path)] == [hash(p) for p in careful]


def test_bundled_demo_export_parses_the_same_on_both_paths() -> None:
    from importlib import resources

    path = Path(str(resources.files("streampay_incident") / "demo_data" / "payouts.csv"))
    careful = payouts_io._careful_payouts_from_rows(iter_rows(path), source=str(path))
    assert read_payouts(path) == careful
    assert len(careful) == 17  # 15, p-070 (the demo escrow's outflow) and p-071 (issue 9)


# -- each field ---------------------------------------------------------------------------------


def test_required_fields_each_named() -> None:
    for field in FIELDS[:7]:
        assert problems(base(**{field: None})) == [(2, field)]


def test_unknown_columns_are_ignored() -> None:
    assert one(base(comment="ops note", extra_id="7")) == one(base())


def test_amount_forms() -> None:
    assert one(base(amount="25")).amount == one(base(amount="25.0000000")).amount == 250_000_000
    assert one(base(amount=JsonNumber("25.1000001"))).amount == 251_000_001
    assert one(base(amount="0.0000001")).amount == 1
    assert one(base(amount=7)).amount == 70_000_000  # a host's int, never a float
    for bad in ("0", "0.0000000", "-1", "1e3", "1.5E2", "0.00000001", " 25", "25,5", "", "abc"):
        if bad == "":
            continue
        assert problems(base(amount=bad)) == [(2, "amount")], bad
    for bad in (JsonNumber("1e3"), JsonNumber("-2"), True, [1], 2.5):
        assert problems(base(amount=bad)) == [(2, "amount")], bad


def test_amount_messages_say_why() -> None:
    with pytest.raises(InputError, match="exponent"):
        one(base(amount=JsonNumber("1E+2")))
    with pytest.raises(InputError, match="more than 7 fraction digits"):
        one(base(amount="1.12345678"))
    with pytest.raises(InputError, match="greater than zero"):
        one(base(amount="0"))


def test_status_values() -> None:
    for status in ("pending", "submitted", "confirmed", "failed"):
        assert one(base(status=status)).status == status
    for bad in ("done", "Confirmed", "CONFIRMED", JsonNumber("1")):
        assert problems(base(status=bad)) == [(2, "status")]


def test_tx_hash_any_case_stored_lower() -> None:
    tx = CREDIT_PAYMENT["transaction_hash"]
    assert one(base(tx_hash=tx.upper())).tx_hash == tx
    assert one(base(tx_hash=tx)).tx_hash == tx
    assert one(base()).tx_hash is None
    for bad in (tx[:-1], tx + "0", "z" * 64, JsonNumber("1")):
        assert problems(base(tx_hash=bad)) == [(2, "tx_hash")]


def test_destination_checksum_and_muxed() -> None:
    muxed = MuxedAccount(DESTINATION, 4242).account_muxed
    assert one(base(destination=muxed)).destination == muxed
    corrupt = DESTINATION[:-1] + ("A" if DESTINATION[-1] != "A" else "B")
    contract = StrKey.encode_contract(bytes(32))
    for bad in (corrupt, DESTINATION.lower(), DESTINATION[:-1], contract, "G", muxed[:-1]):
        assert problems(base(destination=bad)) == [(2, "destination")], bad


def test_destination_message_never_echoes_the_value() -> None:
    corrupt = DESTINATION[:-2] + "AA"
    with pytest.raises(InputError) as info:
        one(base(destination=corrupt))
    assert corrupt not in str(info.value)
    assert "checksum" in str(info.value)


def test_asset_forms() -> None:
    assert one(base(asset="native")).asset is NATIVE
    assert one(base(asset="XLM")).asset is NATIVE
    assert one(base(asset=CREDIT)).asset == Asset(CREDIT_PAYMENT["asset_code"], ISSUER)
    assert one(base(asset=f"ABCDEFGHIJKL:{ISSUER}")).asset.code == "ABCDEFGHIJKL"
    for bad in (
        "USD",
        f"ABCDEFGHIJKLM:{ISSUER}",
        f"US-D:{ISSUER}",
        f":{ISSUER}",
        "USD:GABC",
        f"USD:{DESTINATION[:-1]}A",
        "xlm",
    ):
        if bad == f"USD:{DESTINATION[:-1]}A" and DESTINATION.endswith("A"):
            continue
        assert problems(base(asset=bad)) == [(2, "asset")], bad


def test_memo_type_defaults_and_empty_memos() -> None:
    assert one(base()).memo is NO_MEMO
    assert one(base(memo="inv-1")).memo == Memo("text", b"inv-1")
    for kind in ("none", "text", "id", "hash", "return"):
        memo = one(base(memo_type=kind)).memo
        assert memo.is_empty and memo.type == kind
        assert one(base(memo_type=kind, memo="")).memo.is_empty


def test_text_memo_is_at_most_28_utf8_bytes() -> None:
    assert one(base(memo="x" * 28)).memo == Memo("text", b"x" * 28)
    assert one(base(memo_type="text", memo="é" * 14)).memo.value == "é".encode() * 14
    assert problems(base(memo="x" * 29)) == [(2, "memo")]
    assert problems(base(memo="é" * 15)) == [(2, "memo")]  # 15 characters, 30 bytes


def test_id_memo_is_a_uint64() -> None:
    assert one(base(memo_type="id", memo="0042")).memo == Memo("id", 42)
    assert one(base(memo_type="id", memo=JsonNumber("42"))).memo == Memo("id", 42)
    assert one(base(memo_type="id", memo=str(2**64 - 1))).memo == Memo("id", 2**64 - 1)
    for bad in (str(2**64), "-1", "4x", JsonNumber("-1"), JsonNumber("1.5"), "1.0", True):
        assert problems(base(memo_type="id", memo=bad)) == [(2, "memo")], bad


def test_hash_and_return_memos_hex_or_base64() -> None:
    raw = base64.b64decode(HASH_MEMO)
    for kind in ("hash", "return"):
        for text in (raw.hex(), raw.hex().upper(), HASH_MEMO, HASH_MEMO.rstrip("=")):
            assert one(base(memo_type=kind, memo=text)).memo == Memo(kind, raw)
        urlsafe = base64.urlsafe_b64encode(raw).decode()
        assert one(base(memo_type=kind, memo=urlsafe)).memo == Memo(kind, raw)
        for bad in (raw.hex()[:-2], base64.b64encode(raw[:31]).decode(), "%%%", JsonNumber("1")):
            assert problems(base(memo_type=kind, memo=bad)) == [(2, "memo")], bad


def test_bad_memo_type_and_memo_with_type_none() -> None:
    assert problems(base(memo_type="TEXT", memo="x")) == [(2, "memo_type")]
    assert problems(base(memo_type="none", memo="x")) == [(2, "memo")]


def test_json_numbers_accepted_for_integral_fields() -> None:
    payout = one(
        base(
            payout_id=JsonNumber("17"),
            settlement_id=JsonNumber("2e1"),
            idempotency_key=JsonNumber("99"),
            ledger=JsonNumber("53010001.0"),
            memo=JsonNumber("1234"),
        )
    )
    assert (payout.payout_id, payout.settlement_id, payout.idempotency_key) == ("17", "20", "99")
    assert payout.ledger == 53010001
    assert payout.memo == Memo("text", b"1234")
    assert problems(base(payout_id=JsonNumber("1.5"))) == [(2, "payout_id")]
    assert problems(base(ledger=JsonNumber("1.5"))) == [(2, "ledger")]
    assert problems(base(payout_id=True)) == [(2, "payout_id")]
    assert problems(base(settlement_id={"a": 1})) == [(2, "settlement_id")]
    assert problems(base(idempotency_key=["k"])) == [(2, "idempotency_key")]


def test_ledger_values() -> None:
    assert one(base(ledger="0053010001")).ledger == 53010001
    assert one(base(ledger=53010001)).ledger == 53010001
    for bad in ("-1", "1.0", str(2**32), "x", JsonNumber("-3"), JsonNumber(str(2**32))):
        assert problems(base(ledger=bad)) == [(2, "ledger")], bad


def test_blank_identifiers_are_errors() -> None:
    assert problems(base(payout_id="  ")) == [(2, "payout_id")]
    assert problems(base(idempotency_key=" ")) == [(2, "idempotency_key")]


def test_created_at_rfc3339_with_offset() -> None:
    utc = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
    assert one(base(created_at="2026-11-27T01:00:00Z")).created_at == utc
    assert one(base(created_at="2026-11-27T03:00:00+02:00")).created_at == utc
    assert one(base(created_at="2026-11-27T01:00:00.123456789Z")).created_at == utc.replace(
        microsecond=123456
    )
    assert one(base(created_at="2026-11-27t01:00:00z")).created_at == utc
    assert one(base(created_at="2026-11-27T03:00:00+02:00")).created_at.tzinfo is UTC
    for bad in (
        "2026-11-27T01:00:00",
        "2026-11-27",
        "2026-02-30T01:00:00Z",
        "2026-W48-5T01:00:00Z",
        "yesterday",
        JsonNumber("1764205200"),
    ):
        assert problems(base(created_at=bad)) == [(2, "created_at")], bad


@given(st.datetimes(timezones=st.timezones()))
def test_fast_timestamps_agree_with_timefmt(moment: datetime) -> None:
    text = moment.isoformat()
    if moment.utcoffset() is None or moment.utcoffset() % timedelta(minutes=1):
        return  # RFC 3339 offsets are whole minutes
    try:
        expected = parse_rfc3339(text)
    except ValueError:  # out of range (before 1970, from 9000, or past datetime's limits in UTC)
        with pytest.raises(ValueError, match="out of range"):
            parse_time(text)
        return
    assert parse_time(text) == expected
    assert parse_time(text).tzinfo is UTC


# -- collecting every problem, duplicates ---------------------------------------------------


def test_every_bad_record_gets_its_own_problem_in_line_order() -> None:
    records = [
        base(payout_id="a", amount="-1", status="done"),
        base(payout_id="b"),
        base(payout_id="c", destination="GXXX", created_at="never"),
    ]
    assert problems(records) == [
        (2, "amount"),
        (2, "status"),
        (4, "destination"),
        (4, "created_at"),
    ]


def test_duplicate_payout_id_is_an_input_error_naming_both_lines() -> None:
    records = [base(payout_id="a"), base(payout_id="b"), base(payout_id="a")]
    with pytest.raises(InputError) as info:
        payouts_from_rows([Row(i + 2, r) for i, r in enumerate(records)], source="t.csv")
    [problem] = info.value.problems
    assert (problem.line, problem.field) == (4, "payout_id")
    assert "first used on line 2" in problem.message


def test_duplicate_of_a_bad_record_still_reported() -> None:
    records = [base(payout_id="a", amount="0"), base(payout_id="a")]
    assert problems(records) == [(2, "amount"), (3, "payout_id")]


def test_duplicates_across_chunks(tmp_path: Path) -> None:
    records = [base(payout_id=f"p-{i}") for i in range(3000)]
    records.append(base(payout_id="p-5"))
    path = write(tmp_path, "big.csv", csv_text(records))
    with pytest.raises(InputError) as info:
        read_payouts(path)
    [problem] = info.value.problems
    assert (problem.line, problem.field) == (3002, "payout_id")
    assert "first used on line 7" in problem.message


def test_errors_far_into_a_long_file_name_the_file_line(tmp_path: Path) -> None:
    records = [base(payout_id=f"p-{i}") for i in range(5000)]
    records[4321]["amount"] = "1e5"
    records[4999]["tx_hash"] = "nothex"
    path = write(tmp_path, "long.csv", csv_text(records))
    with pytest.raises(InputError) as info:
        read_payouts(path)
    assert [(p.source, p.line, p.field) for p in info.value.problems] == [
        (str(path), 4323, "amount"),
        (str(path), 5001, "tx_hash"),
    ]


# -- CSV shapes: the fast reader agrees with the reference row reader -----------------------


def reference(path: Path) -> list[Payout] | list[tuple[int | None, str | None, str]]:
    try:
        return payouts_from_rows(iter_rows(path), source=str(path))
    except InputError as exc:
        return [(p.line, p.field, p.message) for p in exc.problems]


def fast(path: Path) -> list[Payout] | list[tuple[int | None, str | None, str]]:
    try:
        return read_payouts(path)
    except InputError as exc:
        return [(p.line, p.field, p.message) for p in exc.problems]


def tricky_csvs() -> dict[str, str]:
    records = horizon_records()
    good = csv_text(records)
    header, first, *rest = good.splitlines(keepends=True)
    quoted = csv_text([{**records[0], "memo": "a,b"}, *records[1:]])
    multiline = (
        header
        + first.replace("p-0,", '"p-0",', 1)
        + '"p-x","stl-x\nstill stl-x",'
        + ",".join(f'"{v}"' for v in list(records[2].values())[2:])
        + ",,\n"
        + "".join(rest[:2]).replace("confirmed", "done", 1)
    )
    return {
        "plain": good,
        "crlf": csv_text(records, newline="\r\n"),
        "lone_cr": good.replace("\n", "\r"),
        "quoted": quoted,
        "multiline_then_error": multiline,
        "blank_lines": header + "\n" + first + "   \n\n" + "".join(rest),
        "bom": "\ufeff" + good,
        "no_final_newline": good.rstrip("\n"),
        "header_only": header,
        "empty": "",
        "short_row": good + "x,y\n",
        "nul": good + "a\x00b," * 11 + "c\n",
        "only_blank_lines": header + "\n" * 5,
        "duplicate_header": "payout_id,payout_id\n1,2\n",
        "quoted_header": '"payout_id",settlement_id\n',
        "one_column": "payout_id\np-1\n",
        "bad_quote": good + '"unterminated\n',
        "missing_column": "\n".join(",".join(line.split(",")[:-1]) for line in good.splitlines()),
    }


@pytest.mark.parametrize("name", sorted(tricky_csvs()))
def test_fast_csv_reader_agrees_with_the_row_reader(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, f"{name}.csv", tricky_csvs()[name])
    assert fast(path) == reference(path)


def test_multiline_records_keep_file_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", tricky_csvs()["multiline_then_error"])
    [(line, field, _message)] = fast(path)  # type: ignore[misc]
    assert (line, field) == (5, "status")


def test_quoted_block_after_plain_blocks(tmp_path: Path) -> None:
    records = [base(payout_id=f"p-{i}", memo=f"m{i}") for i in range(3000)]
    records[2500]["memo"] = 'a "quoted", memo'
    records[2999]["amount"] = "0"
    path = write(tmp_path, "q.csv", csv_text(records))
    assert fast(path) == reference(path)
    assert fast(path)[0][:2] == (3001, "amount")  # type: ignore[index]


def test_seed_anywhere_refused_without_echo(tmp_path: Path) -> None:
    seed = Keypair.random().secret
    good = csv_text([base(), base(payout_id="p-2")])
    cases = {
        "cell.csv": good + f"p-3,{seed},x,x,x,x,x\n",
        "extra.csv": good.replace("created_at\n", "created_at,note\n", 1).replace(
            "Z\n", f"Z,{seed}\n", 1
        ),
        "header.csv": good.replace("status", seed, 1),
        "memo.jsonl": jsonl_text([base(memo=f"x {seed}")]),
    }
    for name, text in cases.items():
        path = write(tmp_path, name, text)
        with pytest.raises(SecretSeedError) as info:
            read_payouts(path)
        assert seed not in str(info.value), name
        assert "secret seed" in str(info.value)


def test_seed_in_a_quoted_file_refused(tmp_path: Path) -> None:
    seed = Keypair.random().secret
    text = csv_text([base(memo='say "hi"'), base(payout_id="p-2", memo=f"{seed}")])
    with pytest.raises(SecretSeedError) as info:
        read_payouts(write(tmp_path, "q.csv", text))
    assert seed not in str(info.value)
    assert [(p.line, p.field) for p in info.value.problems] == [(3, "memo")]


def test_csv_module_errors_go_to_the_reference_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streampay_incident.io import rows

    text = csv_text([base(memo='"quoted" and long enough to pass the limit')])
    path = write(tmp_path, "limit.csv", text)
    monkeypatch.setattr(rows, "CSV_FIELD_LIMIT", 20)
    previous = csv.field_size_limit()
    with pytest.raises(InputError, match="not valid CSV"):
        read_payouts(path)
    # The limit is raised only around the reads: the process keeps its own.
    assert csv.field_size_limit() == previous


def test_muxed_addresses_do_not_look_like_seeds(tmp_path: Path) -> None:
    # A muxed address is a 69-character base32 run; an S inside it must not trip the refusal.
    accounts = [StrKey.encode_ed25519_public_key(bytes([i]) * 32) for i in range(40)]
    muxed = [MuxedAccount(a, 2**63 + i).account_muxed for i, a in enumerate(accounts)]
    assert any("S" in m[1:14] for m in muxed)
    records = [base(payout_id=f"p-{i}", destination=m) for i, m in enumerate(muxed)]
    path = write(tmp_path, "muxed.csv", csv_text(records))
    assert [p.destination for p in read_payouts(path)] == muxed


def test_file_problems(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_payouts(tmp_path / "missing.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(csv_text([base()]).encode() + "p-9,é\n".encode("latin-1"))
    with pytest.raises(InputError, match="(?i)utf-8"):
        read_payouts(latin)
    far = tmp_path / "far.csv"  # the bad byte well past the first read buffer
    records = [base(payout_id=f"p-{i}") for i in range(2000)]
    far.write_bytes(csv_text(records).encode() + "p-9,é\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_payouts(far)
    with pytest.raises(InputError, match="cannot read"):
        read_payouts(tmp_path)


def test_json_array_and_jsonl_go_through_the_row_reader(tmp_path: Path) -> None:
    records = horizon_records()
    array = write(tmp_path, "payouts.json", json.dumps(records))
    assert read_payouts(array) == read_payouts(write(tmp_path, "p.csv", csv_text(records)))
    rows = iter_text_rows(jsonl_text(records), source="body", fmt="jsonl")
    assert payouts_from_rows(rows, source="body") == read_payouts(array)


def test_progress_reports_lines(tmp_path: Path) -> None:
    records = [base(payout_id=f"p-{i}") for i in range(3000)]
    seen: list[int] = []
    read_payouts(write(tmp_path, "p.csv", csv_text(records)), progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 3001
    seen.clear()
    read_payouts(write(tmp_path, "p.jsonl", jsonl_text(records)), progress=seen.append)
    assert seen[-1] == 3000


def test_payout_building_falls_back_to_init_for_a_non_plain_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    columns = [
        ["p-1"],
        ["s"],
        [DESTINATION],
        [NATIVE],
        [1],
        ["confirmed"],
        [datetime(2026, 1, 1, tzinfo=UTC)],
        [None],
        [NO_MEMO],
        [None],
        [None],
    ]
    from streampay_incident.io import payout_fields

    built = payout_fields.build_payouts(columns)
    monkeypatch.setattr(payout_fields, "_PAYOUT_SLOTS", None)
    assert payout_fields.build_payouts(columns) == built == [Payout(*[c[0] for c in columns])]


def test_json_integer_bounds() -> None:
    assert json_integer("12") == 12
    assert json_integer("1.2e1") == 12
    assert json_integer("1e999999999") is None
    assert json_integer("1.5") is None
    assert json_integer("nope") is None


def test_parse_memo_direct() -> None:
    assert parse_memo(None, None) is NO_MEMO
    assert parse_memo("text", None) == Memo("text", b"")
    with pytest.raises(payouts_io.FieldError) as info:
        parse_memo("id", "x")
    assert info.value.field == "memo"


# -- StrKey -----------------------------------------------------------------------------------


@given(st.binary(min_size=32, max_size=32), st.integers(0, 2**64 - 1), st.integers(0, 68))
def test_strkey_agrees_with_stellar_sdk(key: bytes, muxed_id: int, position: int) -> None:
    account = StrKey.encode_ed25519_public_key(key)
    muxed = MuxedAccount(account, muxed_id).account_muxed
    contract = StrKey.encode_contract(key)
    assert strkey.is_account(account) and strkey.is_muxed_account(muxed)
    assert strkey.is_contract(contract)
    assert strkey.muxed_parts(muxed) == (account, muxed_id)
    assert strkey.muxed_parts(account) == (account, None)
    for address in (account, muxed, contract):
        i = position % len(address)
        for letter in "A7Q":
            typo = address[:i] + letter + address[i + 1 :]
            sdk = (
                StrKey.is_valid_ed25519_public_key(typo)
                or StrKey.is_valid_med25519_public_key(typo)
                or StrKey.is_valid_contract(typo)
            )
            assert (strkey.decode(typo) is not None) == sdk, typo


def test_strkey_problems_and_requirements() -> None:
    seed = Keypair.random().secret
    assert "secret seed" in (strkey.account_problem(seed) or "")
    assert seed not in (strkey.account_problem(seed) or "")
    assert "empty" in (strkey.destination_problem("") or "")
    assert "56 characters" in (strkey.account_problem("GABC") or "")
    assert "base32" in (strkey.account_problem(DESTINATION.lower().upper()[:-1] + "1") or "")
    assert "not a Stellar" in (strkey.account_problem("CABC") or "")
    assert strkey.contract_problem(DESTINATION) is not None
    assert strkey.is_muxed_account(DESTINATION) is False
    assert strkey.require_account(DESTINATION) == DESTINATION
    assert strkey.require_destination(DESTINATION) == DESTINATION
    with pytest.raises(strkey.StrKeyError):
        strkey.require_account("G" + "A" * 55)
    with pytest.raises(strkey.StrKeyError):
        strkey.require_destination("nope")
    with pytest.raises(strkey.StrKeyError):
        strkey.muxed_parts("nope")
    # Non-zero padding bits: another spelling of a muxed key, refused as stellar-sdk does.
    muxed = MuxedAccount(DESTINATION, 1).account_muxed
    other = muxed[:-1] + chr(ord(muxed[-1]) + 1)
    assert strkey.decode(other) is None
    assert not StrKey.is_valid_med25519_public_key(other)
