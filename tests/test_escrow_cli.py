"""The escrow options: usage rules, file and live sources, what lands in the report."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from conftest import FIXTURES, load_fixture
from loopback import LoopbackServer, fixture_reply, json_reply
from streampay_incident.cli import escrow as escrow_cli
from streampay_incident.cli.common import emit, handle_input_errors, output_options, utc_now
from streampay_incident.cli.escrow import EscrowRequest, escrow_findings, escrow_options
from streampay_incident.model import Asset, Payout, Report

ESCROW = "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"
CONTRACT = "CBXVVJ5BOTUVRPXUY54LXFILWC4ZTJWRP2GIVHBMOEAOPHSLGHBG3NNP"
USD = Asset("USD", "GDUKMGUGDZQK6YHYA5Z6AY2G4XDSZPSZ3SW5UN3ARVMO6QSRDWP5YLEX")
USD_TX = "b9d7c534b5fa168570a5bffe0f2089de150d00bf8cbd19ec93e897c565958f3f"
ACCOUNT_PAGE = str(FIXTURES / "horizon/account_payments_pubnet_docs.json")
EVENTS = str(FIXTURES / "rpc/getEvents_docs.json")


def usd_row(**changes: Any) -> Payout:
    values: dict[str, Any] = {
        "payout_id": "p-usd",
        "settlement_id": "s-usd",
        "destination": "GASWJWFRYE55KC7MGANZMMRBK5NPXT3HMPDQ6SEXZN6ZPWYXVVYBFRTE",
        "asset": USD,
        "amount": 84_9410878,
        "status": "confirmed",
        "created_at": datetime(2020, 1, 17, 20, 32, 30, tzinfo=UTC),
        "tx_hash": USD_TX,
    }
    values.update(changes)
    return Payout(**values)


ROWS: list[Payout] = []


@click.command()
@escrow_options
@output_options
@handle_input_errors
def reconcile_cmd(fmt: str, fail_on: str, **options: Any) -> None:
    """A stand-in for the payouts command: the escrow options over ROWS."""
    request = EscrowRequest.from_options(options)
    findings, inputs = escrow_findings(ROWS, request) if request else ([], {})
    emit(Report("payouts", tuple(findings), utc_now(), inputs=inputs), fmt, fail_on)


def run(*args: str, rows: list[Payout] | None = None) -> Any:
    ROWS[:] = rows if rows is not None else [usd_row()]
    return CliRunner().invoke(reconcile_cmd, [*args, "--format", "json"])


def codes(result: Any) -> list[str]:
    return [f["code"] for f in json.loads(result.output)["findings"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--escrow", ESCROW], "--escrow needs a chain source"),
        (["--horizon", "http://127.0.0.1:9"], "need --escrow"),
        (["--chain-payments", ACCOUNT_PAGE], "need --escrow"),
        (["--since", "2020-01-01T00:00:00Z"], "--since needs --escrow"),
        (["--cursor-file", "x"], "--cursor-file needs --escrow"),
        (
            ["--escrow", ESCROW, "--horizon", "http://h", "--chain-payments", ACCOUNT_PAGE],
            "one of --chain-payments",
        ),
        (["--escrow", CONTRACT, "--horizon", "http://h"], "--horizon reads a G... escrow"),
        (
            ["--escrow", ESCROW, "--chain-payments", ACCOUNT_PAGE, "--cursor-file", "c"],
            "--cursor-file goes with",
        ),
        (
            [
                "--escrow",
                ESCROW,
                "--chain-payments",
                ACCOUNT_PAGE,
                "--since",
                "2021-01-01T00:00:00Z",
                "--until",
                "2020-01-01T00:00:00Z",
            ],
            "--since is after --until",
        ),
        (["--escrow", "GABC", "--chain-payments", ACCOUNT_PAGE], "not a valid G... account"),
        (
            ["--escrow", ESCROW, "--chain-payments", ACCOUNT_PAGE, "--since", "yesterday"],
            "RFC 3339",
        ),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_seed_given_as_escrow_is_refused_without_echo() -> None:
    from stellar_sdk import Keypair

    seed = Keypair.random().secret
    result = run("--escrow", seed, "--chain-payments", ACCOUNT_PAGE)
    assert result.exit_code == 2
    assert "secret seed" in result.output and seed not in result.output


def test_no_escrow_options_changes_nothing() -> None:
    result = run()
    assert result.exit_code == 0 and codes(result) == []


def test_recorded_horizon_page_matches_the_payout() -> None:
    result = run("--escrow", ESCROW, "--chain-payments", ACCOUNT_PAGE)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["status"] == "pass"
    inputs = doc["inputs"]
    assert inputs["escrow"] == ESCROW and inputs["chain_payments"] == 10
    assert inputs["chain_source"] == ACCOUNT_PAGE
    assert inputs["escrow_window"] == "2019-09-11T13:16:44Z .. 2021-03-20T13:42:07Z"
    assert "no --since" in inputs["escrow_window_note"]
    assert inputs["escrow_window_complete"] is True


def test_unrecorded_outflow_fails_the_report() -> None:
    result = run("--escrow", ESCROW, "--chain-payments", ACCOUNT_PAGE, rows=[])
    assert result.exit_code == 1
    (finding,) = json.loads(result.output)["findings"]
    assert finding["code"] == "ESCROW_UNRECORDED_OUTFLOW" and finding["subject"] == USD_TX
    assert finding["runbook"].endswith("double-payout.md#escrow-unrecorded-outflow")


def test_amount_mismatch_and_rows_outside_the_window() -> None:
    rows = [
        usd_row(amount=849_4108780),
        usd_row(payout_id="old", tx_hash="ab" * 32, created_at=datetime(2018, 1, 1, tzinfo=UTC)),
    ]
    result = run(
        "--escrow", ESCROW, "--chain-payments", ACCOUNT_PAGE,
        "--since", "2019-01-01T00:00:00Z", "--until", "2022-01-01T00:00:00Z",
        rows=rows,
    )  # fmt: skip
    assert result.exit_code == 1
    assert codes(result) == ["ESCROW_AMOUNT_MISMATCH", "ESCROW_OUTSIDE_WINDOW"]
    assert json.loads(result.output)["inputs"]["escrow_window"] == (
        "2019-01-01T00:00:00Z .. 2022-01-01T00:00:00Z"
    )


def test_rpc_events_file_narrows_to_the_retention_window() -> None:
    row = usd_row(asset=Asset("XLM"), created_at=datetime(2026, 1, 1, tzinfo=UTC))
    result = run(
        "--escrow", CONTRACT, "--chain-payments", EVENTS, "--since", "2026-01-01T00:00:00Z",
        rows=[row],
    )  # fmt: skip
    doc = json.loads(result.output)
    assert [f["code"] for f in doc["findings"]] == [
        "ESCROW_UNRECORDED_OUTFLOW",
        "ESCROW_COVERAGE_INCOMPLETE",
        "ESCROW_OUTSIDE_WINDOW",
    ]
    assert doc["inputs"]["escrow_window_complete"] is False
    assert "retention window" in doc["inputs"]["escrow_window_note"]
    assert doc["inputs"]["escrow_window"].endswith("2026-07-21T22:11:26Z")


def test_empty_chain_file_without_bounds(tmp_path: Path) -> None:
    path = tmp_path / "none.json"
    path.write_text("[]")
    result = run("--escrow", ESCROW, "--chain-payments", str(path))
    doc = json.loads(result.output)
    assert [f["code"] for f in doc["findings"]] == ["ESCROW_RECORD_NOT_ON_CHAIN"]
    assert "holds no payments" in doc["inputs"]["escrow_window_note"]
    assert doc["inputs"]["escrow_window"] == "start .. latest"


def test_bad_chain_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"type": "payment", "transaction_hash": "nope"}]))
    result = CliRunner().invoke(reconcile_cmd, ["--escrow", ESCROW, "--chain-payments", str(path)])
    assert result.exit_code == 2
    assert "transaction_hash" in result.output and "Traceback" not in result.output


def horizon_server(records: list[dict[str, Any]]) -> LoopbackServer:
    page = copy.deepcopy(load_fixture("horizon/account_payments_pubnet_docs.json"))
    page["_embedded"]["records"] = records
    empty = copy.deepcopy(page)
    empty["_embedded"]["records"] = []
    return LoopbackServer(
        {
            "GET /": fixture_reply(
                "horizon/root_pubnet_2024-12.json", overrides={"history_elder_ledger": 1}
            ),
            f"GET /accounts/{ESCROW}/payments": [json_reply(page), json_reply(empty)],
            "GET /ledgers/*": fixture_reply("horizon/problems/404_not_found_py.json", 404),
        }
    )


def test_live_horizon_with_cursor_file(tmp_path: Path) -> None:
    records = load_fixture("horizon/account_payments_pubnet_docs.json")["_embedded"]["records"]
    cursor = tmp_path / "escrow.cursor"
    with horizon_server(records) as server:
        result = run(
            "--escrow", ESCROW, "--horizon", server.url, "--cursor-file", str(cursor),
            "--timeout", "2",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["inputs"]["chain_payments"] == 10
    assert doc["inputs"]["escrow_window"] == "start .. 2024-12-15T11:39:19Z"
    assert cursor.read_text().count('"record"') == 10


def test_live_endpoint_failure_is_a_finding() -> None:
    from loopback import RefusingEndpoint

    with RefusingEndpoint() as endpoint:
        result = run("--escrow", ESCROW, "--horizon", endpoint.url, "--timeout", "1")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert "CHAIN_ENDPOINT_UNREACHABLE" in [f["code"] for f in doc["findings"]]
    assert doc["inputs"]["escrow_window_complete"] is False


def test_refused_port_calls_no_confirmed_row_missing() -> None:
    """Issue 9 §6: ten confirmed rows against a refused port were ten false criticals."""
    from loopback import RefusingEndpoint

    rows = [usd_row(payout_id=f"p{i}", tx_hash=f"{i:064x}") for i in range(10)]
    with RefusingEndpoint() as endpoint:
        result = run(
            "--escrow", ESCROW, "--horizon", endpoint.url, "--timeout", "1", rows=rows
        )  # fmt: skip
    doc = json.loads(result.output)
    assert codes(result) == ["CHAIN_ENDPOINT_UNREACHABLE", "ESCROW_COVERAGE_INCOMPLETE"]
    incomplete = doc["findings"][1]
    assert incomplete["severity"] == "warning"
    assert incomplete["evidence"]["rows_not_checked"] == 10
    assert incomplete["evidence"]["endpoint"] == endpoint.url
    assert "refused" in incomplete["evidence"]["error"]
    assert endpoint.url in incomplete["summary"] and "refused" in incomplete["summary"]


def test_progress_line_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Terminal())
    with escrow_cli._progress_line() as update:
        update(1, 3, datetime(2020, 1, 1, tzinfo=UTC))
        update(2, 5, None)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    with escrow_cli._progress_line() as update:
        update(1, 1, None)


def test_rpc_events_file_without_since_starts_at_the_retention_window() -> None:
    result = run("--escrow", CONTRACT, "--chain-payments", EVENTS, rows=[])
    doc = json.loads(result.output)
    assert doc["inputs"]["escrow_window"] == "2026-07-14T21:54:16Z .. 2026-07-21T22:11:26Z"
    assert doc["inputs"]["escrow_window_complete"] is True
    assert [f["code"] for f in doc["findings"]] == ["ESCROW_UNRECORDED_OUTFLOW"]


# --- through the real payouts command ------------------------------------------------------

PAYOUT_HEADER = "payout_id,settlement_id,destination,asset,amount,status,tx_hash,created_at\n"
USD_CSV_ROW = (
    f"p-usd,s-usd,GASWJWFRYE55KC7MGANZMMRBK5NPXT3HMPDQ6SEXZN6ZPWYXVVYBFRTE,"
    f"USD:{USD.issuer},84.9410878,confirmed,{USD_TX.upper()},2020-01-17T20:32:30Z\n"
)


def payouts_cli(tmp_path: Path, rows: str, *args: str) -> Any:
    from streampay_incident.cli import main

    path = tmp_path / "payouts.csv"
    path.write_text(PAYOUT_HEADER + rows)
    return CliRunner().invoke(main, ["payouts", str(path), *args])


def test_payouts_command_reconciles_a_matching_export(tmp_path: Path) -> None:
    result = payouts_cli(
        tmp_path, USD_CSV_ROW, "--escrow", ESCROW, "--chain-payments", ACCOUNT_PAGE,
        "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["status"] == "pass" and doc["findings"] == []
    assert doc["inputs"]["records"] == 1 and doc["inputs"]["escrow"] == ESCROW
    assert doc["inputs"]["chain_payments"] == 10


def test_payouts_command_reports_escrow_findings(tmp_path: Path) -> None:
    other = USD_CSV_ROW.replace("p-usd,s-usd", "p-2,s-2").replace(USD_TX.upper(), "ab" * 32)
    result = payouts_cli(
        tmp_path, other, "--escrow", ESCROW, "--chain-payments", ACCOUNT_PAGE,
        "--since", "2019-01-01T00:00:00Z", "--until", "2021-12-31T00:00:00Z",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "ESCROW_UNRECORDED_OUTFLOW" in result.output
    assert "ESCROW_RECORD_NOT_ON_CHAIN" in result.output
    assert "docs/runbooks/double-payout.md#escrow-record-not-on-chain" in result.output
    assert "escrow_window: 2019-01-01T00:00:00Z .. 2021-12-31T00:00:00Z" in result.output
    markdown = payouts_cli(
        tmp_path, other, "--escrow", ESCROW, "--chain-payments", ACCOUNT_PAGE,
        "--format", "markdown", "--fail-on", "critical",
    )  # fmt: skip
    assert markdown.exit_code == 1 and "`ESCROW_UNRECORDED_OUTFLOW`" in markdown.output


def test_payouts_command_escrow_usage_errors(tmp_path: Path) -> None:
    alone = payouts_cli(tmp_path, USD_CSV_ROW, "--escrow", ESCROW)
    assert alone.exit_code == 2 and "--escrow needs a chain source" in alone.output
    no_escrow = payouts_cli(tmp_path, USD_CSV_ROW, "--chain-payments", ACCOUNT_PAGE)
    assert no_escrow.exit_code == 2 and '"findings"' not in no_escrow.output


def test_payouts_command_live_horizon(tmp_path: Path) -> None:
    records = load_fixture("horizon/account_payments_pubnet_docs.json")["_embedded"]["records"]
    with horizon_server(records) as server:
        result = payouts_cli(
            tmp_path, USD_CSV_ROW, "--escrow", ESCROW, "--horizon", server.url,
            "--format", "json", "--timeout", "2",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["inputs"]["chain_source"] == server.url


def test_chain_timeout_is_a_deprecated_alias_of_timeout() -> None:
    from loopback import RefusingEndpoint

    with RefusingEndpoint() as endpoint:
        result = run("--escrow", ESCROW, "--horizon", endpoint.url, "--chain-timeout", "1")
    assert result.exit_code == 1
    assert "'chain_timeout' is deprecated. use --timeout" in result.stderr
    doc = json.loads(result.stdout)
    assert "CHAIN_ENDPOINT_UNREACHABLE" in [f["code"] for f in doc["findings"]]


def test_the_timeout_defaults_to_one_budget_for_the_run() -> None:
    options = {"escrow": ESCROW, "horizon": "https://h.example"}
    default = EscrowRequest.from_options(options)
    assert default is not None and default.timeout == escrow_cli.DEFAULT_TIMEOUT
    both = EscrowRequest.from_options({**options, "timeout": 3.0, "chain_timeout": 9.0})
    assert both is not None and both.timeout == 3.0
