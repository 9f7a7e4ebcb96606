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
from datetime import datetime
from typing import Any, Literal

import attrs

from .http import (
    CallObservation,
    CallSpec,
    Exchange,
    as_int,
    as_unix_time,
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
