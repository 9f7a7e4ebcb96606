"""``payouts --engine duckdb``: the same reports and the same input errors as the reference.

Every input here runs through both engines and the answers are compared
whole (exit code, stdout, stderr): the DuckDB engine validates what it can
in SQL and hands anything doubtful to the reference, so no message may differ.
"""

from __future__ import annotations

import json
import os
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pluggy
import pytest
from click.testing import CliRunner
from stellar_sdk import Keypair

from engines_support import DESTINATIONS, HASHES, write_export
from streampay_incident import engines
from streampay_incident.cli import main
from streampay_incident.engines import duckdb_engine, duckdb_keys, sql
from streampay_incident.engines.duckdb_engine import run_duckdb
from streampay_incident.errors import InputError
from streampay_incident.hookspecs import hookimpl
from streampay_incident.model import PayoutPolicy

DEMO = Path(str(resources.files("streampay_incident") / "demo_data" / "payouts.csv"))
HEADER = "payout_id,settlement_id,destination,asset,amount,status,created_at,tx_hash,memo\n"
GOOD = f"p1,s1,{DESTINATIONS[0]},native,25,confirmed,2026-11-27T01:00:00Z,{HASHES[0]},inv-1\n"
GOOD2 = f"p2,s2,{DESTINATIONS[1]},XLM,25,confirmed,2026-11-27T01:01:00Z,{HASHES[1]},inv-1\n"
SEED = Keypair.random().secret


def invoke(path: Path, engine: str, *args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(
        main, ["payouts", str(path), "--format", "json", "--engine", engine, *args], env=env
    )


def same_answer(path: Path, *args: str) -> Any:
    """Run both engines; assert the same exit code, report (but its time) and errors."""
    python = invoke(path, "python", *args)
    duck = invoke(path, "duckdb", *args)
    assert duck.exit_code == python.exit_code, (duck.output, python.output)
    assert duck.stderr == python.stderr
    if python.stdout:
        a, b = json.loads(python.stdout), json.loads(duck.stdout)
        a.pop("generated_at"), b.pop("generated_at")
        assert a == b
    else:
        assert duck.stdout == ""
    return duck


def test_demo_export_same_report_and_auto_is_duckdb(monkeypatch: pytest.MonkeyPatch) -> None:
    result = same_answer(DEMO)
    assert result.exit_code == 1 and len(json.loads(result.stdout)["findings"]) >= 5
    assert same_answer(DEMO, "--repeat-window", "90s").exit_code == 1
    ran: list[str] = []
    real = duckdb_engine.run_duckdb
    monkeypatch.setattr(
        duckdb_engine, "run_duckdb", lambda *a, **k: ran.append("duckdb") or real(*a, **k)
    )
    auto = CliRunner().invoke(main, ["payouts", str(DEMO), "--format", "json"])
    assert auto.exit_code == 1 and ran == ["duckdb"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(GOOD.replace(DESTINATIONS[0], DESTINATIONS[0][:-1] + "A"), id="checksum"),
        pytest.param(GOOD.replace(",25,", ",-25,"), id="negative-amount"),
        pytest.param(GOOD.replace(",25,", ",25.00000001,"), id="eight-decimals"),
        pytest.param(GOOD.replace(",25,", ",922337203685.4775808,"), id="beyond-int64"),
        pytest.param(GOOD.replace("confirmed", "done"), id="status"),
        pytest.param(GOOD.replace("2026-11-27T01:00:00Z", "2026-02-30T01:00:00Z"), id="feb-30"),
        pytest.param(GOOD.replace("2026-11-27T01:00:00Z", "2026-11-27T24:00:00Z"), id="hour-24"),
        pytest.param(GOOD.replace("2026-11-27T01:00:00Z", "2026-11-27T01:00:00+24:00"), id="tz"),
        pytest.param(GOOD.replace("2026-11-27T01:00:00Z", "2026-13-27 01:00:00Z"), id="odd-time"),
        pytest.param(GOOD.replace("2026-11-27T01:00:00Z", "2026-11-27T01:00:00"), id="naive"),
        pytest.param(GOOD.replace(HASHES[0], HASHES[0][:-1]), id="short-hash"),
        pytest.param(GOOD.replace("inv-1", "x" * 29), id="memo-29-bytes"),
        pytest.param(GOOD.replace("inv-1", SEED), id="seed-in-memo"),
        pytest.param(GOOD.replace("p1,", f"{SEED},"), id="seed-in-id"),
        pytest.param(GOOD.replace("s1,", "\u2003,"), id="blank-id"),
        pytest.param(GOOD.replace("native", "USDC:GABC"), id="asset"),
        pytest.param(GOOD + GOOD, id="duplicate-payout-id"),
        pytest.param(GOOD.replace(",25,", ",,"), id="missing-amount"),
        pytest.param(GOOD + "p3,s3\n", id="short-row"),
    ],
)
def test_bad_csv_same_errors(tmp_path: Path, body: str) -> None:
    path = tmp_path / "payouts.csv"
    path.write_text(HEADER + GOOD2 + body, encoding="utf-8")
    result = same_answer(path)
    assert result.exit_code == 2 and "payouts.csv:" in result.stderr
    assert SEED not in result.output


