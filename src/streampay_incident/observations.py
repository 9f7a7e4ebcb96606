"""What Horizon and Stellar RPC endpoints said, as values: the chain observations.

The probes (:mod:`streampay_incident.probes`) build these from live answers or
a recording; the pure chain checks (:mod:`streampay_incident.checks.chain`)
grade them. Nothing here does I/O or imports httpx. The lenient readers
(:func:`as_int`, :func:`as_unix_time`, :func:`as_rfc3339`) read numbers and
times the way Stellar servers serve them: JSON numbers or decimal strings.
Over 400 lines as one thing: every value the probes hand to the checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

from .model import ChainTransaction
from .timefmt import from_unix, parse_rfc3339

EndpointKind = Literal["horizon", "rpc"]


Outcome = Literal[
    "ok", "unreachable", "http_error", "rate_limited", "bad_body", "rpc_error", "skipped"
]


@attrs.frozen
class CallObservation:
    """What one probe call said, in the terms the grader uses.

    ``ok`` answered as expected; ``unreachable`` no complete answer (refused,
    DNS, hung, trickled past the deadline); ``http_error`` a 5xx;
    ``rate_limited`` a 429 (``rate_limit`` holds Retry-After and
    X-RateLimit-*); ``bad_body`` an answer that is not the JSON expected (an
    HTML page from a proxy, a 4xx); ``rpc_error`` a JSON-RPC error object;
    ``skipped`` a call the endpoint does not offer (Horizon ``/health`` 404).
    """

    call: str
    outcome: Outcome
    status: int | None = None
    detail: str = ""
    rate_limit: Mapping[str, str] = attrs.field(factory=dict, eq=False, hash=False)
    rpc_error_code: int | None = None
    elapsed_seconds: float = 0.0
    attempts: int = 1


def as_int(value: Any, *, signed: bool = True) -> int | None:
    """An integer served as a JSON number or as a decimal string (older RPC servers), else None.

    The one int-or-string reader. ``signed=False`` refuses a leading ``-`` in a
    string (a JSON number keeps its sign either way).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if signed and text.startswith("-") else text
        if digits.isdigit() and len(digits) <= 40:  # int() of 4,301+ digits raises
            return int(text)
    return None


def as_unix_time(value: Any) -> datetime | None:
    """Unix seconds served as a number or a string (RPC close times), else None; 0 is None."""
    seconds = as_int(value)
    if seconds is None or seconds <= 0:
        return None
    try:
        return from_unix(seconds)
    except ValueError:
        return None


def as_rfc3339(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (Horizon ``*_at`` fields), else None."""
    if not isinstance(value, str):
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@attrs.frozen
class HorizonRoot:
    """The fields of Horizon's root document the grader uses."""

    network_passphrase: str
    history_latest_ledger: int
    history_latest_ledger_closed_at: datetime | None = None
    core_latest_ledger: int | None = None
    ingest_latest_ledger: int | None = None
    current_protocol_version: int | None = None
    core_supported_protocol_version: int | None = None
    horizon_version: str | None = None
    core_version: str | None = None

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> HorizonRoot:
        """Read a root document; ``ValueError`` when it is not one (no passphrase or ledger)."""
        passphrase = doc.get("network_passphrase")
        latest = as_int(doc.get("history_latest_ledger"))
        if not isinstance(passphrase, str) or latest is None:
            raise ValueError("not a Horizon root: no network_passphrase/history_latest_ledger")
        return cls(
            network_passphrase=passphrase,
            history_latest_ledger=latest,
            history_latest_ledger_closed_at=as_rfc3339(doc.get("history_latest_ledger_closed_at")),
            core_latest_ledger=as_int(doc.get("core_latest_ledger")),
            ingest_latest_ledger=as_int(doc.get("ingest_latest_ledger")),
            current_protocol_version=as_int(doc.get("current_protocol_version")),
            core_supported_protocol_version=as_int(doc.get("core_supported_protocol_version")),
            horizon_version=_opt_str(doc.get("horizon_version")),
            core_version=_opt_str(doc.get("core_version")),
        )

    @property
    def ingest_lag(self) -> int | None:
        """``core_latest_ledger - history_latest_ledger``: how far ingestion trails stellar-core."""
        if self.core_latest_ledger is None:
            return None
        return self.core_latest_ledger - self.history_latest_ledger


HealthFlag = Literal["database_connected", "core_up", "core_synced"]
HEALTH_FLAGS: tuple[HealthFlag, ...] = ("database_connected", "core_up", "core_synced")


@attrs.frozen
class HorizonHealth:
    """``GET /health``: HTTP 200 when healthy, 503 whenever any flag is false.

    A flag is None when the body did not say (a 503 from a proxy in front).
    """

    http_status: int
    database_connected: bool | None = None
    core_up: bool | None = None
    core_synced: bool | None = None

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None, *, http_status: int) -> HorizonHealth:
        """Read the flags; ``ValueError`` for a 200 answer that holds none of them."""
        flags = {name: (doc or {}).get(name) for name in HEALTH_FLAGS}
        values = {name: value for name, value in flags.items() if isinstance(value, bool)}
        if http_status == 200 and not values:
            raise ValueError("not a Horizon health document: no core_up/core_synced/... flags")
        return cls(http_status=http_status, **values)

    @property
    def failing(self) -> tuple[HealthFlag, ...]:
        """The flags that are false, in Horizon's order."""
        return tuple(name for name in HEALTH_FLAGS if getattr(self, name) is False)

    @property
    def healthy(self) -> bool:
        return self.http_status == 200 and not self.failing


