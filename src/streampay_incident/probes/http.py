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
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import httpx

from ..__about__ import __version__
from ..observations import CallObservation
from .exchange import (
    KEPT_HEADER_PREFIXES,
    KEPT_HEADERS,
    NO_RETRY,
    READ_RETRY,
    CallSpec,
    Exchange,
    ExchangeSink,
    RetryPolicy,
    bad_body,
    final_exchanges,
    join_url,
    json_object,
    ok,
    transport_outcome,
)

USER_AGENT = f"streampay-incident/{__version__}"

# A proxy or a lying server could stream without end; a Horizon page is a few hundred KiB.
MAX_BODY_BYTES = 16 * 1024 * 1024

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


__all__ = [
    "MAX_BODY_BYTES",
    "NO_RETRY",
    "READ_RETRY",
    "USER_AGENT",
    "CallObservation",
    "CallSpec",
    "Deadline",
    "Exchange",
    "ExchangeSink",
    "RetryPolicy",
    "bad_body",
    "bounded_map",
    "classify_transport_error",
    "deadline_exchange",
    "fetch",
    "final_exchanges",
    "join_url",
    "json_object",
    "make_client",
    "ok",
    "run_sync",
    "run_within",
    "transport_outcome",
]
