"""Settlements judged a batch at a time and the report spooled to disk (issue 12).

The streamed report must be the in-memory report, byte for byte, whatever the batch
and run sizes; the settlements must be pulled a batch at a time (memory that does not
grow with rows); a bad row anywhere must leave stdout empty.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from streampay_incident import usecases
from streampay_incident.checks.overlays import check_envelope_network
from streampay_incident.cli import main
from streampay_incident.io.payouts import read_payouts
from streampay_incident.io.rows import seed_paths
from streampay_incident.io.settlements import read_settlements
from streampay_incident.io.transactions import read_transactions
from streampay_incident.model import (
    Finding,
    Report,
    Settlement,
    SettlementContext,
    SettlementVerdict,
    index_payouts,
    make_finding,
)
from streampay_incident.registry import get_plugin_manager, register_plugin
from streampay_incident.report import render, report_to_json
from streampay_incident.report_stream import SettlementSpool
from streampay_incident.stellar.networks import network_name, resolve_network

DEMO = Path(__file__).resolve().parents[1] / "src" / "streampay_incident" / "demo_data"
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
CLOSE = datetime(2026, 11, 27, 2, 59, 56, tzinfo=UTC)
DOCS = "https://docs.example/incident"
TESTNET = resolve_network("testnet")


def demo_settlements(copies: int = 3) -> list[Settlement]:
    """The demo's settlements, several times over under other ids (batches cut through them)."""
    base = read_settlements(DEMO / "settlements.jsonl", network_passphrase=TESTNET)
    return [
        attrs.evolve(s, settlement_id=f"{s.settlement_id}-{n}" if n else s.settlement_id)
        for n in range(copies)
        for s in base
    ]


def in_memory(settlements: list[Settlement], **kwargs: Any) -> Report:
    return usecases.triage_settlements(
        settlements, inputs={"settlements": "demo", "records": len(settlements)}, **kwargs
    )


def streamed(
    settlements: list[Settlement],
    fmt: str,
    *,
    docs_url: str | None = None,
    batch_size: int = 2000,
    findings_run: int = 20_000,
    **kwargs: Any,
) -> tuple[str, usecases.StreamedTriage, SettlementSpool]:
    with SettlementSpool(fmt, docs_url=docs_url, findings_run=findings_run) as spool:
        triage = usecases.stream_settlement_triage(
            iter(settlements),
            inputs={"settlements": "demo", "records": None},
            sink=spool,
            batch_size=batch_size,
            **kwargs,
        )
        out = io.StringIO()
        spool.write(triage.report, triage, out)
        return out.getvalue(), triage, spool


def demo_kwargs(*, payouts: bool = True) -> dict[str, Any]:
    chain = usecases.settlement_chain(
        read_transactions(DEMO / "transactions.json"), latest_ledger_close_time=CLOSE
    )
    return {
        "chain": chain,
        "now": NOW,
        "pm": get_plugin_manager(load_entry_points=False),
        "payouts": read_payouts(DEMO / "payouts.csv") if payouts else None,
    }


@pytest.mark.parametrize("fmt", ["json", "text", "markdown"])
@pytest.mark.parametrize("docs_url", [None, DOCS])
@pytest.mark.parametrize(("batch_size", "findings_run"), [(1, 1), (4, 3), (2000, 20_000)])
def test_the_streamed_report_is_the_in_memory_report(
    fmt: str, docs_url: str | None, batch_size: int, findings_run: int
) -> None:
    settlements = demo_settlements()
    kwargs = demo_kwargs()
    report = in_memory(settlements, **kwargs)
    expected = render(report, fmt, docs_url=docs_url)
    text, triage, _ = streamed(
        settlements,
        fmt,
        docs_url=docs_url,
        batch_size=batch_size,
        findings_run=findings_run,
        **kwargs,
    )
    assert text == expected
    assert triage.findings == len(report.findings)
    # Small runs: the findings went through several sorted runs on disk, then were merged.
    assert findings_run > len(report.findings) or triage.findings > 2 * findings_run