@pytest.mark.parametrize(
    ("header", "extra"),
    [
        pytest.param('"payout_id",' + HEADER[10:], "", id="quoted-header"),
        pytest.param(HEADER.rstrip("\n") + ",payout_id\n", ",x", id="duplicate-column"),
        pytest.param(HEADER.rstrip("\n") + ",note\n", f",{SEED}", id="seed-in-extra-column"),
        pytest.param(HEADER.rstrip("\n") + ",note\n", ",a note", id="extra-column"),
        pytest.param("\ufeff" + HEADER.replace(",", " , "), "", id="bom-and-spaces"),
    ],
)
def test_csv_header_shapes_same_answer(tmp_path: Path, header: str, extra: str) -> None:
    path = tmp_path / "payouts.csv"
    rows = [GOOD.rstrip("\n") + extra + "\n", GOOD2.rstrip("\n") + extra + "\n"]
    path.write_text(header + "".join(rows), encoding="utf-8")
    result = same_answer(path)
    assert SEED not in result.output


def test_memos_and_times_only_python_reads(tmp_path: Path) -> None:
    """Base64 hash memos and timestamps off the plain shape go through Python, per value."""
    memo = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"  # 32 bytes, URL-safe, unpadded
    rows = [
        GOOD.replace("inv-1", memo).replace("2026-11-27T01:00:00Z", "2026-11-27 01:00:00.5z"),
        GOOD2.replace("inv-1", memo.replace("AAECAwQF", "AAECAwQF")),
    ]
    header = HEADER.replace("memo\n", "memo,memo_type\n")
    path = tmp_path / "payouts.csv"
    path.write_text(header + "".join(r.rstrip("\n") + ",hash\n" for r in rows), encoding="utf-8")
    result = same_answer(path)
    codes = [f["code"] for f in json.loads(result.stdout)["findings"]]
    assert "PAYOUT_DUPLICATE_MEMO" in codes
    bad = path.read_text().replace(memo, memo[:-2], 1)
    path.write_text(bad, encoding="utf-8")
    assert same_answer(path).exit_code == 2


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(HEADER, id="header-only"),
        pytest.param("\n\n", id="blank"),
    ],
)
def test_empty_inputs_as_the_reference_says(tmp_path: Path, text: str) -> None:
    path = tmp_path / "payouts.csv"
    path.write_text(text, encoding="utf-8")
    same_answer(path)


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    assert same_answer(tmp_path / "nope.csv").exit_code == 2
    path = tmp_path / "payouts.csv"
    path.write_bytes((HEADER + GOOD).encode() + b"p2,s\xff\n")
    assert same_answer(path).exit_code == 2


