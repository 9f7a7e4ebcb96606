"""Chain health grading: observations of Horizon and Stellar RPC endpoints in, findings out.

Pure: :func:`grade_chain` takes what the probes observed (live or replayed
from a recording), the moment to grade at and the expected network, and
returns a :class:`ChainGrade`. No clock, socket or environment here; the
probes in :mod:`streampay_incident.probes` gather the observations. Over 400
lines as one thing: the ten per-endpoint rules and the grade built from them.

The built-in check is registered through the
``streampay_incident_register_chain_checks`` hook like any plugin's; the use
case :func:`streampay_incident.usecases.grade_observations` runs every
registered chain check and hands their findings to :func:`grade_chain`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ..codes import Severity
from ..hookspecs import hookimpl
from ..model import Finding, Status, make_finding
from ..timefmt import format_duration, format_rfc3339

if TYPE_CHECKING:
    from ..observations import ChainObservations, EndpointObservation


@attrs.frozen
class ChainPolicy:
    """Thresholds of the chain rules ("older than" / "more than" is strictly greater).

    Stellar closes a ledger every ~5-6 s; stellar-core's own alert fires at
    10 s and stellar-rpc calls itself unhealthy past 30 s.
    """

    stale_warning_seconds: float = 15.0
    stale_critical_seconds: float = 30.0
    ingest_lag_warning: int = 5
    ingest_lag_critical: int = 20
    diverged_ledgers: int = 10
    fee_surge_multiplier: int = 10


@attrs.frozen
class EndpointGrade:
    """How one endpoint fared: its status and the numbers a dashboard shows."""

    url: str
    kind: Literal["horizon", "rpc"]
    status: Status
    latest_ledger: int | None
    ledger_age_seconds: float | None
    ingest_lag: int | None
    duration_seconds: float
    latest_ledger_close_time: datetime | None = None
    network_passphrase: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "kind": self.kind,
            "status": self.status,
            "latest_ledger": self.latest_ledger,
            "latest_ledger_close_time": (
                None
                if self.latest_ledger_close_time is None
                else format_rfc3339(self.latest_ledger_close_time)
            ),
            "ledger_age_seconds": (
                None if self.ledger_age_seconds is None else round(self.ledger_age_seconds, 3)
            ),
            "ingest_lag": self.ingest_lag,
            "duration_seconds": round(self.duration_seconds, 3),
        }


@attrs.frozen
class ChainGrade:
    """The grade of a probe round: overall status, findings, and one grade per endpoint."""

    status: Status
    findings: tuple[Finding, ...]
    endpoints: tuple[EndpointGrade, ...]


def ledger_age_seconds(observation: EndpointObservation, now: datetime) -> float | None:
    """Seconds since the endpoint's latest ledger closed, or None when it did not say."""
    closed_at = observation.latest_ledger_close_time
    return None if closed_at is None else (now - closed_at).total_seconds()


_REASONS = {
    "refused": "connection refused",
    "dns": "DNS lookup failed",
    "deadline": "no complete answer before the deadline",
    "timeout": "timed out",
}


def _unreachable(obs: EndpointObservation) -> Finding | None:
    calls = [c for c in obs.calls if c.outcome == "unreachable"]
    if not calls:
        return None
    reasons = {c.call: c.detail for c in calls}
    first = calls[0].detail.split(":", 1)[0]
    why = _REASONS.get(first, first)
    return make_finding(
        "CHAIN_ENDPOINT_UNREACHABLE",
        obs.url,
        f"{obs.kind} endpoint unreachable ({why}) on {', '.join(c.call for c in calls)}",
        {"kind": obs.kind, "calls": reasons},
    )


def _errors(obs: EndpointObservation) -> Finding | None:
    calls = [c for c in obs.calls if c.outcome in ("http_error", "bad_body", "rpc_error")]
    # getHealth errors are the server calling itself unhealthy: CHAIN_RPC_UNHEALTHY, not this.
    calls = [c for c in calls if not (obs.kind == "rpc" and c.call == "getHealth")]
    if not calls:
        return None
    details = {c.call: c.detail for c in calls}
    shown = "; ".join(f"{c.call}: {c.detail}" for c in calls)
    evidence: dict[str, Any] = {"kind": obs.kind, "calls": details}
    statuses = sorted({c.status for c in calls if c.status is not None})
    if statuses:
        evidence["http_status"] = statuses
    codes = sorted({c.rpc_error_code for c in calls if c.rpc_error_code is not None})
    if codes:
        evidence["rpc_error_code"] = codes
    return make_finding(
        "CHAIN_ENDPOINT_ERROR", obs.url, f"{obs.kind} endpoint error: {shown}", evidence
    )


