"""Every ``streampay-incident`` command in README.md and docs/runbooks/*.md runs as written.

Each command of a shell block runs on the bundled demo data (written out by
``demo --write-data``, the folder README's examples run in), with the runbooks'
placeholders filled, and with the public endpoints and ``<HORIZON_URL>`` /
``<RPC_URL>`` replaced by loopback stand-ins that serve recorded Horizon and RPC
bodies on the command's network. ``EXPECTED`` pins each command's exit code and
a line of its output; a command in the docs without an entry there fails, and so
does an entry no command uses any more.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from conftest import FIXTURES, REPO
from doc_commands import _PLACEHOLDER, RunbookCommand, commands_in
from loopback import (
    HORIZON_LEDGER,
    LoopbackServer,
    Reply,
    Request,
    fixture_reply,
    horizon_routes,
    json_reply,
    rfc3339,
    rpc_routes,
)
from streampay_incident.cli import main
from streampay_incident.stellar.networks import PUBLIC, TESTNET

DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs" / "runbooks").glob("*.md"))]

# The demo scenarios' clock (streampay_incident.cli.demo DEMO_NOW / DEMO_LEDGER_CLOSE).
DEMO_NOW = "2026-11-27T03:00:00Z"
DEMO_LEDGER_CLOSE = "2026-11-27T02:59:56Z"

# The real endpoints README.md names; the tests never reach them.
PUBLIC_HORIZON = "https://horizon.stellar.org"
PUBLIC_RPC = "https://mainnet.sorobanrpc.com"
TESTNET_HORIZON = "https://horizon-testnet.stellar.org"
TESTNET_RPC = "https://soroban-testnet.stellar.org"


def command_key(command: RunbookCommand) -> str:
    """``<file>: [NAME=value ...] streampay-incident <args> [< stdin]`` as the docs write it."""
    words = [f"{name}={value}" for name, value in command.env.items()]
    words += ["streampay-incident", *command.args]
    if command.stdin is not None:
        words += ["<", command.stdin]
    return f"{command.path.relative_to(REPO).as_posix()}: {' '.join(words)}"


# Commands reading StreamPay's PostgreSQL, or an export psql made, run against a real
# server in test_runbooks_postgres.py.
POSTGRES_PLACEHOLDERS = {"READ_REPLICA_DSN", "OUTBOX_FILE"}


def doc_commands(*, postgres: bool = False) -> list[RunbookCommand]:
    """The docs' commands: those reading PostgreSQL when ``postgres``, else all the others."""
    return [
        command
        for path in DOC_FILES
        for command in commands_in(path)
        if bool(command.placeholders() & POSTGRES_PLACEHOLDERS) == postgres
    ]


COMMANDS = doc_commands()


@attrs.frozen
class Expect:
    """What one command must do: its exit code (None: a server, checked live) and a line."""

    exit_code: int | None
    line: str


_R = "README.md: streampay-incident "
_RB = "docs/runbooks/"
_SETTLE_LIVE = (
    "settlements <SETTLEMENTS_FILE> --horizon <HORIZON_URL> --rpc <RPC_URL> --network <NETWORK>"
)
_CHAIN_LIVE = "chain --horizon <HORIZON_URL> --rpc <RPC_URL> --network <NETWORK>"
_ESCROW_WINDOW = "--escrow <ESCROW_ACCOUNT> --since <SINCE> --until <UNTIL>"
_SETTLE_EVIDENCE = (
    "settlements <SETTLEMENTS_FILE> --transactions <TRANSACTIONS_FILE> --chain-snapshot "
    "<SNAPSHOT_FILE> --payouts <PAYOUTS_FILE> --network <NETWORK> --now <NOW>"
)
_TABLETOP_SETTLE = (
    "settlements <DEMO_DIR>/settlements.jsonl --transactions <DEMO_DIR>/transactions.json "
    "--network testnet --now 2026-11-27T03:00:00Z --latest-ledger-close-time 2026-11-27T02:59:56Z "
    "--payouts <DEMO_DIR>/payouts.csv"
)

