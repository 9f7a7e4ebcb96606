"""One meaning in PostgreSQL too: the push-down of ``payouts --db`` held to the reference.

The PostgreSQL part of the differential test (``test_engines_differential.py``
holds DuckDB and Spark): the same random exports, loaded as text cells into a
table through a separate writable connection, give the reference's findings
when the PostgreSQL rendering of the same typed relation and rules runs in a
READ ONLY transaction; and random outbox rows give the same whole report
(inputs, skipped rows, ``aggregate_ids``, notes, exit code, and on bad rows
the same exit 2 message) from ``payouts --db`` as from ``--engine python``.
Then the edges: statement timeout, a write attempt, a bad DSN, an unreachable
server, doubtful rows handed back to the reference, engines asked for in vain.
Runs against the throwaway cluster of :mod:`pg_cluster` (skips without it,
fails then in CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

try:
    import psycopg
except ImportError:  # pragma: no cover - tox installs the postgres extra
    if os.environ.get("STREAMPAY_INCIDENT_REQUIRE_POSTGRES") == "1":
        raise
    pytest.skip("psycopg is not installed (the postgres extra)", allow_module_level=True)

from engines_support import DESTINATIONS, HASHES, export_rows, queued_and_memo_rows
from pg_cluster import (
    DATABASE,
    READER,
    READER_PASSWORD,
    SUPERUSER,
    PostgresCluster,
    free_port,
    postgres,  # noqa: F401 - the session fixture
)
from streampay_incident.checks.payouts import find_payout_anomalies
from streampay_incident.cli import main
from streampay_incident.engines.duckdb_engine import Fallback
from streampay_incident.engines.postgres_engine import (
    cells_sql,
    pushdown_outbox_payouts,
    run_rules,
)
from streampay_incident.io.outbox_db import OutboxQuery, read_only_transaction
from streampay_incident.io.payouts import FIELDS, payouts_from_rows
from streampay_incident.io.rows import Row
from streampay_incident.io.streampay import OutboxReading
from streampay_incident.model import PayoutPolicy

WINDOWS = st.sampled_from([timedelta(minutes=10), timedelta(seconds=90)])
NOW = "2026-11-27T03:00:00Z"
EXAMPLES = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
CREDIT = "USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"

SETUP = f"""
create table if not exists diff_cells ({", ".join(f"c{i} text" for i in range(len(FIELDS)))});
create table if not exists random_outbox (like settlement_outbox including defaults);
create or replace view json_outbox as
    select o.id, o.event_key, o.aggregate_id, o.payload::json as payload, o.status,
           o.created_at, o.updated_at from settlement_outbox o;
create or replace view tz_outbox as
    select o.id, o.event_key, o.aggregate_id, o.payload, o.status,
           o.created_at at time zone 'UTC' as created_at,
           o.updated_at at time zone 'UTC' as updated_at from settlement_outbox o;
create or replace view keyless_outbox as
    select o.id, o.status, o.updated_at, o.payload from settlement_outbox o;
create or replace view slow_payouts as
    select o.* from settlement_outbox o, (select pg_sleep(5)) s;
create or replace function bump_payout_attempts() returns integer language plpgsql as $$
begin
    update settlement_outbox set attempts = attempts + 1;
    return 1;
end $$;
create or replace view writing_payouts as
    select o.* from settlement_outbox o, lateral (select bump_payout_attempts()) w;
grant select on diff_cells, random_outbox, slow_payouts, writing_payouts, json_outbox,
    keyless_outbox, tz_outbox to {READER};
"""


@pytest.fixture(scope="module")
def cluster(postgres: PostgresCluster) -> PostgresCluster:  # noqa: F811 - the fixture
    postgres.admin(SETUP)
    return postgres


@pytest.fixture(scope="module")
def writer(cluster: PostgresCluster) -> Iterator[Any]:
    """A writable superuser connection (the Unix socket), separate from the reader's."""
    with psycopg.connect(
        host=str(cluster.socket_dir), port=cluster.port, user=SUPERUSER, dbname=DATABASE,
        autocommit=True,
    ) as conn:  # fmt: skip
        yield conn


@pytest.fixture(autouse=True)
def reader_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", READER_PASSWORD)


# -- the same SQL, rendered for PostgreSQL, on random exports -------------------------------


