"""Settlement triage: is each settlement settled, failed, stuck, backing off or in flight,
is a retry provably safe, and what does on-call do about it? (Over 400 lines as one
thing: one decision table, its overlays and its evidence.)

A pure function of the settlements, what the chain says about their
transactions, ``now`` and (optionally) the close time of a ledger that closed,
the chain grade, the source accounts' current sequence numbers and the
payouts export. A blind retry of a transaction that can still land is how
double payouts happen, so ``retry_safe`` is true only with a proof: one of
``never_submitted``, ``tx_failed``, ``tx_expired``, ``sequence_consumed``.

What the chain says about a settlement (over all its hashes under the network
the export was read with: the recorded hash, and outer and inner hash of a
fee-bump; compared lower-case):

- *found successful* when any hash has a ``success`` record; else
- *found failed* when any hash has a ``failed`` record; else
- *unknown* when any hash has an ``unknown`` record (lookup timed out, Horizon
  ``410 before_history``) or an RPC ``not_found`` whose
  ``oldest_ledger_close_time`` is after the settlement's ``updated_at`` (else
  ``created_at``): the RPC's retention window starts after the transaction may
  have been submitted, so its "not found" proves nothing; else
- *not found*: a ``not_found`` record, no record, or no transactions at all.

Unknown counts as not found for the rules; it only changes the retry verdict.
When one hash has several records (several endpoints), the strongest wins:
success, failed, unknown, then an authoritative not_found (no retention
window) before a windowed one with the earliest window.

Decision table v2 (pinned; first match wins; "older than" is strictly greater):

1. found successful -> ``settled``, retry false/``tx_landed``; when the status
   is not ``succeeded``: ``SETTLEMENT_CONFIRMED_NOT_RECORDED``, critical unless
   the row is ``processing`` with a live lease (``lease_until`` >= now), then
   warning: StreamPay's lease reaper re-runs a ``pending`` row or one whose
   lease expired, and a replay pays twice.
2. status ``dead`` -> ``stuck``, ``SETTLEMENT_DEAD_LETTERED`` (critical: it is
   what ``SettlementDLQNotEmpty`` pages for); found failed -> true/``tx_failed``
   and the summary quotes ``last_error`` (fix the cause first: a replay fails
   the same way); else the retry-safety rules below.
3. found failed -> ``failed``, ``SETTLEMENT_TX_FAILED``, retry true/``tx_failed``.
4. status ``succeeded`` -> ``settled``, retry false/``recorded_succeeded``.
   *Backing off*: status ``pending`` or ``failed`` and ``available_at`` after
   now -> ``backing_off``, retry false/``backing_off`` (StreamPay's worker
   retries it at ``available_at``; a manual retry races it). No finding.
5. status ``failed`` and attempts >= max_attempts -> ``stuck``, ``SETTLEMENT_RETRIES_EXHAUSTED``.
6. status ``processing`` and ``lease_until`` < now -> ``stuck``, ``SETTLEMENT_LEASE_EXPIRED``.
7. no tx hash, older than ``unsubmitted_after`` (from ``created_at``) ->
   ``stuck``, ``SETTLEMENT_STUCK_UNSUBMITTED``.
8. a tx hash not found, older than ``unconfirmed_after`` (from ``updated_at``,
   else ``created_at``) -> ``stuck``, ``SETTLEMENT_STUCK_UNCONFIRMED``.
9. otherwise -> ``in_flight``, retry false/``in_flight``.

Retry safety of a ``stuck`` settlement (first match wins):

a. no tx hash: status ``pending`` and attempts 0 -> true/``never_submitted``;
   else false/``unknown_submission`` (an attempt was made, or the row left
   ``pending``: it may have been submitted without a record).
b. the chain answer is *unknown* -> false/``tx_status_unknown`` (it may have
   landed; an expired time bound does not prove otherwise).
c. the transaction is not found and ``account_sequences`` holds its source
   account at or past its sequence number -> true/``sequence_consumed`` (that
   sequence number is used; the transaction can never be applied).
d. max time unknown, absent or 0 (no bound) -> false/``tx_may_still_land``.
e. a closed ledger's close time is given: after max time -> true/``tx_expired``;
   else false/``tx_may_still_land``.
f. no close time: now <= max time -> false/``tx_may_still_land``; else
   false/``no_ledger_after_max_time`` (our clock is not the network's: only a
   closed ledger proves the bound passed).

Overlays, over every verdict that is not ``settled`` (each adds its own
finding beside the rule's):

- *already paid* (only when ``payouts`` is given): a payout for the
  settlement (its ``settlement_id`` or ``idempotency_key`` is the settlement's
  id or event key) that is ``confirmed``, or ``submitted`` with a tx hash
  that is not one of the settlement's own, -> ``SETTLEMENT_ALREADY_PAID``
  [critical], false/``already_paid``. The settlement's own attempt never
  counts: a row carrying one of its own hashes, or its own outbox row
  (``payout_id`` is the settlement id, with no other hash). Without payouts, a
  ``never_submitted`` verdict says so in its own finding
  (``evidence.payouts_checked``: false).
- *network mismatch*: a ``success`` or ``failed`` chain record for the
  envelope's hash under another well-known network
  (``Settlement.network_hashes``) -> ``SETTLEMENT_NETWORK_MISMATCH``
  [critical], false/``network_mismatch``, naming the network. With both
  overlays, both findings are reported and the reason is ``already_paid``.
- *chain outage*: when ``chain_status`` is ``"fail"``, a verdict that would
  still be retry-safe becomes false/``chain_unhealthy`` and
  ``SETTLEMENT_CHAIN_BLOCKED`` [warning] is added; the proof it would have had
  stays in ``evidence.retry_reason_when_healthy``. Never retry into an outage.

Action (:data:`~streampay_incident.model.SettlementAction`): retry-safe ->
``retry``; a ``settled`` verdict with no finding -> ``none``; ``tx_landed``,
``already_paid``, ``network_mismatch``, ``recorded_succeeded`` with a finding
-> ``do_not_retry``; ``in_flight``, ``backing_off`` and ``tx_may_still_land``
with a max time (still open: no closed ledger past it) -> ``wait``; the rest
-> ``investigate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from ..codes import Severity
from ..hookspecs import hookimpl
from ..model import (
    ChainTransaction,
    Finding,
    Payout,
    Settlement,
    SettlementContext,
    SettlementPolicy,
    SettlementState,
    SettlementTriage,
    SettlementVerdict,
    index_payouts,
    make_finding,
)
from ..timefmt import format_duration
from .overlays import (
    EnvelopeNetworkCheck,
    PayoutIndex,
    already_paid_finding,
    check_envelope_network,
    mismatch_finding,
    network_mismatch,
    payouts_paying,
)
from .tx_index import TransactionIndex, index_transactions
from .verdict_facts import (
    COUNTED_ACTIONS,
    ChainAnswer,
    ChainStatus,
    count_actions,
    settlement_action,
    settlement_evidence,
)

__all__ = [
    "EnvelopeNetworkCheck",
    "TransactionIndex",
    "check_envelope_network",
    "count_actions",
    "settlement_action",
    "COUNTED_ACTIONS",
    "index_payouts",
    "index_transactions",
    "network_mismatch",
    "payouts_paying",
]


#: The only reasons a retry is safe.
SAFE_REASONS: frozenset[str] = frozenset(
    {"never_submitted", "tx_failed", "tx_expired", "sequence_consumed"}
)
#: Every reason a verdict can give.
RETRY_REASONS: frozenset[str] = SAFE_REASONS | {
    "tx_landed",
    "recorded_succeeded",
    "in_flight",
    "unknown_submission",
    "tx_status_unknown",
    "tx_may_still_land",
    "no_ledger_after_max_time",
    "chain_unhealthy",
    "search_ambiguous",
    "backing_off",
    "already_paid",
    "network_mismatch",
}


def _chain_answer(settlement: Settlement, index: Mapping[str, ChainTransaction]) -> ChainAnswer:
    answers: set[ChainAnswer] = set()
    for tx_hash in settlement.all_tx_hashes:
        tx = index.get(tx_hash.lower())
        if tx is None:
            continue
        if tx.status == "not_found":
            window = tx.oldest_ledger_close_time
            if window is not None and window > settlement.last_change:
                answers.add("unknown")
                continue
        answers.add(tx.status)
    for answer in ("success", "failed", "unknown"):
        if answer in answers:
            return answer
    return "not_found"


def _retry_safety(
    settlement: Settlement,
    answer: ChainAnswer,
    *,
    now: datetime,
    latest_ledger_close_time: datetime | None,
    account_sequences: Mapping[str, int] | None,
) -> tuple[bool, str]:
    if not settlement.all_tx_hashes:
        # A pending row with attempts > 0 went back to pending after an attempt that
        # may have been submitted: only a row never attempted is provably unsubmitted.
        if settlement.status == "pending" and settlement.attempts == 0:
            return True, "never_submitted"
        return False, "unknown_submission"
    if answer == "unknown":
        return False, "tx_status_unknown"
    if account_sequences and settlement.source_account and settlement.sequence is not None:
        current = account_sequences.get(settlement.source_account)
        if current is not None and current >= settlement.sequence:
            return True, "sequence_consumed"
    max_time = settlement.tx_max_time
    if max_time is None:
        return False, "tx_may_still_land"
    if latest_ledger_close_time is not None:
        if latest_ledger_close_time > max_time:
            return True, "tx_expired"
        return False, "tx_may_still_land"
    if now <= max_time:
        return False, "tx_may_still_land"
    return False, "no_ledger_after_max_time"


def _retry_text(safe: bool, reason: str) -> str:
    return f"retry is safe ({reason})" if safe else f"do NOT retry ({reason})"


# -- the decision table ---------------------------------------------------------------------


@attrs.frozen
class _Rule:
    """What the decision table says, before the overlays."""

    state: SettlementState
    retry_safe: bool
    reason: str
    code: str | None = None
    severity: Severity | None = None


def _lease_is_live(s: Settlement, now: datetime) -> bool:
    return s.lease_until is not None and s.lease_until >= now


def _decide(
    s: Settlement,
    answer: ChainAnswer,
    *,
    now: datetime,
    latest_ledger_close_time: datetime | None,
    policy: SettlementPolicy,
    account_sequences: Mapping[str, int] | None,
) -> _Rule:
    """Decision table v2 and the retry-safety rules (module docstring), first match wins."""
    if answer == "success":  # 1
        if s.status == "succeeded":
            return _Rule("settled", False, "tx_landed")
        # Only a worker holding a live lease will still record it; anything else is re-run.
        live = s.status == "processing" and _lease_is_live(s, now)
        severity = Severity.WARNING if live else Severity.CRITICAL
        return _Rule("settled", False, "tx_landed", "SETTLEMENT_CONFIRMED_NOT_RECORDED", severity)
    if s.status == "dead":  # 2
        if answer == "failed":
            return _Rule("stuck", True, "tx_failed", "SETTLEMENT_DEAD_LETTERED")
        safe, reason = _retry_safety(
            s,
            answer,
            now=now,
            latest_ledger_close_time=latest_ledger_close_time,
            account_sequences=account_sequences,
        )
        return _Rule("stuck", safe, reason, "SETTLEMENT_DEAD_LETTERED")
    if answer == "failed":  # 3
        return _Rule("failed", True, "tx_failed", "SETTLEMENT_TX_FAILED")
    if s.status == "succeeded":  # 4
        return _Rule("settled", False, "recorded_succeeded")
    if s.status in ("pending", "failed") and s.available_at is not None and s.available_at > now:
        return _Rule("backing_off", False, "backing_off")
    tx_hash = s.all_tx_hashes[0] if s.all_tx_hashes else None
    code: str | None = None
    if s.status == "failed" and s.attempts >= s.max_attempts:  # 5
        code = "SETTLEMENT_RETRIES_EXHAUSTED"
    elif s.status == "processing" and s.lease_until is not None and s.lease_until < now:  # 6
        code = "SETTLEMENT_LEASE_EXPIRED"
    elif tx_hash is None and now - s.created_at > policy.unsubmitted_after:  # 7
        code = "SETTLEMENT_STUCK_UNSUBMITTED"
    elif tx_hash is not None and now - s.last_change > policy.unconfirmed_after:  # 8
        code = "SETTLEMENT_STUCK_UNCONFIRMED"
    if code is None:  # 9
        return _Rule("in_flight", False, "in_flight")
    safe, reason = _retry_safety(
        s,
        answer,
        now=now,
        latest_ledger_close_time=latest_ledger_close_time,
        account_sequences=account_sequences,
    )
    return _Rule("stuck", safe, reason, code)


# -- overlays -------------------------------------------------------------------------------


def assess_settlement(
    settlement: Settlement,
    *,
    transactions: Mapping[str, ChainTransaction],
    now: datetime,
    latest_ledger_close_time: datetime | None = None,
    policy: SettlementPolicy = SettlementPolicy(),  # noqa: B008 - frozen value
    chain_status: ChainStatus | None = None,
    account_sequences: Mapping[str, int] | None = None,
    payouts: PayoutIndex | None = None,
) -> tuple[SettlementVerdict, tuple[Finding, ...]]:
    """The verdict for one settlement and every finding about it: the decision table's own
    first, then ``SETTLEMENT_ALREADY_PAID``, ``SETTLEMENT_NETWORK_MISMATCH`` and
    ``SETTLEMENT_CHAIN_BLOCKED`` when they apply.

    ``transactions`` maps lower-case hashes to records (:func:`index_transactions`);
    ``payouts`` maps settlement ids and idempotency keys to payouts
    (:func:`index_payouts`), None when no payouts export was given.
    """
    s = settlement
    answer = _chain_answer(s, transactions)
    rule = _decide(
        s,
        answer,
        now=now,
        latest_ledger_close_time=latest_ledger_close_time,
        policy=policy,
        account_sequences=account_sequences,
    )
    paid: list[Payout] = []
    mismatch = None
    if rule.state != "settled":
        paid = payouts_paying(s, payouts) if payouts is not None else []
        mismatch = network_mismatch(s, transactions)
    retry_safe, reason = rule.retry_safe, rule.reason
    blocked = False
    if paid:
        retry_safe, reason = False, "already_paid"
    elif mismatch is not None:
        retry_safe, reason = False, "network_mismatch"
    elif retry_safe and chain_status == "fail":
        retry_safe, reason, blocked = False, "chain_unhealthy", True

    # The evidence only goes into findings: none to build for a settlement with none.
    found = rule.code is not None or bool(paid) or mismatch is not None or blocked
    base = (
        {}
        if not found
        else settlement_evidence(
            s,
            answer,
            now=now,
            latest_ledger_close_time=latest_ledger_close_time,
            account_sequences=account_sequences,
            chain_status=chain_status,
            retry_safe=retry_safe,
            retry_reason=reason,
        )
    )
    if reason != rule.reason:
        base["retry_reason_when_healthy" if blocked else "rule_retry_reason"] = rule.reason
    retry = _retry_text(retry_safe, reason)
    findings: list[Finding] = []
    if rule.code is not None:
        evidence = dict(base)
        if rule.reason == "never_submitted":
            evidence["payouts_checked"] = payouts is not None
        summary = _summary(
            rule, s, now=now, policy=policy, retry=retry, payouts=payouts, paid=bool(paid)
        )
        findings.append(
            make_finding(rule.code, s.settlement_id, summary, evidence, severity=rule.severity)
        )
    if paid:
        findings.append(already_paid_finding(s, paid, rule.state, rule.reason, base))
    if mismatch is not None:
        findings.append(mismatch_finding(s, mismatch, base, retry))
    if blocked:
        what = f"tx {s.all_tx_hashes[0]}" if s.all_tx_hashes else "a settlement never submitted"
        findings.append(
            make_finding(
                "SETTLEMENT_CHAIN_BLOCKED",
                s.settlement_id,
                f"{what} would be retry-safe ({rule.reason}) but the chain grade is fail: "
                "do NOT retry into an outage (chain_unhealthy); retry once the chain is healthy",
                base,
            )
        )
    codes = tuple(f.code for f in findings)
    verdict = SettlementVerdict(
        settlement_id=s.settlement_id,
        state=rule.state,
        retry_safe=retry_safe,
        retry_reason=reason,
        code=codes[0] if codes else None,
        action=settlement_action(
            state=rule.state,
            retry_safe=retry_safe,
            retry_reason=reason,
            has_finding=bool(findings),
            max_time=s.tx_max_time,
        ),
        codes=codes,
    )
    return verdict, tuple(findings)


def classify_settlement(
    settlement: Settlement,
    *,
    transactions: Mapping[str, ChainTransaction],
    now: datetime,
    latest_ledger_close_time: datetime | None = None,
    policy: SettlementPolicy = SettlementPolicy(),  # noqa: B008 - frozen value
    chain_status: ChainStatus | None = None,
    account_sequences: Mapping[str, int] | None = None,
) -> tuple[SettlementVerdict, Finding | None]:
    """The verdict for one settlement and its first finding (None when nothing is wrong).

    Kept for callers of the one-finding API; :func:`assess_settlement` returns
    every finding (an overlay adds its own beside the rule's).
    ``transactions`` maps lower-case hashes to records (see :func:`index_transactions`).
    """
    verdict, findings = assess_settlement(
        settlement,
        transactions=transactions,
        now=now,
        latest_ledger_close_time=latest_ledger_close_time,
        policy=policy,
        chain_status=chain_status,
        account_sequences=account_sequences,
    )
    return verdict, findings[0] if findings else None


def _summary(
    rule: _Rule,
    s: Settlement,
    *,
    now: datetime,
    policy: SettlementPolicy,
    retry: str,
    payouts: PayoutIndex | None,
    paid: bool = False,
) -> str:
    code = rule.code
    tx_hash = s.all_tx_hashes[0] if s.all_tx_hashes else None
    if code == "SETTLEMENT_CONFIRMED_NOT_RECORDED":
        if rule.severity is Severity.WARNING:
            return (
                f"tx {tx_hash} succeeded on chain while a worker holds the lease "
                f"(recorded {s.status}): it should record it as paid; if it does not before "
                "the lease expires, record it by hand; a replay would pay twice"
            )
        return (
            f"tx {tx_hash} succeeded on chain but the settlement is recorded as {s.status}: "
            "record it as paid; a replay would pay twice"
        )
    if code == "SETTLEMENT_TX_FAILED":
        return f"tx {tx_hash} failed on chain (recorded {s.status}, attempt {s.attempts}); {retry}"
    if code == "SETTLEMENT_DEAD_LETTERED":
        if rule.reason == "tx_failed":
            error = repr(s.last_error) if s.last_error else "not recorded"
            return (
                f"dead-lettered after {s.attempts} attempt(s); tx {tx_hash} failed on chain, "
                f"last_error {error}: fix the cause first, a replay fails the same way; {retry}"
            )
        return f"dead-lettered after {s.attempts} attempt(s); {retry}"
    if code == "SETTLEMENT_RETRIES_EXHAUSTED":
        return f"failed after {s.attempts} of {s.max_attempts} attempts; {retry}"
    if code == "SETTLEMENT_LEASE_EXPIRED":
        assert s.lease_until is not None
        expired = format_duration(now - s.lease_until)
        return f"worker lease expired {expired} ago while processing; {retry}"
    if code == "SETTLEMENT_STUCK_UNSUBMITTED":
        rests_on = ""
        if rule.reason == "never_submitted":
            if paid:
                checked = "but another payout paid it (SETTLEMENT_ALREADY_PAID)"
            elif payouts is not None:
                checked = "no payout for it in the payouts given"
            else:
                checked = "payouts not checked"
            rests_on = f"; no tx hash in the outbox; {checked}"
        return (
            f"no transaction {format_duration(now - s.created_at)} after creation "
            f"(threshold {format_duration(policy.unsubmitted_after)}){rests_on}; {retry}"
        )
    # SETTLEMENT_STUCK_UNCONFIRMED
    return (
        f"tx {tx_hash} not found on chain {format_duration(now - s.last_change)} after the last "
        f"update (threshold {format_duration(policy.unconfirmed_after)}); {retry}"
    )


def classify_settlements(
    settlements: Iterable[Settlement],
    *,
    transactions: Iterable[ChainTransaction] | Mapping[str, ChainTransaction] = (),
    now: datetime,
    latest_ledger_close_time: datetime | None = None,
    policy: SettlementPolicy = SettlementPolicy(),  # noqa: B008 - frozen value
    chain_status: ChainStatus | None = None,
    account_sequences: Mapping[str, int] | None = None,
    payouts: Iterable[Payout] | PayoutIndex | None = None,
) -> SettlementTriage:
    """A verdict per settlement (input order) and every finding about each.

    ``transactions``: what the chain says (ChainTransaction records, or a
    mapping of hash to record); ``now``: an aware UTC datetime;
    ``latest_ledger_close_time``: the close time of a ledger known to have
    closed; ``chain_status``: the chain grade (``"fail"`` blocks every retry);
    ``account_sequences``: current sequence number per source account;
    ``payouts``: the payouts export, or its :func:`index_payouts` (None: not
    checked; a ``never_submitted`` verdict then says so). Pure: see the module
    docstring for the rules, the overlays and their precedence.
    """
    index = index_transactions(transactions)
    payout_index = (
        payouts if payouts is None or isinstance(payouts, Mapping) else index_payouts(payouts)
    )
    verdicts: list[SettlementVerdict] = []
    findings: list[Finding] = []
    for settlement in settlements:
        verdict, found = assess_settlement(
            settlement,
            transactions=index,
            now=now,
            latest_ledger_close_time=latest_ledger_close_time,
            policy=policy,
            chain_status=chain_status,
            account_sequences=account_sequences,
            payouts=payout_index,
        )
        verdicts.append(verdict)
        findings.extend(found)
    return SettlementTriage(verdicts=tuple(verdicts), findings=tuple(findings))


def settlement_triage(
    settlements: Sequence[Settlement],
    *,
    transactions: Iterable[ChainTransaction] | Mapping[str, ChainTransaction] = (),
    now: datetime,
    policy: SettlementPolicy = SettlementPolicy(),  # noqa: B008 - frozen value
    context: SettlementContext = SettlementContext(),  # noqa: B008 - frozen value
) -> SettlementTriage:
    """The built-in settlement check, as registered with the plugin registry.

    Verdicts and findings in one classification pass; the chain grade, latest
    ledger close time, account sequences and payouts come from ``context``.
    """
    return classify_settlements(
        settlements,
        transactions=transactions,
        now=now,
        policy=policy,
        latest_ledger_close_time=context.latest_ledger_close_time,
        chain_status=context.chain_status,
        account_sequences=context.account_sequences,
        payouts=context.payout_index,  # indexed once per context, not once per batch
    )


def settlement_findings(
    settlements: Sequence[Settlement],
    *,
    transactions: Iterable[ChainTransaction] | Mapping[str, ChainTransaction] = (),
    now: datetime,
    policy: SettlementPolicy = SettlementPolicy(),  # noqa: B008 - frozen value
    context: SettlementContext = SettlementContext(),  # noqa: B008 - frozen value
) -> tuple[Finding, ...]:
    """The findings of :func:`settlement_triage` alone."""
    return settlement_triage(
        settlements, transactions=transactions, now=now, policy=policy, context=context
    ).findings


@hookimpl
def streampay_incident_register_settlement_checks() -> Sequence[Any]:
    """The built-in settlement rules are a plugin like any other."""
    return [settlement_triage]