@pytest.mark.parametrize("fmt", ["json", "text", "markdown"])
def test_no_settlements_stream_the_empty_input_report(fmt: str) -> None:
    kwargs = demo_kwargs(payouts=False)
    expected = render(in_memory([], now_from_clock=True, **kwargs), fmt)
    text, triage, _ = streamed([], fmt, now_from_clock=True, **kwargs)
    assert text == expected
    assert triage.report.overall == "warn" and triage.findings == 1


def test_a_stale_export_note_and_the_record_count_come_at_the_end() -> None:
    settlements = demo_settlements(1)
    kwargs = {**demo_kwargs(), "now": NOW + timedelta(days=3)}
    expected = render(in_memory(settlements, now_from_clock=True, **kwargs), "json")
    text, triage, _ = streamed(settlements, "json", now_from_clock=True, **kwargs)
    assert text == expected
    doc = json.loads(text)
    assert doc["inputs"]["records"] == len(settlements) and doc["notes"]


def test_settlements_are_pulled_a_batch_at_a_time() -> None:
    """The use case holds one batch: a regression to "read them all first" fails here."""
    settlements = demo_settlements()  # 33
    pulled = 0

    def source() -> Iterator[Settlement]:
        nonlocal pulled
        for s in settlements:
            pulled += 1
            yield s

    seen: list[tuple[int, int]] = []

    class Sink:
        def add(self, verdicts: Any, findings: Any) -> None:
            seen.append((pulled, len(verdicts)))

    usecases.stream_settlement_triage(
        source(), inputs={}, sink=Sink(), batch_size=10, **demo_kwargs()
    )
    assert seen == [(10, 10), (20, 10), (30, 10), (33, 3)]


def test_the_spool_holds_at_most_one_run_of_findings_in_memory() -> None:
    findings = [make_finding("SETTLEMENT_TX_FAILED", f"s-{n:03}", "failed") for n in range(50)]
    with SettlementSpool("json", findings_run=7) as spool:
        for start in range(0, 50, 5):
            spool.add((), findings[start : start + 5])
            assert spool.findings_in_memory < 7


def _seed() -> str:
    return "S" + "A" * 55  # built here: no seed-shaped string in the repository


def test_the_spool_names_every_seed_as_the_whole_report_would() -> None:
    seed = _seed()
    verdicts = (
        SettlementVerdict("ok", "in_flight", False, "in_flight", action="wait"),
        SettlementVerdict(f"id {seed}", "in_flight", False, "in_flight", action="wait"),
    )
    findings = (
        make_finding("SETTLEMENT_TX_FAILED", "ok", "fine"),
        make_finding("SETTLEMENT_DEAD_LETTERED", "z", "dead", {"note": seed, seed: 1}),
    )
    whole = Report("settlements", findings, NOW, {"settlements": "x"}, settlements=verdicts)
    head = attrs.evolve(whole, findings=(), settlements=())

    @attrs.frozen
    class Counts:
        findings: int = 2
        severities: Any = attrs.field(factory=dict)
        actions: Any = attrs.field(factory=lambda: {"wait": 2})

    for fmt in ("json", "text", "markdown"):
        with SettlementSpool(fmt, findings_run=1) as spool:
            spool.add(verdicts, findings)
            severities = {f.severity: 1 for f in findings}
            spool.write(head, Counts(severities=severities), io.StringIO())
            paths = sorted({*seed_paths(report_to_json(head)), *spool.seed_paths})
        assert paths == seed_paths(report_to_json(whole))
        assert "settlements[1].settlement_id" in paths and "findings[0].evidence.<key>" in paths


