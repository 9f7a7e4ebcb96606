"""Horizon: what ``GET /``, ``GET /health`` and ``GET /fee_stats`` say, as values.

The request list is :data:`HORIZON_CALLS`; :func:`horizon_observation` turns
the answers (live or replayed from a recording) into a
:class:`HorizonObservation` for the grader. Both shapes found in the wild are
read: numbers as JSON numbers or strings, roots with and without
``history_latest_ledger_closed_at`` (Horizon before 2.x lacks it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

from .http import (
    READ_RETRY,
    CallObservation,
    CallSpec,
    Exchange,
    as_int,
    as_rfc3339,
    bad_body,
    final_exchanges,
    json_object,
    ok,
    transport_outcome,
)

# A 503 on /health is the answer itself (Horizon says it is unhealthy), not a fault to retry.
_HEALTH_RETRY = attrs.evolve(READ_RETRY, statuses=frozenset({502, 504}))

HORIZON_CALLS: tuple[CallSpec, ...] = (
    CallSpec("root", "GET", ""),
    CallSpec("health", "GET", "health", retry=_HEALTH_RETRY),
    CallSpec("fee_stats", "GET", "fee_stats"),
)


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


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _root(exchange: Exchange) -> tuple[CallObservation, HorizonRoot | None]:
    decided = transport_outcome(exchange)
    if decided is not None:
        return decided, None
    doc = json_object(exchange)
    if exchange.status != 200 or doc is None:
        return bad_body(exchange, "not a Horizon root document"), None
    try:
        return ok(exchange), HorizonRoot.from_json(doc)
    except ValueError as exc:
        return bad_body(exchange, str(exc)), None


def _health(exchange: Exchange) -> tuple[CallObservation, HorizonHealth | None]:
    if exchange.status == 404:
        # An old Horizon, or a proxy that does not route /health: nothing to say.
        return attrs.evolve(ok(exchange), outcome="skipped", detail="HTTP 404"), None
    if exchange.status == 503:
        # The unhealthy answer itself (flags in the body when Horizon wrote it).
        return ok(exchange), HorizonHealth.from_json(json_object(exchange), http_status=503)
    decided = transport_outcome(exchange)
    if decided is not None:
        return decided, None
    doc = json_object(exchange)
    if exchange.status != 200 or doc is None:
        return bad_body(exchange, "not a Horizon health document"), None
    try:
        return ok(exchange), HorizonHealth.from_json(doc, http_status=200)
    except ValueError as exc:
        return bad_body(exchange, str(exc)), None


def _fee_stats(exchange: Exchange) -> tuple[CallObservation, HorizonFeeStats | None]:
    if exchange.status == 404:
        # Fee stats only inform the surge warning; a proxy that hides them is not an outage.
        return attrs.evolve(ok(exchange), outcome="skipped", detail="HTTP 404"), None
    decided = transport_outcome(exchange)
    if decided is not None:
        return decided, None
    doc = json_object(exchange)
    if exchange.status != 200 or doc is None:
        return bad_body(exchange, "not Horizon fee stats"), None
    try:
        return ok(exchange), HorizonFeeStats.from_json(doc)
    except ValueError as exc:
        return bad_body(exchange, str(exc)), None


def horizon_observation(
    url: str, exchanges: Iterable[Exchange], *, duration_seconds: float
) -> HorizonObservation:
    """Interpret one Horizon endpoint's exchanges (the last attempt of each call stands).

    Pure: the same exchanges, live or replayed, give the same observation.
    Calls with no exchange at all are left out (the caller fills in deadline
    exchanges for calls that never answered).
    """
    final = final_exchanges(exchanges)
    calls: list[CallObservation] = []
    root = health = fee_stats = None
    if "root" in final:
        call, root = _root(final["root"])
        calls.append(call)
    if "health" in final:
        call, health = _health(final["health"])
        calls.append(call)
    if "fee_stats" in final:
        call, fee_stats = _fee_stats(final["fee_stats"])
        calls.append(call)
    return HorizonObservation(
        url=url,
        calls=tuple(calls),
        root=root,
        health=health,
        fee_stats=fee_stats,
        duration_seconds=duration_seconds,
    )
