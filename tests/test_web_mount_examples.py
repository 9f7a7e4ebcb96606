"""docs/web.md examples run as shown: Starlette and FastAPI mounts, Python and shell signing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from web_harness import KEY_ID, SECRET, running, signed

pytestmark = pytest.mark.network

DOC = Path(__file__).resolve().parents[1] / "docs" / "web.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def example(name: str) -> str:
    """The fenced block of docs/web.md whose first line is ``# example: <name>``."""
    for _lang, body in FENCE.findall(DOC.read_text(encoding="utf-8")):
        if body.startswith(f"# example: {name}\n"):
            return body
    raise AssertionError(f"docs/web.md has no '# example: {name}' block")


@pytest.fixture
def incident_env(monkeypatch):
    monkeypatch.setenv("INTERNAL_SERVICE_HMAC_KEYS", json.dumps({KEY_ID: SECRET}))
    for name in (
        "STREAMPAY_INCIDENT_HORIZON_URLS",
        "STREAMPAY_INCIDENT_RPC_URLS",
        "STREAMPAY_INCIDENT_ALLOWED_SERVICES",
    ):
        monkeypatch.delenv(name, raising=False)


def run_example(name: str):
    namespace: dict = {"__name__": f"docs_web_{name.replace('-', '_')}"}
    exec(compile(example(name), f"docs/web.md#{name}", "exec"), namespace)  # noqa: S102
    return namespace


def get(url: str, path: str, *, sign: bool = True):
    return httpx.get(url + path, headers=signed("GET", path) if sign else None, timeout=10)


def test_starlette_example(incident_env):
    app = run_example("starlette-host")["app"]
    with running(app) as url:
        assert httpx.get(url + "/").json() == {"service": "streampay-backend"}
        assert get(url, "/internal/incident/livez", sign=False).text == "ok"
        doc = get(url, "/internal/incident/settlements/stl_42").json()
        assert doc["settlements"][0]["settlement_id"] == "stl_42"
        assert doc["settlements"][0]["state"] == "stuck"
        assert {f["code"] for f in doc["findings"]} == {"SETTLEMENT_DEAD_LETTERED"}
        assert get(url, "/internal/incident/settlements/unknown").status_code == 404
        assert get(url, "/internal/incident/checks", sign=False).status_code == 404
        assert get(url, "/internal/incident", sign=False).status_code == 404  # no 307


def test_fastapi_example(incident_env):
    app = run_example("fastapi-host")["app"]
    with running(app) as url:
        assert httpx.get(url + "/api/ping").json() == {"pong": True}
        assert get(url, "/internal/incident/livez", sign=False).text == "ok"
        assert get(url, "/internal/incident/checks").json()["codes"]
        assert get(url, "/internal/incident/checks", sign=False).status_code == 404
        assert get(url, "/internal/incident", sign=False).status_code == 404  # no 307
        openapi = get(url, "/internal/incident/openapi.json").json()
        assert openapi["servers"] == [{"url": "/internal/incident"}]
        # The host's own schema does not list the mounted incident routes.
        assert not any("incident" in p for p in httpx.get(url + "/openapi.json").json()["paths"])


def test_python_client_example(incident_env):
    app = run_example("starlette-host")["app"]
    incident_health = run_example("client")["incident_health"]
    with running(app) as url:
        answer = incident_health(url, key_id=KEY_ID, secret=SECRET)
        wrong = incident_health(url, key_id=KEY_ID, secret="not-the-secret")
    assert answer["status"] == 503  # no chain endpoints configured: fail
    assert answer["body"]["status"] == "fail"
    assert wrong == {"status": 404, "body": {"error": "not found"}}


@pytest.mark.skipif(
    not (shutil.which("openssl") and shutil.which("curl")), reason="needs openssl and curl"
)
def test_shell_example(incident_env):
    app = run_example("fastapi-host")["app"]
    with running(app) as url:
        env = {
            "PATH": "/usr/bin:/bin",
            "INCIDENT_URL": url,
            "KEY_ID": KEY_ID,
            "HMAC_SECRET": SECRET,
        }
        result = subprocess.run(
            ["bash", "-c", example("shell")],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["codes"]
