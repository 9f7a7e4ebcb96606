"""Hook specifications: how plugins add checks to streampay-incident.

A plugin is a module or object with functions marked ``@hookimpl`` (exported
from the package root) and is found through the ``streampay_incident``
entry-point group. Hooks *register* things and return data; the host calls
each registered check on its own, so a check that raises becomes a
``PLUGIN_ERROR`` finding naming the plugin and never stops the others.

No hook, and no check a hook returns, may do I/O: checks get values (records,
observations, ``now``) and return findings. They run during an incident, on
exports of millions of rows, possibly inside StreamPay's service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .codes import FindingCode
    from .model import Finding

hookspec = pluggy.HookspecMarker("streampay_incident")

PayoutCheck = Callable[..., "Iterable[Finding]"]
SettlementCheck = Callable[..., "Iterable[Finding]"]
ChainCheck = Callable[..., "Iterable[Finding]"]


@hookspec
def streampay_incident_register_codes() -> Sequence[FindingCode]:
    """Declare the finding codes a plugin's checks emit.

    Called once when the plugin manager is built. Return a sequence of
    :class:`~streampay_incident.codes.FindingCode`; each code must be new or
    identical to an existing declaration. Built-in codes live in
    :mod:`streampay_incident.codes` and are not returned here.
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
    ``check(settlements, *, transactions, now, policy) -> Iterable[Finding]``:
    ``settlements`` a sequence of :class:`~streampay_incident.model.Settlement`,
    ``transactions`` a mapping of lower-case tx hash to
    :class:`~streampay_incident.model.ChainTransaction`, ``now`` an aware UTC
    datetime, ``policy`` a :class:`~streampay_incident.model.SettlementPolicy`.
    Pure, like every check.
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
