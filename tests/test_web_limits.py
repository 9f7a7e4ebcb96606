"""Slow and lying clients on real sockets: deadlines close them, a limit caps them, others go on.

The sidecar is served as ``serve`` serves it (``build_sidecar_app`` with
``uvicorn_options``) by uvicorn in a thread on 127.0.0.1. Clients are raw
sockets that stop half-way through their headers or send fewer body bytes
than their ``Content-Length`` announces.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest

from streampay_incident.cli.serve import build_sidecar_app
from streampay_incident.web import WebConfig, create_app
from streampay_incident.web.limits import declares_more_than, uvicorn_options
from web_harness import KEY_ID, PREFIX, SECRET, FakeChain, mounted, running, signed

pytestmark = pytest.mark.network

TRIAGE = f"{PREFIX}/triage/payouts"


def _config(request_timeout: float) -> WebConfig:
    return WebConfig(hmac_keys={KEY_ID: SECRET}, request_timeout_seconds=request_timeout)


def _sidecar(request_timeout: float, max_connections: int = 100):
    """The ``serve`` app and uvicorn options, the HMAC keys of the web harness."""
    return running(
        build_sidecar_app(_config(request_timeout)),
        **uvicorn_options(request_timeout=request_timeout, max_connections=max_connections),
    )


def _connect(base: str) -> socket.socket:
    parts = urlsplit(base)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return sock


def _partial_headers(base: str) -> socket.socket:
    """A client that stops in the middle of its header block."""
    sock = _connect(base)
    sock.sendall(f"POST {TRIAGE} HTTP/1.1\r\nHost: incident\r\nx-streampay-key".encode())
    return sock


def _short_body(base: str, *, announced: int = 1000, sent: int = 10) -> socket.socket:
    """A signed client whose Content-Length announces more than it sends."""
    body = b"[" + b" " * (announced - 2) + b"]"
    headers = signed("POST", TRIAGE, body)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock = _connect(base)
    sock.sendall(
        (
            f"POST {TRIAGE} HTTP/1.1\r\nHost: incident\r\ncontent-type: application/json\r\n"
            f"content-length: {announced}\r\n{head}\r\n"
        ).encode()
        + body[:sent]
    )
    return sock


def _until_closed(sock: socket.socket, *, within: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed (monotonic)."""
    sock.settimeout(within)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"the server kept the connection open past {within:g}s")
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return received, time.monotonic()


def _livez_answer(sock: socket.socket) -> bytes:
    """Read one ``GET /livez`` response (``ok``) from ``sock``; fail if it closes first."""
    sock.settimeout(5)
    answer = b""
    while not answer.endswith(b"\r\n\r\nok"):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {answer!r}"
        answer += chunk
    return answer


def _health(base: str) -> tuple[int, float]:
    started = time.monotonic()
    path = f"{PREFIX}/checks"
    response = httpx.get(base + path, headers=signed("GET", path), timeout=5)
    return response.status_code, time.monotonic() - started


def test_fifty_stalled_connections_are_closed_and_others_are_served(caplog):
    caplog.set_level(logging.INFO, logger="streampay_incident")
    timeout = 3.0  # generous: the 20 checks below must all finish while the 50 are stalled
    with _sidecar(timeout) as base:
        opened = time.monotonic()
        stalled = [_partial_headers(base) for _ in range(25)] + [
            _short_body(base) for _ in range(25)
        ]
        with ThreadPoolExecutor(max_workers=5) as pool:
            checks = list(pool.map(lambda _: _health(base), range(20)))
        assert time.monotonic() - opened < timeout  # all served while the 50 were still open
        assert {status for status, _ in checks} == {200}
        assert max(seconds for _, seconds in checks) < 2.0
        answers = [_until_closed(sock, within=timeout + 5) for sock in stalled]
        for received, closed in answers:
            assert received.startswith(b"HTTP/1.1 408 ")
            assert b'"error": "request not received in time"' in received
            assert timeout - 0.5 <= closed - opened <= timeout + 4
        assert _health(base)[0] == 200
    events = [r.getMessage() for r in caplog.records if "event=request_timeout" in r.getMessage()]
    assert sum("stage=headers" in e for e in events) == 25
    # The app's own body deadline may log the same expiry as the server's: at least one each.
    assert sum("stage=body" in e for e in events) >= 25


