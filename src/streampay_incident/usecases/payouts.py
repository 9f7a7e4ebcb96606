"""Triage payouts: every registered payout check, and the escrow reconciliation when asked."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from ..checks.coverage import (
    classic_event_window,
    classic_events_missing,
    file_window,
    paging_finding,
    paging_window,
)
from ..checks.fee_bumps import hashes_to_resolve, with_hashes
from ..checks.freshness import stale_export_note
from ..checks.inputs import input_empty
from ..errors import InputProblem, WrongNetworkError
from ..hookspecs import ESCROW_CHECKS, PAYOUT_CHECKS
from ..model import EscrowObservation, Finding, Payout, PayoutPolicy, Report
from ..registry import plugin_run, run_checks
from ..stellar.networks import network_name
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


def escrow_from_paging(
    escrow: str, source: str, fetched: PaymentsFetch, *, kind: str | None = None
) -> EscrowObservation:
    """What a live paging run read from ``escrow``, the window it covers and why it stopped.

    ``kind`` ``rpc`` for a ``G...`` escrow: classic events, whose coverage has its own
    rules (:func:`~streampay_incident.checks.coverage.classic_event_window`).
    """
    window = classic_event_window(
        paging_window(fetched.coverage, fetched.stop),
        escrow=escrow,
        kind=kind,
        first_ledger=fetched.first_ledger,
        last_ledger=fetched.last_ledger,
        network_passphrase=fetched.network_passphrase,
    )
    return EscrowObservation(
        escrow=escrow,
        source=source,
        payments=fetched.payments,
        window=window,
        stop=fetched.stop,
        network_passphrase=fetched.network_passphrase,
        kind=kind,
    )


def check_escrow_network(chain: EscrowObservation, network_passphrase: str | None) -> None:
    """Raise :class:`WrongNetworkError` when ``--network`` was given and the escrow's endpoint
    reported another network.

    The escrow is read on the network its endpoint serves; ``--network`` is
    only a check of it (a file, or an endpoint that did not say, passes).
    """
    reported = chain.network_passphrase
    if network_passphrase is None or reported is None or reported == network_passphrase:
        return
    raise WrongNetworkError(
        InputProblem(
            f"--network {network_name(network_passphrase)}",
            None,
            None,
            f"{chain.source} reports {network_name(reported)!r}: the escrow is read on the "
            "endpoint's network; drop --network or give the endpoint of that network",
        )
    )


def resolve_fee_bumps(
    payouts: Sequence[Payout],
    chain: EscrowObservation,
    resolve: Callable[[list[str]], Mapping[str, Sequence[str]]],
) -> EscrowObservation:
    """``chain`` with both hashes of its fee-bumps, where a payout row may name the inner one.

    RPC events list a fee-bump under its outer hash; ``resolve`` (the shell's
    ``getTransaction`` probe) is asked only for the outflows no row names, and
    only when some row names a hash no outflow has
    (:func:`~streampay_incident.checks.fee_bumps.hashes_to_resolve`).
    """
    wanted = hashes_to_resolve(payouts, chain.payments, chain.escrow)
    if not wanted:
        return chain
    known = resolve(wanted)
    return attrs.evolve(chain, payments=with_hashes(chain.payments, known))


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
    window = classic_events_missing(
        chain.window,
        escrow=chain.escrow,
        kind=chain.kind,
        payouts=payouts,
        payments=chain.payments,
    )
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
    if chain.network_passphrase is not None:
        inputs["network"] = network_name(chain.network_passphrase)
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
    now_from_clock: bool = False,
) -> Report:
    """Every registered payout check (built-in rules and plugins) over ``payouts``.

    ``inputs`` is what the shell says about where the records came from (``payouts``
    names the input); with ``escrow`` the reconciliation's findings and inputs are
    added after them. No records at all is an ``INPUT_EMPTY`` finding, never a pass.
    ``now_from_clock``: ``now`` is the clock's (no ``--now``); an export over
    24 h older gets a note (``notes``).
    """
    report_inputs = dict(inputs)
    with plugin_run():  # one report: a plugin that fails is reported once, then skipped
        findings: list[Finding] = list(run_checks(pm, PAYOUT_CHECKS, payouts, policy=policy))
        if not payouts:
            findings.append(input_empty(str(inputs.get("payouts", "payouts")), "payout"))
        if escrow is not None:
            reconciled = reconcile_escrow(payouts, escrow, now=now, pm=pm)
            findings += reconciled.findings
            report_inputs.update(reconciled.inputs)
    note = stale_export_note((p.created_at for p in payouts), now=now) if now_from_clock else None
    return Report(
        command="payouts",
        findings=tuple(findings),
        generated_at=now,
        inputs=report_inputs,
        extra={"notes": [note]} if note else {},
    )
