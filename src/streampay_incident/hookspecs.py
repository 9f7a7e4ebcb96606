"""Hook specifications: how plugins add checks to streampay-incident.

A plugin is a module or object with functions marked ``@hookimpl`` (exported
from the package root) and is found through the ``streampay_incident``
entry-point group. Hooks *register* things and return data; the host calls
each registered check on its own, so a check that raises becomes a
``PLUGIN_ERROR`` finding naming the plugin and never stops the others.

No hook, and no check a hook returns, may do I/O: checks get values (records,
observations, ``now``, and the plugin's read-only settings as the ``config``
keyword when they name it) and return findings. They run during an incident,
on exports of millions of rows, possibly inside StreamPay's service: a
third-party check call has a time budget (2 s, never more than the command's
``--timeout``), and one that overruns is abandoned in its worker thread and
reported as ``PLUGIN_TIMEOUT``, so a check must not hold resources.

A ``@hookimpl`` whose name is none of the hooks below (a misspelt name) leaves
its plugin out, reported as ``PLUGIN_ERROR`` naming the bad hook.

The hook names are spelt once, as the constants below; the host calls hooks
by these names only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from .codes import FindingCode
    from .model import (
        ChainPayment,
        ChainTransaction,
        CoverageWindow,
        Finding,
        Payout,
        PayoutPolicy,
        Settlement,
        SettlementPolicy,
        SettlementTriage,
    )

hookspec = pluggy.HookspecMarker("streampay_incident")

REGISTER_CODES = "streampay_incident_register_codes"
PAYOUT_CHECKS = "streampay_incident_register_payout_checks"
SETTLEMENT_CHECKS = "streampay_incident_register_settlement_checks"
CHAIN_CHECKS = "streampay_incident_register_chain_checks"
ESCROW_CHECKS = "streampay_incident_register_escrow_checks"
FIND_SETTLEMENT = "streampay_incident_find_settlement"


class PayoutCheck(Protocol):
    """``check(payouts, *, policy) -> Iterable[Finding]``."""

    def __call__(
        self, payouts: Sequence[Payout], /, *, policy: PayoutPolicy
    ) -> Iterable[Finding]: ...


class SettlementCheck(Protocol):
    """``check(settlements, *, transactions, now, policy[, context])``.

    Returns findings, or a :class:`~streampay_incident.model.SettlementTriage`
    (verdicts and findings). ``context`` is passed only to a check that names
    it (or takes ``**kwargs``), so a check written before it existed still runs.
    """

    def __call__(
        self,
        settlements: Sequence[Settlement],
        /,
        *,
        transactions: Mapping[str, ChainTransaction],
        now: datetime,
        policy: SettlementPolicy,
    ) -> Iterable[Finding] | SettlementTriage: ...


class ChainCheck(Protocol):
    """``check(observations, *, now, expected_network, policy) -> Iterable[Finding]``."""

    def __call__(
        self, observations: Any, /, *, now: datetime, expected_network: str, policy: Any
    ) -> Iterable[Finding]: ...


class EscrowCheck(Protocol):
    """``check(payouts, chain_payments, *, escrow, window) -> Iterable[Finding]``."""

    def __call__(
        self,
        payouts: Sequence[Payout],
        chain_payments: Sequence[ChainPayment],
        /,
        *,
        escrow: str,
        window: CoverageWindow,
    ) -> Iterable[Finding]: ...


@hookspec
def streampay_incident_register_codes() -> Sequence[FindingCode]:
    """Declare the finding codes a plugin's checks emit.

    Called once when the plugin manager is built. Return a sequence of
    :class:`~streampay_incident.codes.FindingCode`; each code must be new or
    identical to an existing declaration, with a
    :class:`~streampay_incident.codes.Severity` and, when given, an absolute
    ``runbook_url``. Built-in codes live in :mod:`streampay_incident.codes`
    and are not returned here. A plugin whose declaration is wrong is left
    out, reported as ``PLUGIN_ERROR`` naming it.
    """
    raise NotImplementedError


@hookspec
def streampay_incident_register_payout_checks() -> Sequence[PayoutCheck]:
    """Register checks over payout records.

    Called each time payouts are triaged. Return a sequence of callables
    ``check(payouts, *, policy) -> Iterable[Finding]`` where ``payouts`` is a
    sequence of :class:`~streampay_incident.model.Payout` and ``policy`` a
    :class:`~streampay_incident.model.PayoutPolicy`. A check must be pure: no
    clock, file, socket or environment access.
    """
    raise NotImplementedError


@hookspec
def streampay_incident_register_settlement_checks() -> Sequence[SettlementCheck]:
    """Register checks over settlement records.

    Called each time settlements are triaged. Return a sequence of callables
    ``check(settlements, *, transactions, now, policy, context) -> Iterable[Finding]``:
    ``settlements`` a sequence of :class:`~streampay_incident.model.Settlement`,
    ``transactions`` a mapping of lower-case tx hash to
    :class:`~streampay_incident.model.ChainTransaction`, ``now`` an aware UTC
    datetime, ``policy`` a :class:`~streampay_incident.model.SettlementPolicy`,
    ``context`` a :class:`~streampay_incident.model.SettlementContext` (the
    chain grade, the latest closed ledger's close time and the source
    accounts' sequence numbers, each None when unknown). ``context`` is passed
    only to a check that declares a ``context`` parameter (or ``**kwargs``):
    a check written as ``check(settlements, *, transactions, now, policy)``
    keeps working.

    A check may return a :class:`~streampay_incident.model.SettlementTriage`
    instead of findings: its findings count like any others, and the verdicts
    of the first check to return one are the report's verdicts (the built-in
    rules do). Pure, like every check.
    """
    raise NotImplementedError


@hookspec
def streampay_incident_register_chain_checks() -> Sequence[ChainCheck]:
    """Register checks over chain-health observations.

    Called each time the chain is graded. Return a sequence of callables
    ``check(observations, *, now, expected_network, policy) -> Iterable[Finding]``
    where ``observations`` are the probe results of
    :mod:`streampay_incident.probes`. Pure, like every check.
    """
    raise NotImplementedError


@hookspec
def streampay_incident_register_escrow_checks() -> Sequence[EscrowCheck]:
    """Register checks comparing payout records with what left the escrow on chain.

    Called each time payouts are reconciled with the escrow (``payouts
    --escrow``). Return a sequence of callables
    ``check(payouts, chain_payments, *, escrow, window) -> Iterable[Finding]``:
    ``payouts`` a sequence of :class:`~streampay_incident.model.Payout`,
    ``chain_payments`` a sequence of :class:`~streampay_incident.model.ChainPayment`,
    ``escrow`` the G... account or C... contract, ``window`` the
    :class:`~streampay_incident.model.CoverageWindow` the chain source covers.
    The built-in reconciliation is one such check. Pure, like every check.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def streampay_incident_find_settlement(settlement_id: str) -> Any:
    """Look up one settlement for ``GET /settlements/{settlement_id}``.

    Implemented by the host that mounts the web app (the StreamPay backend),
    never by the tool itself. Return ``None`` when unknown, a
    :class:`~streampay_incident.model.Settlement`, or a
    ``(Settlement, ChainTransaction | None)`` pair when the host also knows
    what the chain says of its transaction.

    Stops at the first non-None result. This hook may read the host's own
    (read-only) store; it must not write anything.
    """
    raise NotImplementedError


hookimpl = pluggy.HookimplMarker("streampay_incident")
"""Marker for plugin hook implementations; import it as ``streampay_incident.hookimpl``."""
