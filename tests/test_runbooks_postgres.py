"""The runbooks' export and triage commands, run against a real PostgreSQL.

Every ``psql "<READ_REPLICA_DSN>" ...`` line of the README's and runbooks' shell blocks runs
through bash against the throwaway cluster (:mod:`pg_cluster`), and what it
exported is triaged; every ``streampay-incident`` command reading the database
(``--db "<READ_REPLICA_DSN>"``) or an outbox export (``<OUTBOX_FILE>``) runs
too, with the Horizon and RPC stand-ins of ``test_doc_commands``. The
database ``runbooks`` holds the seeded outbox moved so that the seed's clock
(2026-11-27T03:00:00Z) is now: the runbooks' filters ("the last 24 hours")
and the tool's clock then see what an on-call engineer would.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from doc_commands import RunbookCommand, _code_blocks, _logical_lines
from pg_cluster import (
    READER,
    READER_PASSWORD,
    PostgresCluster,
    postgres,  # noqa: F401 - the session fixture
)
from streampay_incident.cli import main
from test_doc_commands import (  # the docs' commands and the chain stand-ins, shared
    DOC_FILES,
    _fill,
    command_key,
    doc_commands,
    horizon_stand_in,
    placeholder_values,
    rpc_stand_in,
)

DATABASE = "runbooks"
SEED_NOW = "2026-11-27 03:00:00"
SHIFT = f"""
update settlement_outbox set
    created_at = created_at + ((now() at time zone 'utc') - timestamp '{SEED_NOW}'),
    updated_at = updated_at + ((now() at time zone 'utc') - timestamp '{SEED_NOW}'),
    available_at = available_at + ((now() at time zone 'utc') - timestamp '{SEED_NOW}'),
    lease_until = lease_until + ((now() at time zone 'utc') - timestamp '{SEED_NOW}'),
    processed_at = processed_at + ((now() at time zone 'utc') - timestamp '{SEED_NOW}');
grant select on all tables in schema public to {READER};
"""
DB_COMMANDS = doc_commands(postgres=True)
TESTNET = "Test SDF Network ; September 2015"


def psql_lines() -> list[tuple[str, str]]:
    """(file:line, text) of every psql command in the README's and runbooks' shell blocks."""
    found = []
    for path in DOC_FILES:
        for lang, first_line, body in _code_blocks(path):
            if lang not in ("sh", "bash", "shell", "console"):
                continue
            for line, text in _logical_lines(body, first_line):
                if text.removeprefix("$ ").startswith("psql "):
                    where = path.relative_to(DOC_FILES[0].parent).as_posix()
                    found.append((f"{where}:{line}", text.removeprefix("$ ")))
    return found


PSQL_LINES = psql_lines()


@pytest.fixture(scope="module")
def replica(postgres: PostgresCluster) -> PostgresCluster:  # noqa: F811 - the fixture
    """The cluster with the ``runbooks`` database: the seed, as of now."""
    postgres.create_outbox_database(DATABASE)
    postgres.admin(SHIFT, database=DATABASE)
    return postgres


def _shell(text: str, dsn: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    filled = text.replace("<READ_REPLICA_DSN>", dsn).replace("<OUTBOX_FILE>", "outbox.jsonl")
    assert not re.search(r"<[A-Z][A-Z0-9_]*>", filled), f"placeholder left: {filled}"
    env = {"PGPASSWORD": READER_PASSWORD, "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(
        ["bash", "-c", filled], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_runbooks_export_with_working_forms_only() -> None:
    assert len(PSQL_LINES) >= 4, PSQL_LINES
    assert len(DB_COMMANDS) >= 3, [c.id for c in DB_COMMANDS]
    for where, text in PSQL_LINES:
        # COPY's text format doubles backslashes: a \copy must say csv, JSON must come from -At.
        if "\\copy" in text:
            assert " csv header" in text, f"{where}: \\copy without csv header"
        else:
            assert " -At " in text and "row_to_json" in text, f"{where}: {text}"


@pytest.mark.parametrize(("where", "text"), PSQL_LINES, ids=[w for w, _ in PSQL_LINES])
def test_runbook_export_runs_and_triages(
    replica: PostgresCluster, tmp_path: Path, where: str, text: str
) -> None:
    result = _shell(text, replica.dsn(database=DATABASE), tmp_path)
    assert result.returncode == 0, f"{where}: {result.stderr}"
    (exported,) = [p for p in tmp_path.iterdir() if p.suffix in (".jsonl", ".csv")]
    command = "payouts" if exported.name.startswith("outbox") else "settlements"
    args = [command, str(exported), "--format", "json"]
    if command == "settlements":
        args += ["--network", "testnet"]
    triage = CliRunner().invoke(main, args, catch_exceptions=False)
    assert triage.exit_code == 1, f"{where}: {triage.output}"
    doc = json.loads(triage.stdout)
    assert doc["inputs"]["profile"] == "streampay"
    if command == "settlements":
        assert {f["code"] for f in doc["findings"]} >= {"SETTLEMENT_DEAD_LETTERED"}
    else:
        assert {f["code"] for f in doc["findings"]} == {"PAYOUT_SUSPECTED_REPEAT"}


@pytest.fixture
def outbox_file(replica: PostgresCluster, tmp_path: Path) -> Iterator[Path]:
    """``<OUTBOX_FILE>``: the outbox of the last day, exported as the runbooks say."""
    path = tmp_path / "outbox.jsonl"
    path.write_text(
        replica.psql(
            "-d",
            replica.dsn(database=DATABASE),
            "-At",
            "-c",
            "select row_to_json(t) from settlement_outbox t",
        ).stdout,
        encoding="utf-8",
    )
    yield path


@pytest.mark.network
@pytest.mark.parametrize("command", DB_COMMANDS, ids=command_key)
def test_doc_database_command_runs(
    command: RunbookCommand,
    replica: PostgresCluster,
    outbox_file: Path,
    demo_data: Path,
    tmp_path: Path,
) -> None:
    with horizon_stand_in(demo_data, TESTNET) as horizon, rpc_stand_in(demo_data, TESTNET) as rpc:
        values = placeholder_values(demo_data, tmp_path, horizon.url, rpc.url)
        values["READ_REPLICA_DSN"] = replica.dsn(database=DATABASE)
        values["OUTBOX_FILE"] = str(outbox_file)
        args = [_fill(a, values, command) for a in command.args]
        if "--format" not in args:
            args += ["--format", "json"]
        result = CliRunner().invoke(
            main, args, env={"PGPASSWORD": READER_PASSWORD}, catch_exceptions=False
        )
    assert result.exit_code == 1, f"{command_key(command)}: {result.output}"
    doc = json.loads(result.stdout)
    assert doc["inputs"]["profile"] == "streampay"
    codes = {f["code"] for f in doc["findings"]}
    if args[0] == "settlements":
        assert "SETTLEMENT_DEAD_LETTERED" in codes, codes
    else:
        assert codes == {"PAYOUT_SUSPECTED_REPEAT"}, codes
