"""Chain probes: ask Horizon and Stellar RPC endpoints how they are, under one deadline.

The imperative shell of chain health. :func:`observe_chain` sends every
request of a round concurrently through one shared httpx client, turns the
answers into observation values and never raises on a network fault: a hung,
trickling, refusing, rate-limiting or lying endpoint becomes an observation the
pure grader (:func:`streampay_incident.checks.chain.grade_chain`) reports on.
The whole round is bounded by ``ChainConfig.timeout``: twenty hung endpoints
answer in about that long, not twenty times it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs

from ..logevents import log_event
from ..observations import ChainObservations, EndpointKind, EndpointObservation
from .horizon import HORIZON_CALLS, HorizonObservation, horizon_observation
from .http import CallSpec, Deadline, Exchange, ExchangeSink, deadline_exchange, fetch, run_within
from .record import RecordedEndpoint, Recorder, Recording, read_recording
from .rpc import RPC_CALLS, RpcObservation, rpc_observation

if TYPE_CHECKING:
    import httpx

AfterEndpoint = Callable[[str, EndpointKind], Awaitable[None]]

CALLS: dict[EndpointKind, tuple[CallSpec, ...]] = {"horizon": HORIZON_CALLS, "rpc": RPC_CALLS}

__all__ = [
    "ChainConfig",
    "ChainObservations",
    "EndpointObservation",
    "HorizonObservation",
    "Recorder",
    "Recording",
    "RpcObservation",
    "endpoint_outcome",
    "observations_from_exchanges",
    "observations_from_recording",
    "observe_chain",
    "read_recording",
]


@attrs.frozen
class ChainConfig:
    """Which endpoints to probe, on which network, within how many seconds in all."""

    horizon_urls: tuple[str, ...]
    rpc_urls: tuple[str, ...]
    network_passphrase: str
    timeout: float = 5.0

    @property
    def endpoints(self) -> tuple[tuple[str, EndpointKind], ...]:
        """``(url, kind)`` pairs, Horizon first, each URL once per kind, in the order given."""
        pairs: list[tuple[str, EndpointKind]] = []
        for url in self.horizon_urls:
            if (url, "horizon") not in pairs:
                pairs.append((url, "horizon"))
        for url in self.rpc_urls:
            if (url, "rpc") not in pairs:
                pairs.append((url, "rpc"))
        return tuple(pairs)


def observations_from_exchanges(
    endpoints: Iterable[RecordedEndpoint], exchanges: Sequence[Exchange]
) -> ChainObservations:
    """Interpret the exchanges of a round, endpoint by endpoint. Pure: live and replay share it."""
    observed: list[EndpointObservation] = []
    for endpoint in endpoints:
        calls = {spec.call for spec in CALLS[endpoint.kind]}
        mine = [x for x in exchanges if x.endpoint == endpoint.url and x.call in calls]
        if endpoint.kind == "horizon":
            observed.append(
                horizon_observation(endpoint.url, mine, duration_seconds=endpoint.duration_seconds)
            )
        else:
            observed.append(
                rpc_observation(endpoint.url, mine, duration_seconds=endpoint.duration_seconds)
            )
    return ChainObservations(endpoints=tuple(observed))


def observations_from_recording(recording: Recording) -> ChainObservations:
    """The observations a recorded round gives: no network access at all."""
    return observations_from_exchanges(recording.endpoints, recording.exchanges)


def endpoint_outcome(observation: EndpointObservation) -> str:
    """One word for the log line: ``unreachable``, ``error``, ``rate_limited`` or ``ok``."""
    outcomes = {call.outcome for call in observation.calls}
    if "unreachable" in outcomes:
        return "unreachable"
    if outcomes & {"http_error", "bad_body", "rpc_error"}:
        return "error"
    if "rate_limited" in outcomes:
        return "rate_limited"
    return "ok"


class _EndpointSink:
    """Collects one endpoint's exchanges and forwards each to the round's recorder."""

    def __init__(self, forward: ExchangeSink | None) -> None:
        self.exchanges: list[Exchange] = []
        self.forward = forward
        self.finished: float | None = None

    def add(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)
        if self.forward is not None:
            self.forward.add(exchange)


async def _probe_endpoint(
    client: httpx.AsyncClient,
    url: str,
    kind: EndpointKind,
    *,
    deadline: Deadline,
    sink: _EndpointSink,
    then: AfterEndpoint | None,
) -> None:
    jobs = [
        fetch(
            client,
            spec.method,
            spec.url_for(url),
            endpoint=url,
            call=spec.call,
            deadline=deadline,
            request_body=spec.body,
            retry=spec.retry,
            sink=sink,
        )
        for spec in CALLS[kind]
    ]
    await run_within(deadline, jobs)
    sink.finished = time.monotonic()
    if then is not None:
        await then(url, kind)


async def observe_chain(
    config: ChainConfig,
    *,
    client: httpx.AsyncClient | None = None,
    recorder: Recorder | None = None,
    then: AfterEndpoint | None = None,
) -> ChainObservations:
    """Probe every endpoint of ``config`` at once; ``config.timeout`` bounds the whole call.

    Never raises on network faults. A call with no complete answer when the
    deadline passes is recorded as a ``deadline`` exchange, so the grader
    reports the endpoint unreachable. With ``recorder``, every exchange (and
    every retry) is kept for ``--record``. Emits one ``probe_result`` log
    event per endpoint. ``then(url, kind)``, when given, runs on each endpoint
    right after that endpoint's own probe calls answered, under the same
    deadline (settlement lookups use it: what they learn is newer than the
    ledger the endpoint reported).
    """
    from .http import make_client

    deadline = Deadline(config.timeout)
    started = time.monotonic()
    started_at = datetime.now(UTC)
    own_client = client is None
    active = client if client is not None else make_client(timeout=config.timeout)
    sinks = {pair: _EndpointSink(recorder) for pair in config.endpoints}
    try:
        await run_within(
            deadline,
            [
                _probe_endpoint(
                    active, url, kind, deadline=deadline, sink=sinks[(url, kind)], then=then
                )
                for url, kind in config.endpoints
            ],
        )
    finally:
        if own_client:
            await active.aclose()
    finished_at = datetime.now(UTC)
    now = time.monotonic()
    recorded: list[RecordedEndpoint] = []
    exchanges: list[Exchange] = []
    for (url, kind), sink in sinks.items():
        answered = {x.call for x in sink.exchanges}
        for spec in CALLS[kind]:
            if spec.call not in answered:
                late = deadline_exchange(
                    url, spec.call, spec.method, spec.url_for(url), deadline, observed_at=started_at
                )
                sink.add(late)
        ended = sink.finished if sink.finished is not None else now
        recorded.append(RecordedEndpoint(url, kind, round(ended - started, 6)))
        exchanges.extend(sink.exchanges)
    observations = observations_from_exchanges(recorded, exchanges)
    for observation in observations.endpoints:
        log_event(
            "probe_result",
            endpoint=observation.url,
            kind=observation.kind,
            outcome=endpoint_outcome(observation),
            duration_ms=round(observation.duration_seconds * 1000),
        )
    if recorder is not None:
        recorder.network_passphrase = config.network_passphrase
        recorder.timeout_seconds = config.timeout
        recorder.endpoints = recorded
        recorder.started_at = started_at
        recorder.finished_at = finished_at
    return observations
