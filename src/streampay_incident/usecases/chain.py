"""Grade the chain: probe observations in, a grade (and a report) out, through the plugins.

Every path that grades the chain comes here (``chain``, ``settlements
--horizon/--rpc``, the web app's health round), so a chain plugin weighs in
everywhere alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pluggy

from ..checks import chain as chain_checks
from ..hookspecs import CHAIN_CHECKS
from ..model import Finding, Report
from ..registry import run_checks
from ..stellar.networks import network_name

if TYPE_CHECKING:
    from ..checks.chain import ChainGrade, ChainPolicy
    from ..observations import ChainObservations


def grade_observations(
    observations: ChainObservations,
    *,
    now: datetime,
    expected_network: str,
    policy: ChainPolicy | None = None,
    plugin_manager: pluggy.PluginManager | None = None,
) -> ChainGrade:
    """Grade a probe round at ``now`` against ``expected_network``.

    Without ``plugin_manager`` only the built-in check runs; with one, every
    chain check registered through ``streampay_incident_register_chain_checks``
    runs (a raising plugin becomes a ``PLUGIN_ERROR`` finding). Each endpoint's
    status comes from the findings whose subject is its URL; the overall
    status follows :func:`~streampay_incident.checks.chain.overall_status`.
    """
    policy = policy or chain_checks.ChainPolicy()
    findings: tuple[Finding, ...] | None = None
    if plugin_manager is not None:
        findings = run_checks(
            plugin_manager,
            CHAIN_CHECKS,
            observations,
            now=now,
            expected_network=expected_network,
            policy=policy,
        )
    return chain_checks.grade_chain(
        observations, now=now, expected_network=expected_network, policy=policy, findings=findings
    )


def chain_report(
    grade: ChainGrade,
    *,
    now: datetime,
    network_passphrase: str,
    horizon_urls: Sequence[str],
    rpc_urls: Sequence[str],
    timeout: float,
) -> Report:
    """The standard report for a graded round: the diagnosis (Stellar or us) under
    ``diagnosis``, the per-endpoint grades under ``endpoints``."""
    inputs: dict[str, Any] = {
        "network": network_name(network_passphrase),
        "horizon": list(horizon_urls),
        "rpc": list(rpc_urls),
        "timeout_seconds": timeout,
    }
    both = [url for url in horizon_urls if url in rpc_urls]
    if both:
        # One server may really be both (a proxy); more often one flag got the other's URL.
        inputs["note"] = (
            f"{', '.join(both)} given as both --horizon and --rpc: graded once as each kind"
        )
    return Report(
        command="chain",
        findings=grade.findings,
        generated_at=now,
        inputs=inputs,
        status=grade.status,
        extra={
            "diagnosis": chain_checks.diagnose_chain(grade).to_json(),
            "endpoints": [e.to_json() for e in grade.endpoints],
        },
    )


def grade_chain(
    observations: ChainObservations,
    *,
    now: datetime,
    network_passphrase: str,
    pm: pluggy.PluginManager,
    horizon_urls: Sequence[str],
    rpc_urls: Sequence[str],
    timeout: float,
) -> Report:
    """The ``chain`` report: the round graded through every registered chain check."""
    grade = grade_observations(
        observations, now=now, expected_network=network_passphrase, plugin_manager=pm
    )
    return chain_report(
        grade,
        now=now,
        network_passphrase=network_passphrase,
        horizon_urls=horizon_urls,
        rpc_urls=rpc_urls,
        timeout=timeout,
    )
