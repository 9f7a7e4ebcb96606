"""Escrow reconciliation on the DuckDB engine (``engines/escrow_sql.py``) against the reference.

DuckDB selects in SQL the payout rows the reconciliation can read; the pure
reference pairs them. The differential property below holds the narrowed rows
to every row on random exports and random chain payments (fee bumps, failed
transactions, muxed destinations and memo ids, path payments, merges of
unknown amount, rows and payments outside the window, incomplete coverage):
the findings, the fee-bump hashes the live path would resolve and the
classic-event coverage are the same. The CLI tests compare whole reports of
``--engine duckdb`` and ``--engine python``, with a file and with live
endpoints on 127.0.0.1.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engines_support import spell_time
from loopback import LoopbackServer, RefusingEndpoint, fixture_reply, horizon_routes
from streampay_incident.amounts import format_stroops
from streampay_incident.checks.coverage import classic_events_missing
from streampay_incident.checks.escrow import reconcile_escrow
from streampay_incident.checks.fee_bumps import hashes_to_resolve
from streampay_incident.cli import main
from streampay_incident.engines import escrow_sql
from streampay_incident.engines.duckdb_engine import run_duckdb
from streampay_incident.io.payouts import FIELDS, read_payouts
from streampay_incident.model import NATIVE, ChainPayment, CoverageWindow, PayoutPolicy
from test_escrow_check import ALICE, BOB, CAROL, ESCROW, EURT, T0, USD, h, muxed

DESTINATIONS = [ALICE, BOB, CAROL, muxed(ALICE, 7), muxed(ALICE, 8), muxed(BOB, 7)]
ASSETS = [NATIVE, USD, EURT]
AMOUNTS = [1, 7, 10_0000000, 25_0000000]
HASHES = [h(n) for n in range(1, 7)]
# Either side of the windows below, and on their edges.
OFFSETS = [timedelta(hours=n) for n in (-2, -1, 0, 1, 2)] + [timedelta(seconds=-3601)]
MEMOS = [("", ""), ("id", "7"), ("id", "0008"), ("text", "inv-7")]
STATUSES = ["pending", "submitted", "confirmed", "failed"]


@st.composite
def payout_rows(draw: st.DrawFn) -> list[dict[str, str]]:
    """Export rows (cells as text) sharing hashes, destinations and amounts with the chain."""
    rows = []
    for i in range(draw(st.integers(1, 14))):
        asset = draw(st.sampled_from(ASSETS))
        tx_hash = draw(st.sampled_from(["", *HASHES, h(99)]))
        if draw(st.booleans()):
            tx_hash = tx_hash.upper()
        memo_type, memo = draw(st.sampled_from(MEMOS))
        moment = T0 + draw(st.sampled_from(OFFSETS)) + timedelta(seconds=draw(st.integers(0, 3)))
        rows.append(
            {
                "payout_id": f"p{i}",
                "settlement_id": f"s{draw(st.integers(0, 3))}",
                "destination": draw(st.sampled_from(DESTINATIONS[:4])),
                "asset": ("XLM" if draw(st.booleans()) else "native")
                if asset.is_native
                else f"{asset.code}:{asset.issuer}",
                "amount": format_stroops(draw(st.sampled_from(AMOUNTS))),
                "status": draw(st.sampled_from(STATUSES)),
                "created_at": spell_time(moment, draw(st.integers(0, 4))),
                "tx_hash": tx_hash,
                "memo_type": memo_type,
                "memo": memo,
                "idempotency_key": "",
                "ledger": "",
            }
        )
    return rows


@st.composite
def chain_payments(draw: st.DrawFn) -> list[ChainPayment]:
    """Payments in and out of the escrow: fee bumps, failures, merges, path payments."""
    payments = []
    for i in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(["payment", "path_payment_strict_send", "account_merge"]))
        outer = draw(st.sampled_from(HASHES))
        inner = draw(st.sampled_from([None, *HASHES, h(50 + i)]))
        source = draw(st.sampled_from([ESCROW, ESCROW, muxed(ESCROW, 1), BOB]))
        closed = draw(st.sampled_from([None, *OFFSETS]))
        amount = None if kind == "account_merge" else draw(st.sampled_from(AMOUNTS))
        payments.append(
            ChainPayment(
                tx_hash=outer.upper() if draw(st.booleans()) else outer,
                successful=draw(st.sampled_from([True, True, False])),
                from_account=source,
                to_account=draw(st.sampled_from([*DESTINATIONS, ESCROW])),
                asset=draw(st.sampled_from(ASSETS)),
                amount=amount,
                kind=kind,  # type: ignore[arg-type]
                hashes=(outer, inner) if inner else (),
                closed_at=None if closed is None else T0 + closed,
                operation_id=str(i),
                source_amount=amount * 2 if amount and kind.startswith("path") else None,
            )
        )
    return payments


@st.composite
def windows(draw: st.DrawFn) -> CoverageWindow:
    failed = draw(st.booleans())
    return CoverageWindow(
        since=draw(st.sampled_from([None, T0 - timedelta(hours=1)])),
        until=draw(st.sampled_from([None, T0 + timedelta(hours=1)])),
        complete=not failed and draw(st.booleans()),
        note=draw(st.sampled_from(["", "paging stopped"])),
        failed_endpoint="http://127.0.0.1:9" if failed else None,
        failure="connection refused" if failed else None,
    )


def write_csv(rows: list[dict[str, str]], path: Path) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(FIELDS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _key(findings: list[Any]) -> list[tuple[Any, ...]]:
    return [(f.code, f.severity, f.subject, f.summary, f.evidence) for f in findings]


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payout_rows(), chain_payments(), st.lists(windows(), min_size=1, max_size=3))
def test_narrowed_rows_give_the_reference_findings(
    tmp_path: Path,
    rows: list[dict[str, str]],
    payments: list[ChainPayment],
    windows_: list[CoverageWindow],
) -> None:
    path = write_csv(rows, tmp_path / "payouts.csv")
    every_row = read_payouts(path)
    compared: list[int] = []

    def compare(con: Any) -> None:
        rows_for = escrow_sql.Narrowing(con)
        for escrow in (ESCROW, BOB):
            narrowed = rows_for(payments, escrow)
            assert rows_for(payments, escrow) is narrowed  # asked again: the same rows
            for window in windows_:
                expected = reconcile_escrow(every_row, payments, escrow=escrow, window=window)
                got = reconcile_escrow(narrowed, payments, escrow=escrow, window=window)
                assert _key(got) == _key(expected)
                for listed in (payments, []):
                    assert classic_events_missing(
                        window, escrow=escrow, kind="rpc", payouts=narrowed, payments=listed
                    ) == classic_events_missing(
                        window, escrow=escrow, kind="rpc", payouts=every_row, payments=listed
                    )
            assert hashes_to_resolve(narrowed, payments, escrow) == hashes_to_resolve(
                every_row, payments, escrow
            )
            # Only rows that can matter come back (so the property above is not vacuous).
            assert len(narrowed) <= len(every_row)
            compared.append(len(narrowed))

    run_duckdb(path, source=str(path), policy=PayoutPolicy(), with_payouts=compare)
    assert len(compared) == 2


def test_rows_that_cannot_matter_stay_in_duckdb(tmp_path: Path) -> None:
    """Pending and failed rows whose hash no outflow has are not read back; one of them is
    (the witness the fee-bump resolution asks for), and every confirmed row is."""
    base = {
        "destination": ALICE,
        "asset": "native",
        "amount": "25",
        "created_at": spell_time(T0, 0),
    }
    rows = [
        {**base, "payout_id": "c1", "settlement_id": "s1", "status": "confirmed", "tx_hash": ""},
        {**base, "payout_id": "f1", "settlement_id": "s2", "status": "failed", "tx_hash": h(2)},
        {**base, "payout_id": "f2", "settlement_id": "s3", "status": "failed", "tx_hash": h(3)},
        {**base, "payout_id": "q1", "settlement_id": "s4", "status": "pending", "tx_hash": ""},
        {**base, "payout_id": "s1", "settlement_id": "s5", "status": "submitted",
         "tx_hash": h(1).upper()},
    ]  # fmt: skip
    paid = ChainPayment(h(1), True, ESCROW, ALICE, NATIVE, 25_0000000, "payment")
    path = write_csv([{f: r.get(f, "") for f in FIELDS} for r in rows], tmp_path / "p.csv")
    seen: dict[str, list[str]] = {}

    def narrow(con: Any) -> None:
        rows_for = escrow_sql.Narrowing(con)
        seen["paid"] = sorted(r.payout_id for r in rows_for([paid], ESCROW))
        seen["nothing"] = sorted(r.payout_id for r in rows_for([], ESCROW))

    run_duckdb(path, source="p.csv", policy=PayoutPolicy(), with_payouts=narrow)
    assert seen == {"paid": ["c1", "f1", "s1"], "nothing": ["c1", "f1"]}


# --- whole reports through the CLI ---------------------------------------------------------

DEMO = Path(__file__).parent.parent / "src" / "streampay_incident" / "demo_data"
NOW = ["--now", "2026-11-28T00:00:00Z", "--format", "json"]
ENV = {"STREAMPAY_INCIDENT_DISABLE_PLUGINS": "all"}


@pytest.fixture
def narrowings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The escrows DuckDB narrowed rows for (so a test knows the engine did the join)."""
    calls: list[str] = []
    real = escrow_sql.Narrowing.__call__

    def counted(self: Any, payments: Any, escrow: str) -> Any:
        calls.append(escrow)
        return real(self, payments, escrow)

    monkeypatch.setattr(escrow_sql.Narrowing, "__call__", counted)
    return calls