def _rate_limited(obs: EndpointObservation) -> Finding | None:
    calls = [c for c in obs.calls if c.outcome == "rate_limited"]
    if not calls:
        return None
    headers: dict[str, str] = {}
    for call in calls:
        for name, value in call.rate_limit.items():
            headers.setdefault(_header_name(name), value)
    evidence: dict[str, Any] = {"kind": obs.kind, "calls": [c.call for c in calls]}
    retry_after = headers.get("Retry-After")
    if retry_after is not None:
        evidence["retry_after"] = retry_after
    if headers:
        evidence["headers"] = headers
    hint = f"; Retry-After {retry_after}" if retry_after else ""
    return make_finding(
        "CHAIN_RATE_LIMITED",
        obs.url,
        f"{obs.kind} endpoint answered HTTP 429 on {', '.join(c.call for c in calls)}{hint}",
        evidence,
    )


def _header_name(name: str) -> str:
    """``x-ratelimit-remaining`` -> ``X-RateLimit-Remaining``, as servers spell them."""
    words = [w.capitalize() for w in name.split("-")]
    return "-".join("RateLimit" if w == "Ratelimit" else w for w in words)


def _horizon_unhealthy(obs: EndpointObservation) -> Finding | None:
    health = getattr(obs, "health", None) if obs.kind == "horizon" else None
    if health is None or health.healthy:
        return None
    failing = list(health.failing)
    why = (
        ", ".join(f"{name} is false" for name in failing)
        or f"/health answered {health.http_status}"
    )
    return make_finding(
        "CHAIN_HORIZON_UNHEALTHY",
        obs.url,
        f"Horizon reports itself unhealthy: {why}",
        {"http_status": health.http_status, "failing": failing},
    )


def _rpc_unhealthy(obs: EndpointObservation) -> Finding | None:
    if obs.kind != "rpc":
        return None
    error = getattr(obs, "health_error", None)
    health = getattr(obs, "health", None)
    if error is not None:
        return make_finding(
            "CHAIN_RPC_UNHEALTHY",
            obs.url,
            f"Stellar RPC getHealth returned an error: {error}",
            {"rpc_error_code": error.code, "message": error.message},
        )
    if health is not None and health.status != "healthy":
        return make_finding(
            "CHAIN_RPC_UNHEALTHY",
            obs.url,
            f"Stellar RPC getHealth status is {health.status!r}, not 'healthy'",
            {"status": health.status},
        )
    return None


def _network_mismatch(obs: EndpointObservation, expected: str) -> Finding | None:
    passphrase = obs.network_passphrase
    if passphrase is None or passphrase == expected:
        return None
    return make_finding(
        "CHAIN_NETWORK_MISMATCH",
        obs.url,
        f"{obs.kind} endpoint is on {passphrase!r}, not {expected!r}",
        {"network_passphrase": passphrase, "expected": expected},
    )


def _stale(obs: EndpointObservation, now: datetime, policy: ChainPolicy) -> Finding | None:
    age = ledger_age_seconds(obs, now)
    if age is None or age <= policy.stale_warning_seconds:
        return None
    severity = Severity.CRITICAL if age > policy.stale_critical_seconds else Severity.WARNING
    closed_at = obs.latest_ledger_close_time
    assert closed_at is not None
    threshold = (
        policy.stale_critical_seconds
        if severity is Severity.CRITICAL
        else policy.stale_warning_seconds
    )
    return make_finding(
        "CHAIN_LEDGER_STALE",
        obs.url,
        f"latest closed ledger {obs.latest_ledger} closed {format_duration(round(age))} ago "
        f"(over the {format_duration(threshold)} {severity.value} threshold)",
        {
            "latest_ledger": obs.latest_ledger,
            "closed_at": closed_at.isoformat().replace("+00:00", "Z"),
            "age_seconds": round(age, 3),
        },
        severity=severity,
    )


