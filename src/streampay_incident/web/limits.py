"""Deadlines and connection limits against slow and lying clients.

Two layers, because the incident app is both mounted in other servers and run
as a sidecar:

- :func:`body_deadline` bounds the time the app itself waits for a request
  body (a ``Content-Length`` larger than the bytes sent, a trickle). It works
  under any ASGI server; on expiry the app answers ``408`` with
  ``Connection: close``.
- :func:`uvicorn_options` configures the ``serve`` sidecar: a request deadline
  from the connection's first byte to the end of the request body (partial
  headers included, which no ASGI app ever sees), after which the connection
  is closed, and a connection limit beyond which a request gets ``503``.

uvicorn is imported only by :func:`request_deadline_protocol` (the web extra).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from ..logevents import log_event
from .config import DEFAULT_REQUEST_TIMEOUT_SECONDS

__all__ = ["DEFAULT_MAX_CONNECTIONS", "DEFAULT_REQUEST_TIMEOUT_SECONDS"]

DEFAULT_MAX_CONNECTIONS = 100

REQUEST_TIMEOUT_BODY = {"error": "request not received in time"}


def body_deadline(seconds: float) -> asyncio.Timeout:
    """An ``async with`` block that raises :class:`TimeoutError` after ``seconds``."""
    return asyncio.timeout(seconds)


def declares_more_than(content_length: str | None, limit: int) -> bool:
    """True when a ``Content-Length`` value announces more than ``limit`` bytes.

    Only plain digits count; more than 18 of them is over any limit without
    ``int()`` (which refuses 4,301+ digit strings).
    """
    digits = (content_length or "").strip()
    if not (digits.isascii() and digits.isdigit()):
        return False
    return len(digits) > 18 or int(digits) > limit


def request_timeout_response(seconds: float) -> dict[str, Any]:
    """The JSON body of a ``408``: what happened and the deadline, nothing about the request."""
    return {**REQUEST_TIMEOUT_BODY, "timeout_seconds": seconds}


def _raw_408(seconds: float) -> bytes:
    body = json.dumps(request_timeout_response(seconds)).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def request_deadline_protocol(timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a deadline on receiving each request.

    The clock starts when a connection opens and again at the first byte of
    each later request on it (uvicorn's keep-alive timeout covers the idle
    time between requests); it stops when the request body is complete. When
    it expires the client gets a ``408`` (unless a response has started), the
    app sees a disconnect, and the connection is closed, whatever the client
    is still sending.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    receiving = (h11.IDLE, h11.SEND_BODY)

    class RequestDeadlineProtocol(H11Protocol):
        request_timeout = timeout
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and self.conn.their_state is h11.IDLE:
                self._arm()
            super().data_received(data)
            if self.conn.their_state not in receiving:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(self.request_timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing():  # pragma: no cover - a close already under way
                return  # (connection_lost, which cancels this timer, is only scheduled)
            cycle = self.cycle if self.conn.their_state is h11.SEND_BODY else None
            log_event(
                "request_timeout",
                level=logging.WARNING,
                stage="body" if cycle is not None else "headers",
                timeout_seconds=self.request_timeout,
            )
            if cycle is None or not cycle.response_started:
                self.transport.write(_raw_408(self.request_timeout))
            if cycle is not None:
                # The app's receive() now answers http.disconnect and its sends are dropped.
                cycle.disconnected = True
                cycle.message_event.set()
            self.transport.close()

    return RequestDeadlineProtocol


def uvicorn_options(*, request_timeout: float, max_connections: int) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` enforcing both limits.

    Always the h11 protocol (it refuses malformed requests and bounds a header
    block to 16 KiB), with :func:`request_deadline_protocol`. uvicorn answers
    ``503`` when the open connections, the new one included, reach
    ``limit_concurrency``: one more than ``max_connections`` lets exactly
    ``max_connections`` be served at once. uvicorn's access log is off: it
    would write query strings, which may hold anything a client typed.
    """
    return {
        "http": request_deadline_protocol(request_timeout),
        "limit_concurrency": max_connections + 1,
        "timeout_keep_alive": min(5.0, request_timeout),
        "access_log": False,
    }