def both_engines(args: list[str], narrowings: list[str]) -> tuple[Any, Any]:
    """The reference's and DuckDB's results of ``payouts ARGS``; DuckDB must have joined."""
    python = CliRunner().invoke(main, ["payouts", *args, "--engine", "python"], env=ENV)
    assert narrowings == []
    duckdb = CliRunner().invoke(main, ["payouts", *args, "--engine", "duckdb"], env=ENV)
    assert narrowings, "DuckDB did not reconcile the escrow"
    return python, duckdb


@pytest.mark.parametrize(
    "window",
    [
        [],
        ["--since", "2019-01-01T00:00:00Z", "--until", "2020-06-01T00:00:00Z"],
        ["--since", "2020-01-17T00:00:00Z"],
    ],
)
def test_demo_escrow_reports_are_the_reference(window: list[str], narrowings: list[str]) -> None:
    escrow = "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"
    args = [str(DEMO / "payouts.csv"), "--escrow", escrow,
            "--chain-payments", str(DEMO / "chain-payments.json"), *window, *NOW]  # fmt: skip
    python, duckdb = both_engines(args, narrowings)
    assert python.exit_code == duckdb.exit_code == 1
    assert duckdb.stdout == python.stdout
    codes = [f["code"] for f in json.loads(duckdb.stdout)["findings"]]
    assert any(code.startswith("ESCROW_") for code in codes)
    # auto is DuckDB now that --escrow no longer needs the records.
    narrowings.clear()
    auto = CliRunner().invoke(main, ["payouts", *args], env=ENV)
    assert auto.stdout == python.stdout and narrowings


