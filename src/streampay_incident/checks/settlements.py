"""Settlement triage: is each settlement settled, failed, stuck or in flight, and is a
retry provably safe?

A pure function of the settlements, what the chain says about their
transactions, ``now`` and (optionally) the close time of a ledger that closed,
the chain grade and the source accounts' current sequence numbers. A blind
retry of a transaction that can still land is how double payouts happen, so
``retry_safe`` is true only with a proof: one of ``never_submitted``,
``tx_failed``, ``tx_expired``, ``sequence_consumed``.

What the chain says about a settlement (over all its hashes: the recorded
hash, and outer and inner hash of a fee-bump; compared lower-case):

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

Rules (pinned; first match wins; "older than" is strictly greater):

1. found successful -> ``settled``, retry false/``tx_landed``; when the status
   is not ``succeeded``: ``SETTLEMENT_CONFIRMED_NOT_RECORDED``, critical when
   the status is ``dead`` or ``failed`` (a replay would pay twice), else warning.
2. found failed -> ``failed``, ``SETTLEMENT_TX_FAILED``, retry true/``tx_failed``.
3. status ``succeeded`` -> ``settled``, retry false/``recorded_succeeded``.
4. status ``dead`` -> ``stuck``, ``SETTLEMENT_DEAD_LETTERED``.
5. status ``failed`` and attempts >= max_attempts -> ``stuck``, ``SETTLEMENT_RETRIES_EXHAUSTED``.
6. status ``processing`` and ``lease_until`` < now -> ``stuck``, ``SETTLEMENT_LEASE_EXPIRED``.
7. no tx hash, older than ``unsubmitted_after`` (from ``created_at``) ->
   ``stuck``, ``SETTLEMENT_STUCK_UNSUBMITTED``.
8. a tx hash not found, older than ``unconfirmed_after`` (from ``updated_at``,
   else ``created_at``) -> ``stuck``, ``SETTLEMENT_STUCK_UNCONFIRMED``.
9. otherwise -> ``in_flight``, retry false/``in_flight``.

Chain outage: when ``chain_status`` is ``"fail"``, a settlement that rule 7 or 8
would report is reported as ``SETTLEMENT_CHAIN_BLOCKED`` (warning, state
``stuck``) with retry false/``chain_unhealthy``, whatever the retry verdict
would have been: never retry into an outage. Rules 1-6 are unchanged.

Retry safety of a ``stuck`` settlement (first match wins):

a. no tx hash: status ``pending`` -> true/``never_submitted``; else
   false/``unknown_submission`` (it may have been submitted without a record).
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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from ..codes import Severity
from ..hookspecs import hookimpl
from ..model import (
    ChainTransaction,
    Finding,
    Settlement,
    SettlementPolicy,
    SettlementState,
    SettlementTriage,
    SettlementVerdict,
    make_finding,
)
from ..timefmt import format_duration, format_rfc3339

ChainStatus = Literal["pass", "warn", "fail"]
ChainAnswer = Literal["success", "failed", "unknown", "not_found"]

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
}


class TransactionIndex(dict[str, ChainTransaction]):
    """Lower-case tx hash -> what the chain says, plus what the chain said when asked.

    This is the ``transactions`` mapping settlement checks receive through
    ``streampay_incident_register_settlement_checks``. Besides the records it
    carries the latest closed ledger's close time, the chain grade and the
    source accounts' sequence numbers, so the built-in check reaches the same
    verdicts as :func:`classify_settlements` while third-party checks see a
    plain mapping.
    """

    __slots__ = ("account_sequences", "chain_status", "latest_ledger_close_time")

    def __init__(
        self,
        transactions: Iterable[ChainTransaction] | Mapping[str, ChainTransaction] = (),
        *,
        latest_ledger_close_time: datetime | None = None,
        chain_status: ChainStatus | None = None,
        account_sequences: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.latest_ledger_close_time = latest_ledger_close_time
        self.chain_status = chain_status
        self.account_sequences = account_sequences
        if isinstance(transactions, Mapping):
            for key, tx in transactions.items():
                self._add(str(key).lower(), tx)
                for tx_hash in tx.all_hashes:
                    self._add(tx_hash.lower(), tx)
        else:
            for tx in transactions:
                for tx_hash in tx.all_hashes:
                    self._add(tx_hash.lower(), tx)

    def _add(self, tx_hash: str, tx: ChainTransaction) -> None:
        current = self.get(tx_hash)
        if current is None or _strength(tx) > _strength(current):
            self[tx_hash] = tx


def _strength(tx: ChainTransaction) -> tuple[int, float]:
    if tx.status == "success":
        return (4, 0.0)
    if tx.status == "failed":
        return (3, 0.0)
    if tx.status == "unknown":
        return (2, 0.0)
    if tx.oldest_ledger_close_time is None:  # Horizon 404: no retention window
        return (1, math.inf)
    return (1, -tx.oldest_ledger_close_time.timestamp())  # the longer window knows more


def index_transactions(
    transactions: Iterable[ChainTransaction] | Mapping[str, ChainTransaction],
) -> TransactionIndex:
    """Every hash each transaction answers to (lower-case) -> the strongest record."""
    if isinstance(transactions, TransactionIndex):
        return transactions
    return TransactionIndex(transactions)


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
        if settlement.status == "pending":
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


def _evidence(
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
    """The verdict for one settlement and its finding (None when nothing is wrong).

    ``transactions`` maps lower-case hashes to records (see :func:`index_transactions`).
    """
    s = settlement
    answer = _chain_answer(s, transactions)
    code: str | None = None
    severity: Severity | None = None
    state: SettlementState
    tx_hash = s.all_tx_hashes[0] if s.all_tx_hashes else None
    if answer == "success":
        state, retry_safe, reason = "settled", False, "tx_landed"
        if s.status != "succeeded":
            code = "SETTLEMENT_CONFIRMED_NOT_RECORDED"
            if s.status in ("dead", "failed"):
                severity = Severity.CRITICAL
    elif answer == "failed":
        state, retry_safe, reason = "failed", True, "tx_failed"
        code = "SETTLEMENT_TX_FAILED"
    elif s.status == "succeeded":
        state, retry_safe, reason = "settled", False, "recorded_succeeded"
    else:
        if s.status == "dead":
            code = "SETTLEMENT_DEAD_LETTERED"
        elif s.status == "failed" and s.attempts >= s.max_attempts:
            code = "SETTLEMENT_RETRIES_EXHAUSTED"
        elif s.status == "processing" and s.lease_until is not None and s.lease_until < now:
            code = "SETTLEMENT_LEASE_EXPIRED"
        elif tx_hash is None and now - s.created_at > policy.unsubmitted_after:
            code = "SETTLEMENT_STUCK_UNSUBMITTED"
        elif tx_hash is not None and now - s.last_change > policy.unconfirmed_after:
            code = "SETTLEMENT_STUCK_UNCONFIRMED"
        if code is None:
            state, retry_safe, reason = "in_flight", False, "in_flight"
        elif chain_status == "fail" and code in (
            "SETTLEMENT_STUCK_UNSUBMITTED",
            "SETTLEMENT_STUCK_UNCONFIRMED",
        ):
            code = "SETTLEMENT_CHAIN_BLOCKED"
            state, retry_safe, reason = "stuck", False, "chain_unhealthy"
        else:
            state = "stuck"
            retry_safe, reason = _retry_safety(
                s,
                answer,
                now=now,
                latest_ledger_close_time=latest_ledger_close_time,
                account_sequences=account_sequences,
            )
    verdict = SettlementVerdict(
        settlement_id=s.settlement_id,
        state=state,
        retry_safe=retry_safe,
        retry_reason=reason,
        code=code,
    )
    if code is None:
        return verdict, None
    evidence = _evidence(
        s,
        answer,
        now=now,
        latest_ledger_close_time=latest_ledger_close_time,
        account_sequences=account_sequences,
        chain_status=chain_status,
        retry_safe=retry_safe,
        retry_reason=reason,
    )
    summary = _summary(code, s, tx_hash, now=now, policy=policy, retry=(retry_safe, reason))
    return verdict, make_finding(code, s.settlement_id, summary, evidence, severity=severity)


def _summary(
    code: str,
    s: Settlement,
    tx_hash: str | None,
    *,
    now: datetime,
    policy: SettlementPolicy,
    retry: tuple[bool, str],
) -> str:
    retry_text = _retry_text(*retry)
    if code == "SETTLEMENT_CONFIRMED_NOT_RECORDED":
        return (
            f"tx {tx_hash} succeeded on chain but the settlement is recorded as {s.status}: "
            "record it as paid; a replay would pay twice"
        )
    if code == "SETTLEMENT_TX_FAILED":
        return (
            f"tx {tx_hash} failed on chain (recorded {s.status}, attempt {s.attempts}); "
            f"{retry_text}"
        )
    if code == "SETTLEMENT_DEAD_LETTERED":
        return f"dead-lettered after {s.attempts} attempt(s); {retry_text}"
    if code == "SETTLEMENT_RETRIES_EXHAUSTED":
        return f"failed after {s.attempts} of {s.max_attempts} attempts; {retry_text}"
    if code == "SETTLEMENT_LEASE_EXPIRED":
        assert s.lease_until is not None
        return (
            f"worker lease expired {format_duration(now - s.lease_until)} ago while processing; "
            f"{retry_text}"
        )
    if code == "SETTLEMENT_STUCK_UNSUBMITTED":
        return (
            f"no transaction {format_duration(now - s.created_at)} after creation "
            f"(threshold {format_duration(policy.unsubmitted_after)}); {retry_text}"
        )
    if code == "SETTLEMENT_STUCK_UNCONFIRMED":
        return (
            f"tx {tx_hash} not found on chain {format_duration(now - s.last_change)} after the "
            f"last update (threshold {format_duration(policy.unconfirmed_after)}); {retry_text}"
        )
    # SETTLEMENT_CHAIN_BLOCKED
    what = f"tx {tx_hash} unconfirmed" if tx_hash else "not submitted"
    return f"{what} while the chain grade is fail: do NOT retry into an outage (chain_unhealthy)"


def classify_settlements(
    settlements: Iterable[Settlement],
    *,
    transactions: Iterable[ChainTransaction] | Mapping[str, ChainTransaction] = (),
    now: datetime,
    latest_ledger_close_time: datetime | None = None,
    policy: SettlementPolicy = SettlementPolicy(),  # noqa: B008 - frozen value
    chain_status: ChainStatus | None = None,
    account_sequences: Mapping[str, int] | None = None,
) -> SettlementTriage:
    """A verdict per settlement (input order) and a finding per settlement that needs one.

    ``transactions``: what the chain says (ChainTransaction records, or a
    mapping of hash to record); ``now``: an aware UTC datetime;
    ``latest_ledger_close_time``: the close time of a ledger known to have
    closed; ``chain_status``: the chain grade (``"fail"`` blocks retries of
    stuck-unsubmitted/unconfirmed settlements); ``account_sequences``: current
    sequence number per source account. Pure: see the module docstring for the
    rules and their precedence.
    """
    index = index_transactions(transactions)
    verdicts: list[SettlementVerdict] = []
    findings: list[Finding] = []
    for settlement in settlements:
        verdict, finding = classify_settlement(
            settlement,
            transactions=index,
            now=now,
            latest_ledger_close_time=latest_ledger_close_time,
            policy=policy,
            chain_status=chain_status,
            account_sequences=account_sequences,
        )
        verdicts.append(verdict)
        if finding is not None:
            findings.append(finding)
    return SettlementTriage(verdicts=tuple(verdicts), findings=tuple(findings))


def settlement_findings(
    settlements: Sequence[Settlement],
    *,
    transactions: Iterable[ChainTransaction] | Mapping[str, ChainTransaction] = (),
    now: datetime,
    policy: SettlementPolicy = SettlementPolicy(),  # noqa: B008 - frozen value
) -> tuple[Finding, ...]:
    """The built-in settlement check, as registered with the plugin registry.

    When ``transactions`` is a :class:`TransactionIndex` its latest ledger
    close time, chain grade and account sequences are used too.
    """
    return classify_settlements(
        settlements,
        transactions=transactions,
        now=now,
        policy=policy,
        latest_ledger_close_time=getattr(transactions, "latest_ledger_close_time", None),
        chain_status=getattr(transactions, "chain_status", None),
        account_sequences=getattr(transactions, "account_sequences", None),
    ).findings


@hookimpl
def streampay_incident_register_settlement_checks() -> Sequence[Any]:
    """The built-in settlement rules are a plugin like any other."""
    return [settlement_findings]