_SETTLED_BUT_DEAD = "SETTLEMENT_CONFIRMED_NOT_RECORDED stl-1002"
_PAYOUTS_FAIL = "FAIL streampay-incident payouts: 5 finding(s)"
# Only a live lookup can say so when no --transactions file is given.
_LIVE_SETTLEMENTS = (
    "tx 32f7e5c3afd281fcaa99c0e990adf62f33e3bb341b1641a5c8b0b4a4dc55c487 succeeded on chain but "
    "the settlement is recorded as dead"
)
# --payouts: stl-1011 has no tx hash, but payout p-071 already paid it.
_ALREADY_PAID = "SETTLEMENT_ALREADY_PAID stl-1011"
_JSON_FAIL = '"status": "fail",'
_CHAIN_PASS = "PASS streampay-incident chain: 0 finding(s)"
_OUTAGE = "FAIL streampay-incident chain: 4 finding(s)"
_ENVELOPE = '"hash": "8ef0c6d60357bf91b0b0d7800b747ff02bf73117d3e017690cbff641ca67f124",'
_DEMO_ESCROW = "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"
_CHECKS = "PAYOUT_DUPLICATE_SETTLEMENT          warning|critical  One settlement paid by several"
_PLUGIN_LISTED = "  streampay_incident.checks.settlements 0.1.0"
_STILL_LANDS = "stl-1007     DO NOT RETRY: the transaction can still land (tx_may_still_land)"

