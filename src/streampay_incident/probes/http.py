"""The one HTTP client of the probes, and the deadline every call lives under.

Everything that touches the network goes through :func:`fetch`: it never
raises on a network fault, it returns an :class:`Exchange` saying what came
back (status, the headers that matter, the body) or why nothing did
(``refused``, ``dns``, ``timeout``, ``deadline``, ...). The caller decides what
the answer means; a recorder can write every exchange to a file so the same
answers can be graded again offline.

Why an overall :class:`Deadline` on top of httpx's timeouts: httpx bounds each
read, not the whole request, so a server that trickles one byte at a time
never trips it. Each attempt runs under ``asyncio.timeout`` set to what is left
of the run's deadline, and retries (idempotent reads only) happen only while
time is left.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

import attrs
import httpx

from ..__about__ import __version__
from ..io import strict_json
from ..timefmt import format_rfc3339, parse_rfc3339

USER_AGENT = f"streampay-incident/{__version__}"

# A proxy or a lying server could stream without end; a Horizon page is a few hundred KiB.
MAX_BODY_BYTES = 16 * 1024 * 1024

# The response headers worth keeping in a recording and a finding.
KEPT_HEADERS = ("content-type", "retry-after", "date")
KEPT_HEADER_PREFIXES = ("x-ratelimit-",)

TransportError = Literal[
    "refused", "dns", "connect", "timeout", "deadline", "protocol", "too_large", "invalid_url"
]

T = TypeVar("T")


class Deadline:
    """A point in monotonic time by which the whole run must have answered."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.seconds = seconds
        self.expires_at = clock() + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - self._clock())


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
            status=None if status is None else int(status),
            headers={str(k).lower(): str(v) for k, v in (doc.get("headers") or {}).items()},
            body=_opt_str(doc.get("body")),
            error=_opt_str(error),
            error_detail=_opt_str(doc.get("error_detail")),
            attempt=int(doc.get("attempt") or 1),
        )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


class ExchangeSink(Protocol):
    """Anything that wants every exchange as it happens (a recorder)."""

    def add(self, exchange: Exchange) -> None: ...


def make_client(*, timeout: float = 5.0, max_connections: int = 256) -> httpx.AsyncClient:
    """The shared async client: our User-Agent, JSON accepted, no redirects to other hosts.

    ``timeout`` bounds each connect/read/write; the run's :class:`Deadline`
    bounds the whole. Redirects are not followed: a probe reports what the
    endpoint it was given says.
    """
    return httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=32),
        follow_redirects=False,
        trust_env=False,
    )


def classify_transport_error(exc: BaseException) -> TransportError:
    """Name a transport failure the way on-call talks about it."""
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "invalid_url"
    if isinstance(exc, httpx.ConnectError):
        cause: BaseException | None = exc
        seen = 0
        while cause is not None and seen < 8:
            if isinstance(cause, ConnectionRefusedError) or (
                isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
            ):
                return "refused"
            if isinstance(cause, OSError) and cause.errno in _DNS_ERRNOS:
                return "dns"
            cause = cause.__cause__ or cause.__context__
            seen += 1
        text = str(exc).lower()
        if "refused" in text:
            return "refused"
        if any(hint in text for hint in _DNS_HINTS):
            return "dns"
        return "connect"
    return "protocol"


# socket.gaierror errnos: EAI_NONAME (-2), EAI_AGAIN (-3), EAI_FAIL (-4), EAI_NODATA (-5).
_DNS_ERRNOS = frozenset({-2, -3, -4, -5, 8})
_DNS_HINTS = (
    "name or service not known",
    "nodename nor servname",
    "getaddrinfo",
    "name resolution",
)


def _kept_headers(headers: httpx.Headers) -> dict[str, str]:
    return {
        k.lower(): v
        for k, v in headers.items()
        if k.lower() in KEPT_HEADERS or k.lower().startswith(KEPT_HEADER_PREFIXES)
    }


class _BodyTooLarge(Exception):
    """A body past :data:`MAX_BODY_BYTES`: stop reading, keep nothing."""


async def _attempt(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    endpoint: str,
    call: str,
    deadline: Deadline,
    request_body: str | None,
    attempt: int,
) -> Exchange:
    observed_at = datetime.now(UTC)
    started = time.monotonic()
    status: int | None = None
    headers: dict[str, str] = {}
    body: str | None = None
    error: str | None = None
    detail: str | None = None
    remaining = deadline.remaining()
    content = request_body.encode("utf-8") if request_body is not None else None
    request_headers = {"Content-Type": "application/json"} if content is not None else None
    try:
        if remaining <= 0:
            raise TimeoutError
        async with asyncio.timeout(remaining):
            async with client.stream(
                method, url, content=content, headers=request_headers
            ) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise _BodyTooLarge
                    chunks.append(chunk)
                status = response.status_code
                headers = _kept_headers(response.headers)
                body = b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")
    except _BodyTooLarge:
        error, detail = "too_large", f"body over {MAX_BODY_BYTES} bytes"
    except TimeoutError:
        error, detail = "deadline", f"no complete answer within the {deadline.seconds:g}s deadline"
    except httpx.HTTPError as exc:
        error, detail = classify_transport_error(exc), f"{type(exc).__name__}: {exc}"[:300]
    except httpx.InvalidURL as exc:
        error, detail = "invalid_url", f"InvalidURL: {exc}"[:300]
    except Exception as exc:  # noqa: BLE001 - e.g. an ExceptionGroup out of anyio's connect
        # Whatever the transport stack throws, a probe reports it; it never ends the round.
        error, detail = "connect", f"{type(exc).__name__}: {exc}"[:300]
    return Exchange(
        endpoint=endpoint,
        call=call,
        method=method,
        url=url,
        observed_at=observed_at,
        elapsed_seconds=round(time.monotonic() - started, 6),
        request_body=request_body,
        status=status,
        headers=headers,
        body=body,
        error=error,
        error_detail=detail,
        attempt=attempt,
    )