def reference(rows: list[dict[str, str]], policy: PayoutPolicy) -> list[dict[str, Any]]:
    records = [Row(i + 2, {k: v for k, v in row.items() if v != ""}) for i, row in enumerate(rows)]
    payouts = payouts_from_rows(records, source="export.csv")
    return [f.to_json() for f in find_payout_anomalies(payouts, policy=policy)]


def pushed_down(
    cluster: PostgresCluster, writer: Any, rows: list[dict[str, str]], policy: PayoutPolicy
) -> tuple[list[dict[str, Any]], int]:
    """Load the rows' text cells (writable connection), run the rules READ ONLY (reader)."""
    with writer.cursor() as cursor:
        cursor.execute("truncate diff_cells")
        with cursor.copy("copy diff_cells from stdin") as copy:
            for row in rows:
                copy.write_row([row[f] for f in FIELDS])
    with read_only_transaction(cluster.dsn(), "diff_cells", timeout=30) as session:
        pushed, _ = run_rules(session.conn, cells_sql(list(FIELDS), "diff_cells"), policy)
    return [f.to_json() for f in pushed.findings], int(pushed.records)


@EXAMPLES
@given(export_rows(), WINDOWS)
def test_postgres_finds_what_the_reference_finds(
    cluster: PostgresCluster, writer: Any, rows: list[dict[str, str]], window: timedelta
) -> None:
    policy = PayoutPolicy(repeat_window=window)
    found, records = pushed_down(cluster, writer, rows, policy)
    assert records == len(rows)
    assert found == reference(rows, policy)


@EXAMPLES
@given(queued_and_memo_rows(), WINDOWS)
def test_postgres_exposed_amounts_and_memo_chains_are_the_reference(
    cluster: PostgresCluster, writer: Any, rows: list[dict[str, str]], window: timedelta
) -> None:
    policy = PayoutPolicy(repeat_window=window)
    assert pushed_down(cluster, writer, rows, policy)[0] == reference(rows, policy)


def test_postgres_hands_wrong_values_back(cluster: PostgresCluster, writer: Any) -> None:
    """Values only Python judges (a StrKey checksum, a base64 memo, a blank id) that are
    wrong: the reference must name them."""
    good = {
        "payout_id": "p1", "settlement_id": "s1", "destination": DESTINATIONS[3],
        "asset": CREDIT, "amount": "25.5", "status": "confirmed", "created_at": NOW,
        "tx_hash": HASHES[0].upper(), "memo_type": "", "memo": "", "idempotency_key": "k1",
        "ledger": "",
    }  # fmt: skip
    policy = PayoutPolicy()
    assert pushed_down(cluster, writer, [good], policy)[1] == 1
    wrong = [
        {"destination": "G" + "A" * 55},
        {"asset": "EUR:G"},
        {"created_at": "2026-02-30 03:00:00Z"},
        {"memo_type": "hash", "memo": "bm90IDMyIGJ5dGVz"},
        {"payout_id": "\u2003"},
        {"amount": "-1"},
    ]
    for change in wrong:
        with pytest.raises(Fallback):
            pushed_down(cluster, writer, [{**good, **change}], policy)
    with pytest.raises(Fallback, match="duplicate"):
        pushed_down(cluster, writer, [good, good], policy)


# -- payouts --db: the push-down against --engine python on random outbox rows --------------

PAYLOAD_AMOUNTS = ["25.500000000", "25.5", "100", "0.000000100", 25.5, 100]