@pytest.mark.parametrize(
    "records",
    [
        pytest.param('{"amount": 25.5}', id="float-amount"),
        pytest.param('{"amount": 1e2}', id="exponent"),
        pytest.param('{"payout_id": 7, "ledger": 50000000}', id="integers"),
        pytest.param('{"memo": "ESCAPE"}', id="escape"),
        pytest.param(f'{{"note": "{SEED}"}}', id="seed"),
        pytest.param('{"status": true}', id="boolean"),
        pytest.param('{"note": {"nested": [1]}}', id="object"),
        pytest.param('{"payout_id": "p2"}', id="duplicate-id"),
    ],
)
@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_json_shapes_same_answer(tmp_path: Path, records: str, fmt: str) -> None:
    base = {
        "payout_id": "p1",
        "settlement_id": "s1",
        "destination": DESTINATIONS[0],
        "asset": "native",
        "amount": "25",
        "status": "confirmed",
        "created_at": "2026-11-27T01:00:00Z",
    }
    other = {**base, "payout_id": "p2", "settlement_id": "s2", "created_at": "2026-11-27T01:01:00Z"}
    changed = {**base, **json.loads(records)}
    objects = [other, changed]
    path = tmp_path / f"payouts.{fmt}"
    lines = "".join(json.dumps(o) + "\n" for o in objects)
    text = lines if fmt == "jsonl" else json.dumps(objects)
    path.write_text(text.replace('"ESCAPE"', '"inv-\\u0041"'), encoding="utf-8")
    assert SEED not in same_answer(path).output


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_json_with_a_byte_order_mark_as_the_reference_says(tmp_path: Path, fmt: str) -> None:
    record = {"payout_id": "p1", "settlement_id": "s1", "destination": DESTINATIONS[0],
              "asset": "native", "amount": "25", "status": "confirmed",
              "created_at": "2026-11-27T01:00:00Z"}  # fmt: skip
    text = json.dumps(record) + "\n" if fmt == "jsonl" else json.dumps([record])
    path = tmp_path / f"payouts.{fmt}"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert same_answer(path).exit_code == 2


def test_crlf_blank_lines_and_quoted_cells_same_answer(tmp_path: Path) -> None:
    path = tmp_path / "payouts.csv"
    quoted = GOOD2.replace("inv-1", '"inv,1"')
    path.write_bytes((HEADER + GOOD + "\n" + quoted).replace("\n", "\r\n").encode())
    assert same_answer(path).exit_code == 0
    path.write_text(HEADER + GOOD + '"p2","s\n2"' + GOOD2[5:], encoding="utf-8")
    memo = json.loads(same_answer(path).stdout)["findings"][0]  # both rows carry memo inv-1
    assert memo["code"] == "PAYOUT_DUPLICATE_MEMO"
    assert memo["evidence"]["settlement_ids"] == ["s\n2", "s1"]  # code-point order


def test_parquet_findings_and_problems_name_line_and_field(tmp_path: Path) -> None:
    rows = [
        {
            "payout_id": f"p{i}",
            "settlement_id": "s1",
            "destination": DESTINATIONS[0],
            "asset": "native",
            "amount": "25",
            "status": "confirmed",
            "created_at": f"2026-11-27T01:0{i}:00Z",
            "tx_hash": HASHES[i],
            "memo_type": "",
            "memo": "",
            "idempotency_key": "",
            "ledger": "",
        }
        for i in range(2)
    ]
    path = write_export(rows, tmp_path, "parquet")
    result = invoke(path, "duckdb")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["findings"][0]["code"] == "PAYOUT_DUPLICATE_SETTLEMENT"
    rows[1]["destination"] = DESTINATIONS[0][:-1] + "A"
    rows[0]["payout_id"] = rows[1]["payout_id"]
    path = write_export(rows, tmp_path, "parquet")
    result = invoke(path, "duckdb")
    assert result.exit_code == 2 and result.stdout == ""
    assert f"{path}:2: field 'destination'" in result.stderr
    assert "field 'payout_id': payout_id is not unique (first used on line 1)" in result.stderr


