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

import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import pluggy
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .. import usecases
from ..errors import InputError, InputProblem
from ..logevents import log_event
from ..model import Finding, PayoutPolicy, Report, Status, make_finding
from ..registry import (
    checks_document,
    failed_plugins,
    get_plugin_manager,
    plugin_settings_from_env,
    register_plugin,
)
from ..report import render_markdown, report_to_json
from ..stellar.networks import network_name, resolve_network
from ..timefmt import format_duration, format_rfc3339, parse_duration
from . import query, triage
from .config import WebConfig
from .gate import (
    INSECURE_HEADER,
    INSECURE_WARNING,
    NOT_FOUND_BODY,
    AuthGate,
    not_found,
    route_path,
    signed_target,
)
from .health import MEDIA_TYPE as HEALTH_MEDIA_TYPE
from .health import HealthMonitor, HealthSource, chain_health_source, health_document
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import IncidentMetrics
from .openapi import openapi_document


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
        doc = checks_document(self.pm)
        # The plugins left out, without their exception text (as in every report).
        doc["plugin_errors"] = [f.to_json() for f in _sanitised(failed_plugins(self.pm).values())]
        return JSONResponse(doc)

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
        problems = query.seed_problems(request.query_params.multi_items())
        if problems:
            return problems  # nothing else about these parameters is looked at
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
        problems = query.only_seed_problems(problems)
        return self._unprocessable([{"parameter": p.field, "message": p.message} for p in problems])

    def _now(self, request: Request, problems: list[InputProblem]) -> datetime:
        text = request.query_params.get("now")
        if text is None:
            return self.clock()
        return query.query_time("now", text, problems) or self.clock()

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
                payouts = triage.payouts_from_body_rows(rows)
            except InputError as error:
                return fmt, error
            return usecases.triage_payouts(
                payouts,
                policy=policy,
                now=now,
                pm=self.pm,
                inputs={**inputs, "records": len(payouts)},
            )

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
            close_time = query.query_time("latest_ledger_close_time", close_text, problems)
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
                payouts = triage.payouts_beside_settlements(body, fmt)
            except InputError as error:
                return fmt, error
            chain = usecases.settlement_chain(
                latest_ledger_close_time=ledger_close, chain_status=chain_status
            )
            run_inputs = {**inputs, "records": len(settlements)}
            if payouts is not None:
                run_inputs["payout_records"] = len(payouts)
            return usecases.triage_settlements(
                settlements, chain=chain, now=now, pm=self.pm, inputs=run_inputs, payouts=payouts
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
        seeds = query.seed_problems([("settlement_id", settlement_id)])
        if seeds:
            return self._query_error(seeds)  # never handed to a lookup, never echoed
        settlement, transaction, error = await run_in_threadpool(
            usecases.find_settlement, self.pm, settlement_id
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
        chain = usecases.settlement_chain(
            [transaction] if transaction is not None else [],
            latest_ledger_close_time=chain_close_time,
            chain_status=chain_status,
        )
        report = await run_in_threadpool(
            usecases.triage_settlements,
            [settlement],
            chain=chain,
            now=now,
            pm=self.pm,
            inputs={**inputs, "records": 1},
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
    pm = plugin_manager or get_plugin_manager(
        plugin_settings_from_env(os.environ, timeout=config.probe_timeout_seconds)
    )
    for plugin in plugins:
        # Name host plugins after their module or class so a PLUGIN_ERROR finding says who.
        name = getattr(plugin, "__name__", None) or type(plugin).__qualname__
        register_plugin(pm, plugin, name=None if pm.has_plugin(name) else name)
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


__all__ = [
    "INSECURE_HEADER",
    "INSECURE_WARNING",
    "NOT_FOUND_BODY",
    "AuthGate",
    "create_app",
    "not_found",
    "route_path",
    "signed_target",
]
