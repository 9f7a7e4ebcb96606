"""The values the checks take and return.

Frozen, slotted attrs classes with dumb ``__init__``s. Building them from
outside shapes (CSV rows, JSON, Horizon and RPC bodies) is the job of the
parsers in :mod:`streampay_incident.io` and :mod:`streampay_incident.probes`;
nothing here reads a file, a socket, the clock or the environment.

Conventions: amounts are ``int`` stroops; times are aware UTC datetimes;
tx hashes are lower-case 64-hex strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

import attrs

from .codes import Severity, lookup

PayoutStatus = Literal["pending", "submitted", "confirmed", "failed"]
SettlementStatus = Literal["pending", "processing", "succeeded", "failed", "dead"]
MemoType = Literal["none", "text", "id", "hash", "return"]
ChainTxStatus = Literal["success", "failed", "not_found", "unknown"]
SettlementState = Literal["settled", "failed", "stuck", "in_flight"]


@attrs.frozen
class Asset:
    """``native`` (XLM), or a credit asset ``CODE:ISSUER``."""

    code: str
    issuer: str | None = None

    @property
    def is_native(self) -> bool:
        return self.issuer is None

    def __str__(self) -> str:
        return "native" if self.issuer is None else f"{self.code}:{self.issuer}"


NATIVE = Asset("XLM")


@attrs.frozen
class Memo:
    """A Stellar memo. ``value`` is bytes for text/hash/return, int for id, None for none.

    Two memos are the same memo when type and value are equal: text as exact
    bytes, id as a number, hash/return as 32 bytes.
    """

    type: MemoType = "none"
    value: bytes | int | None = None

    @property
    def is_empty(self) -> bool:
        return self.type == "none" or self.value in (None, b"")


NO_MEMO = Memo()


@attrs.frozen
class Payout:
    """One row of StreamPay's payout export."""

    payout_id: str
    settlement_id: str
    destination: str
    asset: Asset
    amount: int
    status: PayoutStatus
    created_at: datetime
    tx_hash: str | None = None
    memo: Memo = NO_MEMO
    idempotency_key: str | None = None
    ledger: int | None = None

    @property
    def is_transfer(self) -> bool:
        """A row that moved (or may have moved) money: submitted or confirmed."""
        return self.status in ("submitted", "confirmed")

    @property
    def transfer_key(self) -> str:
        """Transfers are told apart by tx hash, else by payout_id."""
        return f"tx:{self.tx_hash}" if self.tx_hash else f"payout:{self.payout_id}"


@attrs.frozen
class Settlement:
    """One row of StreamPay's ``settlement_outbox``.

    ``tx_hashes`` holds every hash that identifies the settlement's
    transaction (a fee-bump has an outer and an inner hash); ``tx_hash`` is
    the one StreamPay recorded. ``tx_max_time`` is None when unknown, absent
    or 0 (no upper time bound on Stellar). ``source_account`` and
    ``sequence`` come from the envelope when it was given.
    """

    settlement_id: str
    status: SettlementStatus
    created_at: datetime
    updated_at: datetime | None = None
    attempts: int = 0
    max_attempts: int = 8
    lease_until: datetime | None = None
    tx_hash: str | None = None
    tx_hashes: tuple[str, ...] = ()
    tx_max_time: datetime | None = None
    source_account: str | None = None
    sequence: int | None = None
    last_error: str | None = None
    available_at: datetime | None = None

    @property
    def all_tx_hashes(self) -> tuple[str, ...]:
        hashes = list(self.tx_hashes)
        if self.tx_hash and self.tx_hash not in hashes:
            hashes.insert(0, self.tx_hash)
        return tuple(hashes)

    @property
    def last_change(self) -> datetime:
        return self.updated_at or self.created_at


@attrs.frozen
class ChainTransaction:
    """What the chain says about one transaction hash.

    ``hashes`` holds every hash the record answers to (outer and inner for a
    fee-bump). ``status`` is ``unknown`` when the lookup could not tell (timed
    out, Horizon ``410 before_history``, RPC retention window passed).
    ``oldest_ledger_close_time``: for an RPC ``NOT_FOUND``, the start of the
    RPC's retention window (a transaction older than that may exist unseen).
    """

    hash: str
    status: ChainTxStatus
    hashes: tuple[str, ...] = ()
    ledger: int | None = None
    closed_at: datetime | None = None
    oldest_ledger_close_time: datetime | None = None
    source: str = "input"

    @property
    def all_hashes(self) -> tuple[str, ...]:
        return (self.hash, *(h for h in self.hashes if h != self.hash))


@attrs.frozen
class Finding:
    """One thing wrong, with the records that show it and the runbook to follow."""

    code: str
    severity: Severity
    subject: str
    summary: str
    evidence: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False)
    runbook: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "subject": self.subject,
            "summary": self.summary,
            "evidence": dict(self.evidence),
            "runbook": self.runbook,
        }


def make_finding(
    code: str,
    subject: str,
    summary: str,
    evidence: Mapping[str, Any] | None = None,
    *,
    severity: Severity | None = None,
) -> Finding:
    """A finding for a declared code, with its default severity and runbook link."""
    declared = lookup(code)
    return Finding(
        code=code,
        severity=severity or declared.severity,
        subject=subject,
        summary=summary,
        evidence=dict(evidence or {}),
        runbook=declared.runbook,
    )


@attrs.frozen
class SettlementVerdict:
    """The triage of one settlement: its state and whether a retry is provably safe."""

    settlement_id: str
    state: SettlementState
    retry_safe: bool
    retry_reason: str
    code: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "settlement_id": self.settlement_id,
            "state": self.state,
            "retry_safe": self.retry_safe,
            "retry_reason": self.retry_reason,
        }


@attrs.frozen
class SettlementTriage:
    """What :func:`classify_settlements` returns: a verdict per settlement and the findings."""

    verdicts: tuple[SettlementVerdict, ...]
    findings: tuple[Finding, ...]


@attrs.frozen
class PayoutPolicy:
    """Knobs of the payout rules."""

    repeat_window: timedelta = timedelta(minutes=10)


@attrs.frozen
class SettlementPolicy:
    """Thresholds of the settlement rules ("older than" is strictly greater)."""

    unsubmitted_after: timedelta = timedelta(minutes=30)
    unconfirmed_after: timedelta = timedelta(minutes=5)


Status = Literal["pass", "warn", "fail"]


def status_from_findings(findings: tuple[Finding, ...] | list[Finding]) -> Status:
    """Any critical -> ``fail``; any warning -> ``warn``; else ``pass``."""
    worst = max((f.severity for f in findings), default=Severity.INFO)
    if worst is Severity.CRITICAL:
        return "fail"
    if worst is Severity.WARNING:
        return "warn"
    return "pass"


@attrs.frozen
class Report:
    """Everything one command found, ready to render as text, JSON or Markdown."""

    command: str
    findings: tuple[Finding, ...]
    generated_at: datetime
    inputs: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False)
    settlements: tuple[SettlementVerdict, ...] | None = None
    status: Status | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False)

    @property
    def overall(self) -> Status:
        return self.status or status_from_findings(self.findings)