EXPECTED: dict[str, Expect] = {
    # README.md: run in the folder `demo --write-data drill/` fills.
    _R + "demo": Expect(0, _STILL_LANDS),
    _R + "demo --write-data drill/": Expect(0, "drill/chain-payments.json"),
    _R + "settlements settlements.jsonl --transactions transactions.json --network testnet "
    "--latest-ledger-close-time 2026-11-27T02:59:56Z": Expect(1, _SETTLED_BUT_DEAD),
    _R + "settlements settlements.jsonl --network testnet --horizon "
    "https://horizon-testnet.stellar.org --rpc https://soroban-testnet.stellar.org --timeout 5": (
        Expect(1, _LIVE_SETTLEMENTS)
    ),
    _R + "payouts payouts.csv --repeat-window 10m": Expect(1, "PAYOUT_DUPLICATE_MEMO id:4242"),
    _R + f"payouts payouts.csv --escrow {_DEMO_ESCROW} --horizon https://horizon.stellar.org "
    "--since 2020-01-17T00:00:00Z --until 2020-01-18T00:00:00Z": Expect(1, "chain_payments: 1"),
    _R + "payouts payouts.csv --escrow CBXVVJ5BOTUVRPXUY54LXFILWC4ZTJWRP2GIVHBMOEAOPHSLGHBG3NNP "
    "--rpc https://mainnet.sorobanrpc.com": Expect(
        1,
        "ESCROW_UNRECORDED_OUTFLOW a5c9247b77eb04c0d857934a2e988c408167976c8acbdf3d8acf64c44deb3b",
    ),
    # The RPC keeps days, not 2020: it says so instead of calling anything missing.
    _R + f"payouts payouts.csv --escrow {_DEMO_ESCROW} --rpc https://mainnet.sorobanrpc.com "
    "--since 2020-01-17T00:00:00Z --until 2020-01-18T00:00:00Z": Expect(
        1,
        f"ESCROW_COVERAGE_INCOMPLETE {_DEMO_ESCROW}",
    ),
    _R
    + f"payouts payouts.csv --escrow {_DEMO_ESCROW} --chain-payments chain-payments.json": Expect(
        1, "chain_payments: 10"
    ),
    _R + "chain --horizon https://horizon.stellar.org --rpc https://mainnet.sorobanrpc.com "
    "--network public --timeout 5 --record incident.json": Expect(0, _CHAIN_PASS),
    _R + "chain --snapshot chain-outage.json --now 2026-11-27T03:00:00Z": Expect(1, _OUTAGE),
    _R + "tx inspect - --network testnet < envelopes.txt": Expect(
        0, '{"hash":"109cf6170666e15470fb622df4965051ecfea2fee97d8165d072a769ba098b54"'
    ),
    _R + "checks --format json": Expect(0, '"code": "SETTLEMENT_STUCK_UNCONFIRMED",'),
    _R + "runbook SETTLEMENT_STUCK_UNCONFIRMED": Expect(
        0, "## SETTLEMENT_STUCK_UNCONFIRMED {#settlement-stuck-unconfirmed}"
    ),
    _R + "demo --scenario all": Expect(0, "CHAIN_RPC_UNHEALTHY https://rpc.streampay.internal"),
    'README.md: INTERNAL_SERVICE_HMAC_KEYS={"current": "<secret>"} streampay-incident serve '
    "--port 8080": Expect(None, "200 ok"),
    # docs/runbooks/README.md
    f"{_RB}README.md: streampay-incident --version": Expect(0, "streampay-incident, version "),
    f"{_RB}README.md: streampay-incident checks": Expect(0, _CHECKS),
    f"{_RB}README.md: streampay-incident runbook": Expect(0, "README             On-call runbooks"),
    f"{_RB}README.md: streampay-incident runbook SETTLEMENT_STUCK_UNCONFIRMED": Expect(
        0, "## SETTLEMENT_STUCK_UNCONFIRMED {#settlement-stuck-unconfirmed}"
    ),
    f"{_RB}README.md: streampay-incident runbook stuck-settlement": Expect(
        0, "# Stuck settlement {#stuck-settlement}"
    ),
    f"{_RB}README.md: streampay-incident demo --scenario all": Expect(0, _STILL_LANDS),
    f"{_RB}README.md: STREAMPAY_INCIDENT_DISABLE_PLUGINS=all streampay-incident payouts "
    "<PAYOUTS_FILE> --format json": Expect(1, _JSON_FAIL),
    # INPUT_EMPTY's "re-run the triage on the real export" (on the demo payouts here).
    f"{_RB}README.md: streampay-incident payouts <PAYOUTS_FILE> --format json": Expect(
        1, _JSON_FAIL
    ),
    f"{_RB}README.md: STREAMPAY_INCIDENT_TRACE_PLUGINS=1 streampay-incident checks": Expect(
        0, "streampay_incident_register_codes [hook]"
    ),
    f"{_RB}README.md: STREAMPAY_INCIDENT_TRACE_PLUGINS=1 streampay-incident payouts "
    "<PAYOUTS_FILE> --format json": Expect(1, _JSON_FAIL),
    f"{_RB}README.md: STREAMPAY_INCIDENT_DISABLE_PLUGINS=<PLUGIN_NAME> streampay-incident payouts "
    "<PAYOUTS_FILE>": Expect(1, _PAYOUTS_FAIL),
    # docs/runbooks/chain-outage.md
    f"{_RB}chain-outage.md: streampay-incident {_CHAIN_LIVE} --timeout 5 --record <RECORD_FILE>": (
        Expect(0, _CHAIN_PASS)
    ),
    f"{_RB}chain-outage.md: streampay-incident chain --horizon <REFERENCE_HORIZON_URL> "
    "--rpc <REFERENCE_RPC_URL> --network <NETWORK>": Expect(0, _CHAIN_PASS),
    f"{_RB}chain-outage.md: streampay-incident {_SETTLE_LIVE}": Expect(1, _LIVE_SETTLEMENTS),
    f"{_RB}chain-outage.md: streampay-incident {_CHAIN_LIVE} --format json": Expect(
        0, '"status": "pass",'
    ),
    f"{_RB}chain-outage.md: streampay-incident chain --snapshot <SNAPSHOT_FILE> --now <NOW> "
    "--network <NETWORK>": Expect(1, _OUTAGE),
    f"{_RB}chain-outage.md: streampay-incident {_SETTLE_LIVE} --format json": Expect(1, _JSON_FAIL),
    # docs/runbooks/double-payout.md
    f"{_RB}double-payout.md: streampay-incident payouts <PAYOUTS_FILE>": Expect(1, _PAYOUTS_FAIL),
    f"{_RB}double-payout.md: streampay-incident payouts <PAYOUTS_FILE> --format json": Expect(
        1, _JSON_FAIL
    ),
    f"{_RB}double-payout.md: streampay-incident {_CHAIN_LIVE}": Expect(0, _CHAIN_PASS),
    f"{_RB}double-payout.md: streampay-incident {_SETTLE_LIVE}": Expect(1, _LIVE_SETTLEMENTS),
    f"{_RB}double-payout.md: streampay-incident payouts <PAYOUTS_FILE> --repeat-window 10m": (
        Expect(
            1, "PAYOUT_SUSPECTED_REPEAT GAAZI4TCR3TY5OJHCTJC2A4QSY6CJWJH5IAJTGKIN2ER7LBNVKOCCWN7"
        )
    ),
    f"{_RB}double-payout.md: streampay-incident payouts <PAYOUTS_FILE> --chain-payments "
    f"<CHAIN_PAYMENTS_FILE> {_ESCROW_WINDOW}": Expect(1, "escrow_window_complete: True"),
    f"{_RB}double-payout.md: streampay-incident payouts <PAYOUTS_FILE> --horizon <HORIZON_URL> "
    f"{_ESCROW_WINDOW}": Expect(1, "chain_payments: 10"),
    f"{_RB}double-payout.md: streampay-incident payouts <PAYOUTS_FILE> --rpc <RPC_URL> "
    "--escrow <ESCROW_CONTRACT> --since <SINCE> --until <UNTIL>": Expect(
        1, "escrow_window_note: the RPC's retention window starts at ledger 3609804"
    ),
    f"{_RB}double-payout.md: streampay-incident tx inspect <TX_XDR> --network <NETWORK>": Expect(
        0, _ENVELOPE
    ),
    # docs/runbooks/key-rotation.md
    f"{_RB}key-rotation.md: streampay-incident tx inspect <TX_XDR> --network <NETWORK> "
    "--format json": Expect(0, _ENVELOPE),
    f"{_RB}key-rotation.md: streampay-incident payouts <PAYOUTS_FILE> --horizon <HORIZON_URL> "
    f"{_ESCROW_WINDOW}": Expect(1, "chain_payments: 10"),
    # docs/runbooks/rollback.md
    f"{_RB}rollback.md: streampay-incident {_SETTLE_LIVE} --format json": Expect(1, _JSON_FAIL),
    f"{_RB}rollback.md: streampay-incident payouts <PAYOUTS_FILE> --format json": Expect(
        1, _JSON_FAIL
    ),
    f"{_RB}rollback.md: streampay-incident {_CHAIN_LIVE}": Expect(0, _CHAIN_PASS),
    f"{_RB}rollback.md: streampay-incident --version": Expect(0, "streampay-incident, version "),
    f"{_RB}rollback.md: streampay-incident checks": Expect(0, _CHECKS),
    f"{_RB}rollback.md: STREAMPAY_INCIDENT_DISABLE_PLUGINS=<PLUGIN_NAME> streampay-incident "
    "checks": Expect(0, _PLUGIN_LISTED),
    f"{_RB}rollback.md: STREAMPAY_INCIDENT_LOAD_PLUGINS=<PLUGIN_NAME> streampay-incident checks": (
        Expect(0, _PLUGIN_LISTED)
    ),
    # docs/runbooks/stuck-settlement.md
    f"{_RB}stuck-settlement.md: streampay-incident {_CHAIN_LIVE} --record <RECORD_FILE>": Expect(
        0, _CHAIN_PASS
    ),
    f"{_RB}stuck-settlement.md: streampay-incident {_SETTLE_LIVE} --format json": Expect(
        1, _JSON_FAIL
    ),
    f"{_RB}stuck-settlement.md: streampay-incident {_SETTLE_LIVE} --payouts <PAYOUTS_FILE>": (
        Expect(1, _ALREADY_PAID)
    ),
    f"{_RB}stuck-settlement.md: streampay-incident payouts <PAYOUTS_FILE> --fail-on critical": (
        Expect(1, _PAYOUTS_FAIL)
    ),
    # The snapshot (the demo's outage round) grades the chain fail: no retry into an outage.
    f"{_RB}stuck-settlement.md: streampay-incident {_SETTLE_EVIDENCE}": Expect(
        1, "SETTLEMENT_CHAIN_BLOCKED stl-1003"
    ),
    f"{_RB}stuck-settlement.md: streampay-incident {_SETTLE_EVIDENCE} --format json": Expect(
        1, '"chain_diagnosis": "network_down",'
    ),
    f"{_RB}stuck-settlement.md: streampay-incident tx inspect <TX_XDR> --network <NETWORK> "
    "--format json": Expect(0, _ENVELOPE),
    # docs/runbooks/tabletop.md
    f"{_RB}tabletop.md: streampay-incident demo --write-data <DEMO_DIR>": Expect(
        0, "written-demo-data/README.md"
    ),
    f"{_RB}tabletop.md: streampay-incident demo --scenario stuck-settlement": Expect(
        0, _STILL_LANDS
    ),
    f"{_RB}tabletop.md: streampay-incident {_TABLETOP_SETTLE}": Expect(1, _ALREADY_PAID),
    f"{_RB}tabletop.md: streampay-incident demo --scenario double-payout": Expect(
        0, "PAYOUT_IDEMPOTENCY_CONFLICT idem-2004"
    ),
    f"{_RB}tabletop.md: streampay-incident payouts <DEMO_DIR>/payouts.csv --format json": Expect(
        1, _JSON_FAIL
    ),
    f"{_RB}tabletop.md: streampay-incident demo --scenario chain-outage": Expect(
        0, "CHAIN_HORIZON_UNHEALTHY https://horizon.streampay.internal"
    ),
    f"{_RB}tabletop.md: streampay-incident chain --snapshot <DEMO_DIR>/chain-outage.json "
    "--now 2026-11-27T03:00:00Z --network testnet": Expect(1, _OUTAGE),
}


