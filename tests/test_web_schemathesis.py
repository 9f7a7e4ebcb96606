"""Schemathesis against /openapi.json with signed requests: bad input gets a 4xx, never a 5xx.

Two runs: positive data (what the document allows) and negative data (what it
forbids: wrong types, values outside enums, missing fields, odd path
segments), both signed exactly as sent.
"""

from __future__ import annotations

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from streampay_incident.auth import sign_request
from streampay_incident.web import WebConfig, create_app
from streampay_incident.web.mount import sidecar_router
from streampay_incident.web.openapi import openapi_document
from web_harness import KEY_ID, PREFIX, SECRET, FakeChain, running, signed

pytestmark = pytest.mark.network

# JSON Lines bodies are text on the wire: send generated strings as they are.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
schema = schemathesis.openapi.from_dict(openapi_document(PREFIX))
negative = schemathesis.openapi.from_dict(openapi_document(PREFIX))
negative.config.generation.update(modes=[GenerationMode.NEGATIVE])


class StreampayHmac(requests.auth.AuthBase):
    """Sign the request exactly as it goes on the wire: final path, query and body bytes."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        request.headers.update(
            sign_request(
                request.method or "GET",
                request.path_url,
                body,
                service_name="schemathesis",
                key_id=KEY_ID,
                secret=SECRET,
            )
        )
        return request


@pytest.fixture(scope="module")
def base_url():
    config = WebConfig(hmac_keys={KEY_ID: SECRET}, max_body_bytes=256 * 1024)
    # Served as the sidecar serves it: every 404, inside the mount or not, is the app's.
    with running(sidecar_router(create_app(config, health_source=FakeChain()), PREFIX)) as url:
        yield url


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        s.auth = StreampayHmac()
        yield s


def test_served_document_is_the_one_tested(base_url):
    path = f"{PREFIX}/openapi.json"
    served = httpx.get(base_url + path, headers=signed("GET", path)).json()
    assert served == openapi_document(PREFIX)


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case, base_url, session):
    response = case.call(base_url=base_url + PREFIX, session=session, timeout=10)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
    # An authenticated request never gets the concealing 404 unless the route itself says so.
    if response.status_code == 404:
        assert case.path == "/settlements/{settlement_id}"


@negative.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_negative_data_is_refused_with_a_4xx(case, base_url, session):
    response = case.call(base_url=base_url + PREFIX, session=session, timeout=10)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
    if response.status_code == 422:
        document = response.json()
        assert document["error"] == "invalid input" and document["problems"]
    if response.status_code == 404:
        # Authenticated: an unknown settlement, or a path the negative data made unroutable
        # (a newline, a '..' the client resolved): always the app's one 404.
        assert response.json() == {"error": "not found"}, response.request.path_url