def test_only_built_in_settlement_checks_stream() -> None:
    pm = get_plugin_manager(load_entry_points=False)
    assert usecases.streams_settlements(pm)

    class PayoutsOnly:
        from streampay_incident import hookimpl

        @hookimpl
        def streampay_incident_register_payout_checks(self) -> list[Any]:
            return []

    register_plugin(pm, PayoutsOnly(), name="payouts-only")
    assert usecases.streams_settlements(pm)

    class Compares:
        from streampay_incident import hookimpl

        @hookimpl
        def streampay_incident_register_settlement_checks(self) -> list[Any]:
            def check(settlements: Any, **_: Any) -> list[Finding]:
                return []

            return [check]

    register_plugin(pm, Compares(), name="compares")
    assert not usecases.streams_settlements(pm)


def test_the_envelope_network_check_adds_up_batch_by_batch() -> None:
    settlements = read_settlements(DEMO / "settlements.jsonl", network_passphrase=TESTNET)
    transactions = read_transactions(DEMO / "transactions.json")
    for network in ("public", "testnet"):
        whole = check_envelope_network(settlements, transactions=transactions, network=network)
        first = check_envelope_network(settlements[:4], transactions=transactions, network=network)
        rest = check_envelope_network(settlements[4:], transactions=transactions, network=network)
        assert first.plus(rest) == whole


def test_a_wrong_network_is_refused_after_the_last_batch() -> None:
    settlements = read_settlements(
        DEMO / "settlements.jsonl", network_passphrase=resolve_network("public")
    )
    kwargs = demo_kwargs()
    with pytest.raises(usecases.WrongNetworkError) as raised:
        streamed(
            settlements,
            "json",
            batch_size=2,
            network_passphrase=resolve_network("public"),
            **kwargs,
        )
    assert str(raised.value.problems[0]).startswith(
        f"--network {network_name(resolve_network('public'))}"
    )


def test_the_payouts_are_indexed_once_per_context() -> None:
    payouts = tuple(read_payouts(DEMO / "payouts.csv"))
    context = SettlementContext(payouts=payouts)
    assert context.payout_index is context.payout_index  # every batch gets the same index
    assert context.payout_index == index_payouts(payouts) == index_payouts(list(payouts))
    # Derived, never stale: another context (attrs.evolve included) indexes its own payouts.
    assert attrs.evolve(context, payouts=payouts[:1]).payout_index == index_payouts(payouts[:1])
    assert SettlementContext().payout_index is None


def test_a_bad_row_after_the_first_batch_gives_exit_2_and_no_report(tmp_path: Path) -> None:
    row = {"status": "pending", "created_at": "2026-11-27T02:50:00Z"}
    lines = [json.dumps({"settlement_id": f"s-{n}", **row}) for n in range(2500)]
    lines.append(json.dumps({"settlement_id": "s-bad", "status": "pending", "created_at": "x"}))
    export = tmp_path / "outbox.jsonl"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["settlements", str(export), "--now", "2026-11-27T03:00:00Z", "--format", "json"]
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{export}:2501" in result.stderr or "2501" in result.stderr


@pytest.mark.parametrize("fmt", ["json", "text", "markdown"])
def test_a_report_without_findings_streams_as_rendered(fmt: str) -> None:
    verdicts = (
        SettlementVerdict("stl-1", "settled", False, "tx_landed", action="none"),
        SettlementVerdict("stl-2", "in_flight", False, "in_flight", action="wait"),
    )
    whole = Report("settlements", (), NOW, {"settlements": "x"}, settlements=verdicts)

    @attrs.frozen
    class Counts:
        findings: int = 0
        severities: Any = attrs.field(factory=dict)
        actions: Any = attrs.field(
            factory=lambda: {"retry": 0, "do_not_retry": 0, "wait": 1, "investigate": 0}
        )

    with SettlementSpool(fmt) as spool:
        spool.add(verdicts, ())
        out = io.StringIO()
        spool.write(attrs.evolve(whole, settlements=()), Counts(), out)
    assert out.getvalue() == render(whole, fmt)


OUTBOX_ROW = {
    "id": "8d5e9a36-0f4e-4c55-9a51-0c1a3b4e2f10",
    "event_key": "settlement:stream-1:53000001",
    "status": "pending",
    "attempts": 0,
    "max_attempts": 8,
    "created_at": "2026-11-27 02:30:00",
    "payload": {},
}