@st.composite
def outbox_rows(draw: st.DrawFn, max_rows: int = 12) -> list[dict[str, Any]]:
    """Outbox rows of every status whose payloads name payouts (or not) in StreamPay's ways:
    9-decimal amounts as text or numbers, muxed destinations under any of the keys, upper-
    and lower-case hashes under any of the keys, shared event keys and streams."""
    rows = []
    for i in range(draw(st.integers(1, max_rows))):
        payload: dict[str, Any] = {"streamId": f"stream-{i}"}
        if draw(st.integers(0, 5)):
            payload["amount"] = draw(st.sampled_from(PAYLOAD_AMOUNTS))
            payload["asset"] = draw(st.sampled_from(["native", "XLM", CREDIT]))
            key = draw(st.sampled_from(["destination", "recipient", "to"]))
            payload[key] = draw(st.sampled_from(DESTINATIONS))
        tx_hash = draw(st.sampled_from([None, *HASHES]))
        if tx_hash is not None:
            if draw(st.booleans()):
                tx_hash = tx_hash.upper()
            payload[draw(st.sampled_from(["transactionHash", "txHash", "tx_hash", "hash"]))] = (
                tx_hash
            )
        if draw(st.booleans()):
            payload["ledger"] = draw(st.sampled_from([53010001, "53010002"]))
        minutes = draw(st.integers(0, 40))
        rows.append(
            {
                "id": str(uuid.UUID(int=i + 1)),
                "event_key": f"settlement:stream-{draw(st.integers(1, 4))}:5301000{i % 3}",
                "aggregate_id": draw(st.sampled_from(["stream-1", "stream-2", "stream-3"])),
                "payload": json.dumps(payload),
                "status": draw(
                    st.sampled_from(["pending", "processing", "succeeded", "failed", "dead"])
                ),
                "created_at": f"2026-11-27 01:{minutes:02d}:00"
                + draw(st.sampled_from(["", ".25", ".123456"])),
                "updated_at": draw(st.sampled_from(["2026-11-27 02:00:00", "2020-01-01 00:00:00"])),
            }
        )
    return rows


def load_outbox(writer: Any, rows: list[dict[str, Any]]) -> None:
    with writer.cursor() as cursor:
        cursor.execute("truncate random_outbox")
        for row in rows:
            cursor.execute(
                "insert into random_outbox (id, event_key, event_type, aggregate_id, payload, "
                "status, created_at, updated_at) values (%(id)s, %(event_key)s, "
                "'stream.settled', %(aggregate_id)s, %(payload)s, %(status)s, %(created_at)s, "
                "%(updated_at)s)",
                row,
            )


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def both(cluster: PostgresCluster, *args: str, dsn: str | None = None) -> tuple[Result, Result]:
    """``payouts --db`` pushed down (``--engine auto``) and by the reference."""
    base = ["payouts", "--db", dsn or cluster.dsn(), "--format", "json", *args]
    return run(*base), run(*base, "--engine", "python")


def same_report(pushed: Result, python: Result) -> dict[str, Any]:
    assert pushed.exit_code == python.exit_code, (pushed.output, python.output)
    assert pushed.stderr == python.stderr
    if python.exit_code == 2:
        return {}
    doc, expected = json.loads(pushed.stdout), json.loads(python.stdout)
    doc.pop("generated_at"), expected.pop("generated_at")
    assert doc == expected
    assert list(doc["inputs"]) == list(expected["inputs"])
    return dict(doc)


@EXAMPLES
@given(outbox_rows(), st.sampled_from([(), ("--status", "succeeded"), ("--status", "dead")]))
def test_payouts_db_push_down_is_the_reference(
    cluster: PostgresCluster, writer: Any, rows: list[dict[str, Any]], statuses: tuple[str, ...]
) -> None:
    load_outbox(writer, rows)
    same_report(*both(cluster, "--table", "random_outbox", "--now", NOW, *statuses))
    # Every row here is valid: the report above was the push-down's, not the reference's.
    query = OutboxQuery(table="random_outbox", statuses=statuses[1:])
    pushdown_outbox_payouts(cluster.dsn(), query, OutboxReading(), PayoutPolicy(), timeout=30)


def test_payouts_db_report_notes_and_annotations(cluster: PostgresCluster) -> None:
    """The seeded outbox on the clock (a stale-export note) and with --now: the reference's."""
    doc = same_report(*both(cluster, "--status", "succeeded"))
    assert doc["notes"] and doc["findings"][0]["evidence"]["aggregate_ids"] == [
        "stream-10",
        "stream-11",
    ]
    doc = same_report(*both(cluster, "--now", NOW, "--repeat-window", "90s"))
    assert doc["inputs"]["outbox_rows_without_payout"] > 0
    explicit = run("payouts", "--db", cluster.dsn(), "--engine", "postgres", "--now", NOW)
    assert explicit.exit_code == 0, explicit.output


def test_no_payout_row_is_input_empty(cluster: PostgresCluster, writer: Any) -> None:
    load_outbox(writer, [])
    doc = same_report(*both(cluster, "--table", "random_outbox"))
    assert [f["code"] for f in doc["findings"]] == ["INPUT_EMPTY"]


