"""Horizon: what ``GET /``, ``GET /health`` and ``GET /fee_stats`` say, as values.

The request list is :data:`HORIZON_CALLS`; :func:`horizon_observation` turns
the answers (live or replayed from a recording) into a
:class:`HorizonObservation` for the grader. Both shapes found in the wild are
read: numbers as JSON numbers or strings, roots with and without
``history_latest_ledger_closed_at`` (Horizon before 2.x lacks it).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ..observations import (
    CallObservation,
    HorizonFeeStats,
    HorizonHealth,
    HorizonObservation,
    HorizonRoot,
)
from .http import (
    READ_RETRY,
    CallSpec,
    Exchange,
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
