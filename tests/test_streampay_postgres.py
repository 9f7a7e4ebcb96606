"""StreamPay's settlement_outbox in a real PostgreSQL: exports as they come, and ``--db``.

Runs against the throwaway cluster of :mod:`pg_cluster` (skips without the
server binaries, fails then in CI). Covers the three export forms under two
session time zones, ``--db`` with its filters and its read-only guarantees
(checked from inside the server), a write attempt failing inside the READ ONLY
transaction, the statement timeout, and a bad DSN, an unreachable server, a
wrong password and a missing table, each exit 2 naming host, database and table
and never the password.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

try:
    import psycopg  # noqa: F401 - every test here reads PostgreSQL through it
except ImportError:  # pragma: no cover - tox installs the postgres extra
    if os.environ.get("STREAMPAY_INCIDENT_REQUIRE_POSTGRES") == "1":
        raise
    pytest.skip("psycopg is not installed (the postgres extra)", allow_module_level=True)

from pg_cluster import (
    READER_PASSWORD,
    SUPERUSER,
    SUPERUSER_PASSWORD,
    PostgresCluster,
    free_port,
    postgres,  # noqa: F401 - the session fixture
)
from streampay_incident.cli import main
from streampay_incident.errors import InputError
from streampay_incident.io.outbox_db import (
    CURSOR_NAME,
    DSN_ENV,
    OutboxLookup,
    OutboxQuery,
    database_target,
    outbox_lookup_from_env,
    stream_outbox_json,
)
from test_streampay_profile import verdicts
from web_harness import KEY_ID, PREFIX, SECRET, running, signed

NOW = "2026-11-27T03:00:00Z"
DEAD_ID = "00000000-0000-4000-8000-000000000002"
ZONES = ("UTC", "Asia/Kolkata")
UNSETTLED = 15  # rows of the seed whose status is not succeeded
# The default filter, asked of the server: on any clock, what --db must read.
DEFAULT_FILTER = (
    "status <> 'succeeded' or updated_at > (now() at time zone 'utc') - interval '24 hours'"
)
PAYOUT_ATTEMPT = (
    " and payload ? 'amount' and payload ? 'asset'"
    " and (payload ? 'destination' or payload ? 'recipient' or payload ? 'to')"
)

# Views over the outbox that let the tests look inside the tool's transaction.
VIEWS = f"""
create or replace view session_outbox as
    select o.*, current_setting('transaction_read_only') as read_only,
           current_setting('TimeZone') as session_zone,
           current_setting('statement_timeout') as statement_timeout,
           exists(select 1 from pg_cursors where name = '{CURSOR_NAME}') as server_cursor
    from settlement_outbox o;
create or replace function bump_attempts() returns integer language plpgsql as $$
begin
    update settlement_outbox set attempts = attempts + 1;
    return 1;
end $$;
create or replace view writing_outbox as
    select o.* from settlement_outbox o, lateral (select bump_attempts()) w;
create or replace view slow_outbox as
    select o.* from settlement_outbox o, (select pg_sleep(5)) s;
