"""Shared helpers for the web tests: uvicorn on 127.0.0.1 in a thread, and signing.

``running(app)`` binds a free loopback port, serves ``app`` with uvicorn in a
thread, yields the base URL and stops the server afterwards. ``signed(...)``
builds streampay-hmac-v1 headers for one request. ``serve_argv`` and
``wait_until_live`` run the real ``serve`` command as a child process (the
sidecar test and ``benchmarks/web_load.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from streampay_incident.auth import sign_request

PREFIX = "/internal/incident"
KEY_ID = "current"
SECRET = "test-secret-current-0123456789abcdef"
NEXT_KEY_ID = "next"
NEXT_SECRET = "test-secret-next-0123456789abcdef"
SERVICE = "streampay-backend"
METRICS_TOKEN = "metrics-token-0123456789"  # noqa: S105 - a test value


def mounted(app: Any, prefix: str = PREFIX) -> Starlette:
    """A host app that mounts ``app`` at ``prefix``, as StreamPay's backend does."""
    return Starlette(routes=[Mount(prefix, app=app)])


def signed(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    key_id: str = KEY_ID,
    secret: str = SECRET,
    service: str = SERVICE,
    timestamp_ms: int | None = None,
) -> dict[str, str]:
    return sign_request(
        method,
        path,
        body,
        service_name=service,
        key_id=key_id,
        secret=secret,
        timestamp_ms=timestamp_ms,
    )


@contextlib.contextmanager
def running(app: Any, **options: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 with uvicorn in a thread; yield ``http://127.0.0.1:PORT``.

    uvicorn binds port 0 itself (a free port); the real port is read back once it started.
    ``options`` go to ``uvicorn.Config`` (e.g. ``serve``'s limits).
    """
    settings: dict[str, Any] = {"log_level": "warning", "lifespan": "off", "access_log": False}
    settings.update(options)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, **settings)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (for a child process to bind)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_argv(port: int, log_level: str) -> list[str]:
    """``streampay-incident serve`` on 127.0.0.1:``port``, run by this interpreter."""
    return [
        sys.executable,
        "-c",
        "from streampay_incident.cli import main; main()",
        "serve",
        "--port",
        str(port),
        "--log-level",
        log_level,
    ]


def wait_until_live(
    base: str, process: subprocess.Popen[bytes], *, timeout: float
) -> httpx.Response:
    """Poll ``GET {base}{PREFIX}/livez`` until the server ``process`` answers; its answer.

    Raises RuntimeError when the process exits first (with its stderr) or
    ``timeout`` seconds pass.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(f"{base}{PREFIX}/livez", timeout=1)
        except httpx.TransportError as exc:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"server exited ({process.returncode}): {stderr}") from exc
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not answer within {timeout:g}s") from exc
            time.sleep(0.1)


def http_scope(path, *, headers=(), method="GET", raw_path=True, query=b"", root_path=""):
    """An ASGI http scope as a server would build it (``raw_path`` as sent unless told)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "query_string": query,
        "root_path": root_path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in dict(headers).items()],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
    }
    if raw_path is True:
        scope["raw_path"] = path.encode()
    elif raw_path:
        scope["raw_path"] = raw_path
    return scope


def call(app, scope, messages=({"type": "http.request", "body": b"", "more_body": False},)):
    """Run ``app`` on one scope without a server; every message it sent."""
    pending = list(messages)
    sent = []

    async def receive():
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


HORIZON = "https://horizon.example.test"
RPC = "https://rpc.example.test"


def chain_grade(status: str = "pass", *, findings: tuple = (), ledger_age: float | None = 4.2):
    """A real ChainGrade for a fake probe round: one Horizon and one RPC endpoint."""
    from streampay_incident.checks.chain import ChainGrade, EndpointGrade

    def endpoint_status(url: str) -> str:
        severities = {f.severity.value for f in findings if f.subject == url}
        if "critical" in severities:
            return "fail"
        return "warn" if severities else "pass"

    endpoints = (
        EndpointGrade(HORIZON, "horizon", endpoint_status(HORIZON), 5_000_000, ledger_age, 1, 0.12),
        EndpointGrade(RPC, "rpc", endpoint_status(RPC), 5_000_001, ledger_age, None, 0.08),
    )
    return ChainGrade(status=status, findings=tuple(findings), endpoints=endpoints)


class FakeChain:
    """A health source that counts rounds and returns what the test sets."""

    def __init__(self, grade=None, *, delay: float = 0.0, error: Exception | None = None):
        self.grade = grade if grade is not None else chain_grade()
        self.delay = delay
        self.error = error
        self.rounds = 0

    async def __call__(self):
        import asyncio

        self.rounds += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.grade