def test_parquet_types(tmp_path: Path) -> None:
    path = tmp_path / "typed.parquet"
    duckdb.sql(
        f"COPY (SELECT 'p1' AS payout_id, 's1' AS settlement_id, '{DESTINATIONS[0]}' AS "
        "destination, 'native' AS asset, CAST(25.5 AS DECIMAL(18, 7)) AS amount, "
        "'confirmed' AS status, TIMESTAMPTZ '2026-11-27 01:00:00+00' AS created_at, "
        f"50000000 AS ledger) TO '{path}'"
    )
    assert invoke(path, "duckdb").exit_code == 0
    floats = tmp_path / "floats.parquet"
    duckdb.sql(f"COPY (SELECT 25.5::DOUBLE AS amount, 'p1' AS payout_id) TO '{floats}'")
    result = invoke(floats, "duckdb")
    assert result.exit_code == 2 and "field 'amount': Parquet type DOUBLE" in result.stderr


def test_a_fifo_is_read_once(tmp_path: Path) -> None:
    fifo = tmp_path / "payouts.csv"
    os.mkfifo(fifo)
    text = DEMO.read_text(encoding="utf-8")

    def write() -> None:
        with fifo.open("w", encoding="utf-8") as handle:
            handle.write(text)

    writer = threading.Thread(target=write)
    writer.start()
    result = invoke(fifo, "duckdb")
    writer.join()
    expected = invoke(DEMO, "python")
    a, b = json.loads(result.stdout), json.loads(expected.stdout)
    assert a["findings"] == b["findings"] and a["inputs"]["payouts"] == str(fifo)


def test_a_fifo_with_a_bad_record_names_the_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "payouts.csv"
    os.mkfifo(fifo)
    writer = threading.Thread(
        target=lambda: fifo.write_text(HEADER + GOOD.replace("confirmed", "done"))
    )
    writer.start()
    result = invoke(fifo, "duckdb")
    writer.join()
    assert result.exit_code == 2 and f"{fifo}:2: field 'status'" in result.stderr


def test_progress_and_memory_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []
    monkeypatch.setattr(duckdb_engine, "PROGRESS_POLL_SECONDS", 0.0)
    found, records = run_duckdb(
        DEMO, source="demo", policy=PayoutPolicy(), memory_limit="256MB", progress=seen.append
    )
    assert records > 0 and found and seen[-1] == 100.0
    with pytest.raises(InputError, match="not a memory limit"):
        run_duckdb(DEMO, source="demo", policy=PayoutPolicy(), memory_limit="1GB'; DROP")
    bad_env = {duckdb_engine.MEMORY_LIMIT_ENV: "lots!"}
    result = invoke(DEMO, "duckdb", env=bad_env)
    assert result.exit_code == 2 and "not a memory limit" in result.stderr
    assert invoke(DEMO, "duckdb", env={duckdb_engine.MEMORY_LIMIT_ENV: "300MB"}).exit_code == 1
    assert run_duckdb(DEMO, source="d", policy=PayoutPolicy(), threads=1)[1] == records
    assert duckdb_engine._bytes("1.5GB") == 3 * 2**29 and duckdb_engine._bytes("512MiB") == 2**29
    on_disk = run_duckdb(DEMO, source="d", policy=PayoutPolicy(), on_disk=True)
    assert [f.to_json() for f in on_disk[0]] == [f.to_json() for f in found]
    monkeypatch.setattr(duckdb_engine, "COMPRESS_AFTER_LIMITS", 0)  # as for a large input
    compressed = run_duckdb(DEMO, source="d", policy=PayoutPolicy())
    assert [f.to_json() for f in compressed[0]] == [f.to_json() for f in found]


