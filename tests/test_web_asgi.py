"""The ASGI edges, driven directly: servers without raw_path, disconnects, lifespan, websockets."""

from __future__ import annotations

import asyncio
import logging

import pluggy
import pytest

from streampay_incident import hookimpl
from streampay_incident.model import Settlement
from streampay_incident.registry import get_plugin_manager
from streampay_incident.usecases import find_settlement
from streampay_incident.web import WebConfig, create_app
from streampay_incident.web.app import route_path, signed_target
from streampay_incident.web.triage import body_format
from web_harness import KEY_ID, PREFIX, SECRET, FakeChain, call, http_scope, mounted, signed

CONFIG = WebConfig(hmac_keys={KEY_ID: SECRET})


def status_of(sent):
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"path": "/internal/incident/health", "root_path": "/internal/incident"}, "/health"),
        ({"path": "/internal/incident", "root_path": "/internal/incident"}, "/"),
        (
            {"path": "/internal/incidents/x", "root_path": "/internal/incident"},
            "/internal/incidents/x",
        ),
        ({"path": "/health", "root_path": "/internal/incident"}, "/health"),
        ({"path": "/health"}, "/health"),
    ],
)
def test_route_path(scope, expected):
    assert route_path(scope) == expected


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"raw_path": b"/a/b%3Ac", "path": "/a/b:c", "query_string": b"x=1"}, "/a/b%3Ac?x=1"),
        ({"raw_path": b"/a?x=1", "path": "/a", "query_string": b"x=1"}, "/a?x=1"),
        # Servers without raw_path: path already includes root_path (ASGI spec) ...
        (
            {
                "path": "/internal/incident/settlements/settlement:abc",
                "root_path": "/internal/incident",
            },
            "/internal/incident/settlements/settlement%3Aabc",
        ),
        # ... or path below root_path (older servers).
        (
            {"path": "/settlements/a b", "root_path": "/internal/incident", "query_string": b"q"},
            "/internal/incident/settlements/a%20b?q",
        ),
        ({"path": "/x/it's(ok)!*~"}, "/x/it's(ok)!*~"),
    ],
)
def test_signed_target(scope, expected):
    assert signed_target(scope) == expected


def test_a_server_without_raw_path_still_verifies_encoded_paths():
    app = mounted(create_app(CONFIG, health_source=FakeChain()))
    path = f"{PREFIX}/settlements/settlement%3Aabc"
    scope = http_scope(
        f"{PREFIX}/settlements/settlement:abc", headers=signed("GET", path), raw_path=False
    )
    assert status_of(call(app, scope)) == 404  # verified; no lookup knows it
    checks = f"{PREFIX}/checks"
    scope = http_scope(checks, headers=signed("GET", checks), raw_path=False)
    assert status_of(call(app, scope)) == 200


def test_client_disconnect_while_reading_sends_nothing():
    app = mounted(create_app(CONFIG, health_source=FakeChain()))
    path = f"{PREFIX}/triage/payouts"
    body = b"[]"
    scope = http_scope(path, method="POST", headers=signed("POST", path, body))
    sent = call(
        app,
        scope,
        [
            {"type": "http.request", "body": b"[", "more_body": True},
            {"type": "http.disconnect"},
        ],
    )
    assert sent == []


def test_disconnect_is_counted_as_499():
    inner = create_app(CONFIG, health_source=FakeChain())
    path = f"{PREFIX}/triage/payouts"
    scope = http_scope(path, method="POST", headers=signed("POST", path, b"[]"))
    call(mounted(inner), scope, [{"type": "http.disconnect"}])
    text = inner.state.metrics.render().decode()
    assert 'status="499"' in text


def test_an_error_after_the_response_started_is_logged_not_doubled(caplog):
    class Halfway:
        @hookimpl
        def streampay_incident_find_settlement(self, settlement_id):
            from datetime import UTC, datetime

            return Settlement(settlement_id, "dead", datetime(2026, 1, 1, tzinfo=UTC))

    inner = create_app(CONFIG, plugins=[Halfway()])
    app = mounted(inner)
    path = f"{PREFIX}/settlements/x"
    scope = http_scope(path, headers=signed("GET", path))
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body":
            raise OSError("socket went away")

    with caplog.at_level(logging.INFO, logger="streampay_incident"):
        asyncio.run(app(scope, receive, send))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1 and starts[0]["status"] == 200
    assert any("event=internal_error error=OSError" in r.getMessage() for r in caplog.records)


