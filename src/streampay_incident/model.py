"""The values the checks take and return. (Over 400 lines as one thing: every value type
of the core, in one place so that no layer imports another for a type.)

Frozen, slotted attrs classes with dumb ``__init__``s. Building them from
outside shapes (CSV rows, JSON, Horizon and RPC bodies) is the job of the
parsers in :mod:`streampay_incident.io` and :mod:`streampay_incident.probes`;
nothing here reads a file, a socket, the clock or the environment.

Conventions: amounts are ``int`` stroops; times are aware UTC datetimes;
tx hashes are lower-case 64-hex strings.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, get_args

import attrs

from .codes import Severity, lookup

if TYPE_CHECKING:
    from .observations import PagingStop
from .timefmt import format_rfc3339

PayoutStatus = Literal["pending", "submitted", "confirmed", "failed"]
SettlementStatus = Literal["pending", "processing", "succeeded", "failed", "dead"]
MemoType = Literal["none", "text", "id", "hash", "return"]
ChainTxStatus = Literal["success", "failed", "not_found", "unknown"]
SettlementState = Literal["settled", "failed", "stuck", "in_flight", "backing_off"]
#: What on-call does about one settlement (``none``: settled, nothing wrong).
SettlementAction = Literal["retry", "do_not_retry", "wait", "investigate", "none"]


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

    ``network_hashes`` holds, when the envelope was given, its hash(es) under
    each well-known network (``(("public", (...)), ("testnet", (...)),
    ("futurenet", (...)))``): a chain record matching another network's hash
    shows the envelope was signed for that network. ``available_at`` is when
    StreamPay's worker may next pick the row up (its backoff); ``event_key``
    is StreamPay's idempotency key for the settlement, when the export has one.

    ``payer`` (the escrow or source account), ``destination``, ``asset`` and
    ``amount`` (int stroops) are what the settlement pays, when the export (the
    outbox payload) says: the submission search looks for that transfer.
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
    network_hashes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    event_key: str | None = None
    payer: str | None = None
    destination: str | None = None
    asset: Asset | None = None
    amount: int | None = None

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
    ``detail``: for ``unknown``, why the lookup could not tell (refused,
    timeout, HTTP 503, ...), for the report's endpoint list.
    """

    hash: str
    status: ChainTxStatus
    hashes: tuple[str, ...] = ()
    ledger: int | None = None
    closed_at: datetime | None = None
    oldest_ledger_close_time: datetime | None = None
    source: str = "input"
    detail: str = attrs.field(default="", eq=False)

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
    """The triage of one settlement: its state, whether a retry is provably safe, and
    what on-call does about it.

    ``code`` is the code of its first finding (the decision table's own, else an
    overlay's); ``codes`` every code of its findings, in report order.
    """

    settlement_id: str
    state: SettlementState
    retry_safe: bool
    retry_reason: str
    code: str | None = None
    action: SettlementAction = "investigate"
    codes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "settlement_id": self.settlement_id,
            "state": self.state,
            "retry_safe": self.retry_safe,
            "retry_reason": self.retry_reason,
            "action": self.action,
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


@attrs.frozen
class SettlementContext:
    """What the chain said when it was asked, besides the transaction records.

    Given to settlement checks (the ``context`` keyword of
    ``streampay_incident_register_settlement_checks``). Each part is None when
    unknown: ``chain_status`` the chain grade (``pass``/``warn``/``fail``),
    ``latest_ledger_close_time`` the close time of a ledger known to have
    closed (the only proof that a max time has passed), ``account_sequences``
    each source account's current sequence number, ``payouts`` the payouts
    export to check for a settlement already paid (None: not checked).
    """

    chain_status: Status | None = None
    latest_ledger_close_time: datetime | None = None
    account_sequences: Mapping[str, int] | None = None
    payouts: tuple[Payout, ...] | None = None

    @functools.cached_property
    def payout_index(self) -> Mapping[str, Sequence[Payout]] | None:
        """:func:`index_payouts` of ``payouts``, built once per context (a triage run a
        batch at a time asks for it per batch); None when no payouts were given."""
        return None if self.payouts is None else index_payouts(self.payouts)