def test_progress_runs_once_from_0_to_100_over_both_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dictionary pass fills the bar to DICTIONARY_SHARE, the typed pass the rest."""
    seen: list[float] = []
    monkeypatch.setattr(duckdb_engine, "report_progress", lambda con, tell: tell(50.0))
    monkeypatch.setattr(duckdb_engine, "PROGRESS_POLL_SECONDS", 0.0)
    run_duckdb(DEMO, source="demo", policy=PayoutPolicy(), progress=seen.append)
    share = duckdb_keys.DICTIONARY_SHARE
    # The watcher may not get a turn before a small query ends: the ends are always told.
    assert {share, 100.0} <= set(seen) <= {share / 2, share, share + (100 - share) / 2, 100.0}
    assert seen == sorted(seen)


def test_texts_sharing_a_hash_go_to_the_reference() -> None:
    """Destinations and assets are compared by a 64-bit hash: two texts with one hash
    (here ``length`` stands in for a colliding hash) make the reference judge the input."""
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE dictionary AS SELECT * FROM (VALUES (true, 'GA'), (true, NULL), "
        "(false, 'native'), (false, 'USDC:GB')) AS t(of_destination, text)"
    )
    duckdb_keys.dictionaries(con, key="length")
    assert con.execute("SELECT text FROM dict_destination").fetchall() == [("GA",)]
    con.execute("DROP TABLE dict_destination; DROP TABLE dict_asset")
    con.execute("INSERT INTO dictionary VALUES (true, 'GB')")
    with pytest.raises(duckdb_keys.Collision, match="dict_destination share a 64-bit hash"):
        duckdb_keys.dictionaries(con, key="length")


def test_a_hash_collision_hands_the_input_to_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def collide(con: Any) -> None:
        raise duckdb_keys.Collision("two values of dict_asset share a 64-bit hash")

    monkeypatch.setattr(duckdb_engine, "dictionaries", collide)
    with pytest.raises(duckdb_engine.Fallback, match="share a 64-bit hash"):
        run_duckdb(DEMO, source="demo", policy=PayoutPolicy())


def test_the_default_memory_limit_grows_with_the_input_within_bounds() -> None:
    mib, gib = 2**20, 2**30
    limit = duckdb_engine.default_memory_limit
    per_byte = duckdb_engine.LIMIT_PER_INPUT_BYTE
    assert limit(0) == limit(100 * mib, 24 * gib) == "224MiB"  # the floor, DEFAULT_MEMORY_LIMIT
    assert limit(int(248 * 10**6 * per_byte["csv"]), 24 * gib) == "224MiB"  # 1M benchmark rows
    assert limit(int(338 * 10**6 * per_byte["csv"]), 24 * gib) == "273MiB"  # with long ids
    assert limit(800 * mib, 24 * gib) == "800MiB"  # what the input's typed rows want
    assert limit(2500 * mib, 24 * gib) == "1024MiB"  # 10M rows: LARGEST_DEFAULT_LIMIT
    assert limit(10 * gib, 2 * gib) == "512MiB"  # a quarter of a small machine
    assert limit(10 * gib, 512 * mib) == "224MiB"  # never under the floor
    # The typed rows take less than the text formats' bytes, more than Parquet's.
    assert per_byte["json"] == per_byte["jsonl"] < per_byte["csv"] < 1 < per_byte["parquet"]


def test_key_hashes_per_dialect() -> None:
    """The candidate-key hash of the rules (``sql.rule_steps``) in each engine's spelling;
    PostgreSQL's is held to the reference by its differential test once push-down runs it."""
    from streampay_incident.engines.dialect import Dialect

    assert Dialect("duckdb").key_hash("a", "b") == "hash(a, b)"
    assert Dialect("spark").key_hash("a", "b") == "xxhash64(a, b)"
    assert Dialect("postgres").key_hash("a", "b") == (
        "hashtextextended(coalesce(CAST(a AS TEXT), '') || chr(31) || "
        "coalesce(CAST(b AS TEXT), ''), 0)"
    )


class FakeConnection:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers

    def query_progress(self) -> float:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return float(answer)