def test_websockets_are_closed():
    app = create_app(CONFIG)
    sent = call(
        app,
        {"type": "websocket", "path": "/health", "headers": []},
        [{"type": "websocket.connect"}],
    )
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_lifespan_passes_through():
    app = create_app(CONFIG)
    sent = call(
        app,
        {"type": "lifespan", "asgi": {"version": "3.0"}},
        [
            {"type": "lifespan.startup"},
            {"type": "lifespan.shutdown"},
        ],
    )
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_the_app_alone_serves_its_routes_at_the_root():
    app = create_app(CONFIG, health_source=FakeChain())
    scope = http_scope("/checks", headers=signed("GET", "/checks"))
    assert status_of(call(app, scope)) == 200


def test_create_app_reads_the_environment_by_default(monkeypatch):
    monkeypatch.setenv("INTERNAL_SERVICE_HMAC_KEYS", '{"env-key": "env-secret-0000000000"}')
    app = create_app()
    assert app.state.config.key_ids == ("env-key",)


def test_a_given_plugin_manager_is_used():
    pm = get_plugin_manager(load_entry_points=False)
    app = create_app(CONFIG, plugin_manager=pm)
    assert app.state.plugin_manager is pm


def test_two_plugins_of_one_class_both_register():
    class Lookup:
        @hookimpl
        def streampay_incident_find_settlement(self, settlement_id):
            return None

    app = create_app(CONFIG, plugins=[Lookup(), Lookup()])
    impls = app.state.plugin_manager.hook.streampay_incident_find_settlement.get_hookimpls()
    assert len(impls) == 2


def test_lookup_skips_wrappers_and_takes_the_first_answer():
    from datetime import UTC, datetime

    pm = get_plugin_manager(load_entry_points=False)

    class Wrapper:
        @pluggy.HookimplMarker("streampay_incident")(wrapper=True)
        def streampay_incident_find_settlement(self, settlement_id):
            return (yield)

    class Known:
        @hookimpl
        def streampay_incident_find_settlement(self, settlement_id):
            return Settlement(settlement_id, "pending", datetime(2026, 1, 1, tzinfo=UTC))

    class Silent:
        @hookimpl
        def streampay_incident_find_settlement(self, settlement_id):
            return None

    pm.register(Known(), name="known")
    pm.register(Silent(), name="silent")
    pm.register(Wrapper(), name="wrapper")
    settlement, transaction, error = find_settlement(pm, "s1")
    assert settlement is not None and settlement.settlement_id == "s1"
    assert transaction is None and error is None


@pytest.mark.parametrize(
    ("content_type", "text", "expected"),
    [
        ("application/x-ndjson; charset=utf-8", "[]", "jsonl"),
        ("application/jsonl", "{}", "jsonl"),
        ("application/json", '{"a": 1}\n{"b": 2}', "json"),
        ("application/vnd.streampay+json", "[]", "json"),
        (None, '{"payouts": []}', "json"),
        (None, '{"a": 1}\n{"b": 2}', "jsonl"),
        ("text/plain", "[]", "json"),
        (None, "", "json"),
    ],
)
def test_body_format(content_type, text, expected):
    assert body_format(content_type, text) == expected


def test_replay_hands_over_the_body_once_then_defers_to_the_server():
    from streampay_incident.web.gate import _replay

    async def server_receive():
        return {"type": "http.disconnect"}

    async def scenario():
        receive = _replay(b"abc", server_receive)
        first = await receive()
        second = await receive()
        return first, second

    first, second = asyncio.run(scenario())
    assert first == {"type": "http.request", "body": b"abc", "more_body": False}
    assert second == {"type": "http.disconnect"}


def test_body_limit_applies_with_the_metrics_bearer_too():
    config = WebConfig(hmac_keys={KEY_ID: SECRET}, metrics_token="tok", max_body_bytes=4)
    app = create_app(config)
    scope = http_scope("/metrics", headers={"authorization": "Bearer tok"})
    sent = call(app, scope, [{"type": "http.request", "body": b"12345", "more_body": False}])
    assert status_of(sent) == 413
