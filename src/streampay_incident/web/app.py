"""The mountable ASGI app: read-only incident endpoints behind streampay-hmac-v1.

``create_app(config)`` returns a Starlette app whose routes are relative to
where it is mounted (StreamPay mounts it at ``/internal/incident``; the
``serve`` sidecar does the same). Every request except ``GET /livez`` passes
the :class:`AuthGate` first, in StreamPay's order: signature headers present,
service allowed, key id known, timestamp fresh; then the body limit (413);
then the body hash and the signature over the raw path and query as sent,
mount prefix included. Any auth failure answers the same 404 as an unknown
path, and the reason goes to the log only. Nothing here writes anything but
logs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pluggy
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..auth import AuthFailure, HmacVerifier, bearer_token_matches
from ..codes import all_codes
from ..errors import InputError, InputProblem
from ..logevents import log_event
from ..model import Finding, PayoutPolicy, Report, Status, make_finding
from ..registry import get_plugin_manager, loaded_plugins, plugin_settings_from_env
from ..report import render_markdown, report_to_json
from ..stellar.networks import network_name, resolve_network
from ..timefmt import format_duration, format_rfc3339, parse_duration, parse_rfc3339
from . import triage
from .config import WebConfig
from .health import MEDIA_TYPE as HEALTH_MEDIA_TYPE
from .health import HealthMonitor, HealthSource, chain_health_source, health_document
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import IncidentMetrics
from .openapi import openapi_document

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
        path = raw.partition(b"?")[0].decode("latin-1")
    else:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        # Older servers give path below root_path; newer ones (ASGI spec) include it.
        if root and not path.startswith(root):
            path = root + path
        path = quote(path, safe="/!*'()")
    query = scope.get("query_string", b"").decode("latin-1")
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
        """The body, or None after answering 413 (from Content-Length, else while reading)."""
        declared = _header(scope, b"content-length")
        too_large = declared is not None and declared.strip().isdigit() and int(declared) > limit
        if not too_large:
            try:
                return await _read_body(receive, limit)
            except _BodyTooLarge:
                pass
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


def _sanitised(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Plugin errors without the exception text (it may hold internal paths)."""
    out = []
    for f in findings:
        if f.code == "PLUGIN_ERROR":
            ev = f.evidence
            f = make_finding(
                "PLUGIN_ERROR",
                subject=f.subject,
                summary=(
                    f"plugin {ev.get('plugin', f.subject)!r} failed in "
                    f"{ev.get('check', 'a check')}: {ev.get('error', 'error')}"
                ),
                evidence={k: ev[k] for k in ("plugin", "check", "error") if k in ev},
                severity=f.severity,
            )
        out.append(f)
    return tuple(out)


