"""What one HTTP call sent and got back, as values, and what an answer means. Pure.

:class:`Exchange` is what :func:`streampay_incident.probes.http.fetch` returns
and what a recording stores; the functions here interpret exchanges (a 429, a
5xx, a body that is not the JSON expected) into
:class:`~streampay_incident.observations.CallObservation` values, the same
live and in a replay. No socket, no clock, no httpx.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

import attrs

from ..io import strict_json
from ..observations import CallObservation
from ..timefmt import format_rfc3339, parse_rfc3339

# The response headers worth keeping in a recording and a finding.
KEPT_HEADERS = ("content-type", "retry-after", "date")
KEPT_HEADER_PREFIXES = ("x-ratelimit-",)


@attrs.frozen
class RetryPolicy:
    """When an idempotent read is tried again: transient faults only, and only inside the deadline.

    ``backoff`` gives the pause before attempt 2, 3, ...; its length bounds the
    number of attempts. A 429 is never retried here: the server said when to
    come back (Retry-After) and that is longer than an incident probe waits.
    """

    backoff: tuple[float, ...] = (0.1, 0.25)
    statuses: frozenset[int] = frozenset({502, 503, 504})
    errors: frozenset[str] = frozenset({"refused", "connect", "protocol"})

    def wants_retry(self, exchange: Exchange, attempt: int) -> float | None:
        """The pause before the next attempt, or None when this answer stands."""
        if attempt > len(self.backoff):
            return None
        transient = (exchange.error is not None and exchange.error in self.errors) or (
            exchange.status is not None and exchange.status in self.statuses
        )
        return self.backoff[attempt - 1] if transient else None


NO_RETRY = RetryPolicy(backoff=())
READ_RETRY = RetryPolicy()


@attrs.frozen
class Exchange:
    """One request and what came back, or why nothing did.

    ``endpoint`` is the endpoint URL exactly as the user gave it (the subject
    of any finding), ``url`` the URL actually requested, ``call`` the logical
    probe (``root``, ``health``, ``getHealth``, ``transaction``, ...).
    Exactly one of ``status`` and ``error`` is set.
    """

    endpoint: str
    call: str
    method: str
    url: str
    observed_at: datetime
    elapsed_seconds: float
    request_body: str | None = None
    status: int | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict, eq=False, hash=False)
    body: str | None = None
    error: str | None = None
    error_detail: str | None = None
    attempt: int = 1

    @property
    def answered(self) -> bool:
        return self.status is not None

    def json_body(self) -> Any:
        """The body as strict JSON; ``ValueError`` when there is none or it is not
        (:func:`~streampay_incident.io.strict_json.loads`: no duplicate keys, no NaN)."""
        if self.body is None:
            raise ValueError("no body")
        return strict_json.loads(self.body)

    def rate_limit_headers(self) -> dict[str, str]:
        """``Retry-After`` and every ``X-RateLimit-*`` header, as served."""
        return {
            k: v
            for k, v in self.headers.items()
            if k == "retry-after" or k.startswith(KEPT_HEADER_PREFIXES)
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "call": self.call,
            "method": self.method,
            "url": self.url,
            "request_body": self.request_body,
            "status": self.status,
            "headers": dict(self.headers),
            "body": self.body,
            "error": self.error,
            "error_detail": self.error_detail,
            "elapsed_seconds": self.elapsed_seconds,
            "observed_at": format_rfc3339(self.observed_at),
            "attempt": self.attempt,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Exchange:
        """Rebuild an exchange from :meth:`to_json` output (``KeyError``/``ValueError`` if bad)."""
        status = doc.get("status")
        error = doc.get("error")
        if (status is None) == (error is None):
            raise ValueError("an exchange has either a status or an error")
        return cls(
            endpoint=str(doc["endpoint"]),
            call=str(doc["call"]),
            method=str(doc["method"]),
            url=str(doc["url"]),
            observed_at=parse_rfc3339(str(doc["observed_at"])),
            elapsed_seconds=as_seconds(doc.get("elapsed_seconds") or 0.0, "elapsed_seconds"),
            request_body=_opt_str(doc.get("request_body")),
            status=None if status is None else _whole(status, "status", 100, 599),
            headers={str(k).lower(): str(v) for k, v in (doc.get("headers") or {}).items()},
            body=_opt_str(doc.get("body")),
            error=_opt_str(error),
            error_detail=_opt_str(doc.get("error_detail")),
            attempt=_whole(doc.get("attempt", 1), "attempt", 1, 1_000),
        )


def _whole(value: Any, field: str, low: int, high: int) -> int:
    """A recorded integer (a JSON integer, never a bool, float or text) in ``low..high``.

    ``ValueError`` naming ``field`` otherwise: ``int(1.5)`` or ``int(True)`` would
    quietly turn a corrupt recording into a plausible one.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{field}: expected a whole number from {low} to {high}")
    return value


