"""Triage settlements: one classification pass through the registered settlement checks.

The shell gathers what the chain says (a transactions file, the web app's
health round, or a live lookup's observations); :func:`settlement_chain`
turns that into the transaction records and the typed
:class:`~streampay_incident.model.SettlementContext`, grading a live round
through the plugins; :func:`triage_settlements` runs every settlement check
once and returns the report with a verdict per settlement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from ..checks.chain import diagnose_chain, evidence_close_time
from ..checks.evidence import (
    endpoint_errors_line,
    endpoint_lookups,
    endpoints_on_other_network,
    settlement_chain_facts,
)
from ..checks.freshness import stale_export_note
from ..checks.inputs import input_empty
from ..checks.settlements import (
    EnvelopeNetworkCheck,
    check_envelope_network,
    index_transactions,
)
from ..errors import InputProblem, WrongNetworkError
from ..hookspecs import FIND_SETTLEMENT
from ..model import (
    ChainTransaction,
    Finding,
    Payout,
    Report,
    Settlement,
    SettlementContext,
    SettlementPolicy,
    Status,
)
from ..registry import first_answer, run_settlement_checks
from ..stellar.networks import network_name
from .chain import grade_observations

if TYPE_CHECKING:
    from ..observations import ChainObservations, SettlementChainObservations


@attrs.frozen
class SettlementChain:
    """What the chain says, ready for the settlement checks.

    ``transactions`` are the records (from a file, the host, a live lookup);
    ``context`` the grade, latest close time and account sequences; ``inputs``
    what the report says about a live lookup or a chain snapshot (empty
    otherwise); ``close_time_source`` where the latest ledger close time came
    from (``given``, ``chain snapshot <url>``, ``live lookup``), None without one.
    """

    transactions: tuple[ChainTransaction, ...] = ()
    context: SettlementContext = SettlementContext()
    inputs: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False)
    close_time_source: str | None = None


def _refuse_other_network(observed: ChainObservations, network_passphrase: str) -> None:
    """Exit 2 before any verdict when an endpoint serves another network than ``--network``."""
    others = endpoints_on_other_network(observed, expected_network=network_passphrase)
    if others:
        raise WrongNetworkError(
            [
                InputProblem(
                    f"--network {network_name(network_passphrase)}",
                    None,
                    None,
                    f"{url} ({'RPC getNetwork' if kind == 'rpc' else 'Horizon root'}) "
                    f"reports {network_name(passphrase)!r}: wrong --network or wrong "
                    "endpoint; no verdict is given",
                )
                for url, kind, passphrase in others
            ]
        )


def settlement_chain(
    transactions: Iterable[ChainTransaction] = (),
    *,
    latest_ledger_close_time: datetime | None = None,
    chain_status: Status | None = None,
    live: SettlementChainObservations | None = None,
    snapshot: ChainObservations | None = None,
    network_passphrase: str | None = None,
    now: datetime | None = None,
    pm: pluggy.PluginManager | None = None,
) -> SettlementChain:
    """Everything the settlement checks need to know about the chain.

    With ``live`` (a lookup's observations, see
    :func:`~streampay_incident.probes.transactions.observe_settlements`): keep
    what can be trusted on ``network_passphrase``, add its records to
    ``transactions``, take its latest ledger close time when none was given,
    its sequence numbers, and the chain grade of its round, graded at ``now``
    through every registered chain check of ``pm``.

    With ``snapshot`` (a ``chain --record`` round): its chain grade at ``now``,
    and, when none was given, the latest ledger close time of its freshest
    endpoint on ``network_passphrase`` that is not critical
    (:func:`~streampay_incident.checks.chain.evidence_close_time`).

    Raises :class:`WrongNetworkError` (exit 2, before any verdict) when an
    endpoint of ``live`` or ``snapshot`` reports another passphrase than
    ``network_passphrase``.
    """
    records = tuple(transactions)
    account_sequences: dict[str, int] | None = None
    inputs: dict[str, Any] = {}
    source = None if latest_ledger_close_time is None else "given"
    if snapshot is not None:
        assert network_passphrase is not None and now is not None and pm is not None
        _refuse_other_network(snapshot, network_passphrase)
        grade = grade_observations(
            snapshot, now=now, expected_network=network_passphrase, plugin_manager=pm
        )
        chain_status = grade.status
        chosen = evidence_close_time(grade, expected_network=network_passphrase)
        if latest_ledger_close_time is None and chosen is not None:
            latest_ledger_close_time, source = chosen[0], f"chain snapshot {chosen[1]}"
        inputs = {"chain_status": grade.status, "chain_diagnosis": diagnose_chain(grade).kind}
    if live is not None:
        assert network_passphrase is not None and now is not None and pm is not None
        _refuse_other_network(live.chain, network_passphrase)
        facts = settlement_chain_facts(live, expected_network=network_passphrase)
        grade = grade_observations(
            live.chain, now=now, expected_network=network_passphrase, plugin_manager=pm
        )
        records += facts.transactions
        if latest_ledger_close_time is None and facts.latest_ledger_close_time is not None:
            latest_ledger_close_time, source = facts.latest_ledger_close_time, "live lookup"
        chain_status = grade.status
        account_sequences = dict(facts.account_sequences)
        endpoints = endpoint_lookups(live)
        inputs = {
            "horizon": [e.url for e in grade.endpoints if e.kind == "horizon"],
            "rpc": [e.url for e in grade.endpoints if e.kind == "rpc"],
            "chain_status": grade.status,
            # Answered, not asked: an endpoint that failed answers nothing.
            "live_transaction_records": sum(1 for t in facts.transactions if t.status != "unknown"),
            "live_lookups_asked": len(facts.transactions),
            "endpoints": endpoints,
        }
        failed = endpoint_errors_line(endpoints)
        if failed:
            inputs["endpoint_errors"] = failed
    return SettlementChain(
        transactions=records,
        context=SettlementContext(
            chain_status=chain_status,
            latest_ledger_close_time=latest_ledger_close_time,
            account_sequences=account_sequences,
        ),
        inputs=inputs,
        close_time_source=source,
    )


def check_settlement_network(
    settlements: Sequence[Settlement], chain: SettlementChain, *, network_passphrase: str
) -> None:
    """Raise :class:`WrongNetworkError` when none of the envelopes the chain records know was
    found under ``network_passphrase`` but some were found under another network.

    "--network public: none of N envelopes was found; M match testnet"
    (:func:`~streampay_incident.checks.settlements.check_envelope_network`).
    """
    name = network_name(network_passphrase)
    refuse_wrong_envelopes(
        check_envelope_network(settlements, transactions=chain.transactions, network=name)
    )


def refuse_wrong_envelopes(check: EnvelopeNetworkCheck) -> None:
    """Raise :class:`WrongNetworkError` when ``check`` is the wrong-network case."""
    if check.wrong_network:
        raise WrongNetworkError(
            InputProblem(f"--network {check.network}", None, None, check.counts)
        )


def triage_settlements(
    settlements: Sequence[Settlement],
    *,
    chain: SettlementChain,
    now: datetime,
    pm: pluggy.PluginManager,
    inputs: Mapping[str, Any],
    policy: SettlementPolicy | None = None,
    payouts: Sequence[Payout] | None = None,
    now_from_clock: bool = False,
) -> Report:
    """A verdict per settlement and every registered settlement check's findings, in one pass.

    The built-in rules are one registered check (their verdicts become the
    report's); a plugin that raises becomes a ``PLUGIN_ERROR`` finding.
    ``inputs`` is what the shell says about the run, in the order to report it;
    ``payouts_checked`` is added (whether ``payouts`` was given). ``payouts``
    (the payouts export) reaches every settlement check through
    ``context.payouts``: the built-in one overturns a verdict of a settlement
    another payout already paid. ``now_from_clock``: ``now`` is the clock's
    (no ``--now``); an export over 24 h older gets a note (``notes``).
    """
    context = chain.context
    if payouts is not None:
        context = attrs.evolve(context, payouts=tuple(payouts))
    triage = run_settlement_checks(
        pm,
        settlements,
        transactions=index_transactions(chain.transactions),
        now=now,
        policy=policy or SettlementPolicy(),
        context=context,
    )
    findings = triage.findings
    if not settlements:  # nothing triaged: never a pass
        source = str(inputs.get("settlements", "settlements"))
        findings = (*findings, input_empty(source, "settlement"))
    report_inputs = dict(inputs)
    report_inputs["payouts_checked"] = context.payouts is not None
    note = stale_export_note((s.last_change for s in settlements), now=now)
    return Report(
        command="settlements",
        findings=findings,
        generated_at=now,
        inputs=report_inputs,
        settlements=triage.verdicts,
        extra={"notes": [note]} if now_from_clock and note else {},
    )


LookupResult = tuple[Settlement | None, ChainTransaction | None, Finding | None]


def _is_lookup_answer(answer: object) -> bool:
    if isinstance(answer, tuple) and len(answer) == 2:
        answer, transaction = answer
        if not (transaction is None or isinstance(transaction, ChainTransaction)):
            return False
    return isinstance(answer, Settlement)


def find_settlement(pm: pluggy.PluginManager, settlement_id: str) -> LookupResult:
    """Ask the host's ``streampay_incident_find_settlement`` hooks; the first answer wins.

    pluggy's ``firstresult`` call (wrappers included); an implementation that
    raises, or answers something that is not a Settlement (or a Settlement and
    ChainTransaction pair), becomes a ``PLUGIN_ERROR`` finding naming it.
    """
    answer, error = first_answer(
        pm, FIND_SETTLEMENT, _is_lookup_answer, settlement_id=settlement_id
    )
    if answer is None:
        return None, None, error
    if isinstance(answer, tuple):
        return answer[0], answer[1], None
    return answer, None, None