def index_payouts(payouts: Iterable[Payout]) -> dict[str, list[Payout]]:
    """Settlement id and idempotency key -> the payouts that name it (a payout under both
    keys once per key): what the settlement checks look a settlement's payouts up in."""
    index: dict[str, list[Payout]] = defaultdict(list)
    for payout in payouts:
        index[payout.settlement_id].append(payout)
        key = payout.idempotency_key
        if key is not None and key != payout.settlement_id:
            index[key].append(payout)
    return dict(index)


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


PaymentKind = Literal[
    "payment",
    "path_payment_strict_send",
    "path_payment_strict_receive",
    "create_account",
    "account_merge",
    "invoke_host_function",
    "sac_transfer",
    "sac_burn",
    "sac_clawback",
]

PAYMENT_KINDS: tuple[str, ...] = get_args(PaymentKind)


@attrs.frozen
class ChainPayment:
    """One movement of money on chain, as Horizon or Stellar RPC reported it.

    ``tx_hash`` is the hash the record was listed under (lower-case hex);
    ``hashes`` every hash of that transaction (outer and inner for a
    fee-bump). ``from_account`` is the paying account or contract (``G...`` /
    ``C...``); ``to_account`` the destination exactly as the chain gives it,
    muxed ``M...`` kept. ``amount`` is int stroops of ``asset`` that reached
    the destination, or None when the record does not say (Horizon
    ``account_merge``). Path payments also carry what the source sent.
    ``operation_id`` is the Horizon operation id or the RPC event id.
    """

    tx_hash: str
    successful: bool
    from_account: str
    to_account: str
    asset: Asset
    amount: int | None
    kind: PaymentKind
    hashes: tuple[str, ...] = ()
    memo: Memo = NO_MEMO
    ledger: int | None = None
    closed_at: datetime | None = None
    operation_id: str | None = None
    source_asset: Asset | None = None
    source_amount: int | None = None

    @property
    def all_hashes(self) -> tuple[str, ...]:
        """The listed hash first, then the others, all lower-case, no repeats."""
        out: list[str] = []
        for h in (self.tx_hash, *self.hashes):
            h = h.lower()
            if h and h not in out:
                out.append(h)
        return tuple(out)


@attrs.frozen
class CoverageWindow:
    """The time span the chain data covers; None bounds are open.

    ``complete`` is False when the source could not cover what was asked (an
    RPC retention window that starts after ``--since``, paging cut short by
    the deadline); ``note`` says why, for the report. ``failed_endpoint`` and
    ``failure`` name the endpoint that failed and its error (refused, timeout,
    HTTP status) when the source itself failed.
    """

    since: datetime | None = None
    until: datetime | None = None
    complete: bool = True
    note: str = ""
    failed_endpoint: str | None = None
    failure: str | None = None

    def contains(self, moment: datetime | None) -> bool:
        """True when ``moment`` is inside the window (an unknown moment counts as inside)."""
        if moment is None:
            return True
        if self.since is not None and moment < self.since:
            return False
        return not (self.until is not None and moment > self.until)

    def to_json(self) -> dict[str, Any]:
        return {
            "since": format_rfc3339(self.since) if self.since else None,
            "until": format_rfc3339(self.until) if self.until else None,
            "complete": self.complete,
            "note": self.note,
            **(
                {"failed_endpoint": self.failed_endpoint, "failure": self.failure}
                if self.failed_endpoint is not None
                else {}
            ),
        }


@attrs.frozen
class EscrowObservation:
    """What a chain source (a file, Horizon, Stellar RPC) said left ``escrow``.

    ``source`` names it for the report (the file or the URL); ``window`` is the
    span it covers; ``stop`` why live paging stopped early (an endpoint that
    misbehaved), None for a file or a run that finished;
    ``network_passphrase`` the network the endpoint reported (None for a file).
    """

    escrow: str
    source: str
    payments: tuple[ChainPayment, ...]
    window: CoverageWindow
    stop: PagingStop | None = None
    network_passphrase: str | None = None
    kind: str | None = None  # "horizon" or "rpc" for a live source, None for a file