def _ingest_lag(obs: EndpointObservation, policy: ChainPolicy) -> Finding | None:
    lag = obs.ingest_lag
    if lag is None or lag <= policy.ingest_lag_warning:
        return None
    severity = Severity.CRITICAL if lag > policy.ingest_lag_critical else Severity.WARNING
    return make_finding(
        "CHAIN_HORIZON_INGEST_LAG",
        obs.url,
        f"Horizon ingestion is {lag} ledgers behind stellar-core",
        {
            "ingest_lag": lag,
            "core_latest_ledger": getattr(getattr(obs, "root", None), "core_latest_ledger", None),
            "history_latest_ledger": obs.latest_ledger,
        },
        severity=severity,
    )


def _protocol(obs: EndpointObservation) -> Finding | None:
    root = getattr(obs, "root", None) if obs.kind == "horizon" else None
    if root is None:
        return None
    supported, current = root.core_supported_protocol_version, root.current_protocol_version
    if supported is None or current is None or supported >= current:
        return None
    return make_finding(
        "CHAIN_PROTOCOL_MISMATCH",
        obs.url,
        f"stellar-core behind this Horizon supports protocol {supported}, network is on {current}",
        {"core_supported_protocol_version": supported, "current_protocol_version": current},
    )


def _fee_surge(obs: EndpointObservation, policy: ChainPolicy) -> Finding | None:
    fees = getattr(obs, "fee_stats", None) if obs.kind == "horizon" else None
    if (
        fees is None
        or fees.fee_charged_p90 <= policy.fee_surge_multiplier * fees.last_ledger_base_fee
    ):
        return None
    return make_finding(
        "CHAIN_FEE_SURGE",
        obs.url,
        f"surge pricing: fee_charged p90 {fees.fee_charged_p90} stroops is more than "
        f"{policy.fee_surge_multiplier}x the base fee {fees.last_ledger_base_fee}",
        {
            "fee_charged_p90": fees.fee_charged_p90,
            "last_ledger_base_fee": fees.last_ledger_base_fee,
        },
    )


def _diverged(
    endpoints: Sequence[EndpointObservation], expected: str, policy: ChainPolicy
) -> list[Finding]:
    # Ledger numbers of another network say nothing about this one: compare like with like.
    on_network = [
        e
        for e in endpoints
        if e.latest_ledger is not None and e.network_passphrase in (None, expected)
    ]
    highest = max(
        (e.latest_ledger for e in on_network if e.latest_ledger is not None), default=None
    )
    findings = []
    for obs in on_network:
        assert obs.latest_ledger is not None and highest is not None
        behind = highest - obs.latest_ledger
        if behind > policy.diverged_ledgers:
            findings.append(
                make_finding(
                    "CHAIN_ENDPOINTS_DIVERGED",
                    obs.url,
                    f"{obs.kind} endpoint is {behind} ledgers behind the highest seen ({highest})",
                    {
                        "latest_ledger": obs.latest_ledger,
                        "highest_ledger": highest,
                        "behind": behind,
                    },
                )
            )
    return findings


def builtin_chain_check(
    observations: ChainObservations,
    *,
    now: datetime,
    expected_network: str,
    policy: ChainPolicy | None = None,
) -> list[Finding]:
    """Every built-in chain finding: at most one per code and endpoint. Pure."""
    policy = policy or ChainPolicy()
    findings: list[Finding] = []
    for obs in observations.endpoints:
        candidates = (
            _unreachable(obs),
            _errors(obs),
            _rate_limited(obs),
            _horizon_unhealthy(obs),
            _rpc_unhealthy(obs),
            _network_mismatch(obs, expected_network),
            _stale(obs, now, policy),
            _ingest_lag(obs, policy),
            _protocol(obs),
            _fee_surge(obs, policy),
        )
        findings.extend(f for f in candidates if f is not None)
    findings.extend(_diverged(observations.endpoints, expected_network, policy))
    return _one_per_code_and_endpoint(findings)