def test_every_doc_command_has_an_expectation_and_every_expectation_a_command() -> None:
    keys = {command_key(c) for c in COMMANDS}
    assert sorted(keys - set(EXPECTED)) == [], "commands in the docs without an entry in EXPECTED"
    assert sorted(set(EXPECTED) - keys) == [], "entries in EXPECTED no doc shows any more"


def test_the_docs_show_commands() -> None:
    readme = [c for c in COMMANDS if c.path.name == "README.md" and c.path.parent == REPO]
    assert len(readme) >= 15 and len(COMMANDS) >= 60, [command_key(c) for c in COMMANDS]


# --- the stand-ins and the demo data ----------------------------------------------------------


def _envelope_for(network_passphrase: str) -> str:
    """A real testnet envelope from the recorded hash triples."""
    triples = json.loads((FIXTURES / "tx_hash_triples.json").read_text(encoding="utf-8"))
    for triple in triples["triples"]:
        if triple["network_passphrase"] == network_passphrase and triple["envelope_type"] in (
            "ENVELOPE_TYPE_TX",
        ):
            return str(triple["envelope_xdr"])
    raise AssertionError("no testnet envelope in tx_hash_triples.json")  # pragma: no cover


def _demo_transactions(data: Path) -> dict[str, str]:
    """tx hash -> status (success / failed) of the demo transactions file."""
    out: dict[str, str] = {}
    for record in json.loads((data / "transactions.json").read_text(encoding="utf-8")):
        result = record.get("result", record)
        if "txHash" in result and result.get("status") in ("SUCCESS", "FAILED"):
            out[result["txHash"].lower()] = result["status"].lower()
        elif "hash" in result:
            out[result["hash"].lower()] = "success" if result.get("successful") else "failed"
    return out


