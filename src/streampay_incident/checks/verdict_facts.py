"""What a settlement verdict shows and calls for: its finding's evidence and on-call's action.

Pure; split from :mod:`.settlements` (the decision table) to keep each module one thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from ..model import Settlement, SettlementAction, SettlementState, SettlementVerdict
from ..timefmt import format_rfc3339

ChainStatus = Literal["pass", "warn", "fail"]
ChainAnswer = Literal["success", "failed", "unknown", "not_found"]

#: The actions counted in ``summary.actions`` (``none`` is not counted).
COUNTED_ACTIONS: tuple[SettlementAction, ...] = ("retry", "do_not_retry", "wait", "investigate")


def settlement_action(
    *,
    state: SettlementState,
    retry_safe: bool,
    retry_reason: str,
    has_finding: bool,
    max_time: datetime | None,
) -> SettlementAction:
    """What on-call does about one verdict (issue 9 §9; see the module docstring)."""
    if retry_safe:
        return "retry"
    if state == "settled" and not has_finding:
        return "none"
    if retry_reason in ("tx_landed", "already_paid", "network_mismatch", "recorded_succeeded"):
        return "do_not_retry"
    if retry_reason in ("in_flight", "backing_off"):
        return "wait"
    if retry_reason == "tx_may_still_land" and max_time is not None:
        return "wait"
    return "investigate"


def count_actions(verdicts: Iterable[SettlementVerdict]) -> dict[str, int]:
    """``summary.actions``: how many verdicts call for each action (``none`` not counted)."""
    counts: dict[str, int] = dict.fromkeys(COUNTED_ACTIONS, 0)
    for verdict in verdicts:
        if verdict.action in counts:
            counts[verdict.action] += 1
    return counts


def settlement_evidence(
    settlement: Settlement,
    answer: ChainAnswer,
    *,
    now: datetime,
    latest_ledger_close_time: datetime | None,
    account_sequences: Mapping[str, int] | None,
    chain_status: ChainStatus | None,
    retry_safe: bool,
    retry_reason: str,
) -> dict[str, Any]:
    """The evidence every settlement finding carries: the row, its chain answer, the proof."""
    s = settlement
    evidence: dict[str, Any] = {
        "settlement_id": s.settlement_id,
        "status": s.status,
        "attempts": s.attempts,
        "max_attempts": s.max_attempts,
        "created_at": format_rfc3339(s.created_at),
        "age_seconds": int((now - s.created_at).total_seconds()),
        "since_update_seconds": int((now - s.last_change).total_seconds()),
        "tx_hash": s.all_tx_hashes[0] if s.all_tx_hashes else None,
        "chain": answer if s.all_tx_hashes else None,
        "max_time": None if s.tx_max_time is None else format_rfc3339(s.tx_max_time),
        "retry_safe": retry_safe,
        "retry_reason": retry_reason,
    }
    if len(s.all_tx_hashes) > 1:
        evidence["tx_hashes"] = list(s.all_tx_hashes)
    if s.updated_at is not None:
        evidence["updated_at"] = format_rfc3339(s.updated_at)
    if s.lease_until is not None:
        evidence["lease_until"] = format_rfc3339(s.lease_until)
    if s.available_at is not None:
        evidence["available_at"] = format_rfc3339(s.available_at)
    if s.event_key is not None:
        evidence["event_key"] = s.event_key
    if latest_ledger_close_time is not None:
        evidence["latest_ledger_close_time"] = format_rfc3339(latest_ledger_close_time)
    if chain_status is not None:
        evidence["chain_status"] = chain_status
    if s.source_account is not None and s.sequence is not None:
        evidence["source_account"] = s.source_account
        evidence["sequence"] = str(s.sequence)
        if account_sequences and s.source_account in account_sequences:
            evidence["account_sequence"] = str(account_sequences[s.source_account])
    if s.last_error:
        evidence["last_error"] = s.last_error
    return evidence