def _one_per_code_and_endpoint(findings: Iterable[Finding]) -> list[Finding]:
    # The same URL given twice (or as both kinds) must not double its findings.
    seen: set[tuple[str, str]] = set()
    unique = []
    for finding in findings:
        key = (finding.code, finding.subject)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


@hookimpl
def streampay_incident_register_chain_checks() -> Sequence[Any]:
    return [builtin_chain_check]


def _status_of(findings: Iterable[Finding]) -> Status:
    worst = max((f.severity for f in findings), default=Severity.INFO)
    if worst is Severity.CRITICAL:
        return "fail"
    return "warn" if worst is Severity.WARNING else "pass"


def overall_status(endpoints: Sequence[EndpointGrade], findings: Sequence[Finding]) -> Status:
    """``fail`` when every endpoint of a kind that was given has a critical finding;
    else ``warn`` when there is any finding; else ``pass``."""
    critical = {f.subject for f in findings if f.severity is Severity.CRITICAL}
    for kind in ("horizon", "rpc"):
        urls = [e.url for e in endpoints if e.kind == kind]
        if urls and all(url in critical for url in urls):
            return "fail"
    return "warn" if findings else "pass"


def grade_chain(
    observations: ChainObservations,
    *,
    now: datetime,
    expected_network: str,
    policy: ChainPolicy | None = None,
    findings: Sequence[Finding] | None = None,
) -> ChainGrade:
    """Grade a probe round at ``now`` against ``expected_network``. Pure.

    ``findings`` are those of every registered chain check (the use case
    :func:`streampay_incident.usecases.grade_observations` runs them through
    the plugin manager); without them only the built-in check runs. Each
    endpoint's status comes from the findings whose subject is its URL; the
    overall status follows :func:`overall_status`.
    """
    policy = policy or ChainPolicy()
    if findings is None:
        findings = builtin_chain_check(
            observations, now=now, expected_network=expected_network, policy=policy
        )
    found = tuple(findings)
    grades = tuple(
        EndpointGrade(
            url=obs.url,
            kind=obs.kind,
            status=_status_of(f for f in found if f.subject == obs.url),
            latest_ledger=obs.latest_ledger,
            ledger_age_seconds=ledger_age_seconds(obs, now),
            ingest_lag=obs.ingest_lag,
            duration_seconds=obs.duration_seconds,
            latest_ledger_close_time=obs.latest_ledger_close_time,
            network_passphrase=obs.network_passphrase,
        )
        for obs in observations.endpoints
    )
    return ChainGrade(status=overall_status(grades, found), findings=found, endpoints=grades)


def latest_ledger_close_time(
    observations: ChainObservations, *, expected_network: str
) -> datetime | None:
    """The newest ledger close time any endpoint on ``expected_network`` reported. Pure.

    A closed ledger's close time is what decides whether a transaction's max
    time has passed; an endpoint on another network says nothing about that.
    """
    times = [
        obs.latest_ledger_close_time
        for obs in observations.endpoints
        if obs.latest_ledger_close_time is not None and obs.network_passphrase == expected_network
    ]
    return max(times, default=None)


def evidence_close_time(grade: ChainGrade, *, expected_network: str) -> tuple[datetime, str] | None:
    """``(close time, url)`` of the freshest endpoint on ``expected_network`` that is not
    critical (status not ``fail``), or None when there is none. Pure.

    What ``settlements --chain-snapshot`` proves a max time passed with: a
    ledger that an endpoint on the right network, in working order, saw close.
    Freshest is the newest close time (then the highest ledger, then the
    order given).
    """
    candidates = [
        e
        for e in grade.endpoints
        if e.status != "fail"
        and e.network_passphrase == expected_network
        and e.latest_ledger_close_time is not None
    ]
    if not candidates:
        return None
    best = max(candidates, key=lambda e: (e.latest_ledger_close_time, e.latest_ledger or 0))
    assert best.latest_ledger_close_time is not None
    return best.latest_ledger_close_time, best.url


DiagnosisKind = Literal["healthy", "degraded", "our_endpoints_down", "network_down"]

