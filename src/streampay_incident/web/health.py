"""Chain health for ``GET /health``: one cached, single-flight probe round at a time.

A burst of requests shares one round: the first caller starts it, the others
await the same task, and the answer is reused for ``health_ttl_seconds``. A
round that raises or overruns its deadline becomes a ``fail`` answer, never a
500. The document follows draft-inadarei-api-health-check
(``application/health+json``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ..__about__ import __version__
from ..logevents import log_event
from ..model import Status
from ..timefmt import format_rfc3339

if TYPE_CHECKING:
    import pluggy

    from ..model import Finding
    from .config import WebConfig

MEDIA_TYPE = "application/health+json"


class EndpointGradeLike(Protocol):
    """What the health answer reads from one endpoint's grade (probes.EndpointGrade)."""

    url: str
    kind: str
    status: Status
    latest_ledger: int | None
    ledger_age_seconds: float | None
    ingest_lag: int | None
    duration_seconds: float


class ChainGradeLike(Protocol):
    """What the health answer reads from a chain grade (checks.chain.ChainGrade)."""

    @property
    def status(self) -> Status: ...

    @property
    def findings(self) -> tuple[Finding, ...]: ...

    @property
    def endpoints(self) -> tuple[Any, ...]: ...


@attrs.frozen
class ChainReading:
    """A probe round's grade and the newest ledger close time seen on the expected network."""

    grade: ChainGradeLike
    latest_ledger_close_time: datetime | None = None


HealthSource = Callable[[], Awaitable["ChainReading | ChainGradeLike"]]
"""An async callable running one probe round: a :class:`ChainReading` or a bare chain grade."""


@attrs.frozen
class HealthRound:
    """One probe round: its grade, or (when it failed) a reason safe to show."""

    observed_at: datetime
    duration_seconds: float
    grade: ChainGradeLike | None = None
    error: str | None = None
    latest_ledger_close_time: datetime | None = None

    @property
    def status(self) -> Status:
        return "fail" if self.grade is None else self.grade.status


def chain_health_source(
    config: WebConfig, plugin_manager: pluggy.PluginManager | None = None
) -> HealthSource | None:
    """The default source: live probes of the configured Horizon/RPC endpoints, graded.

    Every chain check registered with ``plugin_manager`` runs too. None when
    no endpoint is configured.
    """
    if not config.chain_configured:
        return None
    network = config.network_passphrase or ""  # WebConfig.from_env insists on one

    async def probe_round() -> ChainReading:
        from ..checks.chain import latest_ledger_close_time
        from ..probes import ChainConfig, observe_chain
        from ..usecases import grade_observations

        chain_config = ChainConfig(
            horizon_urls=config.horizon_urls,
            rpc_urls=config.rpc_urls,
            network_passphrase=network,
            timeout=config.probe_timeout_seconds,
        )
        observations = await observe_chain(chain_config)
        # In a worker thread: a plugin's chain check may take its whole time budget, and
        # the event loop must go on answering meanwhile.
        grade = await asyncio.to_thread(
            grade_observations,
            observations,
            now=datetime.now(UTC),
            expected_network=network,
            plugin_manager=plugin_manager,
        )
        return ChainReading(grade, latest_ledger_close_time(observations, expected_network=network))

    return probe_round


class RoundObserver(Protocol):
    """Whatever records each probe round (the app's :class:`~.metrics.IncidentMetrics`).

    A protocol rather than an import, so that the metrics (which read health
    rounds) and the health monitor (which reports them) do not import each other.
    """

    def observe_round(self, health_round: HealthRound) -> None: ...