@attrs.frozen
class HorizonFeeStats:
    """``GET /fee_stats``: what the last ledgers charged, against the base fee (stroops)."""

    last_ledger_base_fee: int
    fee_charged_p90: int
    fee_charged_p50: int | None = None
    last_ledger: int | None = None

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> HorizonFeeStats:
        """Read fee stats (values as strings or numbers); ``ValueError`` when not fee stats."""
        charged = doc.get("fee_charged")
        base = as_int(doc.get("last_ledger_base_fee"))
        p90 = as_int(charged.get("p90")) if isinstance(charged, dict) else None
        if base is None or p90 is None:
            raise ValueError("not Horizon fee stats: no last_ledger_base_fee/fee_charged.p90")
        return cls(
            last_ledger_base_fee=base,
            fee_charged_p90=p90,
            fee_charged_p50=as_int(charged.get("p50")) if isinstance(charged, dict) else None,
            last_ledger=as_int(doc.get("last_ledger")),
        )


@attrs.frozen
class HorizonObservation:
    """Everything one Horizon endpoint said in one probe round."""

    url: str
    calls: tuple[CallObservation, ...]
    root: HorizonRoot | None = None
    health: HorizonHealth | None = None
    fee_stats: HorizonFeeStats | None = None
    duration_seconds: float = 0.0

    @property
    def kind(self) -> Literal["horizon"]:
        return "horizon"

    @property
    def network_passphrase(self) -> str | None:
        return self.root.network_passphrase if self.root else None

    @property
    def latest_ledger(self) -> int | None:
        return self.root.history_latest_ledger if self.root else None

    @property
    def latest_ledger_close_time(self) -> datetime | None:
        return self.root.history_latest_ledger_closed_at if self.root else None

    @property
    def ingest_lag(self) -> int | None:
        return self.root.ingest_lag if self.root else None


@attrs.frozen
class RpcError:
    """A JSON-RPC error object."""

    code: int | None
    message: str

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RpcError:
        message = doc.get("message")
        return cls(code=as_int(doc.get("code")), message=str(message) if message else "")

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.code is not None else self.message


@attrs.frozen
class RpcHealth:
    """``getHealth`` result; the close times exist from stellar-rpc v27 on."""

    status: str
    latest_ledger: int | None = None
    latest_ledger_close_time: datetime | None = None
    oldest_ledger: int | None = None
    oldest_ledger_close_time: datetime | None = None
    ledger_retention_window: int | None = None

    @classmethod
    def from_json(cls, result: Mapping[str, Any]) -> RpcHealth:
        status = result.get("status")
        if not isinstance(status, str):
            raise ValueError("not a getHealth result: no status")
        return cls(
            status=status,
            latest_ledger=as_int(result.get("latestLedger")),
            latest_ledger_close_time=as_unix_time(result.get("latestLedgerCloseTime")),
            oldest_ledger=as_int(result.get("oldestLedger")),
            oldest_ledger_close_time=as_unix_time(result.get("oldestLedgerCloseTime")),
            ledger_retention_window=as_int(result.get("ledgerRetentionWindow")),
        )


@attrs.frozen
class RpcNetwork:
    """``getNetwork`` result."""

    passphrase: str
    protocol_version: int | None = None

    @classmethod
    def from_json(cls, result: Mapping[str, Any]) -> RpcNetwork:
        passphrase = result.get("passphrase")
        if not isinstance(passphrase, str):
            raise ValueError("not a getNetwork result: no passphrase")
        return cls(passphrase=passphrase, protocol_version=as_int(result.get("protocolVersion")))