grant select on session_outbox, writing_outbox, slow_outbox to public;
create table if not exists private_outbox (like settlement_outbox);
"""


@pytest.fixture(scope="module")
def cluster(postgres: PostgresCluster) -> PostgresCluster:  # noqa: F811 - the fixture
    postgres.admin(VIEWS)
    return postgres


def in_default_filter(cluster: PostgresCluster, extra: str = "") -> int:
    """How many rows the default filter selects now (the seed's dates are fixed)."""
    query = f"select count(*) from settlement_outbox where ({DEFAULT_FILTER}){extra}"
    return int(cluster.admin(query).strip())


def run(args: Sequence[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def db_run(
    cluster: PostgresCluster, *args: str, dsn: str | None = None, password: str = READER_PASSWORD
) -> Result:
    return run(
        ["settlements", "--db", dsn or cluster.dsn(), "--network", "testnet", "--now", NOW, *args],
        env={"PGPASSWORD": password},
    )


def report(result: Result) -> dict[str, Any]:
    assert result.exit_code == 1, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def findings(doc: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(f["code"], f["subject"], f["evidence"].get("event_key")) for f in doc["findings"]]


def exports(cluster: PostgresCluster, directory: Path, zone: str) -> dict[str, Path]:
    """The three export forms (and timestamptz in the session zone), made by psql in ``zone``."""
    directory.mkdir()
    jsonl = directory / "outbox.jsonl"
    jsonl.write_text(
        cluster.psql("-At", "-c", "select row_to_json(t) from settlement_outbox t", tz=zone).stdout,
        "utf-8",
    )
    array = directory / "outbox.json"
    array.write_text(
        cluster.psql("-At", "-c", "select json_agg(t) from settlement_outbox t", tz=zone).stdout,
        "utf-8",
    )
    cluster.psql(
        "-c",
        "\\copy (select * from settlement_outbox) to 'outbox.csv' csv header",
        tz=zone,
        cwd=directory,
    )
    cluster.psql(
        "-c",
        "\\copy (select id, event_key, aggregate_id, payload, status, attempts, max_attempts, "
        "lease_until at time zone 'UTC' as lease_until, last_error, "
        "available_at at time zone 'UTC' as available_at, "
        "created_at at time zone 'UTC' as created_at, updated_at at time zone 'UTC' as updated_at "
        "from settlement_outbox) to 'outbox-tz.csv' csv header",
        tz=zone,
        cwd=directory,
    )
    return {
        "jsonl": jsonl,
        "json_agg": array,
        "csv": directory / "outbox.csv",
        "timestamptz": directory / "outbox-tz.csv",
    }


def test_three_export_forms_under_two_session_time_zones(
    cluster: PostgresCluster, tmp_path: Path
) -> None:
    docs = {}
    for zone in ZONES:
        files = exports(cluster, tmp_path / zone.replace("/", "-"), zone)
        for form, path in files.items():
            docs[zone, form] = report(
                run(
                    [
                        "settlements",
                        str(path),
                        "--network",
                        "testnet",
                        "--now",
                        NOW,
                        "--format",
                        "json",
                    ]
                )
            )
    offsets = (tmp_path / "Asia-Kolkata" / "outbox-tz.csv").read_text("utf-8")
    assert "+05:30" in offsets  # the session zone really printed offsets
    assert "+00" in (tmp_path / "UTC" / "outbox-tz.csv").read_text("utf-8")
    reference = docs["UTC", "jsonl"]
    assert reference["inputs"]["profile"] == "streampay" and reference["inputs"]["records"] == 20
    for key, doc in docs.items():
        assert verdicts(doc) == verdicts(reference), key
        assert sorted(findings(doc)) == sorted(findings(reference)), key
    assert verdicts(reference)[DEAD_ID] == ("stuck", False, "tx_may_still_land")


def test_copy_text_export_is_refused(cluster: PostgresCluster, tmp_path: Path) -> None:
    cluster.psql(
        "-c", "\\copy (select row_to_json(s) from settlement_outbox s) to 'c.jsonl'", cwd=tmp_path
    )
    result = run(["settlements", str(tmp_path / "c.jsonl"), "--now", NOW])
    assert result.exit_code == 2 and "doubled backslashes" in result.stderr
    assert "psql -At" in result.stderr


def test_db_reads_the_same_verdicts_as_an_export(cluster: PostgresCluster, tmp_path: Path) -> None:
    doc = report(db_run(cluster, "--format", "json"))
    assert doc["inputs"]["records"] == in_default_filter(cluster)
    assert (
        doc["inputs"]["database"]
        == f"postgresql://incident_reader@127.0.0.1:{cluster.port}/streampay"
    )
    assert doc["inputs"]["table"] == "settlement_outbox"
    assert doc["inputs"]["filter"].startswith("status <> 'succeeded' or updated_at >")
    path = tmp_path / "o.jsonl"
    path.write_text(
        cluster.psql("-At", "-c", "select row_to_json(t) from settlement_outbox t").stdout, "utf-8"
    )
    exported = verdicts(
        report(
            run(
                ["settlements", str(path), "--network", "testnet", "--now", NOW, "--format", "json"]
            )
        )
    )
    live = verdicts(doc)
    assert live == {k: v for k, v in exported.items() if k in live}
    dead = next(f for f in doc["findings"] if f["subject"] == DEAD_ID)
    assert dead["evidence"]["aggregate_id"] == "stream-02"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--since", "3650d"), 20),
        (("--status", "dead"), 2),
        (("--status", "dead", "--status", "failed"), 6),
        (("--status", "succeeded", "--since", "2026-11-27T00:00:00Z"), 4),
        (("--since", "2026-11-27T01:15:00Z"), UNSETTLED + 2),  # two settled since then
    ],
)
def test_db_filters(cluster: PostgresCluster, args: tuple[str, ...], expected: int) -> None:
    result = db_run(cluster, "--format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    assert json.loads(result.stdout)["inputs"]["records"] == expected


def test_db_from_the_environment_and_file_wins(cluster: PostgresCluster, tmp_path: Path) -> None:
    env = {DSN_ENV: cluster.dsn(), "PGPASSWORD": READER_PASSWORD}
    result = run(["settlements", "--now", NOW, "--network", "testnet", "--format", "json"], env=env)
    assert json.loads(result.stdout)["inputs"]["records"] == in_default_filter(cluster)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", "utf-8")
    from_file = run(["settlements", str(empty), "--now", NOW, "--format", "json"], env=env)
    assert json.loads(from_file.stdout)["inputs"]["settlements"] == str(empty)


def test_read_only_utc_timeout_and_server_cursor_inside_the_transaction(
    cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", READER_PASSWORD)
    rows = [
        json.loads(t)
        for t in stream_outbox_json(
            cluster.dsn(), OutboxQuery(table="session_outbox"), timeout=7.0, fetch_rows=4
        )
    ]
    assert len(rows) == in_default_filter(cluster)
    for row in rows:
        assert row["read_only"] == "on"
        assert row["session_zone"] == "UTC"
        assert row["server_cursor"] is True
        assert row["statement_timeout"].endswith("ms") or row["statement_timeout"].endswith("s")
    timeout = rows[0]["statement_timeout"]
    milliseconds = int(timeout[:-2]) if timeout.endswith("ms") else int(timeout[:-1]) * 1000
    assert 0 < milliseconds <= 7000


def test_a_write_fails_inside_the_read_only_transaction(cluster: PostgresCluster) -> None:
    before = cluster.admin("select sum(attempts) from settlement_outbox")
    # As the superuser: only the READ ONLY transaction stands between the tool and a write.
    result = db_run(
        cluster,
        "--table",
        "writing_outbox",
        dsn=cluster.dsn(user=SUPERUSER),
        password=SUPERUSER_PASSWORD,
    )
    assert result.exit_code == 2 and result.stdout == ""
    assert "read-only transaction" in result.stderr
    assert f"127.0.0.1:{cluster.port}, database streampay, table writing_outbox" in result.stderr
    assert cluster.admin("select sum(attempts) from settlement_outbox") == before


def test_statement_timeout(cluster: PostgresCluster) -> None:
    started = time.monotonic()
    result = db_run(cluster, "--table", "slow_outbox", "--timeout", "1")
    assert time.monotonic() - started < 4.5  # the server cancelled the 5 s statement
    assert result.exit_code == 2
    assert "statement_timeout" in result.stderr and "table slow_outbox" in result.stderr
    assert "a large outbox needs a larger --timeout" in result.stderr


def test_wrong_password_names_the_target_not_the_password(cluster: PostgresCluster) -> None:
    result = db_run(cluster, password="not-the-password")
    assert result.exit_code == 2 and result.stdout == ""
    assert "cannot connect or log in" in result.stderr
    assert "password authentication failed" in result.stderr
    assert f"host 127.0.0.1:{cluster.port}, database streampay, table settlement_outbox" in (
        result.stderr
    )
    assert "not-the-password" not in result.output


def test_a_password_in_the_url_is_used_never_printed(cluster: PostgresCluster) -> None:
    dsn = cluster.dsn(password=READER_PASSWORD)
    result = run(["settlements", "--db", dsn, "--now", NOW, "--network", "testnet"])
    assert result.exit_code == 1
    assert "PGPASSWORD or ~/.pgpass" in result.stderr
    assert READER_PASSWORD not in result.output
    wrong = run(["settlements", "--db", cluster.dsn(password="hunter2-secret"), "--now", NOW])
    assert wrong.exit_code == 2 and "hunter2-secret" not in wrong.output


def test_unreachable_server(cluster: PostgresCluster) -> None:
    port = free_port()
    result = db_run(cluster, "--timeout", "2", dsn=cluster.dsn(port=port))
    assert result.exit_code == 2
    assert f"host 127.0.0.1:{port}, database streampay, table settlement_outbox" in result.stderr
    assert "cannot connect" in result.stderr


def test_missing_table(cluster: PostgresCluster) -> None:
    result = db_run(cluster, "--table", "public.no_such_outbox")
    assert result.exit_code == 2
    assert "table public.no_such_outbox: table not found" in result.stderr


def test_bad_dsn_is_not_echoed() -> None:
    result = run(["settlements", "--db", "host=127.0.0.1 password=pw-in-bad-dsn oops"])
    assert result.exit_code == 2
    assert "not a PostgreSQL connection URI" in result.stderr
    assert "pw-in-bad-dsn" not in result.output


def test_database_target_defaults() -> None:
    target = database_target("dbname=outbox", {"PGHOST": "replica", "PGUSER": "ro"})
    assert target.where("t") == "postgresql host replica, database outbox, table t"
    assert target.display == "postgresql://ro@replica/outbox" and not target.has_password
    bare = database_target("", {})
    assert bare.host == "the local socket" and bare.database == "(default)"


# --- the sidecar's GET /settlements/{id} ----------------------------------------------------


@pytest.fixture
def sidecar(cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from streampay_incident.cli.serve import build_sidecar_app
    from streampay_incident.web import WebConfig

    monkeypatch.setenv("PGPASSWORD", READER_PASSWORD)
    config = WebConfig(
        hmac_keys={KEY_ID: SECRET}, network_passphrase="Test SDF Network ; September 2015"
    )
    app = build_sidecar_app(config, {DSN_ENV: cluster.dsn()})
    with running(app) as url:
        yield url


def _get(url: str, path: str) -> httpx.Response:
    full = PREFIX + path
    return httpx.get(url + full, headers=signed("GET", full), timeout=10)


def test_sidecar_answers_settlements_from_the_database(sidecar: str) -> None:
    found = _get(sidecar, f"/settlements/{DEAD_ID}")
    assert found.status_code == 200, found.text
    doc = found.json()
    assert doc["settlements"][0]["settlement_id"] == DEAD_ID
    assert doc["findings"][0]["code"] == "SETTLEMENT_DEAD_LETTERED"
    by_key = _get(sidecar, "/settlements/settlement:stream-02:53010002")
    assert by_key.json()["settlements"][0]["settlement_id"] == DEAD_ID
    assert _get(sidecar, "/settlements/no-such-id").status_code == 404
    unhyphenated = _get(sidecar, "/settlements/" + DEAD_ID.replace("-", "").upper())
    assert unhyphenated.json()["settlements"][0]["settlement_id"] == DEAD_ID
    assert _get(sidecar, "/settlements/00000000-0000-4000-8000-0000000000ff").status_code == 404


def test_sidecar_lookup_failure_is_a_plugin_error_without_the_password(
    cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", "wrong-pw-xyz")
    lookup = OutboxLookup(cluster.dsn(), timeout=3)
    assert "incident_reader@127.0.0.1" in repr(lookup)
    with pytest.raises(InputError) as caught:
        lookup.streampay_incident_find_settlement(DEAD_ID)
    assert "wrong-pw-xyz" not in str(caught.value)
    assert "database streampay" in str(caught.value)


def test_lookup_only_when_configured() -> None:
    from streampay_incident.web import WebConfig

    assert outbox_lookup_from_env({}, WebConfig()) is None
    lookup = outbox_lookup_from_env(
        {DSN_ENV: "postgresql://ro@replica/streampay", "STREAMPAY_INCIDENT_DATABASE_TABLE": "x.y"},
        WebConfig(probe_timeout_seconds=3),
    )
    assert lookup is not None and lookup.table == "x.y" and lookup.timeout == 3


def test_serve_refuses_a_bad_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not serve"))
    result = CliRunner().invoke(
        main, ["serve", "--insecure-no-auth"], env={DSN_ENV: "host=x password=pw-zz oops"}
    )
    assert result.exit_code == 2 and "pw-zz" not in result.output
    assert "not a PostgreSQL connection URI" in result.output


# --- payouts --db: the streampay payouts view over the table ---------------------------------


def test_payouts_db(cluster: PostgresCluster) -> None:
    env = {"PGPASSWORD": READER_PASSWORD}
    unsettled = run(["payouts", "--db", cluster.dsn(), "--format", "json"], env=env)
    assert unsettled.exit_code == 0, unsettled.output
    doc = json.loads(unsettled.stdout)
    # Unsettled payout attempts (processing, failed, dead, pending) in the default filter.
    expected = in_default_filter(cluster, PAYOUT_ATTEMPT)
    assert doc["inputs"]["records"] == expected and doc["inputs"]["profile"] == "streampay"
    assert doc["inputs"]["table"] == "settlement_outbox"
    settled = run(
        ["payouts", "--db", cluster.dsn(), "--status", "succeeded", "--format", "json"], env=env
    )
    assert settled.exit_code == 1, settled.output
    doc = json.loads(settled.stdout)
    assert doc["inputs"]["records"] == 3
    (finding,) = doc["findings"]
    assert finding["code"] == "PAYOUT_SUSPECTED_REPEAT"
    assert finding["evidence"]["aggregate_ids"] == ["stream-10", "stream-11"]
    wrong = run(["payouts", "--db", cluster.dsn()], env={"PGPASSWORD": "nope-pw"})
    assert wrong.exit_code == 2 and "database streampay, table settlement_outbox" in wrong.stderr


def test_permission_denied_names_the_table(cluster: PostgresCluster) -> None:
    result = db_run(cluster, "--table", "private_outbox")
    assert result.exit_code == 2
    assert "table private_outbox: permission denied" in result.stderr


def test_rows_must_all_arrive_within_the_timeout(
    cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    import streampay_incident.io.outbox_db as outbox_db

    class Clock:
        """Real enough until the first batch has arrived, then the deadline has passed."""

        calls = 0

        def monotonic(self) -> float:
            self.calls += 1
            return 0.0 if self.calls <= 2 else 1000.0

    monkeypatch.setattr(outbox_db, "time", Clock())
    monkeypatch.setenv("PGPASSWORD", READER_PASSWORD)
    with pytest.raises(InputError, match="did not all arrive within --timeout 5s"):
        list(stream_outbox_json(cluster.dsn(), OutboxQuery(), timeout=5.0, fetch_rows=2))


def test_query_descriptions() -> None:
    assert OutboxQuery(settlement_id="x").describe() == "id or event_key = ?"
    assert OutboxQuery(statuses=("dead",)).describe() == "status in (dead)"
    since = OutboxQuery(statuses=("dead",), since=timedelta(hours=2)).describe()
    assert since == "status in (dead) and updated_at > now() - interval '7200 seconds'"


def test_without_psycopg_the_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)
    result = run(["settlements", "--db", "postgresql://ro@replica/streampay"])
    assert result.exit_code == 2
    assert "pip install 'streampay-incident[postgres]'" in result.stderr


def test_without_server_binaries_skip_outside_ci_fail_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pg_cluster

    monkeypatch.setattr(pg_cluster, "server_bindir", lambda: None)
    monkeypatch.delenv(pg_cluster.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install postgresql"):
        pg_cluster.start_cluster()
    monkeypatch.setenv(pg_cluster.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL is required"):
        pg_cluster.start_cluster()