_KIND_LABEL = {"horizon": "Horizon", "rpc": "RPC"}
# What a critical finding says about an endpoint, in a word for the diagnosis line.
_DOWN_WORD = {
    "CHAIN_LEDGER_STALE": "stale",
    "CHAIN_ENDPOINT_UNREACHABLE": "unreachable",
    "CHAIN_ENDPOINT_ERROR": "erroring",
    "CHAIN_HORIZON_UNHEALTHY": "unhealthy",
    "CHAIN_RPC_UNHEALTHY": "unhealthy",
    "CHAIN_NETWORK_MISMATCH": "on another network",
    "CHAIN_HORIZON_INGEST_LAG": "lagging",
}


@attrs.frozen
class ChainDiagnosis:
    """Whether it is Stellar or us: the one line on-call reads first.

    ``kind``: ``healthy`` (status pass), ``degraded`` (findings, but no kind of
    endpoint wholly down), ``our_endpoints_down`` (every endpoint of some kind
    is critical while another endpoint is current on the expected network) or
    ``network_down`` (no endpoint is current). ``current``: the endpoints that
    are current (not critical, with a latest ledger), freshest first; ``down``:
    the endpoints of the kinds that are wholly down.
    """

    kind: DiagnosisKind
    summary: str
    current: tuple[str, ...] = ()
    down: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "summary": self.summary,
            "current": list(self.current),
            "down": list(self.down),
        }


def _freshness(endpoint: EndpointGrade) -> tuple[float, int]:
    age = endpoint.ledger_age_seconds
    return (age if age is not None else float("inf"), -(endpoint.latest_ledger or 0))


def _why_down(urls: Sequence[str], findings: Sequence[Finding]) -> list[str]:
    words: list[str] = []
    for finding in findings:
        if finding.subject in urls and finding.severity is Severity.CRITICAL:
            word = _DOWN_WORD.get(finding.code, "down")
            if word not in words:
                words.append(word)
    return words or ["no ledger reported"]


def _every(kind: str, urls: Sequence[str], findings: Sequence[Finding]) -> str:
    words = _why_down(urls, findings)
    label = _KIND_LABEL.get(kind, kind)
    noun = f"the {label} given is" if len(urls) == 1 else f"every {label} given is"
    if len(words) == 1:
        return f"{noun} {words[0]}"
    return f"{noun} down ({', '.join(words)})"


def diagnose_chain(grade: ChainGrade) -> ChainDiagnosis:
    """Say whether Stellar itself or our endpoints are the problem, from the grades. Pure.

    An endpoint is *current* when its status is not ``fail`` (a stale ledger over
    the critical threshold, another network, unreachable, ... are critical) and
    it reported a latest ledger. A kind is *down* when every endpoint of that
    kind given is ``fail``.
    """
    endpoints = grade.endpoints
    current = sorted(
        (e for e in endpoints if e.status != "fail" and e.latest_ledger is not None),
        key=_freshness,
    )
    down_kinds = [
        kind
        for kind in ("horizon", "rpc")
        if any(e.kind == kind for e in endpoints)
        and all(e.status == "fail" for e in endpoints if e.kind == kind)
    ]
    down = tuple(e.url for e in endpoints if e.kind in down_kinds)
    current_urls = tuple(e.url for e in current)
    if not current:
        urls = [e.url for e in endpoints]
        words = _why_down(urls, grade.findings)
        return ChainDiagnosis(
            "network_down",
            f"No endpoint given is current ({', '.join(words)}): Stellar itself may be down; "
            "confirm on an independent endpoint and status.stellar.org before calling it a "
            "network outage",
            (),
            tuple(urls),
        )
    best = current[0]
    per = f"{_KIND_LABEL.get(best.kind, best.kind)} {best.url}"
    if down_kinds:
        what = "; ".join(
            _every(kind, [e.url for e in endpoints if e.kind == kind], grade.findings)
            for kind in down_kinds
        )
        return ChainDiagnosis(
            "our_endpoints_down",
            f"Stellar is healthy per {per}; {what}: fail over, this is not a network outage",
            current_urls,
            down,
        )
    if grade.status == "pass":
        return ChainDiagnosis("healthy", f"Stellar is healthy per {per}", current_urls)
    affected = sorted({f.subject for f in grade.findings})
    return ChainDiagnosis(
        "degraded",
        f"Stellar is current per {per}; degraded: {len(grade.findings)} finding(s) on "
        f"{', '.join(affected)}",
        current_urls,
    )
