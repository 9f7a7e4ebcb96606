"""Stellar RPC: what ``getHealth``, ``getNetwork`` and ``getLatestLedger`` say, as values.

JSON-RPC 2.0 over POST: every reply is HTTP 200, so the body decides. A
``getHealth`` error (``-32603`` "latency ... too high", "data stores are not
initialized") is the server calling itself unhealthy. Numbers may come as
strings (older servers, SDK mocks); close times are unix seconds as strings,
and ``getHealth`` has them only from v27.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..observations import (
    CallObservation,
    RpcError,
    RpcHealth,
    RpcLatestLedger,
    RpcNetwork,
    RpcObservation,
)
from .http import (
    CallSpec,
    Exchange,
    bad_body,
    final_exchanges,
    json_object,
    ok,
    transport_outcome,
)


def rpc_request_body(method: str, request_id: int, params: Mapping[str, Any] | None = None) -> str:
    """A JSON-RPC 2.0 request, compact and in a stable key order (recordings diff cleanly)."""
    doc: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        doc["params"] = dict(params)
    return json.dumps(doc, separators=(",", ":"))


RPC_CALLS: tuple[CallSpec, ...] = (
    CallSpec("getHealth", "POST", body=rpc_request_body("getHealth", 1)),
    CallSpec("getNetwork", "POST", body=rpc_request_body("getNetwork", 2)),
    CallSpec("getLatestLedger", "POST", body=rpc_request_body("getLatestLedger", 3)),
)


_PARSERS: dict[str, Any] = {
    "getHealth": RpcHealth.from_json,
    "getNetwork": RpcNetwork.from_json,
    "getLatestLedger": RpcLatestLedger.from_json,
}


def rpc_reply(exchange: Exchange) -> tuple[CallObservation, Any, RpcError | None]:
    """Interpret one JSON-RPC exchange: (call observation, parsed result or None, error or None).

    ``result`` is returned as the raw mapping when the call has no parser here.
    """
    decided = transport_outcome(exchange)
    if decided is not None:
        return decided, None, None
    doc = json_object(exchange)
    if exchange.status != 200 or doc is None:
        return bad_body(exchange, "not a JSON-RPC reply"), None, None
    error = doc.get("error")
    if isinstance(error, dict):
        rpc_error = RpcError.from_json(error)
        call = CallObservation(
            call=exchange.call,
            outcome="rpc_error",
            status=exchange.status,
            detail=f"JSON-RPC error {rpc_error}",
            rpc_error_code=rpc_error.code,
            elapsed_seconds=exchange.elapsed_seconds,
            attempts=exchange.attempt,
        )
        return call, None, rpc_error
    result = doc.get("result")
    if not isinstance(result, dict):
        return bad_body(exchange, "JSON-RPC reply with neither result nor error"), None, None
    parser = _PARSERS.get(exchange.call)
    if parser is None:
        return ok(exchange), result, None
    try:
        return ok(exchange), parser(result), None
    except ValueError as exc:
        return bad_body(exchange, str(exc)), None, None


def rpc_observation(
    url: str, exchanges: Iterable[Exchange], *, duration_seconds: float
) -> RpcObservation:
    """Interpret one RPC endpoint's exchanges (the last attempt of each call stands). Pure."""
    final = final_exchanges(exchanges)
    calls: list[CallObservation] = []
    parsed: dict[str, Any] = {}
    health_error: RpcError | None = None
    for spec in RPC_CALLS:
        exchange = final.get(spec.call)
        if exchange is None:
            continue
        call, result, error = rpc_reply(exchange)
        calls.append(call)
        parsed[spec.call] = result
        if spec.call == "getHealth" and error is not None:
            health_error = error
    return RpcObservation(
        url=url,
        calls=tuple(calls),
        health=parsed.get("getHealth"),
        health_error=health_error,
        network=parsed.get("getNetwork"),
        latest=parsed.get("getLatestLedger"),
        duration_seconds=duration_seconds,
    )
