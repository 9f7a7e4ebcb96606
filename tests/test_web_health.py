"""GET /health: draft-inadarei health documents, single-flight caching, fail never 500, metrics."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from datetime import UTC, datetime

import httpx
import pytest

from streampay_incident.model import make_finding
from streampay_incident.web import WebConfig, create_app
from streampay_incident.web.health import ChainReading, HealthMonitor, HealthRound, health_document
from web_harness import (
    HORIZON,
    KEY_ID,
    METRICS_TOKEN,
    PREFIX,
    RPC,
    SECRET,
    FakeChain,
    chain_grade,
    mounted,
    running,
    signed,
)

HEALTH = f"{PREFIX}/health"
METRICS = f"{PREFIX}/metrics"
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def config(**over):
    base = {"hmac_keys": {KEY_ID: SECRET}, "metrics_token": METRICS_TOKEN}
    base.update(over)
    return WebConfig(**base)


def app_with(source, **over):
    return mounted(create_app(config(**over), health_source=source, clock=lambda: NOW))


async def fetch(app, path=HEALTH, *, count=1):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        return await asyncio.gather(
            *(client.get(path, headers=signed("GET", path)) for _ in range(count))
        )


def one(app, path=HEALTH):
    return asyncio.run(fetch(app, path))[0]


STALE = make_finding("CHAIN_LEDGER_STALE", HORIZON, "latest ledger closed 20 s ago")
DOWN = make_finding("CHAIN_ENDPOINT_UNREACHABLE", RPC, "no answer before the deadline")


def test_pass_is_200_health_json():
    response = one(app_with(FakeChain(chain_grade("pass"))))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/health+json"
    doc = response.json()
    assert doc["status"] == "pass"
    assert "output" not in doc
    assert set(doc["checks"]) == {
        "horizon:ledgerAge",
        "horizon:latestLedger",
        "horizon:ingestLag",
        "horizon:responseTime",
        "rpc:ledgerAge",
        "rpc:latestLedger",
        "rpc:responseTime",
    }
    age = doc["checks"]["horizon:ledgerAge"][0]
    assert age == {
        "componentId": HORIZON,
        "componentType": "horizon",
        "observedValue": 4.2,
        "observedUnit": "s",
        "status": "pass",
        "time": "2026-11-27T03:00:00Z",
    }
    assert doc["checks"]["horizon:ingestLag"][0]["observedValue"] == 1
    assert doc["checks"]["rpc:latestLedger"][0]["observedValue"] == 5_000_001


def test_warn_is_200_with_output_on_the_endpoint_that_warns():
    response = one(app_with(FakeChain(chain_grade("warn", findings=(STALE,)))))
    assert response.status_code == 200
    doc = response.json()
    assert doc["status"] == "warn"
    assert "CHAIN_LEDGER_STALE" in doc["output"]
    horizon = doc["checks"]["horizon:ledgerAge"][0]
    assert horizon["status"] == "warn"
    assert "CHAIN_LEDGER_STALE" in horizon["output"]
    assert "output" not in doc["checks"]["rpc:ledgerAge"][0]


def test_fail_is_503():
    response = one(app_with(FakeChain(chain_grade("fail", findings=(DOWN,), ledger_age=None))))
    assert response.status_code == 503
    doc = response.json()
    assert doc["status"] == "fail"
    rpc = doc["checks"]["rpc:ledgerAge"][0]
    assert rpc["status"] == "fail"
    assert rpc["observedValue"] is None
    assert "CHAIN_ENDPOINT_UNREACHABLE" in rpc["output"]


def test_a_reading_carries_the_close_time():
    reading = ChainReading(chain_grade("warn", findings=(STALE,)), NOW)
    assert one(app_with(FakeChain(reading))).json()["status"] == "warn"


def test_a_round_that_raises_is_a_fail_answer_not_a_500():
    source = FakeChain(error=RuntimeError("/opt/app/secret.py: boom"))
    response = one(app_with(source))
    assert response.status_code == 503
    doc = response.json()
    assert doc["status"] == "fail"
    assert doc["output"] == "probe round failed"
    assert "/opt/app" not in response.text
    assert "Traceback" not in response.text


def test_a_round_past_its_deadline_is_a_fail_answer():
    source = FakeChain(delay=30)
    started = time.monotonic()
    response = one(app_with(source, probe_timeout_seconds=0.1))
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    assert "deadline" in response.json()["output"]


def test_no_endpoints_configured_is_fail():
    response = one(mounted(create_app(config())))
    assert response.status_code == 503
    assert "no Horizon or RPC endpoint" in response.json()["output"]


def test_cache_control_max_age_is_the_freshness_window():
    response = one(app_with(FakeChain(), health_ttl_seconds=5))
    assert response.headers["cache-control"] == "max-age=5"


def test_a_burst_of_200_requests_runs_one_probe_round():
    source = FakeChain(delay=0.2)
    responses = asyncio.run(fetch(app_with(source), count=200))
    assert {r.status_code for r in responses} == {200}
    assert source.rounds == 1


def test_the_answer_is_cached_for_the_ttl_then_refreshed():
    source = FakeChain()
    app = app_with(source, health_ttl_seconds=0.3)

    async def scenario():
        await fetch(app, count=3)
        assert source.rounds == 1
        await asyncio.sleep(0.35)
        await fetch(app, count=3)

    asyncio.run(scenario())
    assert source.rounds == 2


def test_monitor_ttl_with_a_fake_clock():
    ticks = [0.0]
    source = FakeChain()
    monitor = HealthMonitor(source, ttl=5, deadline=1, monotonic=lambda: ticks[0])

    async def scenario():
        first = await monitor.current()
        ticks[0] = 4.9
        assert await monitor.current() is first
        assert monitor.max_age() == 1
        ticks[0] = 5.0
        second = await monitor.current()
        assert second is not first
        assert monitor.max_age() == 5

    asyncio.run(scenario())
    assert source.rounds == 2 and monitor.rounds == 2


def test_a_cancelled_caller_does_not_cancel_the_round():
    source = FakeChain(delay=0.2)
    monitor = HealthMonitor(source, ttl=5, deadline=1)

    async def scenario():
        impatient = asyncio.ensure_future(monitor.current())
        await asyncio.sleep(0.05)
        impatient.cancel()
        patient = await monitor.current()
        assert patient.status == "pass"

    asyncio.run(scenario())
    assert source.rounds == 1


def test_a_new_event_loop_gets_a_new_round():
    source = FakeChain()
    monitor = HealthMonitor(source, ttl=0, deadline=1)
    asyncio.run(monitor.current())
    asyncio.run(monitor.current())
    assert source.rounds == 2


def test_health_document_without_error_text():
    doc = health_document(HealthRound(NOW, 0.5))
    assert doc["status"] == "fail"
    assert doc["output"] == "probe round failed"


def test_warn_without_findings_still_says_why():
    doc = health_document(HealthRound(NOW, 0.1, grade=chain_grade("warn")))
    assert doc["output"] == "chain status warn"


# --- metrics ----------------------------------------------------------------------------


PINNED = (
    "streampay_incident_chain_status",
    "streampay_incident_chain_overall_status",
    "streampay_incident_ledger_age_seconds",
    "streampay_incident_horizon_ingest_lag_ledgers",
    "streampay_incident_probe_duration_seconds",
    "streampay_incident_last_probe_timestamp_seconds",
    "streampay_incident_probe_rounds_total",
    "streampay_incident_findings",
)


def metrics_text(app):
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            await client.get(HEALTH, headers=signed("GET", HEALTH))
            return await client.get(METRICS, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})

    response = asyncio.run(go())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def samples(text):
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_pinned_metric_names_and_values():
    grade = chain_grade("warn", findings=(STALE, STALE))
    text = metrics_text(app_with(FakeChain(grade)))
    for name in PINNED:
        assert f"\n{name}" in text or text.startswith(name), name
    values = samples(text)
    assert values[("streampay_incident_chain_overall_status", ())] == 1
    assert (
        values[("streampay_incident_chain_status", (("endpoint", HORIZON), ("kind", "horizon")))]
        == 1
    )
    assert values[("streampay_incident_chain_status", (("endpoint", RPC), ("kind", "rpc")))] == 0
    assert values[
        ("streampay_incident_ledger_age_seconds", (("endpoint", RPC), ("kind", "rpc")))
    ] == pytest.approx(4.2)
    assert values[("streampay_incident_horizon_ingest_lag_ledgers", (("endpoint", HORIZON),))] == 1
    assert (
        values[
            (
                "streampay_incident_findings",
                (("code", "CHAIN_LEDGER_STALE"), ("severity", "warning")),
            )
        ]
        == 2
    )
    assert values[("streampay_incident_probe_rounds_total", ())] == 1
    assert values[("streampay_incident_last_probe_timestamp_seconds", ())] == NOW.timestamp()
    assert values[("streampay_incident_probe_duration_seconds_count", (("kind", "horizon"),))] == 1
    assert values[("streampay_incident_probe_duration_seconds_count", (("kind", "rpc"),))] == 1


def test_failed_round_metrics():
    values = samples(metrics_text(app_with(FakeChain(error=OSError("x")))))
    assert values[("streampay_incident_chain_overall_status", ())] == 2
    assert values[("streampay_incident_probe_rounds_total", ())] == 1
    assert values[("streampay_incident_last_probe_timestamp_seconds", ())] == 0
    assert not any(name == "streampay_incident_chain_status" for name, _ in values)


def test_a_scrape_runs_the_round_when_nobody_asked_for_health():
    source = FakeChain()
    app = app_with(source)

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            return await client.get(METRICS, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})

    assert "streampay_incident_chain_status{" in asyncio.run(go()).text
    assert source.rounds == 1


def test_no_endpoints_means_no_round_on_scrape():
    text = metrics_text(mounted(create_app(config())))
    assert samples(text)[("streampay_incident_probe_rounds_total", ())] == 0


def test_each_app_has_its_own_registry():
    first = metrics_text(app_with(FakeChain(chain_grade("warn", findings=(STALE,)))))
    second = metrics_text(app_with(FakeChain()))
    assert samples(first)[("streampay_incident_chain_overall_status", ())] == 1
    assert samples(second)[("streampay_incident_chain_overall_status", ())] == 0


def test_request_counter_labels_routes_not_raw_paths():
    text = metrics_text(app_with(FakeChain()))
    assert 'route="/health"' in text
    assert (
        samples(text)[
            ("streampay_incident_http_request_duration_seconds_count", (("route", "/health"),))
        ]
        == 1
    )
    app = app_with(FakeChain())

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            for sid in ("a", "b", "c"):
                await client.get(f"{PREFIX}/settlements/{sid}")
            await client.get(f"{PREFIX}/whatever")
            return await client.get(METRICS, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})

    text = asyncio.run(go()).text
    assert 'route="/settlements/{settlement_id}"' in text
    assert 'route="other"' in text
    assert "whatever" not in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_exposition_passes_promtool():
    text = metrics_text(app_with(FakeChain(chain_grade("warn", findings=(STALE,)))))
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- real chain endpoints on loopback, over a real socket --------------------------------


@pytest.mark.network
def test_health_from_real_loopback_horizon_and_rpc():
    from loopback import LoopbackServer, horizon_routes, rfc3339, rpc_routes
    from streampay_incident.stellar.networks import PUBLIC

    recent = datetime.now(UTC)
    horizon = horizon_routes(root={"history_latest_ledger_closed_at": rfc3339(recent)})
    rpc = rpc_routes(passphrase=PUBLIC, close_time=recent)
    with LoopbackServer(horizon) as h, LoopbackServer(rpc) as r:
        cfg = config(horizon_urls=(h.url,), rpc_urls=(r.url,), network_passphrase=PUBLIC)
        app = create_app(cfg)
        with running(mounted(app)) as url:
            response = httpx.get(url + HEALTH, headers=signed("GET", HEALTH), timeout=10)
            metrics = httpx.get(
                url + METRICS, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
            ).text
    doc = response.json()
    assert response.status_code == 200, doc
    assert doc["status"] in ("pass", "warn")
    assert doc["checks"]["horizon:latestLedger"][0]["componentId"] == h.url
    assert doc["checks"]["rpc:latestLedger"][0]["componentId"] == r.url
    assert f'streampay_incident_chain_status{{endpoint="{h.url}",kind="horizon"}}' in metrics
    assert app.state.health.rounds == 1


@pytest.mark.network
def test_hung_endpoints_give_fail_within_the_timeout_and_one_round_for_a_burst():
    from loopback import HANG, LoopbackServer
    from streampay_incident.stellar.networks import TESTNET

    with LoopbackServer({"*": HANG}) as h, LoopbackServer({"*": HANG}) as r:
        cfg = config(
            horizon_urls=(h.url,),
            rpc_urls=(r.url,),
            network_passphrase=TESTNET,
            probe_timeout_seconds=1.0,
        )
        app = create_app(cfg)
        with running(mounted(app)) as url:

            async def burst():
                async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                    return await asyncio.gather(
                        *(client.get(HEALTH, headers=signed("GET", HEALTH)) for _ in range(50))
                    )

            started = time.monotonic()
            responses = asyncio.run(burst())
            elapsed = time.monotonic() - started
    assert {r.status_code for r in responses} == {503}
    doc = responses[0].json()
    assert doc["status"] == "fail"
    assert "CHAIN_ENDPOINT_UNREACHABLE" in doc["output"]
    assert elapsed < 4
    assert app.state.health.rounds == 1