def test_an_outbox_time_out_of_range_is_refused_as_the_generic_reader_refuses_it() -> None:
    from streampay_incident.errors import InputError
    from streampay_incident.io.rows import Row
    from streampay_incident.io.settlements import settlement_from_row
    from streampay_incident.io.streampay import OutboxReading, outbox_rows

    with pytest.raises(InputError) as raised:
        outbox_rows(
            [Row(1, {**OUTBOX_ROW, "created_at": "1969-12-31 23:00:00"})],
            source="o",
            reading=OutboxReading(),
            network_passphrase=None,
        )
    generic = {"settlement_id": "s", "status": "pending", "created_at": "1969-12-31T23:00:00Z"}
    _, problems = settlement_from_row(Row(1, generic), source="o", network_passphrase=None)
    assert [str(p) for p in raised.value.problems] == [str(p) for p in problems]


def test_after_a_bad_row_no_settlement_is_given_and_every_bad_row_is_named() -> None:
    from streampay_incident.errors import InputError
    from streampay_incident.io.rows import Row
    from streampay_incident.io.settlements import iter_settlements
    from streampay_incident.io.streampay import OutboxReading, iter_outbox_rows

    good = {"settlement_id": "s", "status": "pending", "created_at": "2026-11-27T02:30:00Z"}
    rows = [Row(1, good), Row(2, {**good, "status": "?"}), Row(3, good), Row(4, {})]
    generic = iter_settlements(rows, source="g", network_passphrase=None)
    assert next(generic).settlement_id == "s"
    with pytest.raises(InputError) as raised:
        next(generic)
    assert [p.line for p in raised.value.problems] == [2, 4, 4, 4]
    outbox_good = Row(1, OUTBOX_ROW)
    bad = Row(2, {**OUTBOX_ROW, "status": "?"})
    read = iter_outbox_rows(
        [outbox_good, bad, Row(3, OUTBOX_ROW)],
        source="o",
        reading=OutboxReading(),
        network_passphrase=None,
    )
    assert next(read).settlement.settlement_id == OUTBOX_ROW["id"]
    with pytest.raises(InputError) as raised:
        next(read)
    assert [p.line for p in raised.value.problems] == [2]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(
            st.text() | st.integers() | st.booleans() | st.none(), children, max_size=4
        )
    ),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_a_json_item_is_what_the_indenting_encoder_writes(value: Any) -> None:
    from streampay_incident.report import json_item

    doc = json.JSONEncoder(indent=2, ensure_ascii=False).encode({"findings": [value]})
    assert doc == '{\n  "findings": [\n    ' + json_item(value) + "\n  ]\n}"


def test_with_a_third_party_settlement_check_the_cli_holds_every_row_and_says_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The in-memory path (a plugin may compare settlements) gives the streamed report."""
    from streampay_incident import hookimpl
    from streampay_incident.cli import settlements as settlements_cli

    export = str(DEMO / "unhashed-settlements.jsonl")
    args = ["settlements", export, "--now", "2026-11-27T03:00:00Z"]
    streamed_run = CliRunner().invoke(main, [*args, "--format", "json"])
    calls: list[int] = []

    class Counts:
        @hookimpl
        def streampay_incident_register_settlement_checks(self) -> list[Any]:
            def check(settlements: Any, **_: Any) -> list[Finding]:
                calls.append(len(settlements))
                return []

            return [check]

    def with_plugin(*args: Any, **kwargs: Any) -> Any:
        pm = get_plugin_manager(load_entry_points=False)
        register_plugin(pm, Counts(), name="counts")
        return pm

    monkeypatch.setattr(settlements_cli, "get_plugin_manager", with_plugin)
    held = CliRunner().invoke(main, [*args, "--format", "json"])
    assert calls == [2]  # every settlement at once
    assert held.exit_code == streamed_run.exit_code == 1
    assert held.stdout == streamed_run.stdout