OUTBOX_ROW = {
    "id": str(uuid.UUID(int=1)), "event_key": "settlement:stream-1:53010001",
    "aggregate_id": "stream-1", "status": "succeeded",
    "payload": json.dumps({"amount": "25.500000000", "asset": "native", "to": DESTINATIONS[3]}),
    "created_at": "2026-11-27 01:00:00.5", "updated_at": "2026-11-27 02:00:00",
}  # fmt: skip
BAD_ROWS = [
    ("payload", '{"amount": "12.500000001", "asset": "native", "destination": "%s"}'),
    ("payload", '{"amount": "1", "asset": "native", "destination": "GABC"}'),
    ("payload", '{"amount": "1", "asset": "native", "destination": "%s", "escrow": {"a": 1}}'),
    ("payload", '["not", "an", "object"]'),
    ("payload", '{"amount": "1", "asset": "native", "destination": "%s", "memo": "%s"}'),
    ("created_at", "1960-01-01 00:00:00"),
]


@pytest.mark.parametrize(("column", "value"), BAD_ROWS)
def test_a_bad_row_gives_the_reference_exit_2(
    cluster: PostgresCluster, writer: Any, column: str, value: str
) -> None:
    """Any row the reference refuses (or might read otherwise): the push-down hands the
    rows back, and the exit 2 message is the reference's, word for word."""
    seed = "S" + "A" * 55  # shaped like a seed (the shape alone is refused): built at run time
    row = {**OUTBOX_ROW, "status": "pending"}  # unsettled: in the default filter
    row[column] = value.replace("%s", DESTINATIONS[3], 1).replace("%s", seed)
    load_outbox(writer, [row])
    pushed, python = both(cluster, "--table", "random_outbox")
    same_report(pushed, python)
    assert pushed.exit_code == 2 and seed not in pushed.stderr


def test_timestamptz_columns_are_pushed_down(cluster: PostgresCluster) -> None:
    """row_to_json writes a timestamptz with +00:00 in the UTC session: read as UTC."""
    for statuses in ((), ("succeeded",)):
        status_options = [f"--status={status}" for status in statuses]
        same_report(*both(cluster, "--table", "tz_outbox", "--now", NOW, *status_options))
        query = OutboxQuery(table="tz_outbox", statuses=statuses)
        pushdown_outbox_payouts(cluster.dsn(), query, OutboxReading(), PayoutPolicy(), timeout=30)


def test_tables_only_the_reference_reads(cluster: PostgresCluster) -> None:
    """A json (not jsonb) payload, a table without the outbox's keys: the reference's report."""
    from streampay_incident.engines.postgres_engine import _columns_problem

    for table in ("json_outbox", "keyless_outbox"):
        same_report(*both(cluster, "--table", table, "--now", NOW))
    seed = "S" + "B" * 55
    columns = {"id": 2950, "event_key": 25, "created_at": 1114}
    assert _columns_problem(columns) is None
    assert "secret seed" in str(_columns_problem({**columns, seed: 25}))
    assert "json" in str(_columns_problem({**columns, "payload": 114}))
    assert "not a timestamp" in str(_columns_problem({**columns, "updated_at": 25}))


def test_every_layer_of_the_typed_relation_is_fenced() -> None:
    """PostgreSQL computes each CTE layer once only when it is fenced (a performance
    guarantee a changed shape of sql.py would silently lose)."""
    import re

    from streampay_incident.engines import sql
    from streampay_incident.engines.dialect import POSTGRES
    from streampay_incident.engines.postgres_engine import fenced

    typed = sql.typed_payouts_sql(POSTGRES, "cells")
    layers = len(re.findall(r"\b\w+ AS \(\n", typed))
    assert layers >= 4 and fenced(typed).count("OFFSET 0") == layers


def test_source_timezone_other_than_utc_is_the_reference(
    cluster: PostgresCluster, writer: Any
) -> None:
    load_outbox(writer, [OUTBOX_ROW, {**OUTBOX_ROW, "id": str(uuid.UUID(int=2))}])
    for zone in ("Asia/Kolkata", "+00:00"):
        same_report(*both(cluster, "--table", "random_outbox", "--source-timezone", zone))


# -- the edges ------------------------------------------------------------------------------


def test_statement_timeout_during_push_down(cluster: PostgresCluster) -> None:
    result = run("payouts", "--db", cluster.dsn(), "--table", "slow_payouts", "--timeout", "1")
    assert result.exit_code == 2
    assert "table slow_payouts: the query was cancelled by statement_timeout" in result.stderr