@attrs.frozen
class RpcLatestLedger:
    """``getLatestLedger`` result (``closeTime`` only in newer servers)."""

    sequence: int
    close_time: datetime | None = None
    protocol_version: int | None = None

    @classmethod
    def from_json(cls, result: Mapping[str, Any]) -> RpcLatestLedger:
        sequence = as_int(result.get("sequence"))
        if sequence is None:
            raise ValueError("not a getLatestLedger result: no sequence")
        return cls(
            sequence=sequence,
            close_time=as_unix_time(result.get("closeTime")),
            protocol_version=as_int(result.get("protocolVersion")),
        )


@attrs.frozen
class RpcObservation:
    """Everything one Stellar RPC endpoint said in one probe round."""

    url: str
    calls: tuple[CallObservation, ...]
    health: RpcHealth | None = None
    health_error: RpcError | None = None
    network: RpcNetwork | None = None
    latest: RpcLatestLedger | None = None
    duration_seconds: float = 0.0

    @property
    def kind(self) -> Literal["rpc"]:
        return "rpc"

    @property
    def network_passphrase(self) -> str | None:
        return self.network.passphrase if self.network else None

    def _ledgers(self) -> list[tuple[int, datetime | None]]:
        seen: list[tuple[int, datetime | None]] = []
        if self.latest is not None:
            seen.append((self.latest.sequence, self.latest.close_time))
        if self.health is not None and self.health.latest_ledger is not None:
            seen.append((self.health.latest_ledger, self.health.latest_ledger_close_time))
        return seen

    @property
    def latest_ledger(self) -> int | None:
        """The highest ledger either call reported (they are asked at the same moment)."""
        return max((seq for seq, _ in self._ledgers()), default=None)

    @property
    def latest_ledger_close_time(self) -> datetime | None:
        """The close time of the newest ledger that came with one."""
        timed = [(seq, at) for seq, at in self._ledgers() if at is not None]
        return max(timed, key=lambda pair: pair[0])[1] if timed else None

    @property
    def ingest_lag(self) -> None:
        return None


EndpointObservation = HorizonObservation | RpcObservation


@attrs.frozen
class ChainObservations:
    """What every endpoint said in one probe round, in the order they were given."""

    endpoints: tuple[EndpointObservation, ...]

    def of_kind(self, kind: EndpointKind) -> tuple[EndpointObservation, ...]:
        return tuple(e for e in self.endpoints if e.kind == kind)


# --- what a live lookup for settlement triage learned ----------------------------------------


@attrs.frozen
class TransactionAnswer:
    """What one endpoint said about one hash."""

    endpoint: str
    transaction: ChainTransaction


@attrs.frozen
class SequenceAnswer:
    """One Horizon's current sequence number for one account."""

    endpoint: str
    account: str
    sequence: int


@attrs.frozen
class SettlementChainObservations:
    """Everything a live lookup learned: the chain round, per-endpoint tx and sequence answers."""

    chain: ChainObservations
    transactions: tuple[TransactionAnswer, ...]
    sequences: tuple[SequenceAnswer, ...]


@attrs.frozen
class SettlementChainFacts:
    """What the settlement classifier takes from a live lookup."""

    transactions: tuple[ChainTransaction, ...]
    account_sequences: Mapping[str, int]
    latest_ledger_close_time: datetime | None


# --- what paging the escrow's payments covered, and why it stopped ----------------------------


@attrs.frozen
class PagingCoverage:
    """What a paging run over the escrow's payments asked for and reached, as facts.

    ``asked_since``/``asked_until`` the bounds asked; ``covered_since`` where
    the endpoint's data starts when after ``asked_since``; ``covered_until``
    its latest ledger close time; ``reached`` the close time of the last
    record read; ``unverified`` True when the start of the data could not be
    checked; ``notes`` what the run noticed, for the report.
    """

    asked_since: datetime | None = None
    asked_until: datetime | None = None
    covered_since: datetime | None = None
    covered_until: datetime | None = None
    reached: datetime | None = None
    unverified: bool = False
    notes: tuple[str, ...] = ()


@attrs.frozen
class PagingStop:
    """Why paging had to stop: what the endpoint did, on which call.

    ``problem`` is ``unreachable`` (no complete answer), ``rate_limited``
    (HTTP 429; ``rate_limit`` holds Retry-After and X-RateLimit-*) or
    ``error`` (anything else not as expected); ``summary`` says it in a line.
    """

    endpoint: str
    call: str
    problem: Literal["unreachable", "rate_limited", "error"]
    summary: str
    url: str | None = None
    rate_limit: Mapping[str, str] = attrs.field(factory=dict, eq=False, hash=False)
