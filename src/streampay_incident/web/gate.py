"""The gate in front of every route: streampay-hmac-v1, the body limit, the catch-all 500.

Pure ASGI middleware (:class:`AuthGate`) and the helpers it needs: the path
below the mount point, the raw target as signed, the one 404. See
:mod:`streampay_incident.web.app` for the order of the checks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

from starlette.responses import JSONResponse

from ..auth import AuthFailure, HmacVerifier, bearer_token_matches
from ..logevents import log_event
from .config import WebConfig
from .limits import body_deadline, declares_more_than, request_timeout_response
from .metrics import IncidentMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_log = logging.getLogger("streampay_incident.web")

INSECURE_HEADER = "x-streampay-incident-warning"
INSECURE_WARNING = "authentication disabled (--insecure-no-auth); loopback use only"

# Route templates for metrics labels (the raw path would explode cardinality).
_ROUTE_LABELS = (
    "/health",
    "/livez",
    "/checks",
    "/metrics",
    "/openapi.json",
    "/triage/payouts",
    "/triage/settlements",
)

NOT_FOUND_BODY = {"error": "not found"}


def not_found() -> JSONResponse:
    """The one 404: an unknown path and every auth failure look exactly alike."""
    return JSONResponse(NOT_FOUND_BODY, status_code=404)


def route_path(scope: Scope) -> str:
    """The path below the mount point (``/health``), whatever the ASGI server's convention."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


def signed_target(scope: Scope) -> str:
    """Raw path and query exactly as the client sent them, mount prefix included.

    ASGI servers hand over ``raw_path`` (uvicorn, hypercorn, httpx, TestClient).
    When one does not, rebuild it from ``root_path`` + ``path`` and re-encode it
    the way JavaScript's ``encodeURIComponent`` encodes each segment: right for
    StreamPay's callers, a best effort for others.
    """
    raw = scope.get("raw_path")
    if raw:
        # A literal '?' cannot be part of a path: a server that left the query in raw_path
        # still has it in query_string.
        path = raw.partition(b"?")[0].decode("utf-8", "surrogateescape")
    else:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        # Older servers give path below root_path; newer ones (ASGI spec) include it.
        if root and not path.startswith(root):
            path = root + path
        path = quote(path, safe="/!*'()")
    # Bytes that are not UTF-8 survive as surrogate escapes (auth.whatwg_target re-encodes them).
    query = scope.get("query_string", b"").decode("utf-8", "surrogateescape")
    return f"{path}?{query}" if query else path


def _route_label(path: str) -> str:
    if path in _ROUTE_LABELS:
        return path
    if path.startswith("/settlements/"):
        return "/settlements/{settlement_id}"
    return "other"


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, refusing as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body downstream, then defers to the server."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class AuthGate:
    """Pure ASGI middleware: authentication, the body limit, the catch-all 500, metrics."""

    def __init__(self, app: ASGIApp, *, config: WebConfig, metrics: IncidentMetrics) -> None:
        self.app = app
        self.config = config
        self.metrics = metrics
        self.verifier = HmacVerifier(
            config.hmac_keys,
            clock_skew_seconds=config.clock_skew_seconds,
            allowed_services=config.allowed_services,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        method = scope.get("method", "GET")
        received = time.perf_counter()
        status = [500]
        started = [False]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
                status[0] = message["status"]
                if self.config.insecure_no_auth:
                    headers = list(message.get("headers", []))
                    headers.append((INSECURE_HEADER.encode(), INSECURE_WARNING.encode()))
                    message["headers"] = headers
            await send(message)

        try:
            await self._handle(scope, receive, send_wrapper, path, method)
        except _ClientGone:
            status[0] = 499  # nginx's "client closed request"; nothing is sent
        except Exception as exc:  # noqa: BLE001 - never let a trace reach the caller
            log_event(
                "internal_error",
                level=logging.ERROR,
                error=type(exc).__name__,
                path=signed_target({**scope, "query_string": b""}),
            )
            _log.error("unhandled error in %s %s", method, _route_label(path), exc_info=exc)
            if not started[0]:
                await JSONResponse({"error": "internal error"}, status_code=500)(
                    scope, receive, send_wrapper
                )
        finally:
            self.metrics.observe_request(
                _route_label(path), method, status[0], time.perf_counter() - received
            )

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, path: str, method: str
    ) -> None:
        if path == "/livez":
            await self.app(scope, receive, send)
            return
        limit = self.config.max_body_bytes
        bearer_ok = path == "/metrics" and bearer_token_matches(
            _header(scope, b"authorization"), self.config.metrics_token
        )
        if self.config.insecure_no_auth or bearer_ok:
            body = await self._body_or_413(scope, receive, send, limit)
            if body is not None:
                await self.app(scope, _replay(body, receive), send)
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        signed = self.verifier.check_headers(headers)
        if isinstance(signed, AuthFailure):
            if (
                signed.reason == "MISSING_SIGNATURE"
                and path == "/metrics"
                and _header(scope, b"authorization")
            ):
                signed = AuthFailure("BAD_BEARER_TOKEN")  # type: ignore[arg-type]
            await self._refuse(scope, receive, send, signed)
            return
        body = await self._body_or_413(scope, receive, send, limit)
        if body is None:
            return
        failure = self.verifier.check_body(signed, method, signed_target(scope), body)
        if failure is not None:
            await self._refuse(scope, receive, send, failure)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _body_or_413(
        self, scope: Scope, receive: Receive, send: Send, limit: int
    ) -> bytes | None:
        """The body, or None after answering 413 (from Content-Length, else while reading).

        Or 408 when the body does not arrive within the request timeout.
        """
        declared = _header(scope, b"content-length")
        too_large = declares_more_than(declared, limit)
        if not too_large:
            timeout = self.config.request_timeout_seconds
            try:
                async with body_deadline(timeout):
                    return await _read_body(receive, limit)
            except _BodyTooLarge:
                pass
            except TimeoutError:
                log_event(
                    "request_timeout", level=logging.WARNING, stage="body", timeout_seconds=timeout
                )
                await JSONResponse(
                    request_timeout_response(timeout),
                    status_code=408,
                    headers={"connection": "close"},  # the rest of the body is never read
                )(scope, receive, send)
                return None
        log_event("body_too_large", limit=limit, declared=declared)
        await JSONResponse(
            {"error": "request body too large", "limit_bytes": limit}, status_code=413
        )(scope, receive, send)
        return None

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, failure: AuthFailure
    ) -> None:
        self.metrics.observe_auth_failure(failure.reason)
        log_event(
            "auth_failed",
            level=logging.WARNING,
            reason=failure.reason,
            service=failure.service,
            key_id=failure.key_id,
            # The path as the client sent it (mount prefix included, query left out).
            path=signed_target({**scope, "query_string": b""}),
        )
        await not_found()(scope, receive, send)
