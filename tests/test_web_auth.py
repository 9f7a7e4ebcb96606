"""Every streampay-hmac-v1 failure mode against uvicorn on 127.0.0.1: one 404, reason in the log."""

from __future__ import annotations

import logging

import httpx
import pytest

from streampay_incident.auth import now_ms
from streampay_incident.web import WebConfig, create_app
from web_harness import (
    KEY_ID,
    METRICS_TOKEN,
    NEXT_KEY_ID,
    NEXT_SECRET,
    PREFIX,
    SECRET,
    SERVICE,
    FakeChain,
    mounted,
    running,
    signed,
)

pytestmark = pytest.mark.network

LIMIT = 4096
CONFIG = WebConfig(
    hmac_keys={KEY_ID: SECRET, NEXT_KEY_ID: NEXT_SECRET},
    allowed_services=frozenset({SERVICE, "ops-cli"}),
    metrics_token=METRICS_TOKEN,
    max_body_bytes=LIMIT,
)
CHECKS = f"{PREFIX}/checks"
TRIAGE = f"{PREFIX}/triage/payouts"


@pytest.fixture(scope="module")
def base_url():
    with running(mounted(create_app(CONFIG, health_source=FakeChain()))) as url:
        yield url


@pytest.fixture
def client(base_url):
    with httpx.Client(base_url=base_url, timeout=10) as c:
        yield c


@pytest.fixture
def auth_log(caplog):
    caplog.set_level(logging.INFO, logger="streampay_incident")

    def events():
        return [r.getMessage() for r in caplog.records if "event=auth_failed" in r.getMessage()]

    return events


def _not_found_body(client):
    response = client.get(
        f"{PREFIX}/no-such-route", headers=signed("GET", f"{PREFIX}/no-such-route")
    )
    assert response.status_code == 404
    return response.content


def assert_concealed(response, client):
    """An auth failure looks exactly like an unknown path: same status, same body."""
    assert response.status_code == 404
    assert response.content == _not_found_body(client)
    for word in ("signature", "key", "timestamp", "hash", "service", "auth", "token"):
        assert word not in response.text.lower()


def test_a_signed_request_passes(client):
    response = client.get(CHECKS, headers=signed("GET", CHECKS))
    assert response.status_code == 200
    assert response.json()["codes"]


def test_both_keys_of_a_rotation_are_accepted(client):
    for key_id, secret in ((KEY_ID, SECRET), (NEXT_KEY_ID, NEXT_SECRET)):
        response = client.get(CHECKS, headers=signed("GET", CHECKS, key_id=key_id, secret=secret))
        assert response.status_code == 200


@pytest.mark.parametrize(
    "missing",
    [
        "x-streampay-service-name",
        "x-streampay-key-id",
        "x-streampay-timestamp",
        "x-streampay-content-sha256",
        "x-streampay-signature",
    ],
)
def test_missing_header(client, auth_log, missing):
    headers = {k: v for k, v in signed("GET", CHECKS).items() if k != missing}
    assert_concealed(client.get(CHECKS, headers=headers), client)
    assert any("reason=MISSING_SIGNATURE" in e for e in auth_log())


def test_no_headers_at_all(client, auth_log):
    assert_concealed(client.get(CHECKS), client)
    (event,) = [e for e in auth_log() if "path=/internal/incident/checks" in e]
    assert "reason=MISSING_SIGNATURE" in event


def test_service_not_allowed(client, auth_log):
    headers = signed("GET", CHECKS, service="billing-cron")
    assert_concealed(client.get(CHECKS, headers=headers), client)
    event = auth_log()[-1]
    assert "reason=SERVICE_NOT_ALLOWED" in event
    assert "service=billing-cron" in event
    assert f"key_id={KEY_ID}" in event


def test_unknown_key(client, auth_log):
    headers = signed("GET", CHECKS, key_id="retired", secret="retired-secret-000000000")
    assert_concealed(client.get(CHECKS, headers=headers), client)
    event = auth_log()[-1]
    assert "reason=UNKNOWN_KEY" in event
    assert "key_id=retired" in event
    assert "retired-secret" not in event


@pytest.mark.parametrize("offset_s", [-301, 301])
def test_stale_timestamp(client, auth_log, offset_s):
    headers = signed("GET", CHECKS, timestamp_ms=now_ms() + offset_s * 1000)
    assert_concealed(client.get(CHECKS, headers=headers), client)
    assert "reason=STALE_TIMESTAMP" in auth_log()[-1]


def test_timestamp_within_skew_passes(client):
    headers = signed("GET", CHECKS, timestamp_ms=now_ms() - 250_000)
    assert client.get(CHECKS, headers=headers).status_code == 200


def test_bad_content_hash(client, auth_log):
    headers = signed("POST", TRIAGE, b"[]")
    response = client.post(TRIAGE, headers=headers, content=b"[ ]")
    assert_concealed(response, client)
    assert "reason=BAD_CONTENT_HASH" in auth_log()[-1]


def test_bad_signature_wrong_secret(client, auth_log):
    headers = signed("GET", CHECKS, secret="not-the-secret-000000000000")
    assert_concealed(client.get(CHECKS, headers=headers), client)
    event = auth_log()[-1]
    assert "reason=BAD_SIGNATURE" in event
    assert SECRET not in event and "not-the-secret" not in event