class _Endpoints:
    """The route handlers, sharing one config, plugin manager, health monitor and metrics."""

    def __init__(
        self,
        config: WebConfig,
        pm: pluggy.PluginManager,
        monitor: HealthMonitor,
        metrics: IncidentMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.pm = pm
        self.monitor = monitor
        self.metrics = metrics
        self.clock = clock

    async def livez(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def health(self, request: Request) -> Response:
        health_round = await self.monitor.current()
        return JSONResponse(
            health_document(health_round),
            status_code=503 if health_round.status == "fail" else 200,
            media_type=HEALTH_MEDIA_TYPE,
            headers={"Cache-Control": f"max-age={self.monitor.max_age()}"},
        )

    async def checks(self, request: Request) -> Response:
        return JSONResponse(
            {
                "codes": [
                    {
                        "code": c.code,
                        "severity": c.severity.value,
                        "title": c.title,
                        "runbook": c.runbook,
                    }
                    for c in all_codes()
                ],
                "plugins": loaded_plugins(self.pm),
            }
        )

    async def metrics_text(self, request: Request) -> Response:
        if self.monitor.configured:
            await self.monitor.current()  # a scrape keeps the chain series fresh (cached)
        return Response(self.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(request.scope.get("root_path", "")))

    def _render(self, request: Request, report: Report, kind: str) -> Response:
        report = Report(
            command=report.command,
            findings=_sanitised(report.findings),
            generated_at=report.generated_at,
            inputs=report.inputs,
            settlements=report.settlements,
            status=report.status,
            extra=report.extra,
        )
        log_event(
            "triage_request",
            kind=kind,
            records=report.inputs.get("records"),
            status=report.overall,
        )
        if request.query_params.get("format") == "markdown":
            return PlainTextResponse(render_markdown(report), media_type="text/markdown")
        return JSONResponse(report_to_json(report))

    def _query_problems(self, request: Request, allowed: dict[str, str]) -> list[InputProblem]:
        problems = []
        fmt = request.query_params.get("format", "json")
        if fmt not in ("json", "markdown"):
            problems.append(InputProblem("query", None, "format", "must be json or markdown"))
        for name in request.query_params:
            if name not in allowed and name != "format":
                problems.append(InputProblem("query", None, name, "unknown query parameter"))
        return problems

    @staticmethod
    def _unprocessable(problems: list[dict[str, Any]]) -> JSONResponse:
        return JSONResponse({"error": "invalid input", "problems": problems}, status_code=422)

    def _query_error(self, problems: list[InputProblem]) -> JSONResponse:
        return self._unprocessable([{"parameter": p.field, "message": p.message} for p in problems])

    def _now(self, request: Request, problems: list[InputProblem]) -> datetime:
        text = request.query_params.get("now")
        if text is None:
            return self.clock()
        try:
            return parse_rfc3339(text)
        except ValueError as exc:
            problems.append(InputProblem("query", None, "now", str(exc)))
            return self.clock()

    async def triage_payouts(self, request: Request) -> Response:
        problems = self._query_problems(request, {"repeat_window": "", "now": ""})
        now = self._now(request, problems)
        policy = PayoutPolicy()
        window = request.query_params.get("repeat_window")
        if window is not None:
            try:
                policy = PayoutPolicy(repeat_window=parse_duration(window))
            except ValueError as exc:
                problems.append(InputProblem("query", None, "repeat_window", str(exc)))
        if problems:
            return self._query_error(problems)
        body = await request.body()
        inputs = {
            "payouts": triage.SOURCE,
            "repeat_window": format_duration(policy.repeat_window),
        }

        def work() -> Report | tuple[triage.BodyFormat, InputError]:
            # Parsing up to the body limit is CPU work: keep it off the event loop.
            fmt, rows = triage.read_body(body, request.headers.get("content-type"), kind="payouts")
            if isinstance(rows, InputError):
                return fmt, rows
            try:
                return triage.triage_payouts(
                    rows, pm=self.pm, policy=policy, now=now, inputs=inputs
                )
            except InputError as error:
                return fmt, error

        outcome = await run_in_threadpool(work)
        if not isinstance(outcome, Report):
            log_event("triage_request", kind="payouts", status="invalid")
            return self._unprocessable(triage.problems_json(outcome[1], outcome[0]))
        return self._render(request, outcome, "payouts")

    async def triage_settlements(self, request: Request) -> Response:
        allowed = {"now": "", "network": "", "latest_ledger_close_time": ""}
        problems = self._query_problems(request, allowed)
        now = self._now(request, problems)
        network = request.query_params.get("network")
        passphrase = resolve_network(network) if network else self.config.network_passphrase
        close_time = None
        close_text = request.query_params.get("latest_ledger_close_time")
        if close_text is not None:
            try:
                close_time = parse_rfc3339(close_text)
            except ValueError as exc:
                problems.append(InputProblem("query", None, "latest_ledger_close_time", str(exc)))
        if problems:
            return self._query_error(problems)
        body = await request.body()
        chain_status, chain_close_time = await self._chain_view()
        inputs: dict[str, Any] = {"settlements": triage.SOURCE}
        if passphrase is not None:
            inputs["network"] = network_name(passphrase)
        inputs["now"] = format_rfc3339(now)
        ledger_close = close_time or chain_close_time
        if ledger_close is not None:
            inputs["latest_ledger_close_time"] = format_rfc3339(ledger_close)
        if chain_status is not None:
            inputs["chain_status"] = chain_status

        def work() -> Report | tuple[triage.BodyFormat, InputError]:
            fmt, rows = triage.read_body(
                body, request.headers.get("content-type"), kind="settlements"
            )
            if isinstance(rows, InputError):
                return fmt, rows
            try:
                settlements = triage.settlements_from_body_rows(rows, network_passphrase=passphrase)
            except InputError as error:
                return fmt, error
            return triage.triage_settlements(
                settlements,
                pm=self.pm,
                now=now,
                latest_ledger_close_time=ledger_close,
                chain_status=chain_status,
                inputs=inputs,
            )

        outcome = await run_in_threadpool(work)
        if not isinstance(outcome, Report):
            log_event("triage_request", kind="settlements", status="invalid")
            return self._unprocessable(triage.problems_json(outcome[1], outcome[0]))
        return self._render(request, outcome, "settlements")

    async def _chain_view(self) -> tuple[Status | None, datetime | None]:
        """Chain status and latest ledger close time from the (cached) health round.

        Retry safety is decided on what the network says now; without configured
        endpoints there is no view, and the settlement rules stay conservative.
        """
        if not self.monitor.configured:
            return None, None
        health_round = await self.monitor.current()
        return health_round.status, health_round.latest_ledger_close_time

    async def settlement(self, request: Request) -> Response:
        settlement_id = request.path_params["settlement_id"]
        settlement, transaction, error = await run_in_threadpool(
            triage.find_settlement, self.pm, settlement_id
        )
        if error is not None:
            report = Report(
                command="settlements",
                findings=(error,),
                generated_at=self.clock(),
                inputs={"settlements": "streampay_incident_find_settlement", "records": 0},
                settlements=(),
            )
            return self._render(request, report, "settlement")
        if settlement is None:
            return not_found()
        chain_status, chain_close_time = await self._chain_view()
        now = self.clock()
        inputs: dict[str, Any] = {
            "settlements": "streampay_incident_find_settlement",
            "now": format_rfc3339(now),
        }
        if chain_close_time is not None:
            inputs["latest_ledger_close_time"] = format_rfc3339(chain_close_time)
        if chain_status is not None:
            inputs["chain_status"] = chain_status
        report = await run_in_threadpool(
            triage.triage_settlements,
            [settlement],
            pm=self.pm,
            transactions=[transaction] if transaction is not None else [],
            now=now,
            latest_ledger_close_time=chain_close_time,
            chain_status=chain_status,
            inputs=inputs,
        )
        return self._render(request, report, "settlement")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return not_found()
    return JSONResponse(
        {"error": "method not allowed" if exc.status_code == 405 else "request refused"},
        status_code=exc.status_code,
        headers=dict(exc.headers or {}),
    )


def create_app(
    config: WebConfig | None = None,
    *,
    health_source: HealthSource | None = None,
    plugin_manager: pluggy.PluginManager | None = None,
    plugins: Iterable[object] = (),
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """The incident endpoints as a Starlette app, to mount at ``/internal/incident``.

    ``config`` defaults to :meth:`WebConfig.from_env` over ``os.environ``.
    ``health_source`` replaces the live probes of the configured endpoints (an
    async callable returning a chain grade). ``plugin_manager`` / ``plugins``
    let the host register its ``streampay_incident_find_settlement`` lookup.
    """
    config = config if config is not None else WebConfig.from_env(os.environ)
    pm = plugin_manager or get_plugin_manager(plugin_settings_from_env(os.environ))
    for plugin in plugins:
        # Name host plugins after their module or class so a PLUGIN_ERROR finding says who.
        name = getattr(plugin, "__name__", None) or type(plugin).__qualname__
        pm.register(plugin, name=None if pm.has_plugin(name) else name)
    pm.check_pending()
    metrics = IncidentMetrics()
    clock = clock or (lambda: datetime.now(UTC))
    source = health_source if health_source is not None else chain_health_source(config, pm)
    monitor = HealthMonitor(
        source,
        ttl=config.health_ttl_seconds,
        # The probes bound themselves by the timeout; this outer deadline is a safety net.
        deadline=config.probe_timeout_seconds + 1.0,
        metrics=metrics,
        clock=clock,
    )
    endpoints = _Endpoints(config, pm, monitor, metrics, clock)
    routes = [
        Route("/livez", endpoints.livez, methods=["GET"]),
        Route("/health", endpoints.health, methods=["GET"]),
        Route("/checks", endpoints.checks, methods=["GET"]),
        Route("/metrics", endpoints.metrics_text, methods=["GET"]),
        Route("/openapi.json", endpoints.openapi, methods=["GET"]),
        Route("/settlements/{settlement_id:path}", endpoints.settlement, methods=["GET"]),
        Route("/triage/payouts", endpoints.triage_payouts, methods=["POST"]),
        Route("/triage/settlements", endpoints.triage_settlements, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(AuthGate, config=config, metrics=metrics)],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.config = config
    app.state.plugin_manager = pm
    app.state.health = monitor
    app.state.metrics = metrics
    return app
