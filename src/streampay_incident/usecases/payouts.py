"""Triage payouts: every registered payout check, and the escrow reconciliation when asked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pluggy

from ..checks.coverage import file_window, paging_finding, paging_window
from ..checks.inputs import input_empty
from ..hookspecs import ESCROW_CHECKS, PAYOUT_CHECKS
from ..model import EscrowObservation, Finding, Payout, PayoutPolicy, Report
from ..registry import run_checks
from ..timefmt import format_rfc3339

if TYPE_CHECKING:
    from ..io.chain_payments import ChainPaymentBatch
    from ..probes.payments import PaymentsFetch


def escrow_from_file(
    escrow: str,
    source: str,
    batch: ChainPaymentBatch,
    *,
    since: datetime | None,
    until: datetime | None,
) -> EscrowObservation:
    """What a chain payments file says left ``escrow``, and the window it covers."""
    return EscrowObservation(
        escrow=escrow,
        source=source,
        payments=tuple(batch.payments),
        window=file_window(
            since=since,
            until=until,
            oldest_ledger_close_time=batch.oldest_ledger_close_time,
            latest_ledger_close_time=batch.latest_ledger_close_time,
            payments=batch.payments,
        ),
    )


def escrow_from_paging(escrow: str, source: str, fetched: PaymentsFetch) -> EscrowObservation:
    """What a live paging run read from ``escrow``, the window it covers and why it stopped."""
    return EscrowObservation(
        escrow=escrow,
        source=source,
        payments=fetched.payments,
        window=paging_window(fetched.coverage, fetched.stop),
        stop=fetched.stop,
    )


def reconcile_escrow(
    payouts: Sequence[Payout],
    chain: EscrowObservation,
    *,
    now: datetime,
    pm: pluggy.PluginManager,
) -> Report:
    """Compare ``payouts`` with what ``chain`` says left the escrow, through every escrow check.

    The chain source's own finding (``CHAIN_*``: an endpoint that stopped the
    paging) comes first; a raising escrow check becomes a
    ``PLUGIN_ERROR`` finding. The report's inputs describe the chain source
    and the window it covers.
    """
    window = chain.window
    stopped = (paging_finding(chain.stop),) if chain.stop is not None else ()
    findings = stopped + run_checks(
        pm, ESCROW_CHECKS, payouts, chain.payments, escrow=chain.escrow, window=window
    )
    inputs: dict[str, Any] = {
        "escrow": chain.escrow,
        "chain_source": chain.source,
        "chain_payments": len(chain.payments),
        "escrow_window": (
            f"{format_rfc3339(window.since) if window.since else 'start'} .. "
            f"{format_rfc3339(window.until) if window.until else 'latest'}"
        ),
        "escrow_window_complete": window.complete,
    }
    if window.note:
        inputs["escrow_window_note"] = window.note
    return Report(command="payouts", findings=findings, generated_at=now, inputs=inputs)


def triage_payouts(
    payouts: Sequence[Payout],
    *,
    policy: PayoutPolicy,
    now: datetime,
    pm: pluggy.PluginManager,
    inputs: Mapping[str, Any],
    escrow: EscrowObservation | None = None,
) -> Report:
    """Every registered payout check (built-in rules and plugins) over ``payouts``.

    ``inputs`` is what the shell says about where the records came from (``payouts``
    names the input); with ``escrow`` the reconciliation's findings and inputs are
    added after them. No records at all is an ``INPUT_EMPTY`` finding, never a pass.
    """
    findings: list[Finding] = list(run_checks(pm, PAYOUT_CHECKS, payouts, policy=policy))
    if not payouts:
        findings.append(input_empty(str(inputs.get("payouts", "payouts")), "payout"))
    report_inputs = dict(inputs)
    if escrow is not None:
        reconciled = reconcile_escrow(payouts, escrow, now=now, pm=pm)
        findings += reconciled.findings
        report_inputs.update(reconciled.inputs)
    return Report(
        command="payouts", findings=tuple(findings), generated_at=now, inputs=report_inputs
    )
