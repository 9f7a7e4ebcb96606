from __future__ import annotations

from pathlib import Path

import pytest
from stellar_sdk import Keypair

from streampay_incident.errors import InputError, SecretSeedError
from streampay_incident.io.rows import (
    JsonNumber,
    Row,
    contains_seed,
    iter_rows,
    iter_text_rows,
    rows_from_json_document,
    sniff_format,
)


def test_csv_lines_are_file_lines_with_multiline_cells() -> None:
    rows = list(iter_text_rows('a,b\n1,"x\ny"\n\n3,\n', source="t.csv"))
    assert rows == [Row(2, {"a": "1", "b": "x\ny"}), Row(5, {"a": "3"})]


def test_jsonl_nulls_dropped_and_numbers_exact() -> None:
    rows = list(iter_text_rows('{"a": 1.10, "b": null, "c": ""}\n\n{"a": 2}\n', source="t.jsonl"))
    assert rows[0] == Row(1, {"a": "1.10"})
    assert isinstance(rows[0].values["a"], JsonNumber)
    assert rows[1].line == 3


def test_every_bad_line_is_reported() -> None:
    with pytest.raises(InputError) as info:
        list(iter_text_rows('{"a": 1}\n{bad\n[1]\n{"a": 2}\n', source="t.jsonl"))
    lines = [p.line for p in info.value.problems]
    assert lines == [2, 3]
    assert "t.jsonl:2" in str(info.value)


def test_csv_column_count_and_header_problems() -> None:
    with pytest.raises(InputError, match="expected 2 columns, found 3"):
        list(iter_text_rows("a,b\n1,2,3\n", source="t.csv"))
    with pytest.raises(InputError, match="duplicate column"):
        list(iter_text_rows("a,a\n1,2\n", source="t.csv"))
    assert list(iter_text_rows("", source="t.csv")) == []


def test_seed_refused_without_echo_everywhere(tmp_path: Path) -> None:
    seed = Keypair.random().secret
    cases = [
        (f"a,b\n1,{seed}\n", "t.csv", "b"),
        (f"a,{seed}\n1,2\n", "t.csv", "<column name>"),
        (f'{{"a": "memo {seed}"}}\n', "t.jsonl", "a"),
        (f'{{"a": {{"nested": "{seed}"}}}}\n', "t.jsonl", "a"),
        (f'{{"a": "{seed}"\n', "t.jsonl", None),
        (f'[{{"a": "{seed}"}}]', "t.json", "a"),
        (f'[{{"a": "{seed}"]', "t.json", None),
    ]
    for text, name, field in cases:
        with pytest.raises(SecretSeedError) as info:
            list(iter_text_rows(text, source=name))
        assert seed not in str(info.value)
        assert info.value.problems[0].field == field
        assert "secret seed" in str(info.value)


def test_seed_shape() -> None:
    seed = Keypair.random().secret
    assert contains_seed(seed)
    assert contains_seed(f"x {seed} y")
    assert not contains_seed(seed[:-1])
    # Glued to other base32 characters (a payout_id of "X" + seed): found by its checksum.
    assert contains_seed("A" + seed) and contains_seed(f"X{seed}2")
    shaped = seed[:-1] + ("A" if seed[-1] != "A" else "B")  # the shape, a wrong checksum
    assert contains_seed(shaped) and not contains_seed("A" + shaped)
    assert not contains_seed(Keypair.random().public_key)


def test_json_array_and_keyed_document() -> None:
    doc = {"payouts": [{"a": 1}, 2]}
    with pytest.raises(InputError, match="expected a JSON object") as info:
        list(rows_from_json_document(doc, source="body", key="payouts"))
    assert info.value.problems[0].line == 1
    with pytest.raises(InputError, match="array"):
        list(rows_from_json_document({"x": 1}, source="body"))
    with pytest.raises(InputError, match="not valid JSON"):
        list(iter_text_rows("[1,", source="t.json"))


def test_sniffing() -> None:
    assert sniff_format("", "x.ndjson") == "jsonl"
    assert sniff_format("[", "body") == "json"
    assert sniff_format("\ufeff {", "body") == "jsonl"
    assert sniff_format("a,b", "body") == "csv"
    assert sniff_format("{", "x.csv") == "csv"


def test_files(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("a\n1\n", encoding="utf-8")
    assert list(iter_rows(path)) == [Row(2, {"a": "1"})]
    js = tmp_path / "p.json"
    js.write_text('[{"a": 1}]', encoding="utf-8")
    assert list(iter_rows(js, source="named")) == [Row(0, {"a": "1"})]
    jl = tmp_path / "p.jsonl"
    jl.write_text('{"a": 1}\n', encoding="utf-8")
    assert len(list(iter_rows(jl))) == 1
    with pytest.raises(InputError, match="file not found"):
        iter_rows(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="cannot read"):
        iter_rows(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a\n" + b"\xff\xfe\x00" * 100 + b"\n")
    with pytest.raises(InputError):
        list(iter_rows(bad))