def test_report_progress_passes_on_what_duckdb_knows() -> None:
    seen: list[float] = []
    connection = FakeConnection([-1, 42, RuntimeError("query ended")])
    for _ in range(3):
        duckdb_engine.report_progress(connection, seen.append)
    assert seen == [42.0]


def test_progress_bar_only_for_big_files_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with engines.progress_bar(DEMO) as progress:
        assert progress is None  # small file, and stderr is no terminal here
    with engines.progress_bar(tmp_path / "missing.csv") as progress:
        assert progress is None
    monkeypatch.setattr(engines, "PROGRESS_MIN_BYTES", 1)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    with engines.progress_bar(DEMO) as progress:
        assert progress is not None
        progress(50.0)


def test_engine_failures_are_not_the_input_s_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql, "at_risk_sql", lambda: "SELECT no_such_column FROM members")
    with pytest.raises(engines.EngineUnavailable, match="DuckDB failed .BinderException"):
        run_duckdb(DEMO, source="demo", policy=PayoutPolicy())
    monkeypatch.undo()

    def out_of_memory(cursor: Any) -> Any:
        raise duckdb.OutOfMemoryException("could not allocate block")

    monkeypatch.setattr(duckdb_engine, "_dicts", out_of_memory)
    connects: list[str] = []
    real_connect = duckdb.connect
    monkeypatch.setattr(
        duckdb, "connect", lambda database: connects.append(database) or real_connect(database)
    )
    result = invoke(DEMO, "duckdb", env={duckdb_engine.MEMORY_LIMIT_ENV: "300MB"})
    # Out of memory in memory: once more with the tables in a file, then exit 2.
    assert connects[0] == ":memory:" and connects[1].endswith("payouts.duckdb")
    assert result.exit_code == 2 and result.stdout == ""
    assert "ran out of memory within its limit (300MB)" in result.stderr


class ExtraCheck:
    @hookimpl
    def streampay_incident_register_payout_checks(self) -> list[Any]:
        return [lambda payouts, policy: []]


class TeamEscrowCheck:
    @hookimpl
    def streampay_incident_register_escrow_checks(self) -> list[Any]:
        return [lambda payouts, payments, escrow, window: []]


def test_records_needed_means_the_reference(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from streampay_incident import registry

    pm = registry.get_plugin_manager(load_entry_points=False)
    assert engines.needs_records(pm, escrow_requested=False, engine="auto") is None
    # DuckDB reconciles the escrow (tests/test_escrow_sql.py); Spark does not.
    assert engines.needs_records(pm, escrow_requested=True, engine="duckdb") is None
    assert "escrow" in str(engines.needs_records(pm, escrow_requested=True, engine="spark"))
    pm.register(TeamEscrowCheck(), name="team-escrow")
    assert "team-escrow" in str(engines.needs_records(pm, escrow_requested=True, engine="auto"))
    pm.register(ExtraCheck(), name="team-check")
    assert "team-check" in str(engines.needs_records(pm, escrow_requested=False, engine="auto"))
    assert engines.choose_engine("auto", "a reason") == "python"
    with pytest.raises(engines.EngineUnavailable, match="use --engine python"):
        engines.choose_engine("duckdb", "a reason")
    monkeypatch.setattr(engines.importlib.util, "find_spec", lambda name: None)
    assert engines.choose_engine("auto", None) == "python"
    escrow = CliRunner().invoke(
        main, ["payouts", str(DEMO), "--engine", "spark", "--escrow", DESTINATIONS[0],
               "--chain-payments", str(tmp_path / "none.json")],
    )  # fmt: skip
    assert escrow.exit_code == 2 and "--engine spark: escrow reconciliation" in escrow.stderr


def test_a_plugin_keeps_auto_on_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    from streampay_incident import registry

    real = registry.get_plugin_manager

    def with_plugin(*args: Any, **kwargs: Any) -> pluggy.PluginManager:
        pm = real(*args, **kwargs)
        pm.register(ExtraCheck(), name="team-check")
        return pm

    monkeypatch.setattr(registry, "get_plugin_manager", with_plugin)
    monkeypatch.setattr(duckdb_engine, "run_duckdb", lambda *a, **k: pytest.fail("duckdb ran"))
    assert CliRunner().invoke(main, ["payouts", str(DEMO)]).exit_code == 1


def test_spark_engine_without_pyspark_is_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "pyspark.sql", None)
    result = CliRunner().invoke(main, ["payouts", str(DEMO), "--engine", "spark"])
    assert result.exit_code == 2 and "needs PySpark and Java" in result.stderr
    # Spark is held to the reference like every engine: no caveat on stderr.
    assert "not yet held to the reference" not in result.stderr