def test_a_connection_that_sends_nothing_is_closed():
    with _sidecar(0.5) as base:
        sock = _connect(base)
        opened = time.monotonic()
        received, closed = _until_closed(sock, within=3)
    assert received.startswith(b"HTTP/1.1 408 ")
    assert closed - opened < 2


def test_the_deadline_starts_again_for_each_request_on_a_connection():
    with _sidecar(0.8) as base:
        sock = _connect(base)
        request = f"GET {PREFIX}/livez HTTP/1.1\r\nHost: incident\r\n\r\n".encode()
        for _ in range(3):  # complete requests, each well within the deadline
            time.sleep(0.3)
            sock.sendall(request)
            assert _livez_answer(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /internal/incident/livez HTTP/1.1\r\nHo")
        started = time.monotonic()
        received, closed = _until_closed(sock, within=3)
    assert received.startswith(b"HTTP/1.1 408 ")
    assert 0.5 <= closed - started < 2


async def _answers_before_reading(scope, receive, send):
    """An app that starts its response, then waits for the body (ours never does this)."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"started", "more_body": True})
    while (await receive())["type"] != "http.disconnect":
        pass


def test_a_response_under_way_gets_no_408_but_the_connection_still_closes():
    options = uvicorn_options(request_timeout=0.8, max_connections=10)
    with running(_answers_before_reading, **options) as base:
        sock = _connect(base)
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: incident\r\ncontent-length: 100\r\n\r\n1234")
        started = time.monotonic()
        for _ in range(3):  # each byte resets uvicorn's idle timer, not the request deadline
            time.sleep(0.2)
            sock.sendall(b"x")
        received, closed = _until_closed(sock, within=3)
    assert received.startswith(b"HTTP/1.1 200 ")
    assert b"started" in received and b"408" not in received
    assert 0.6 <= closed - started < 2.5


def test_a_request_beyond_max_connections_gets_503_then_capacity_returns():
    with _sidecar(5.0, max_connections=4) as base:
        stalled = [_partial_headers(base) for _ in range(4)]
        time.sleep(0.2)  # let the server accept all four
        response = httpx.get(f"{base}{PREFIX}/livez", timeout=5)
        assert response.status_code == 503
        stalled.pop().close()
        time.sleep(0.2)
        assert httpx.get(f"{base}{PREFIX}/livez", timeout=5).status_code == 200
        for sock in stalled:
            sock.close()


def test_max_connections_are_all_served():
    with _sidecar(5.0, max_connections=4) as base:
        stalled = [_partial_headers(base) for _ in range(3)]
        time.sleep(0.2)
        assert httpx.get(f"{base}{PREFIX}/livez", timeout=5).status_code == 200  # the 4th
        for sock in stalled:
            sock.close()


def test_the_mounted_app_bounds_body_reads_under_any_server(caplog):
    """Plain uvicorn (no sidecar protocol): the app itself answers 408 and closes."""
    caplog.set_level(logging.INFO, logger="streampay_incident")
    app = mounted(create_app(_config(0.5), health_source=FakeChain()))
    with running(app) as base:
        sock = _short_body(base)
        started = time.monotonic()
        received, closed = _until_closed(sock, within=5)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in head.lower()
    assert json.loads(body) == {"error": "request not received in time", "timeout_seconds": 0.5}
    assert 0.4 <= closed - started < 3
    assert any("event=request_timeout stage=body" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("declared", "limit", "over"),
    [
        ("9" * 5000, 10, True),
        ("9" * 19, 10**30, True),
        ("11", 10, True),
        ("10", 10, False),
        (" 10 ", 5, True),
        ("1e3", 5, False),
        ("-1", 5, False),
        ("١٢", 5, False),
        (None, 5, False),
    ],
)
def test_declares_more_than(declared, limit, over):
    assert declares_more_than(declared, limit) is over


def test_a_5000_digit_content_length_is_413_not_500():
    """Through the ASGI app (no server in front to refuse the header first)."""
    import asyncio

    app = mounted(create_app(_config(5), health_source=FakeChain()))

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            headers = {**signed("POST", TRIAGE, b"[]"), "content-length": "9" * 5000}
            return await client.post(TRIAGE, content=b"[]", headers=headers)

    response = asyncio.run(go())
    assert response.status_code == 413