@contextlib.contextmanager
def horizon_stand_in(data: Path, passphrase: str) -> Iterator[LoopbackServer]:
    """A Horizon with a fresh ledger, the recorded bodies, and the demo transactions."""
    now = datetime.now(UTC)
    known = _demo_transactions(data)

    def transaction(request: Request) -> Reply:
        tx_hash = request.path.rsplit("/", 1)[-1].lower()
        if known.get(tx_hash) == "success" and tx_hash.startswith("5131aed2"):
            return fixture_reply("horizon/transaction_detail_testnet_2019_memo_text.json")
        return fixture_reply("horizon/problems/404_not_found_with_instance.json", 404)

    server = LoopbackServer(
        horizon_routes(
            root={
                "network_passphrase": passphrase,
                "history_latest_ledger_closed_at": rfc3339(now),
            },
            **{"GET /transactions/*": transaction},
        )
    ).start()
    # Payments of an account: one recorded page whose links point back at this server, then
    # an empty page, as Horizon pages end.
    page = (FIXTURES / "horizon" / "account_payments_pubnet_docs.json").read_text("utf-8")
    page = page.replace("https://horizon-testnet.stellar.org", server.url)
    empty = json.loads(page)
    empty["_embedded"]["records"] = []
    empty_reply = json_reply(empty)
    server.set_route("GET /accounts/*/payments", [Reply(body=page.encode()), empty_reply])
    server.set_route("GET /payments", [Reply(body=page.encode()), empty_reply])
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def rpc_stand_in(data: Path, passphrase: str) -> Iterator[LoopbackServer]:
    """A Stellar RPC with a fresh ledger, answering getTransaction from the demo data."""
    known = _demo_transactions(data)

    def get_transaction(request: Request) -> Reply:
        params = request.json().get("params") or {}
        tx_hash = str(params.get("hash", "")).lower()
        if known.get(tx_hash) == "success":
            return fixture_reply("rpc/getTransaction_SUCCESS_testnet_docs.json")
        if known.get(tx_hash) == "failed":
            return fixture_reply("rpc/getTransaction_FAILED_testnet_docs.json")
        return fixture_reply("rpc/getTransaction_NOT_FOUND_docs.json")

    server = LoopbackServer(
        rpc_routes(
            passphrase=passphrase,
            latest_ledger=HORIZON_LEDGER,
            close_time=datetime.now(UTC),
            **{
                "RPC getTransaction": get_transaction,
                "RPC getEvents": fixture_reply("rpc/getEvents_docs.json"),
                "RPC getFeeStats": fixture_reply("rpc/getFeeStats_docs.json"),
            },
        )
    ).start()
    try:
        yield server
    finally:
        server.stop()


