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

from ..checks.evidence import settlement_chain_facts
from ..checks.inputs import input_empty
from ..checks.settlements import index_transactions
from ..hookspecs import FIND_SETTLEMENT
from ..model import (
    ChainTransaction,
    Finding,
    Report,
    Settlement,
    SettlementContext,
    SettlementPolicy,
    Status,
)
from ..registry import first_answer, run_settlement_checks
from .chain import grade_observations

if TYPE_CHECKING:
    from ..observations import SettlementChainObservations


@attrs.frozen
class SettlementChain:
    """What the chain says, ready for the settlement checks.

    ``transactions`` are the records (from a file, the host, a live lookup);
    ``context`` the grade, latest close time and account sequences; ``inputs``
    what the report says about a live lookup (empty otherwise).
    """

    transactions: tuple[ChainTransaction, ...] = ()
    context: SettlementContext = SettlementContext()
    inputs: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False)


def settlement_chain(
    transactions: Iterable[ChainTransaction] = (),
    *,
    latest_ledger_close_time: datetime | None = None,
    chain_status: Status | None = None,
    live: SettlementChainObservations | None = None,
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
    """
    records = tuple(transactions)
    account_sequences: dict[str, int] | None = None
    inputs: dict[str, Any] = {}
    if live is not None:
        assert network_passphrase is not None and now is not None and pm is not None
        facts = settlement_chain_facts(live, expected_network=network_passphrase)
        grade = grade_observations(
            live.chain, now=now, expected_network=network_passphrase, plugin_manager=pm
        )
        records += facts.transactions
        if latest_ledger_close_time is None:
            latest_ledger_close_time = facts.latest_ledger_close_time
        chain_status = grade.status
        account_sequences = dict(facts.account_sequences)
        inputs = {
            "horizon": [e.url for e in grade.endpoints if e.kind == "horizon"],
            "rpc": [e.url for e in grade.endpoints if e.kind == "rpc"],
            "chain_status": grade.status,
            "live_transaction_records": len(facts.transactions),
        }
    return SettlementChain(
        transactions=records,
        context=SettlementContext(
            chain_status=chain_status,
            latest_ledger_close_time=latest_ledger_close_time,
            account_sequences=account_sequences,
        ),
        inputs=inputs,
    )


def triage_settlements(
    settlements: Sequence[Settlement],
    *,
    chain: SettlementChain,
    now: datetime,
    pm: pluggy.PluginManager,
    inputs: Mapping[str, Any],
    policy: SettlementPolicy | None = None,
) -> Report:
    """A verdict per settlement and every registered settlement check's findings, in one pass.

    The built-in rules are one registered check (their verdicts become the
    report's); a plugin that raises becomes a ``PLUGIN_ERROR`` finding.
    ``inputs`` is what the shell says about the run, in the order to report it.
    """
    triage = run_settlement_checks(
        pm,
        settlements,
        transactions=index_transactions(chain.transactions),
        now=now,
        policy=policy or SettlementPolicy(),
        context=chain.context,
    )
    findings = triage.findings
    if not settlements:  # nothing triaged: never a pass
        source = str(inputs.get("settlements", "settlements"))
        findings = (*findings, input_empty(source, "settlement"))
    return Report(
        command="settlements",
        findings=findings,
        generated_at=now,
        inputs=dict(inputs),
        settlements=triage.verdicts,
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