def test_a_write_is_impossible_in_the_push_down(cluster: PostgresCluster) -> None:
    before = cluster.admin("select sum(attempts) from settlement_outbox")
    result = run("payouts", "--db", cluster.dsn(), "--table", "writing_payouts")
    assert result.exit_code == 2
    assert "cannot execute UPDATE in a read-only transaction" in result.stderr
    assert cluster.admin("select sum(attempts) from settlement_outbox") == before


def test_bad_dsn_unreachable_server_and_wrong_password(cluster: PostgresCluster) -> None:
    bad = run("payouts", "--db", "host=x password=pw-zz oops")
    assert bad.exit_code == 2 and "pw-zz" not in bad.output
    assert "not a PostgreSQL connection URI" in bad.stderr
    gone = run("payouts", "--db", cluster.dsn(port=free_port()), "--timeout", "2")
    assert gone.exit_code == 2 and "host 127.0.0.1" in gone.stderr
    wrong = run("payouts", "--db", cluster.dsn(password="wrong-pw-42"))
    assert wrong.exit_code == 2 and "wrong-pw-42" not in wrong.output
    assert "password authentication failed" in wrong.stderr
    assert "prefer PGPASSWORD" in wrong.stderr and wrong.stderr.count("prefer PGPASSWORD") == 1


def test_engines_asked_for_in_vain(cluster: PostgresCluster, tmp_path: Any) -> None:
    for engine in ("duckdb", "spark"):
        result = run("payouts", "--db", cluster.dsn(), "--engine", engine)
        assert result.exit_code == 2
        assert f"--engine {engine}: --db is pushed down to PostgreSQL" in result.stderr
    export = tmp_path / "payouts.csv"
    export.write_text(",".join(FIELDS) + "\n", encoding="utf-8")
    result = run("payouts", str(export), "--engine", "postgres")
    assert result.exit_code == 2 and "--engine postgres runs payouts --db" in result.stderr


def test_a_plugin_that_reads_records_keeps_the_reference(
    cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streampay_incident import engines

    monkeypatch.setattr(engines, "needs_records", lambda pm, escrow, engine: "a plugin reads them")
    auto = run("payouts", "--db", cluster.dsn(), "--format", "json", "--now", NOW)
    assert auto.exit_code == 0 and json.loads(auto.stdout)["inputs"]["profile"] == "streampay"
    asked = run("payouts", "--db", cluster.dsn(), "--engine", "postgres")
    assert asked.exit_code == 2 and "--engine postgres: a plugin reads them" in asked.stderr


def test_escrow_with_db_is_the_reference(cluster: PostgresCluster) -> None:
    """The push-down does not reconcile the escrow: auto is the reference, postgres exit 2."""
    from importlib import resources

    chain = str(resources.files("streampay_incident") / "demo_data" / "chain-payments.json")
    escrow = ["--escrow", "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"]
    escrow += ["--chain-payments", chain]
    base = ["payouts", "--db", cluster.dsn(), "--now", NOW, "--format", "json", *escrow]
    auto, python = run(*base), run(*base, "--engine", "python")
    same_report(auto, python)
    asked = run(*base, "--engine", "postgres")
    assert asked.exit_code == 2
    assert "--engine postgres: escrow reconciliation (--escrow) reads the records" in asked.stderr


def test_a_database_not_in_utf8_is_read_by_the_reference(cluster: PostgresCluster) -> None:
    cluster.admin("create database latin_outbox encoding 'LATIN1' template template0")
    for sql in ("outbox_schema.sql", "outbox_seed.sql"):
        from pg_cluster import SQL_DIR

        cluster.admin((SQL_DIR / sql).read_text(encoding="utf-8"), database="latin_outbox")
    cluster.admin(f"grant select on settlement_outbox to {READER}", database="latin_outbox")
    same_report(*both(cluster, "--now", NOW, dsn=cluster.dsn(database="latin_outbox")))


def test_import_stays_light() -> None:
    code = (
        "import sys, streampay_incident, streampay_incident.engines.postgres_engine, "
        "streampay_incident.cli.payouts_db; "
        "heavy = [m for m in ('psycopg', 'duckdb', 'pyspark', 'stellar_sdk') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