def placeholder_values(data: Path, tmp: Path, horizon_url: str, rpc_url: str) -> dict[str, str]:
    """What each placeholder of the runbooks stands for in the tests (and the README's URLs)."""
    return {
        "PAYOUTS_FILE": str(data / "payouts.csv"),
        "SETTLEMENTS_FILE": str(data / "settlements.jsonl"),
        "TRANSACTIONS_FILE": str(data / "transactions.json"),
        "SNAPSHOT_FILE": str(data / "chain-outage.json"),
        "DEMO_DIR": str(data),
        "RECORD_FILE": str(tmp / "recording.json"),
        "CHAIN_PAYMENTS_FILE": str(data / "chain-payments.json"),
        "NETWORK": "testnet",
        "NOW": DEMO_NOW,
        "LEDGER_CLOSE_TIME": DEMO_LEDGER_CLOSE,
        "SINCE": "2019-09-01T00:00:00Z",
        "UNTIL": "2021-03-21T00:00:00Z",
        "HORIZON_URL": horizon_url,
        "RPC_URL": rpc_url,
        "REFERENCE_HORIZON_URL": horizon_url,
        "REFERENCE_RPC_URL": rpc_url,
        # The demo escrow account (chain-payments.json is its recorded payments page), and
        # the contract that sends the second SAC transfer of the recorded getEvents answer.
        "ESCROW_ACCOUNT": "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE",
        "ESCROW_CONTRACT": "CBXVVJ5BOTUVRPXUY54LXFILWC4ZTJWRP2GIVHBMOEAOPHSLGHBG3NNP",
        "TX_XDR": _envelope_for(TESTNET),
        "PLUGIN_NAME": "no-such-plugin",
    }