def _rpc_rows() -> list[dict[str, str]]:
    from test_escrow_classic_events import tx_of
    from test_submission_search import ACCOUNTS

    alice = ACCOUNTS["alice"]
    return [
        {"payout_id": "fb", "settlement_id": "s9", "destination": alice, "asset": "native",
         "amount": "25", "status": "confirmed", "created_at": "2026-11-27T02:05:30Z",
         "tx_hash": ACCOUNTS["fee_bump_inner_hash"]},
        {"payout_id": "p1", "settlement_id": "s1", "destination": alice, "asset": "native",
         "amount": "25", "status": "confirmed", "created_at": "2026-11-27T02:00:40Z",
         "tx_hash": tx_of(10), "memo_type": "id", "memo": "4242"},
        {"payout_id": "q1", "settlement_id": "s2", "destination": ACCOUNTS["bob"],
         "asset": "native", "amount": "3", "status": "pending",
         "created_at": "2026-11-27T02:01:00Z"},
    ]  # fmt: skip


@pytest.mark.parametrize("rpc", ["fee_bump", "silent"])
def test_live_rpc_reports_are_the_reference(
    rpc: str, tmp_path: Path, narrowings: list[str]
) -> None:
    """A fee-bump row naming the inner hash (resolved with getTransaction over the rows DuckDB
    selects), and an RPC without classic events (coverage from the confirmed rows)."""
    from test_escrow_classic_events import FEE_BUMP, payouts_csv
    from test_submission_search import ESCROW as G_ESCROW
    from test_submission_search import stand_in

    server = stand_in(transactions={FEE_BUMP["txHash"]: FEE_BUMP})
    if rpc == "silent":
        server.events = []
    with LoopbackServer(server.routes()) as endpoint:
        args = [payouts_csv(tmp_path, _rpc_rows()), "--escrow", G_ESCROW, "--rpc", endpoint.url,
                "--since", "2026-11-27T01:59:00Z", *NOW]  # fmt: skip
        python, duckdb = both_engines(args, narrowings)
    assert duckdb.stdout == python.stdout
    assert python.exit_code == duckdb.exit_code == 1  # a repeat payout, at least
    findings = json.loads(duckdb.stdout)["findings"]
    codes = {f["code"] for f in findings if f["code"].startswith("ESCROW_")}
    if rpc == "silent":
        assert codes == {"ESCROW_COVERAGE_INCOMPLETE"}
    else:
        assert "ESCROW_RECORD_NOT_ON_CHAIN" not in codes  # the inner hash was resolved


