"""Issue 10 A and B over HTTP: authentication reveals nothing, a secret seed is never echoed.

Each example of the issue is a test: a 4,301-digit timestamp, the mount root,
control characters and 8,000-character values in logged headers, a seed in a
query name or value, in a path and at any depth of a body, and a raw ``+`` in
``now``. Served by uvicorn on 127.0.0.1 unless the case needs bytes no HTTP
client sends (then the app is called directly).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest
from stellar_sdk import Keypair

from streampay_incident import hookimpl
from streampay_incident.cli.serve import build_sidecar_app
from streampay_incident.model import Settlement
from streampay_incident.web import WebConfig, create_app
from streampay_incident.web.mount import incident_routes
from web_harness import (
    KEY_ID,
    PREFIX,
    SECRET,
    FakeChain,
    call,
    http_scope,
    mounted,
    running,
    signed,
)

pytestmark = pytest.mark.network

# Shaped like a Stellar secret seed (S + 55 base32 characters); never a real one.
# Built at run time: no secret-seed-shaped string is committed.
SEED = Keypair.from_raw_ed25519_seed(bytes(range(32))).secret
CONFIG = WebConfig(hmac_keys={KEY_ID: SECRET})
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


class CountingLookup:
    """A host lookup that remembers every id it was asked for."""

    def __init__(self):
        self.asked = []

    @hookimpl
    def streampay_incident_find_settlement(self, settlement_id):
        self.asked.append(settlement_id)
        return Settlement(settlement_id, "dead", datetime(2026, 11, 27, 1, tzinfo=UTC))


LOOKUP = CountingLookup()


@pytest.fixture(scope="module")
def base_url():
    app = create_app(CONFIG, health_source=FakeChain(), plugins=[LOOKUP], clock=lambda: NOW)
    with running(mounted(app)) as url:
        yield url


@pytest.fixture
def client(base_url):
    with httpx.Client(base_url=base_url, timeout=10) as c:
        yield c


@pytest.fixture
def web_log(caplog):
    caplog.set_level(logging.INFO, logger="streampay_incident")
    return caplog


def not_found_bytes(client):
    return client.get(f"{PREFIX}/no-such-route").content


def post(client, path, body):
    full = PREFIX + path
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**signed("POST", full, data), "content-type": "application/json"}
    return client.post(full, headers=headers, content=data)


SETTLEMENT = {"settlement_id": "s1", "status": "dead", "created_at": "2026-11-27T01:00:00Z"}


# --- A. Authentication reveals nothing ---------------------------------------------------


@pytest.mark.parametrize("key_id", [KEY_ID, "no-such-key"])
def test_a_4301_digit_timestamp_is_the_one_404_for_any_key_id(client, web_log, key_id):
    path = f"{PREFIX}/checks"
    headers = {**signed("GET", path), "x-streampay-key-id": key_id}
    headers["x-streampay-timestamp"] = "9" * 4301
    response = client.get(path, headers=headers)
    assert response.status_code == 404
    assert response.content == not_found_bytes(client)
    assert not any(r.exc_info for r in web_log.records)
    assert "Traceback" not in web_log.text
    assert "reason=OVERSIZED_HEADER" in web_log.text


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-streampay-key-id", "k" * 8000),
        ("x-streampay-service-name", "s" * 8000),
        ("x-streampay-signature", "v1=" + "f" * 8000),
        ("x-streampay-content-sha256", "0" * 8000),
        ("x-streampay-timestamp", "1" * 17),
        ("x-streampay-timestamp", "-1"),
        ("x-streampay-timestamp", "1e400"),
        ("x-streampay-key-id", "caf\xe9 \t key".encode("latin-1")),  # obs-text, tab: valid
    ],
)
def test_every_long_or_odd_header_value_is_the_same_404(client, header, value):
    path = f"{PREFIX}/checks"
    headers = {**signed("GET", path), header: value}
    response = client.get(path, headers=headers)
    assert response.status_code == 404
    assert response.content == not_found_bytes(client)


def test_control_characters_in_logged_headers_are_escaped(web_log):
    """Bytes no HTTP client sends (h11 refuses them): the app still logs them escaped."""
    app = mounted(create_app(CONFIG, health_source=FakeChain()))
    path = f"{PREFIX}/checks"
    forged = "evil\x1b[31m\nevent=auth_ok reason=none"
    headers = {**signed("GET", path), "x-streampay-key-id": forged}
    sent = call(app, http_scope(path, headers=headers))
    assert sent[0]["status"] == 404
    (line,) = [r.getMessage() for r in web_log.records if "event=auth_failed" in r.getMessage()]
    assert "\n" not in line and "\x1b" not in line
    assert r'key_id="evil\u001b[31m\nevent=auth_ok reason=none"' in line


def test_long_logged_values_are_truncated(client, web_log):
    key_id = "k" * 250  # under the header bound, over the log bound
    path = f"{PREFIX}/" + "p" * 8000
    headers = {**signed("GET", path), "x-streampay-key-id": key_id}
    assert client.get(path, headers=headers).status_code == 404
    (line,) = [r.getMessage() for r in web_log.records if "event=auth_failed" in r.getMessage()]
    assert "...(250 chars)" in line
    assert "...(8019 chars)" in line
    assert len(line) < 600


def test_a_seed_in_a_refused_path_is_not_logged(client, web_log):
    path = f"{PREFIX}/settlements/{SEED}"
    assert client.get(path).status_code == 404
    assert SEED not in web_log.text
    assert "<secret seed redacted>" in web_log.text


def test_the_sidecar_mount_root_is_the_same_404_without_a_redirect():
    app = build_sidecar_app(CONFIG)
    with running(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        reference = client.get(f"{PREFIX}/no-such-route")
        for path in (PREFIX, f"{PREFIX}/", "/", "/internal", "/elsewhere", "/internal/incidents"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.content == reference.content, path
            assert "location" not in response.headers
        signed_root = client.get(PREFIX, headers=signed("GET", PREFIX))
        assert signed_root.status_code == 404
        assert client.get(f"{PREFIX}/livez").text == "ok"


def test_a_host_mounting_with_incident_routes_reveals_no_mount():
    from starlette.applications import Starlette
    from starlette.routing import Mount

    incident = create_app(CONFIG, health_source=FakeChain())
    plain = Starlette(routes=[Mount(PREFIX, app=incident)])
    guarded = Starlette(routes=incident_routes(incident, PREFIX))
    with running(plain) as base:
        # What the issue found: Starlette's own redirect tells a stranger where the app is.
        assert httpx.get(base + PREFIX).status_code == 307
    with running(guarded) as base:
        response = httpx.get(base + PREFIX)
        assert response.status_code == 404
        assert response.json() == {"error": "not found"}
        path = f"{PREFIX}/checks"
        assert httpx.get(base + path, headers=signed("GET", path)).status_code == 200


def test_the_sidecar_closes_a_websocket_outside_the_mount():
    app = build_sidecar_app(CONFIG)
    scope = {**http_scope("/elsewhere"), "type": "websocket"}
    assert call(app, scope) == [{"type": "websocket.close", "code": 1008}]


# --- B. A secret seed is never echoed -------------------------------------------------------


def test_a_seed_as_the_network_parameter_is_refused_unechoed(client):
    response = post(client, f"/triage/settlements?network={SEED}", [SETTLEMENT])
    assert response.status_code == 422
    assert SEED not in response.text
    (problem,) = response.json()["problems"]
    assert problem["parameter"] == "network"
    assert "secret seed" in problem["message"]


def test_a_parameter_named_like_a_seed_is_refused_unechoed(client):
    response = post(client, f"/triage/payouts?{SEED}=1", [])
    assert response.status_code == 422
    assert SEED not in response.text
    assert response.json()["problems"] == [
        {"parameter": "<parameter name>", "message": response.json()["problems"][0]["message"]}
    ]


@pytest.mark.parametrize(
    "query",
    [
        f"now={SEED}",
        f"now={quote(SEED.lower()).upper()}",  # percent-decoding happens before the check
        f"repeat_window=x{SEED}x",
        f"format={SEED}",
        f"x=1&now={SEED}&{SEED}=2",
    ],
)
def test_no_message_about_a_seed_parameter_quotes_it(client, query):
    response = post(client, f"/triage/payouts?{query}", [])
    assert response.status_code == 422
    assert SEED not in response.text
    assert all("secret seed" in p["message"] for p in response.json()["problems"])


def test_a_seed_in_the_settlement_path_never_reaches_the_lookup(client):
    path = f"{PREFIX}/settlements/x{SEED}"
    before = len(LOOKUP.asked)
    response = client.get(path, headers=signed("GET", path))
    assert response.status_code == 422
    assert SEED not in response.text
    assert response.json()["problems"][0]["parameter"] == "settlement_id"
    assert len(LOOKUP.asked) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"settlements": [SETTLEMENT], "note": SEED}, "note"),
        ({"settlements": [SETTLEMENT], "meta": {"a": [{"b": [SEED]}]}}, "meta"),
        ({"settlements": [SETTLEMENT], SEED: 1}, "<field name>"),
        ([{**SETTLEMENT, "extra": {"deep": [[{"x": SEED}]]}}], "extra"),
        ([SEED], None),
        ({"settlements": [SEED]}, None),
    ],
)
def test_a_seed_anywhere_in_a_body_is_refused_unechoed(client, body, field):
    response = post(client, "/triage/settlements", body)
    assert response.status_code == 422
    assert SEED not in response.text
    problems = response.json()["problems"]
    assert any(p["field"] == field and "secret seed" in p["message"] for p in problems)


# --- H. A raw '+' in a query is a space -------------------------------------------------------


def test_a_raw_plus_in_now_is_explained(client):
    response = post(client, "/triage/settlements?now=2026-11-27T03:00:00+01:00", [SETTLEMENT])
    assert response.status_code == 422
    (problem,) = response.json()["problems"]
    assert problem["parameter"] == "now"
    assert "raw '+' in a query string means a space" in problem["message"]
    assert "%2B" in problem["message"]
    fixed = post(client, "/triage/settlements?now=2026-11-27T03:00:00%2B01:00", [SETTLEMENT])
    assert fixed.status_code == 200
    assert fixed.json()["inputs"]["now"] == "2026-11-27T02:00:00Z"


def test_a_bad_now_without_a_space_gets_no_plus_hint(client):
    response = post(client, "/triage/payouts?now=yesterday", [])
    assert "'+'" not in response.json()["problems"][0]["message"]


@pytest.mark.parametrize("name", ["now", "latest_ledger_close_time"])
def test_a_time_out_of_range_is_422_not_500(client, name):
    text = quote("0001-01-01T00:00:00+01:00")
    response = post(client, f"/triage/settlements?{name}={text}", [SETTLEMENT])
    assert response.status_code == 422
    assert response.json()["problems"][0]["parameter"] == name