@pytest.mark.parametrize(
    ("error", "said"),
    [
        ("An error occurred while calling o123.localCheckpoint.\n: java.lang.OutOfMemoryError: "
         "Java heap space\n\tat org.apache.spark...", "Spark ran out of Java heap"),
        ("Answer from Java side is empty", "Spark's JVM stopped answering"),
    ],
)  # fmt: skip
def test_spark_out_of_heap_is_exit_2_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, error: str, said: str
) -> None:
    from streampay_incident.engines import spark_engine

    def out_of_heap(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(error)  # what py4j raises carries the JVM's text

    monkeypatch.setattr(spark_engine, "run_spark", out_of_heap)
    monkeypatch.setenv(spark_engine.DRIVER_MEMORY_ENV, "5g")
    result = CliRunner().invoke(main, ["payouts", str(DEMO), "--engine", "spark"])
    assert result.exit_code == 2, result.output
    assert said in result.stderr
    assert "STREAMPAY_INCIDENT_SPARK_DRIVER_MEMORY higher (now 5g)" in result.stderr


def test_spark_errors_other_than_heap_pass_through() -> None:
    from streampay_incident.engines.duckdb_engine import Fallback
    from streampay_incident.engines.spark_engine import heap_exhaustion_explained

    for raised in (ValueError("a bug"), Fallback("bad input"), InputError("bad")):
        with pytest.raises(type(raised)), heap_exhaustion_explained():
            raise raised


def test_spark_reads_csv_by_lines_only_when_no_record_can_span_two(tmp_path: Path) -> None:
    """A file (or any part Spark reads) with a double quote may hold a line break in a
    field: Spark must then read each file whole; the usual export is split into tasks."""
    from streampay_incident.engines.spark_engine import may_span_lines

    plain = tmp_path / "plain.csv"
    plain.write_text(HEADER + GOOD * 3)
    quoted = tmp_path / "quoted.csv"
    quoted.write_text(HEADER + GOOD + GOOD.replace("inv-1", '"inv\n1"'))
    assert not may_span_lines(str(plain))
    assert may_span_lines(str(quoted))
    assert may_span_lines("s3://bucket/payouts.csv")  # not read here: assume the worst
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "part-0.csv").write_text(HEADER + GOOD)
    (parts / "_SUCCESS").write_text('"')  # Spark skips these, and so does the scan
    (parts / ".part-0.csv.crc").write_text('"')
    assert not may_span_lines(str(parts))
    (parts / "part-1").write_text(HEADER + '"x"\n')  # a part without the suffix is read too
    assert may_span_lines(str(parts))


def test_spark_input_formats_by_name_magic_and_uri(tmp_path: Path) -> None:
    from streampay_incident.engines.spark_engine import _format

    assert _format("s3://bucket/export/") == "parquet"
    assert _format("s3://bucket/export.csv") == "csv"
    magic = tmp_path / "export.bin"
    magic.write_bytes(b"PAR1....")
    assert _format(str(magic)) == "parquet"
    (tmp_path / "payouts.csv").write_text(HEADER, encoding="utf-8")
    assert _format(str(tmp_path / "payouts.csv")) == "csv"
    assert _format(str(tmp_path)) == "csv"