def test_horizon_fallback_report_is_the_reference(tmp_path: Path, narrowings: list[str]) -> None:
    from test_escrow_classic_events import payouts_csv
    from test_submission_search import ESCROW as G_ESCROW

    routes = horizon_routes()
    routes["GET /accounts/*/payments"] = fixture_reply("horizon/account_payments_pubnet_docs.json")
    with RefusingEndpoint() as refused, LoopbackServer(routes) as horizon:
        args = [payouts_csv(tmp_path, _rpc_rows()), "--escrow", G_ESCROW, "--rpc", refused.url,
                "--horizon", horizon.url, "--timeout", "2", *NOW]  # fmt: skip
        python, duckdb = both_engines(args, narrowings)
    assert duckdb.stdout == python.stdout and duckdb.exit_code == python.exit_code
    assert json.loads(duckdb.stdout)["inputs"]["chain_source"] == horizon.url


def test_an_export_duckdb_hands_back_is_reconciled_by_the_reference(tmp_path: Path) -> None:
    """A quoted header is the reference reader's: the escrow is reconciled there too."""
    text = (DEMO / "payouts.csv").read_text(encoding="utf-8")
    header, body = text.split("\n", 1)
    quoted = tmp_path / "quoted.csv"
    quoted.write_text(",".join(f'"{name}"' for name in header.split(",")) + "\n" + body)
    escrow = "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"
    chain = ["--escrow", escrow, "--chain-payments", str(DEMO / "chain-payments.json"), *NOW]
    runs = [
        CliRunner().invoke(main, ["payouts", str(quoted), *chain, "--engine", e], env=ENV)
        for e in ("python", "duckdb")
    ]
    assert runs[0].exit_code == runs[1].exit_code == 1
    assert runs[0].stdout == runs[1].stdout and "ESCROW_OUTSIDE_WINDOW" in runs[1].stdout


def test_bad_inputs_are_the_same_errors(tmp_path: Path) -> None:
    """A bad chain file is exit 2 naming it; a bad export too, and it is named first."""
    bad_chain = tmp_path / "chain.json"
    bad_chain.write_text('{"nothing": 1}')
    bad_export = tmp_path / "bad.csv"
    bad_export.write_text((DEMO / "payouts.csv").read_text().replace(",confirmed,", ",sent,", 1))
    escrow = "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"
    for export in (DEMO / "payouts.csv", bad_export):
        args = ["payouts", str(export), "--escrow", escrow, "--chain-payments", str(bad_chain)]
        runs = [
            CliRunner().invoke(main, [*args, "--engine", e], env=ENV) for e in ("python", "duckdb")
        ]
        assert runs[0].exit_code == runs[1].exit_code == 2
        assert runs[0].stderr == runs[1].stderr and runs[0].stdout == runs[1].stdout == ""
        assert ("bad.csv" if export == bad_export else "chain.json") in runs[1].stderr


def test_the_reading_bar_is_gone_before_the_chain_source_draws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a terminal, DuckDB's reading bar ends before the escrow's chain source (a live
    probe draws its own progress line) is read: one display at a time."""
    import contextlib
    from datetime import UTC, datetime

    from streampay_incident import engines
    from streampay_incident.model import Report

    events: list[str] = []
    real_bar = engines.progress_bar

    @contextlib.contextmanager
    def bar(path: Path) -> Any:
        events.append("bar")
        with real_bar(path) as progress:
            yield progress
        events.append("bar done")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Terminal())
    monkeypatch.setattr(engines, "PROGRESS_MIN_BYTES", 0)
    monkeypatch.setattr(engines, "progress_bar", bar)
    now = datetime(2026, 11, 28, tzinfo=UTC)

    def reconcile(rows_for: Any) -> Report:
        events.append("chain source")
        return Report(command="payouts", findings=(), generated_at=now, inputs={"escrow": "E"})

    report = engines.triage_payouts(
        DEMO / "payouts.csv", PayoutPolicy(), engine="duckdb", python=None,  # type: ignore[arg-type]
        now=now, escrow=reconcile,
    )  # fmt: skip
    assert events == ["bar", "bar done", "chain source"]
    assert report.inputs["escrow"] == "E" and report.inputs["records"] == 17