async def fetch(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    endpoint: str,
    call: str,
    deadline: Deadline,
    request_body: str | None = None,
    retry: RetryPolicy = NO_RETRY,
    sink: ExchangeSink | None = None,
) -> Exchange:
    """Request ``url`` and return the final :class:`Exchange`; never raises on network faults.

    Pass ``retry=READ_RETRY`` only for idempotent reads. Every attempt,
    retried or not, goes to ``sink``. A retry happens only when the pause and
    a useful slice of time still fit inside ``deadline``.
    """
    attempt = 1
    while True:
        exchange = await _attempt(
            client,
            method,
            url,
            endpoint=endpoint,
            call=call,
            deadline=deadline,
            request_body=request_body,
            attempt=attempt,
        )
        if sink is not None:
            sink.add(exchange)
        pause = retry.wants_retry(exchange, attempt)
        if pause is None or deadline.remaining() < pause + _MIN_SLICE:
            return exchange
        await asyncio.sleep(pause)
        attempt += 1


# Not worth a retry with less time than this left after the pause.
_MIN_SLICE = 0.05


def deadline_exchange(
    endpoint: str, call: str, method: str, url: str, deadline: Deadline, *, observed_at: datetime
) -> Exchange:
    """The exchange for a call that had not answered when the run's deadline passed."""
    return Exchange(
        endpoint=endpoint,
        call=call,
        method=method,
        url=url,
        observed_at=observed_at,
        elapsed_seconds=deadline.seconds,
        error="deadline",
        error_detail=f"no complete answer within the {deadline.seconds:g}s deadline",
    )


async def run_within(
    deadline: Deadline, jobs: Iterable[Awaitable[T]], *, grace: float = 0.25
) -> list[T | None]:
    """Run ``jobs`` concurrently; any still running at the deadline (plus ``grace``) is cancelled.

    Returns each job's result in order, ``None`` for one that was cancelled or
    raised. The per-call timeouts in :func:`fetch` normally end everything at
    the deadline; this is the outer bound that holds even if one does not.
    """
    tasks = [asyncio.ensure_future(job) for job in jobs]
    if not tasks:
        return []
    await asyncio.wait(tasks, timeout=deadline.remaining() + grace)
    for task in tasks:
        if not task.done():
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    results: list[T | None] = []
    for task in tasks:
        if task.cancelled() or task.exception() is not None:
            results.append(None)
        else:
            results.append(task.result())
    return results


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code (the CLI) and return its result.

    The coroutine gets a fresh event loop in a worker thread. Why not plain
    ``asyncio.run`` in the caller's thread: httpx connects through anyio's
    cancel scopes, and on CPython 3.11 those upset a tracer (coverage, a
    profiler) attached to the frame that runs the loop; in a worker thread the
    caller's frames stay untouched. The deadline inside ``coro`` still bounds
    how long this blocks.
    """
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="streampay-incident-probe"
    ) as pool:
        return pool.submit(asyncio.run, coro).result()


async def bounded_map(
    func: Callable[[T], Awaitable[Any]], items: Iterable[T], *, concurrency: int
) -> list[Any]:
    """``await func(item)`` for every item, at most ``concurrency`` at a time, results in order."""
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def one(item: T) -> Any:
        async with semaphore:
            return await func(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


def join_url(base: str, path: str) -> str:
    """``base`` (the endpoint as given, maybe with a path prefix) joined with ``path``."""
    head, sep, query = base.partition("?")
    joined = head.rstrip("/") + "/" + path.lstrip("/")
    return joined + (sep + query if sep else "")


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


def as_int(value: Any) -> int | None:
    """An integer served as a JSON number or as a decimal string (older RPC servers), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        digits = text.lstrip("-")
        if (
            digits.isdigit()
            and len(digits) <= strict_json.MAX_INT_DIGITS  # int() of 4,301+ digits raises
            and text.count("-") <= 1
            and not text.endswith("-")
        ):
            return int(text)
    return None


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


def as_unix_time(value: Any) -> datetime | None:
    """Unix seconds served as a number or a string (RPC close times), else None; 0 is None."""
    seconds = as_int(value)
    if seconds is None or seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def as_rfc3339(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (Horizon ``*_at`` fields), else None."""
    if not isinstance(value, str):
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


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