def _fill(value: str, values: dict[str, str], command: RunbookCommand) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"{command_key(command)}: unknown placeholder <{name}>"
        return values[name]

    filled = _PLACEHOLDER.sub(one, value)
    # README.md names SDF's endpoints: the stand-ins (on the command's network) answer instead.
    for real, stand_in in (
        (TESTNET_HORIZON, values["HORIZON_URL"]),
        (TESTNET_RPC, values["RPC_URL"]),
        (PUBLIC_HORIZON, values["HORIZON_URL"]),
        (PUBLIC_RPC, values["RPC_URL"]),
    ):
        filled = filled.replace(real, stand_in)
    return filled


def _write_data_target(command: RunbookCommand, tmp: Path) -> dict[str, str]:
    # `demo --write-data <DEMO_DIR>` writes into a fresh directory, not over the inputs.
    return {"DEMO_DIR": str(tmp / "written-demo-data")} if "--write-data" in command.args else {}


def _run_server(args: list[str], env: dict[str, str]) -> str:
    """Start ``serve`` as the README shows it (on a free port), return its /livez answer."""
    from web_harness import free_port, wait_until_live

    port = free_port()
    args = [
        str(port) if previous == "--port" else a
        for previous, a in zip(["", *args[:-1]], args, strict=True)
    ]
    process = subprocess.Popen(
        [sys.executable, "-c", "from streampay_incident.cli import main; main()", *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        answer = wait_until_live(f"http://127.0.0.1:{port}", process, timeout=30)
        return f"{answer.status_code} {answer.text}"
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- running every command --------------------------------------------------------------------


@pytest.mark.network
@pytest.mark.parametrize("command", COMMANDS, ids=command_key)
def test_doc_command_runs_as_written(
    command: RunbookCommand,
    demo_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = command_key(command)
    expected = EXPECTED.get(key)
    assert expected is not None, f"no entry in EXPECTED for {key!r}"
    # README's examples run in the folder `demo --write-data` filled.
    monkeypatch.chdir(demo_data)
    passphrase = PUBLIC if "public" in command.args else TESTNET
    with (
        horizon_stand_in(demo_data, passphrase) as horizon,
        rpc_stand_in(demo_data, passphrase) as rpc,
    ):
        values = placeholder_values(demo_data, tmp_path, horizon.url, rpc.url)
        values.update(_write_data_target(command, tmp_path))
        args = [_fill(a, values, command) for a in command.args]
        env = {k: _fill(v, values, command) for k, v in command.env.items()}
        if args[:1] == ["serve"]:
            output, exit_code = _run_server(args, env), None
        else:
            stdin = None if command.stdin is None else (demo_data / command.stdin).read_bytes()
            result = CliRunner().invoke(main, args, env=env, input=stdin, catch_exceptions=True)
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                import traceback

                tb = "".join(traceback.format_exception(result.exception))
                pytest.fail(f"{key}\n--- traceback ---\n{tb}")
            output, exit_code = result.output, result.exit_code
    shown = f"{key}\n--- output (exit {exit_code}) ---\n{output}"
    if os.environ.get("STREAMPAY_INCIDENT_SHOW_DOC_COMMANDS"):  # to write a new entry
        print(f"\n=== {shown}")
    assert exit_code == expected.exit_code, shown
    assert any(expected.line in line for line in output.splitlines()), shown
    if "--record" in args:
        _assert_replays(Path(args[args.index("--record") + 1]), exit_code, shown)


def _assert_replays(recording: Path, exit_code: int | None, shown: str) -> None:
    """A ``--record`` file was written and ``chain --snapshot`` grades it as the live run did."""
    assert recording.is_file(), f"{shown}\n--- no recording at {recording}"
    replay = CliRunner().invoke(main, ["chain", "--snapshot", str(recording)])
    assert replay.exit_code == exit_code, f"{shown}\n--- replay ---\n{replay.output}"
    assert _CHAIN_PASS in replay.output, f"{shown}\n--- replay ---\n{replay.output}"
