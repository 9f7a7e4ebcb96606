"""The use-case layer: one pass through the registry for every verdict, grade and finding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pluggy
import pytest

from streampay_incident import hookimpl, usecases
from streampay_incident.hookspecs import FIND_SETTLEMENT
from streampay_incident.model import (
    NATIVE,
    ChainTransaction,
    CoverageWindow,
    EscrowObservation,
    Payout,
    PayoutPolicy,
    Settlement,
    SettlementContext,
    SettlementTriage,
    SettlementVerdict,
    make_finding,
)
from streampay_incident.observations import SettlementChainObservations
from streampay_incident.probes import ChainObservations
from streampay_incident.registry import _accepts, _raised_by, first_answer, get_plugin_manager
from streampay_incident.stellar.networks import PUBLIC

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
ESCROW = "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"
H1 = "a1" * 32


def stuck(settlement_id: str = "stl-1") -> Settlement:
    return Settlement(
        settlement_id,
        "processing",
        NOW - timedelta(hours=2),
        tx_hash=H1,
        tx_max_time=NOW - timedelta(minutes=10),
    )


def triage(pm: pluggy.PluginManager, chain: usecases.SettlementChain | None = None) -> Any:
    return usecases.triage_settlements(
        [stuck()],
        chain=chain or usecases.SettlementChain(),
        now=NOW,
        pm=pm,
        inputs={"settlements": "test"},
    )


class Seen:
    """Settlement checks written against the old and the new signature, recording their calls."""

    def __init__(self) -> None:
        self.calls: dict[str, dict[str, Any]] = {}

    @hookimpl
    def streampay_incident_register_settlement_checks(self) -> list[Any]:
        def old(settlements: Any, *, transactions: Any, now: Any, policy: Any) -> list[Any]:
            self.calls["old"] = {"transactions": transactions}
            return []

        def new(
            settlements: Any, *, transactions: Any, now: Any, policy: Any, context: Any
        ) -> list[Any]:
            self.calls["new"] = {"context": context}
            return []

        def loose(settlements: Any, **kwargs: Any) -> list[Any]:
            self.calls["loose"] = kwargs
            return []

        return [old, new, loose]


def test_context_goes_only_to_checks_that_take_it(streampay_incident_plugin: Any) -> None:
    seen = Seen()
    pm = streampay_incident_plugin(seen, name="seen")
    context = SettlementContext(chain_status="warn", latest_ledger_close_time=NOW)
    report = triage(pm, usecases.SettlementChain(context=context))
    assert seen.calls["new"]["context"] is context
    assert seen.calls["loose"]["context"] is context
    assert set(seen.calls["old"]) == {"transactions"}
    # The built-in rules' verdicts are the report's, from the same single pass.
    assert [v.retry_reason for v in report.settlements] == ["tx_expired"]
    assert [f.code for f in report.findings] == ["SETTLEMENT_STUCK_UNCONFIRMED"]


def test_a_chain_outage_in_the_context_blocks_the_retry() -> None:
    pm = get_plugin_manager(load_entry_points=False)
    healthy = triage(pm, usecases.settlement_chain(latest_ledger_close_time=NOW))
    assert [v.retry_reason for v in healthy.settlements] == ["tx_expired"]
    chain = usecases.settlement_chain(chain_status="fail", latest_ledger_close_time=NOW)
    report = triage(pm, chain)
    assert [v.retry_reason for v in report.settlements] == ["chain_unhealthy"]
    blocked = [f for f in report.findings if f.code == "SETTLEMENT_CHAIN_BLOCKED"]
    assert blocked[0].evidence["retry_reason_when_healthy"] == "tx_expired"


class SecondOpinion:
    @hookimpl
    def streampay_incident_register_settlement_checks(self) -> list[Any]:
        def verdicts(settlements: Any, **kwargs: Any) -> SettlementTriage:
            finding = make_finding("SETTLEMENT_DEAD_LETTERED", settlements[0].settlement_id, "x")
            verdict = SettlementVerdict(settlements[0].settlement_id, "stuck", True, "tx_failed")
            return SettlementTriage(verdicts=(verdict,), findings=(finding,))

        return [verdicts]


def test_the_first_triage_gives_the_verdicts_later_ones_add_findings(
    streampay_incident_plugin: Any,
) -> None:
    pm = streampay_incident_plugin(SecondOpinion(), name="second")
    report = triage(pm)
    assert [v.retry_reason for v in report.settlements] == ["no_ledger_after_max_time"]
    assert sorted(f.code for f in report.findings) == [
        "SETTLEMENT_DEAD_LETTERED",
        "SETTLEMENT_STUCK_UNCONFIRMED",
    ]


def test_without_the_builtin_rules_there_are_no_verdicts() -> None:
    pm = get_plugin_manager(load_entry_points=False)
    pm.unregister(name="streampay_incident.checks.settlements")
    report = triage(pm)
    assert report.settlements == () and report.findings == ()


class RaisingClassifier:
    @hookimpl
    def streampay_incident_register_settlement_checks(self) -> list[Any]:
        def broken(settlements: Any, **kwargs: Any) -> SettlementTriage:
            raise RuntimeError("classifier down")

        return [broken]


def test_a_raising_settlement_check_is_a_plugin_error(streampay_incident_plugin: Any) -> None:
    pm = streampay_incident_plugin(RaisingClassifier(), name="raising-classifier")
    report = triage(pm)
    errors = [f for f in report.findings if f.code == "PLUGIN_ERROR"]
    assert [f.subject for f in errors] == ["raising-classifier"]
    assert len(report.settlements) == 1


class FlagEveryRound:
    @hookimpl
    def streampay_incident_register_chain_checks(self) -> list[Any]:
        def flag(observations: Any, *, now: Any, **kwargs: Any) -> list[Any]:
            return [make_finding("CHAIN_ENDPOINT_ERROR", "https://rpc.example", "plugin says no")]

        return [flag]


def test_a_live_settlement_lookup_grades_the_chain_through_the_plugins(
    streampay_incident_plugin: Any,
) -> None:
    live = SettlementChainObservations(chain=ChainObservations(()), transactions=(), sequences=())
    plain = get_plugin_manager(load_entry_points=False)
    graded = usecases.settlement_chain(live=live, network_passphrase=PUBLIC, now=NOW, pm=plain)
    assert graded.context.chain_status == "pass"
    assert graded.inputs == {
        "horizon": [],
        "rpc": [],
        "chain_status": "pass",
        "live_transaction_records": 0,
        "live_lookups_asked": 0,
        "endpoints": [],
    }
    pm = streampay_incident_plugin(FlagEveryRound(), name="flag")
    graded = usecases.settlement_chain(live=live, network_passphrase=PUBLIC, now=NOW, pm=pm)
    assert graded.context.chain_status == "warn"
    assert graded.context.account_sequences == {}


class RaisingEscrowCheck:
    @hookimpl
    def streampay_incident_register_escrow_checks(self) -> list[Any]:
        def broken(payouts: Any, chain_payments: Any, *, escrow: str, window: Any) -> list[Any]:
            raise ValueError("ledger db down")

        return [broken]


def test_escrow_reconciliation_is_a_plugin_and_a_failure_is_a_finding(
    streampay_incident_plugin: Any,
) -> None:
    pm = streampay_incident_plugin(RaisingEscrowCheck(), name="raising-escrow")
    payout = Payout(
        "p-1", "s-1", ESCROW, NATIVE, 10_000_000, "confirmed", NOW - timedelta(minutes=1)
    )
    chain = EscrowObservation(
        escrow=ESCROW, source="file.json", payments=(), window=CoverageWindow(since=NOW)
    )
    report = usecases.triage_payouts(
        [payout],
        policy=PayoutPolicy(),
        now=NOW,
        pm=pm,
        inputs={"payouts": "test"},
        escrow=chain,
    )
    assert [f.subject for f in report.findings if f.code == "PLUGIN_ERROR"] == ["raising-escrow"]
    assert list(report.inputs)[:2] == ["payouts", "escrow"]
    assert report.inputs["chain_payments"] == 0


# --- firstresult lookups -------------------------------------------------------------------


class Lookup:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    @hookimpl
    def streampay_incident_find_settlement(self, settlement_id: str) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    "answer",
    [
        {"settlement_id": "s1"},
        (Settlement("s1", "pending", NOW), "not a transaction"),
    ],
)
def test_a_lookup_that_lies_names_the_plugin(answer: Any) -> None:
    pm = get_plugin_manager(load_entry_points=False)
    pm.register(Lookup(answer), name="host")
    settlement, transaction, error = usecases.find_settlement(pm, "s1")
    assert settlement is None and transaction is None
    assert error is not None and error.subject == "host"


def test_a_lookup_pair_and_a_raising_lookup() -> None:
    pm = get_plugin_manager(load_entry_points=False)
    tx = ChainTransaction(H1, "success")
    pm.register(Lookup((Settlement("s1", "dead", NOW), tx)), name="pair")
    settlement, transaction, error = usecases.find_settlement(pm, "s1")
    assert settlement is not None and transaction is tx and error is None
    pm.register(Lookup(RuntimeError("db down")), name="raising")  # called first: newest
    settlement, _, error = usecases.find_settlement(pm, "s1")
    assert settlement is None and error is not None and error.subject == "raising"


def test_a_wrapper_that_lies_is_blamed_on_the_hook() -> None:
    pm = get_plugin_manager(load_entry_points=False)

    class Liar:
        @pluggy.HookimplMarker("streampay_incident")(wrapper=True)
        def streampay_incident_find_settlement(self, settlement_id: str) -> Any:
            yield
            return "junk"

    pm.register(Liar(), name="liar")
    answer, error = first_answer(pm, FIND_SETTLEMENT, lambda a: False, settlement_id="x")
    assert answer is None and error is not None and error.subject == FIND_SETTLEMENT


def test_an_exception_from_nowhere_names_no_plugin() -> None:
    pm = get_plugin_manager(load_entry_points=False)
    assert _raised_by(pm, [], RuntimeError("no traceback")) is None


def test_a_check_without_a_signature_gets_only_the_documented_keywords() -> None:
    assert _accepts(max, "context") is False
    assert _accepts(lambda s, *, context: None, "context") is True
    assert _accepts(lambda context, /: None, "context") is False


def test_builtin_escrow_reconciliation_is_registered_as_a_plugin() -> None:
    from streampay_incident.checks.escrow import (
        reconcile_escrow,
        streampay_incident_register_escrow_checks,
    )

    assert streampay_incident_register_escrow_checks() == [reconcile_escrow]


def test_the_public_grade_chain_runs_the_builtin_check_without_a_manager() -> None:
    from streampay_incident import grade_chain

    grade = grade_chain(ChainObservations(()), now=NOW, expected_network=PUBLIC)
    assert grade.status == "pass" and grade.findings == ()


def test_a_given_close_time_wins_over_the_live_one() -> None:
    live = SettlementChainObservations(chain=ChainObservations(()), transactions=(), sequences=())
    pm = get_plugin_manager(load_entry_points=False)
    chain = usecases.settlement_chain(
        latest_ledger_close_time=NOW, live=live, network_passphrase=PUBLIC, now=NOW, pm=pm
    )
    assert chain.context.latest_ledger_close_time == NOW


def test_a_muxed_id_outside_uint64_is_a_record_problem() -> None:
    from streampay_incident.io.payment_records import RecordProblem, _muxed

    with pytest.raises(RecordProblem, match="64-bit"):
        _muxed(ESCROW, 1 << 64)
