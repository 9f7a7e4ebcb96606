"""Prometheus metrics of one web app (its own registry, so two apps never share series).

The names are pinned: the alert rules and the Grafana dashboard use exactly
these. Status gauges encode ``pass``/``warn``/``fail`` as 0/1/2.
"""

from __future__ import annotations

from collections import Counter as Tally
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

if TYPE_CHECKING:
    from .health import HealthRound

STATUS_VALUE = {"pass": 0, "warn": 1, "fail": 2}
CONTENT_TYPE = CONTENT_TYPE_LATEST

# A round is bounded by the probe timeout (default 5 s); buckets cover a healthy
# 50 ms answer up to a round that ran into its deadline.
_DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# Requests: a cached health answer takes about a millisecond; triage of a large body, seconds.
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class IncidentMetrics:
    """The ``streampay_incident_*`` series, updated after each health round and request."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.chain_status = Gauge(
            "streampay_incident_chain_status",
            "Chain status per endpoint in the last health round: 0 pass, 1 warn, 2 fail.",
            ["endpoint", "kind"],
            registry=r,
        )
        self.chain_overall_status = Gauge(
            "streampay_incident_chain_overall_status",
            "Overall chain status in the last health round: 0 pass, 1 warn, 2 fail.",
            registry=r,
        )
        self.ledger_age = Gauge(
            "streampay_incident_ledger_age_seconds",
            "Age of the latest closed ledger each endpoint reported, in seconds.",
            ["endpoint", "kind"],
            registry=r,
        )
        self.ingest_lag = Gauge(
            "streampay_incident_horizon_ingest_lag_ledgers",
            "Ledgers Horizon's ingestion lags behind its stellar-core.",
            ["endpoint"],
            registry=r,
        )
        self.probe_duration = Histogram(
            "streampay_incident_probe_duration_seconds",
            "Time to probe one endpoint (one observation per endpoint per round).",
            ["kind"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.last_probe = Gauge(
            "streampay_incident_last_probe_timestamp_seconds",
            "Unix time of the last completed health round.",
            registry=r,
        )
        self.probe_rounds = Counter(
            "streampay_incident_probe_rounds",
            "Health rounds run (completed or failed).",
            registry=r,
        )
        self.findings = Gauge(
            "streampay_incident_findings",
            "Findings in the last health round, by code and severity.",
            ["code", "severity"],
            registry=r,
        )
        self.http_requests = Counter(
            "streampay_incident_http_requests",
            "Requests answered by the incident endpoints, by route and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "streampay_incident_http_request_duration_seconds",
            "Time from a request reaching the app to its answer, by route.",
            ["route"],
            buckets=_REQUEST_BUCKETS,
            registry=r,
        )
        self.auth_failures = Counter(
            "streampay_incident_auth_failures",
            "Requests refused by streampay-hmac-v1 verification, by reason.",
            ["reason"],
            registry=r,
        )

    def observe_round(self, health_round: HealthRound) -> None:
        """Replace the per-round series with what this round saw."""
        self.probe_rounds.inc()
        self.chain_overall_status.set(STATUS_VALUE[health_round.status])
        # Series of the previous round would be stale: an endpoint removed from the
        # config, or a code no longer found, must not linger.
        for family in (self.chain_status, self.ledger_age, self.ingest_lag, self.findings):
            family.clear()
        grade = health_round.grade
        if grade is None:
            return
        for endpoint in grade.endpoints:
            self.chain_status.labels(endpoint.url, endpoint.kind).set(STATUS_VALUE[endpoint.status])
            if endpoint.ledger_age_seconds is not None:
                self.ledger_age.labels(endpoint.url, endpoint.kind).set(endpoint.ledger_age_seconds)
            if endpoint.kind == "horizon" and endpoint.ingest_lag is not None:
                self.ingest_lag.labels(endpoint.url).set(endpoint.ingest_lag)
            self.probe_duration.labels(endpoint.kind).observe(endpoint.duration_seconds)
        tally = Tally((f.code, f.severity.value) for f in grade.findings)
        for (code, severity), count in tally.items():
            self.findings.labels(code, severity).set(count)
        self.last_probe.set(health_round.observed_at.timestamp())

    def observe_request(
        self, route: str, method: str, status: int, duration_seconds: float | None = None
    ) -> None:
        self.http_requests.labels(route, method, str(status)).inc()
        if duration_seconds is not None:
            self.http_duration.labels(route).observe(duration_seconds)

    def observe_auth_failure(self, reason: str) -> None:
        self.auth_failures.labels(reason).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of this app's registry."""
        return generate_latest(self.registry)
