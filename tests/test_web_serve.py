"""``streampay-incident serve``: refuses without keys, loopback-only insecure mode, real sidecar."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import httpx
import pytest
from click.testing import CliRunner

from streampay_incident.cli import main
from streampay_incident.cli.serve import is_loopback
from web_harness import KEY_ID, PREFIX, SECRET, free_port, serve_argv, signed, wait_until_live

KEYS_ENV = {"INTERNAL_SERVICE_HMAC_KEYS": json.dumps({KEY_ID: SECRET})}


@pytest.fixture
def captured_run(monkeypatch):
    """Replace uvicorn.run: capture the app and options instead of serving."""
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    # serve configures the tool's logger for the process; keep that inside this test.
    logger = logging.getLogger("streampay_incident")
    monkeypatch.setattr(logger, "handlers", list(logger.handlers))
    monkeypatch.setattr(logger, "level", logger.level)
    for name in list(os.environ):
        if name.startswith(("INTERNAL_SERVICE_", "STREAMPAY_INCIDENT_")):
            monkeypatch.delenv(name)
    return calls


def invoke(args, env=None):
    return CliRunner().invoke(main, ["serve", *args], env=env or {})


def test_refuses_to_start_without_keys(captured_run):
    result = invoke([])
    assert result.exit_code == 2
    assert "INTERNAL_SERVICE_HMAC_KEYS" in result.output
    assert "Traceback" not in result.output
    assert captured_run == []


def test_bad_key_json_is_exit_2_without_echo(captured_run):
    result = invoke([], env={"INTERNAL_SERVICE_HMAC_KEYS": '{"current": "hunter2-xx"'})
    assert result.exit_code == 2
    assert "hunter2" not in result.output
    assert captured_run == []


def test_endpoints_without_network_is_exit_2(captured_run):
    env = {**KEYS_ENV, "STREAMPAY_INCIDENT_HORIZON_URLS": "https://h"}
    result = invoke([], env=env)
    assert result.exit_code == 2
    assert "STREAMPAY_INCIDENT_NETWORK" in result.output


def test_serves_the_app_under_the_mount_path(captured_run):
    result = invoke(["--host", "127.0.0.1", "--port", "9999"], env=KEYS_ENV)
    assert result.exit_code == 0, result.output
    assert "no STREAMPAY_INCIDENT_HORIZON_URLS" in result.output
    ((app, options),) = captured_run
    assert options["host"] == "127.0.0.1" and options["port"] == 9999
    response = _asgi_get(app, f"{PREFIX}/livez")
    assert response.status_code == 200 and response.text == "ok"
    path = f"{PREFIX}/checks"
    assert _asgi_get(app, path, signed("GET", path)).status_code == 200
    assert _asgi_get(app, path).status_code == 404


def _asgi_get(app, path, headers=None):
    import asyncio

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(go())


def test_insecure_mode_only_on_loopback(captured_run):
    for host in ("0.0.0.0", "10.1.2.3", "::", "example.com"):
        result = invoke(["--insecure-no-auth", "--host", host])
        assert result.exit_code == 2, host
        assert "loopback" in result.output
    assert captured_run == []


def test_insecure_mode_serves_without_auth_and_warns(captured_run):
    result = invoke(["--insecure-no-auth", "--host", "localhost"])
    assert result.exit_code == 0, result.output
    assert "WARNING" in result.output
    ((app, _),) = captured_run
    for path in (f"{PREFIX}/checks", f"{PREFIX}/livez", f"{PREFIX}/missing"):
        response = _asgi_get(app, path)
        assert "authentication disabled" in response.headers["x-streampay-incident-warning"]
    assert _asgi_get(app, f"{PREFIX}/checks").status_code == 200


def test_missing_web_extra_is_a_clear_exit_2(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = invoke([], env=KEYS_ENV)
    assert result.exit_code == 2
    assert "pip install 'streampay-incident[web]'" in result.output
    assert "uvicorn" in result.output


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.1", False),
        ("host.local", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.network
def test_real_sidecar_process():
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INTERNAL_SERVICE_", "STREAMPAY_INCIDENT_"))
    }
    env.update(KEYS_ENV)
    proc = subprocess.Popen(
        serve_argv(port, "info"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        base = f"http://127.0.0.1:{port}"
        live = wait_until_live(base, proc, timeout=20)
        assert live.text == "ok"
        path = f"{PREFIX}/health"
        health = httpx.get(base + path, headers=signed("GET", path), timeout=10)
        assert health.status_code == 503  # no chain endpoints configured
        assert health.headers["content-type"] == "application/health+json"
        assert httpx.get(base + path, timeout=5).status_code == 404
        assert "server" not in health.headers
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log = proc.stderr.read().decode()
        proc.stdout.close()
        proc.stderr.close()
    assert "event=auth_failed reason=MISSING_SIGNATURE" in log
    assert "path=/internal/incident/health" in log
    assert "event=health_round status=fail" in log
    assert SECRET not in log


def test_no_note_when_endpoints_are_configured(captured_run):
    env = {
        **KEYS_ENV,
        "STREAMPAY_INCIDENT_RPC_URLS": "http://127.0.0.1:9",
        "STREAMPAY_INCIDENT_NETWORK": "testnet",
    }
    result = invoke([], env=env)
    assert result.exit_code == 0, result.output
    assert "note:" not in result.output
    ((app, _),) = captured_run
    assert app.routes[0].path == "/internal/incident"


def test_serve_sends_the_tools_events_to_stderr(captured_run):
    result = invoke(["--log-level", "warning"], env=KEYS_ENV)
    assert result.exit_code == 0, result.output
    logger = logging.getLogger("streampay_incident")
    assert logger.level == logging.WARNING
    assert any(isinstance(h, logging.StreamHandler) for h in logger.handlers)
    invoke([], env=KEYS_ENV)  # a second start adds no second handler
    assert sum(isinstance(h, logging.StreamHandler) for h in logger.handlers) == 1


def test_serve_limits_and_no_access_log(captured_run):
    result = invoke(["--request-timeout", "2.5", "--max-connections", "7"], env=KEYS_ENV)
    assert result.exit_code == 0, result.output
    ((app, options),) = captured_run
    assert options["access_log"] is False  # query strings never reach a log
    assert options["limit_concurrency"] == 8  # uvicorn counts the new connection itself
    assert options["timeout_keep_alive"] == 2.5
    assert options["http"].request_timeout == 2.5
    # The app's own body deadline follows the flag too.
    assert app.routes[1].app.state.config.request_timeout_seconds == 2.5


def test_serve_limit_defaults(captured_run):
    assert invoke([], env=KEYS_ENV).exit_code == 0
    ((app, options),) = captured_run
    assert options["limit_concurrency"] == 101
    assert options["timeout_keep_alive"] == 5.0
    assert options["http"].request_timeout == 10.0
    assert app.routes[1].app.state.config.request_timeout_seconds == 10.0


@pytest.mark.parametrize(
    "args", [["--request-timeout", "0"], ["--max-connections", "0"], ["--request-timeout", "x"]]
)
def test_serve_refuses_unusable_limits(captured_run, args):
    result = invoke(args, env=KEYS_ENV)
    assert result.exit_code == 2
    assert captured_run == []