def as_seconds(value: Any, field: str) -> float:
    """A recorded duration (a JSON number, or its text) in seconds: finite and not negative.

    ``ValueError`` naming ``field`` otherwise: ``NaN`` or ``Infinity`` must never reach a report.
    """
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{field}: expected a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{field}: expected a finite, non-negative number of seconds")
    return seconds


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


class ExchangeSink(Protocol):
    """Anything that wants every exchange as it happens (a recorder)."""

    def add(self, exchange: Exchange) -> None: ...


def join_url(base: str, path: str) -> str:
    """``base`` (the endpoint as given, maybe with a path prefix) joined with ``path``."""
    head, sep, query = base.partition("?")
    joined = head.rstrip("/") + "/" + path.lstrip("/")
    return joined + (sep + query if sep else "")


def transport_outcome(exchange: Exchange) -> CallObservation | None:
    """The observation when the HTTP layer already decides it (no answer, 429, 5xx), else None."""
    base = CallObservation(
        call=exchange.call,
        outcome="ok",
        status=exchange.status,
        elapsed_seconds=exchange.elapsed_seconds,
        attempts=exchange.attempt,
    )
    if exchange.status is None:
        detail = f"{exchange.error}: {exchange.error_detail or ''}".rstrip(": ")
        return attrs.evolve(base, outcome="unreachable", detail=detail)
    if exchange.status == 429:
        return attrs.evolve(
            base,
            outcome="rate_limited",
            detail="HTTP 429",
            rate_limit=exchange.rate_limit_headers(),
        )
    if exchange.status >= 500:
        return attrs.evolve(
            base,
            outcome="http_error",
            detail=f"HTTP {exchange.status}{_problem_title(exchange)}",
        )
    return None


def _problem_title(exchange: Exchange) -> str:
    """``: <title>`` of a problem document (RFC 7807, as Horizon serves), if the body is one."""
    try:
        doc = exchange.json_body()
    except ValueError:
        return ""
    if isinstance(doc, dict) and isinstance(doc.get("title"), str):
        return f": {doc['title']}"
    return ""


def bad_body(exchange: Exchange, why: str) -> CallObservation:
    """A call that answered, but not with the JSON expected."""
    content_type = exchange.headers.get("content-type", "")
    shown = f" ({content_type})" if content_type else ""
    return CallObservation(
        call=exchange.call,
        outcome="bad_body",
        status=exchange.status,
        detail=f"HTTP {exchange.status}{shown}: {why}",
        elapsed_seconds=exchange.elapsed_seconds,
        attempts=exchange.attempt,
    )


def ok(exchange: Exchange) -> CallObservation:
    return CallObservation(
        call=exchange.call,
        outcome="ok",
        status=exchange.status,
        elapsed_seconds=exchange.elapsed_seconds,
        attempts=exchange.attempt,
    )


def json_object(exchange: Exchange) -> dict[str, Any] | None:
    """The body as a JSON object, or None (not JSON, or JSON of another shape)."""
    try:
        doc = exchange.json_body()
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


@attrs.frozen
class CallSpec:
    """One request a probe makes: GET ``path`` under the endpoint URL, or POST ``body`` to it."""

    call: str
    method: str
    path: str = ""
    body: str | None = None
    retry: RetryPolicy = READ_RETRY

    def url_for(self, endpoint: str) -> str:
        return join_url(endpoint, self.path) if self.method == "GET" else endpoint


def final_exchanges(exchanges: Iterable[Exchange]) -> dict[str, Exchange]:
    """The last attempt of each call: the answer that stands."""
    final: dict[str, Exchange] = {}
    for exchange in exchanges:
        current = final.get(exchange.call)
        if current is None or exchange.attempt >= current.attempt:
            final[exchange.call] = exchange
    return final