def test_signature_is_over_the_path_with_the_mount_prefix(client, auth_log):
    headers = signed("GET", "/checks")  # signed without the prefix the client really sent
    assert_concealed(client.get(CHECKS, headers=headers), client)
    assert "reason=BAD_SIGNATURE" in auth_log()[-1]


def test_signature_is_over_the_query_as_sent(client, auth_log):
    path = f"{TRIAGE}?format=json&repeat_window=10m"
    ok = client.post(path, headers=signed("POST", path, b"[]"), content=b"[]")
    assert ok.status_code == 200
    reordered = f"{TRIAGE}?repeat_window=10m&format=json"
    response = client.post(reordered, headers=signed("POST", path, b"[]"), content=b"[]")
    assert_concealed(response, client)
    assert "reason=BAD_SIGNATURE" in auth_log()[-1]


def test_signature_is_over_the_method(client, auth_log):
    response = client.post(CHECKS, headers=signed("GET", CHECKS), content=b"")
    assert_concealed(response, client)
    assert "reason=BAD_SIGNATURE" in auth_log()[-1]


def test_signature_over_a_replayed_body_fails(client, auth_log):
    headers = signed("POST", TRIAGE, b"[]")
    assert client.post(TRIAGE, headers=headers, content=b"[]").status_code == 200
    other = b'{"payouts": []}'
    headers["x-streampay-content-sha256"] = signed("POST", TRIAGE, other)[
        "x-streampay-content-sha256"
    ]
    assert_concealed(client.post(TRIAGE, headers=headers, content=other), client)
    assert "reason=BAD_SIGNATURE" in auth_log()[-1]


def test_unknown_path_and_auth_failure_on_it_look_alike(client, auth_log):
    unsigned = client.get(f"{PREFIX}/admin")
    assert_concealed(unsigned, client)
    assert "path=/internal/incident/admin" in auth_log()[-1]


def test_known_route_with_another_method_is_405_only_once_authenticated(client):
    assert_concealed(client.delete(CHECKS), client)
    response = client.delete(CHECKS, headers=signed("DELETE", CHECKS))
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]


def test_body_limit_from_content_length_before_reading(client, auth_log):
    body = b"[" + b" " * LIMIT + b"]"
    response = client.post(TRIAGE, headers=signed("POST", TRIAGE, body), content=body)
    assert response.status_code == 413
    assert response.json()["limit_bytes"] == LIMIT


def test_body_limit_comes_before_the_body_hash_and_signature(client):
    body = b"x" * (LIMIT + 1)
    headers = signed("POST", TRIAGE, b"something else", secret="wrong-secret-0000000000")
    headers["x-streampay-key-id"] = KEY_ID
    response = client.post(TRIAGE, headers=headers, content=body)
    assert response.status_code == 413


def test_body_limit_comes_after_the_key_and_clock(client, auth_log):
    body = b"x" * (LIMIT + 1)
    stale = signed("POST", TRIAGE, body, timestamp_ms=now_ms() - 3_600_000)
    assert_concealed(client.post(TRIAGE, headers=stale, content=body), client)
    assert "reason=STALE_TIMESTAMP" in auth_log()[-1]
    unknown = signed("POST", TRIAGE, body, key_id="nope")
    assert_concealed(client.post(TRIAGE, headers=unknown, content=body), client)


def test_body_limit_enforced_while_streaming_without_content_length(client):
    body = b"[" + b" " * (LIMIT * 2) + b"]"

    def chunks():
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    response = client.post(TRIAGE, headers=signed("POST", TRIAGE, body), content=chunks())
    assert response.status_code == 413


def test_chunked_body_under_the_limit_is_read_and_verified(client):
    body = b"[" + b" " * 2000 + b"]"

    def chunks():
        yield body[:1000]
        yield body[1000:]

    response = client.post(TRIAGE, headers=signed("POST", TRIAGE, body), content=chunks())
    assert response.status_code == 200


def test_metrics_bearer_token(client, auth_log):
    metrics = f"{PREFIX}/metrics"
    ok = client.get(metrics, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert ok.status_code == 200
    assert "streampay_incident_chain_overall_status" in ok.text
    wrong = client.get(metrics, headers={"Authorization": "Bearer guess"})
    assert_concealed(wrong, client)
    assert "reason=BAD_BEARER_TOKEN" in auth_log()[-1]
    assert client.get(metrics, headers=signed("GET", metrics)).status_code == 200


def test_bearer_token_only_opens_metrics(client, auth_log):
    response = client.get(CHECKS, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert_concealed(response, client)
    assert "reason=MISSING_SIGNATURE" in auth_log()[-1]


def test_livez_needs_no_signature(client):
    response = client.get(f"{PREFIX}/livez")
    assert response.status_code == 200
    assert response.text == "ok"


def test_auth_failures_are_counted_by_reason(client):
    client.get(CHECKS, headers=signed("GET", CHECKS, key_id="nope"))
    metrics = client.get(
        f"{PREFIX}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    ).text
    assert 'streampay_incident_auth_failures_total{reason="UNKNOWN_KEY"}' in metrics


def test_no_metrics_token_means_no_bearer():
    config = WebConfig(hmac_keys={KEY_ID: SECRET})
    with running(mounted(create_app(config, health_source=FakeChain()))) as url:
        response = httpx.get(f"{url}{PREFIX}/metrics", headers={"Authorization": "Bearer anything"})
        assert response.status_code == 404