class HealthMonitor:
    """Runs probe rounds single-flight and caches the last one for ``ttl`` seconds."""

    def __init__(
        self,
        source: HealthSource | None,
        *,
        ttl: float,
        deadline: float,
        metrics: RoundObserver | None = None,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.ttl = ttl
        self.deadline = deadline
        self.metrics = metrics
        self.rounds = 0
        self._clock = clock or (lambda: datetime.now(UTC))
        self._monotonic = monotonic
        self._cached: HealthRound | None = None
        self._expires = 0.0
        self._inflight: asyncio.Task[HealthRound] | None = None

    @property
    def configured(self) -> bool:
        return self.source is not None

    def max_age(self) -> int:
        """Whole seconds the cached answer stays fresh (for ``Cache-Control: max-age``)."""
        return max(0, math.ceil(self._expires - self._monotonic()))

    async def current(self) -> HealthRound:
        """The cached round when fresh, else the one in flight, else a new one."""
        if self._cached is not None and self._monotonic() < self._expires:
            return self._cached
        loop = asyncio.get_running_loop()
        task = self._inflight
        # A task from another event loop (a second server, a test client) cannot be awaited here.
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self._run_round())
            self._inflight = task
        # shield: a caller that disconnects must not cancel the round the others wait for.
        return await asyncio.shield(task)

    async def _run_round(self) -> HealthRound:
        started = self._monotonic()
        observed_at = self._clock()
        if self.source is None:
            health_round = HealthRound(
                observed_at, 0.0, error="no Horizon or RPC endpoint is configured"
            )
        else:
            try:
                grade = await asyncio.wait_for(self.source(), timeout=self.deadline)
            except TimeoutError:
                health_round = HealthRound(
                    observed_at,
                    self._monotonic() - started,
                    error="probe round did not finish before its deadline",
                )
            except Exception as exc:  # noqa: BLE001 - a broken round is a fail answer, not a 500
                log_event("health_round_error", error=type(exc).__name__)
                health_round = HealthRound(
                    observed_at, self._monotonic() - started, error="probe round failed"
                )
            else:
                reading = grade if isinstance(grade, ChainReading) else ChainReading(grade)
                health_round = HealthRound(
                    observed_at,
                    self._monotonic() - started,
                    grade=reading.grade,
                    latest_ledger_close_time=reading.latest_ledger_close_time,
                )
        self.rounds += 1
        if self.metrics is not None and self.source is not None:
            self.metrics.observe_round(health_round)
        log_event(
            "health_round",
            status=health_round.status,
            duration_ms=round(health_round.duration_seconds * 1000, 1),
            endpoints=len(health_round.grade.endpoints) if health_round.grade else 0,
        )
        self._cached = health_round
        self._expires = self._monotonic() + self.ttl
        return health_round


# draft-inadarei-api-health-check: checks are keyed "component:measurement".
_MEASUREMENTS: tuple[tuple[str, str, str], ...] = (
    ("ledgerAge", "ledger_age_seconds", "s"),
    ("latestLedger", "latest_ledger", "ledger"),
    ("ingestLag", "ingest_lag", "ledgers"),
    ("responseTime", "duration_seconds", "s"),
)


def _endpoint_output(endpoint: EndpointGradeLike, findings: tuple[Finding, ...]) -> str:
    mine = [f"{f.code}: {f.summary}" for f in findings if f.subject == endpoint.url]
    return "; ".join(mine) or f"endpoint status {endpoint.status}"


def health_document(health_round: HealthRound) -> dict[str, Any]:
    """The ``application/health+json`` body for one round."""
    time_text = format_rfc3339(health_round.observed_at)
    doc: dict[str, Any] = {
        "status": health_round.status,
        "version": "1",
        "releaseId": __version__,
        "serviceId": "streampay-incident",
        "description": "Is the Stellar network usable for StreamPay settlements "
        "(chain health; not a liveness probe: use /livez)",
    }
    checks: dict[str, list[dict[str, Any]]] = {}
    grade = health_round.grade
    if grade is None:
        checks["chain:probeRound"] = [
            {
                "status": "fail",
                "observedValue": round(health_round.duration_seconds, 3),
                "observedUnit": "s",
                "time": time_text,
                "output": health_round.error or "probe round failed",
            }
        ]
        doc["output"] = health_round.error or "probe round failed"
    else:
        for endpoint in grade.endpoints:
            for measurement, attribute, unit in _MEASUREMENTS:
                if measurement == "ingestLag" and endpoint.kind != "horizon":
                    continue
                value = getattr(endpoint, attribute)
                entry: dict[str, Any] = {
                    "componentId": endpoint.url,
                    "componentType": endpoint.kind,
                    "observedValue": round(value, 3) if isinstance(value, float) else value,
                    "observedUnit": unit,
                    "status": endpoint.status,
                    "time": time_text,
                }
                if endpoint.status != "pass":
                    entry["output"] = _endpoint_output(endpoint, grade.findings)
                checks.setdefault(f"{endpoint.kind}:{measurement}", []).append(entry)
        if grade.status != "pass":
            summaries = sorted({f"{f.code} {f.subject}" for f in grade.findings})
            doc["output"] = "; ".join(summaries) or f"chain status {grade.status}"
    doc["checks"] = checks
    return doc
