"""Hostile request bodies get a 422 naming what is wrong, never a 500 (the shared readers).

The web app parses bodies with the same readers as the CLI (``io.rows``,
``io.strict_json``), so deep nesting, huge integers, non-finite numbers and
duplicate keys are refused the same way; an empty array is triaged with an
``INPUT_EMPTY`` warning instead of passing on nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from streampay_incident.web import WebConfig, create_app
from web_harness import KEY_ID, PREFIX, SECRET, mounted, running, signed

pytestmark = pytest.mark.network

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
DESTINATION = "GBVFTZL5HIPT4PFQVTZVIWR77V7LWYCXU4CLYWWHHOEXB64XPG5LDMTU"
PAYOUT = (
    '{"payout_id":"p1","settlement_id":"s1","destination":"' + DESTINATION + '","asset":"native",'
    '"amount":"25","status":"confirmed","created_at":"2026-11-27T02:00:00Z"%s}'
)
SETTLEMENT = '{"settlement_id":"s-1","status":"pending","created_at":"2026-11-27T02:00:00Z"%s}'


@pytest.fixture(scope="module")
def client() -> Any:
    config = WebConfig(hmac_keys={KEY_ID: SECRET}, max_body_bytes=1 << 20)
    app = mounted(create_app(config, clock=lambda: NOW))
    with running(app) as url, httpx.Client(base_url=url, timeout=10) as c:
        yield c


def post(client: httpx.Client, path: str, body: str, content_type: str) -> httpx.Response:
    full = PREFIX + path
    raw = body.encode()
    headers = {**signed("POST", full, raw), "content-type": content_type}
    return client.post(full, headers=headers, content=raw)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("path", "body", "field", "message"),
    [
        ("/triage/payouts", "[" + PAYOUT % (',"x":' + nested(1000)) + "]", None, "nested"),
        ("/triage/payouts", "[" + PAYOUT % (',"x":' + nested(100_000)) + "]", None, "nested"),
        ("/triage/payouts", '{"payouts":' + nested(100_000) + "}", None, "nested"),
        ("/triage/payouts", "[" + PAYOUT % ',"status":"failed"' + "]", "status", "duplicate key"),
        ("/triage/payouts", '{"payouts":[],"payouts":[]}', "payouts", "duplicate key"),
        (
            "/triage/payouts",
            "[" + PAYOUT % (',"memo_type":"id","memo":' + "9" * 5000) + "]",
            "memo",
            "larger than",
        ),
        ("/triage/payouts", "[" + PAYOUT % ',"ledger":NaN' + "]", "ledger", "NaN"),
        (
            "/triage/settlements",
            "[" + SETTLEMENT % (',"attempts":' + "9" * 5000) + "]",
            "attempts",
            "larger than",
        ),
        (
            "/triage/settlements",
            "[" + SETTLEMENT % ',"status":"dead"' + "]",
            "status",
            "duplicate key",
        ),
        (
            "/triage/settlements",
            "["
            + SETTLEMENT.replace("2026-11-27T02:00:00Z", "0001-01-01T00:00:00+01:00") % ""
            + "]",
            "created_at",
            "out of range",
        ),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else str(value),
)
def test_hostile_bodies_are_422_naming_the_field(
    client: httpx.Client, path: str, body: str, field: str | None, message: str
) -> None:
    response = post(client, path, body, "application/json")
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert any(p["field"] == field and message in p["message"] for p in problems), problems
    if field == "ledger":  # a refused number in a JSON array: the record's index and field
        assert problems == [{"index": 0, "field": "ledger", "message": problems[0]["message"]}]


def test_json_lines_bodies_with_duplicate_keys_name_the_line(client: httpx.Client) -> None:
    body = (PAYOUT % "") + "\n" + (PAYOUT % ',"payout_id":"p2"') + "\n"
    response = post(client, "/triage/payouts", body, "application/x-ndjson")
    assert response.status_code == 422
    assert response.json()["problems"] == [
        {
            "line": 2,
            "field": "payout_id",
            "message": "duplicate key in one JSON object "
            "(which of its values is meant is ambiguous)",
        }
    ]


@pytest.mark.parametrize(
    ("path", "kind"), [("/triage/payouts", "payout"), ("/triage/settlements", "settlement")]
)
def test_an_empty_array_is_a_warning_not_a_pass(client: httpx.Client, path: str, kind: str) -> None:
    response = post(client, path, "[]", "application/json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["status"] == "warn"
    [finding] = doc["findings"]
    assert finding["code"] == "INPUT_EMPTY"
    assert finding["evidence"] == {"input": "request body", "kind": kind, "records": 0}
    assert json.dumps(doc, allow_nan=False)
