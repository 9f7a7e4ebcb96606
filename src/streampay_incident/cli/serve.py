"""``streampay-incident serve``: the incident endpoints as a sidecar for non-Python hosts.

Serves the app of :mod:`streampay_incident.web` under ``/internal/incident``.
Refuses to start without HMAC keys unless ``--insecure-no-auth`` is given,
which only binds to loopback and marks every response with a warning header.
starlette and uvicorn (the ``web`` extra) are imported only when it runs.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from typing import Any, NoReturn

import click

from .common import EXIT_INPUT

MOUNT_PATH = "/internal/incident"


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_INPUT)


def configure_logging(level: str) -> None:
    """Send the tool's structured events (``event=auth_failed ...``) to stderr, once.

    uvicorn configures only its own loggers; without this the ``streampay_incident``
    events below WARNING would be dropped.
    """
    logger = logging.getLogger("streampay_incident")
    logger.setLevel(level.upper())
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)


def build_sidecar_app(config: Any, environ: Any = None) -> Any:
    """The app of :func:`create_app` under ``/internal/incident``, and a ``404`` elsewhere.

    The bare mount point answers the same ``404`` as any unauthenticated path
    (no redirect revealing the mount), and so does every path outside it. With
    ``STREAMPAY_INCIDENT_DATABASE_URL`` set, ``GET /settlements/{id}`` is
    answered from that database's outbox (read-only): a non-Python host needs
    no plugin for it.
    """
    from ..io.outbox_db import outbox_lookup_from_env
    from ..web import create_app
    from ..web.mount import sidecar_router

    lookup = outbox_lookup_from_env(os.environ if environ is None else environ, config)
    app = create_app(config, plugins=[lookup] if lookup is not None else [])
    return sidecar_router(app, MOUNT_PATH)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port to listen on.",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Serve without HMAC keys (loopback only; every response carries a warning header).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
    help="Least severe server log line written to stderr.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to receive a request's headers and body; then 408 and the connection closes.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Open connections served at once; a request on one more gets 503.",
)
def serve(
    host: str,
    port: int,
    insecure_no_auth: bool,
    log_level: str,
    request_timeout: float,
    max_connections: int,
) -> None:
    """Serve the read-only incident endpoints under /internal/incident.

    Configuration comes from the environment: INTERNAL_SERVICE_HMAC_KEYS (JSON object of
    key id -> secret), INTERNAL_SERVICE_CLOCK_SKEW_SECONDS, STREAMPAY_INCIDENT_ALLOWED_SERVICES,
    STREAMPAY_INCIDENT_METRICS_TOKEN, STREAMPAY_INCIDENT_HEALTH_TTL,
    STREAMPAY_INCIDENT_HORIZON_URLS, STREAMPAY_INCIDENT_RPC_URLS, STREAMPAY_INCIDENT_NETWORK,
    STREAMPAY_INCIDENT_DATABASE_URL (GET /settlements/{id} from the outbox, read-only).
    GET /internal/incident/livez is the liveness probe; /health is chain health.
    uvicorn's access log is off; the tool's own events go to stderr.
    """
    try:
        import uvicorn  # noqa: F401 - probe the web extra before anything else
        from prometheus_client import CollectorRegistry  # noqa: F401
        from starlette.applications import Starlette  # noqa: F401
    except ImportError as exc:
        _fail(
            f"the web extra is not installed ({exc.name} is missing): "
            "pip install 'streampay-incident[web]'"
        )
    import attrs
    import uvicorn

    from ..web import WebConfig, WebConfigError
    from ..web.limits import uvicorn_options

    try:
        config = WebConfig.from_env(os.environ)
    except WebConfigError as exc:
        _fail(str(exc))
    if insecure_no_auth:
        if not is_loopback(host):
            _fail(f"--insecure-no-auth only binds to loopback (127.0.0.1 or ::1), not {host!r}")
        config = attrs.evolve(config, insecure_no_auth=True)
        click.echo(
            "WARNING: authentication is disabled (--insecure-no-auth); serving on loopback only",
            err=True,
        )
    elif not config.hmac_keys:
        _fail(
            "INTERNAL_SERVICE_HMAC_KEYS is not set: refusing to serve internal endpoints "
            "without authentication. Set it to a JSON object of key id -> secret "
            "(or use --insecure-no-auth on loopback for local testing)"
        )
    if not config.chain_configured:
        click.echo(
            "note: no STREAMPAY_INCIDENT_HORIZON_URLS / _RPC_URLS: /health will answer fail",
            err=True,
        )
    config = attrs.evolve(config, request_timeout_seconds=request_timeout)
    configure_logging(log_level)
    from ..errors import InputError

    try:
        app = build_sidecar_app(config)
    except InputError as exc:  # a bad STREAMPAY_INCIDENT_DATABASE_URL (never echoed)
        _fail(str(exc))
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
        **uvicorn_options(request_timeout=request_timeout, max_connections=max_connections),
    )
