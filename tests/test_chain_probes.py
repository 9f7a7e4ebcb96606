"""Chain probes against live loopback servers (127.0.0.1 only) serving the recorded bodies.

Every chain finding is produced here by a real server that misbehaves on
purpose, and the wall time of every hang is asserted: one deadline bounds the
whole round, however many endpoints hang or trickle.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conftest import load_fixture
from loopback import (
    CLOSE,
    HANG,
    HORIZON_CLOSED_AT,
    HORIZON_LEDGER,
    LoopbackServer,
    RefusingEndpoint,
    Reply,
    ServerPool,
    fixture_reply,
    horizon_routes,
    html_reply,
    json_reply,
    rate_limited,
    rfc3339,
    rpc_routes,
)
from streampay_incident.__about__ import __version__
from streampay_incident.checks.chain import ChainGrade, grade_chain
from streampay_incident.observations import as_int, as_rfc3339, as_unix_time
from streampay_incident.probes import (
    ChainConfig,
    ChainObservations,
    Recorder,
    observations_from_recording,
    observe_chain,
)
from streampay_incident.probes.horizon import HorizonFeeStats, HorizonHealth, HorizonRoot
from streampay_incident.probes.http import (
    READ_RETRY,
    Deadline,
    Exchange,
    classify_transport_error,
    fetch,
    join_url,
    make_client,
    run_within,
)
from streampay_incident.probes.record import Recording, read_recording
from streampay_incident.probes.rpc import RpcHealth, RpcLatestLedger, RpcNetwork
from streampay_incident.stellar.networks import FUTURENET, PUBLIC, TESTNET

pytestmark = pytest.mark.network

NOW = HORIZON_CLOSED_AT + timedelta(seconds=5)


def pubnet_rpc(**kwargs: Any) -> dict[str, Any]:
    """An RPC on pubnet at the same ledger and close time as the recorded Horizon root."""
    kwargs.setdefault("passphrase", PUBLIC)
    kwargs.setdefault("latest_ledger", HORIZON_LEDGER)
    kwargs.setdefault("close_time", HORIZON_CLOSED_AT)
    return rpc_routes(**kwargs)


def observe(
    horizons: list[str] | tuple[str, ...] = (),
    rpcs: list[str] | tuple[str, ...] = (),
    *,
    network: str = PUBLIC,
    timeout: float = 2.0,
    recorder: Recorder | None = None,
) -> tuple[ChainObservations, float]:
    config = ChainConfig(tuple(horizons), tuple(rpcs), network, timeout)
    started = time.monotonic()
    observations = asyncio.run(observe_chain(config, recorder=recorder))
    return observations, time.monotonic() - started


def graded(
    observations: ChainObservations, *, now: datetime = NOW, network: str = PUBLIC
) -> ChainGrade:
    return grade_chain(observations, now=now, expected_network=network)


def codes_for(grade: ChainGrade, url: str) -> set[str]:
    return {f.code for f in grade.findings if f.subject == url}


def finding(grade: ChainGrade, code: str, url: str) -> Any:
    (match,) = [f for f in grade.findings if f.code == code and f.subject == url]
    return match


# --- healthy ---------------------------------------------------------------------------------


def test_healthy_horizon_and_rpc_pass_and_identify_themselves() -> None:
    with LoopbackServer(horizon_routes()) as h, LoopbackServer(pubnet_rpc()) as r:
        observations, _ = observe([h.url], [r.url])
        grade = graded(observations)
        assert grade.findings == ()
        assert grade.status == "pass"
        assert [e.latest_ledger for e in grade.endpoints] == [HORIZON_LEDGER, HORIZON_LEDGER]
        assert [e.ledger_age_seconds for e in grade.endpoints] == [5.0, 5.0]
        assert {req.path for req in h.requests} == {"/", "/health", "/fee_stats"}
        assert {req.rpc_method for req in r.requests} == {
            "getHealth",
            "getNetwork",
            "getLatestLedger",
        }
        for req in h.requests + r.requests:
            assert req.headers["user-agent"] == f"streampay-incident/{__version__}"
        assert all(req.json()["jsonrpc"] == "2.0" for req in r.requests)


def test_endpoint_with_a_path_prefix_keeps_it() -> None:
    with LoopbackServer(
        {
            "GET /horizon/": horizon_routes()["GET /"],
            "GET /horizon/health": horizon_routes()["GET /health"],
            "GET /horizon/fee_stats": horizon_routes()["GET /fee_stats"],
        }
    ) as h:
        url = h.url + "/horizon"
        grade = graded(observe([url])[0])
        assert grade.findings == ()
        assert grade.endpoints[0].url == url


# --- unreachable -----------------------------------------------------------------------------


def test_hung_endpoint_is_unreachable_within_the_deadline() -> None:
    with LoopbackServer({"*": HANG}) as hung, LoopbackServer(horizon_routes()) as h:
        observations, wall = observe([hung.url, h.url], timeout=0.6)
        grade = graded(observations)
        assert 0.5 < wall < 1.2
        assert codes_for(grade, hung.url) == {"CHAIN_ENDPOINT_UNREACHABLE"}
        assert codes_for(grade, h.url) == set()
        found = finding(grade, "CHAIN_ENDPOINT_UNREACHABLE", hung.url)
        assert "before the deadline" in found.summary
        assert grade.status == "warn"  # one of two Horizons still answers


def test_trickling_endpoint_is_unreachable_at_the_deadline() -> None:
    # One byte every 50 ms: every read succeeds, so only the overall deadline stops it.
    trickle = Reply(body=b" " * 2000 + b"{}", behaviour="trickle", trickle_interval=0.05)
    with LoopbackServer({"*": trickle}) as slow:
        observations, wall = observe([slow.url], timeout=0.8)
        grade = graded(observations)
        assert wall < 1.4
        assert codes_for(grade, slow.url) == {"CHAIN_ENDPOINT_UNREACHABLE"}
        assert grade.status == "fail"
        assert len(slow.requests) == 3  # root, health, fee_stats: no retry after the deadline


def test_refused_connection_is_unreachable() -> None:
    with RefusingEndpoint() as refusing:
        observations, wall = observe([], [refusing.url], timeout=2.0)
        grade = graded(observations)
        assert wall < 1.0  # refused fast; two quick retries, then done
        found = finding(grade, "CHAIN_ENDPOINT_UNREACHABLE", refusing.url)
        assert "connection refused" in found.summary
        assert grade.endpoints[0].kind == "rpc"
        assert grade.status == "fail"


def test_server_that_closes_without_answering_is_unreachable() -> None:
    with LoopbackServer({"*": CLOSE}) as closing:
        grade = graded(observe([closing.url])[0])
        assert codes_for(grade, closing.url) == {"CHAIN_ENDPOINT_UNREACHABLE"}
        # Closing without a byte is transient: each call was tried three times.
        assert len(closing.requests) == 9


def test_twenty_hung_endpoints_answer_in_about_one_deadline() -> None:
    with ServerPool.of(10, {"*": HANG}) as horizons, ServerPool.of(10, {"*": HANG}) as rpcs:
        observations, wall = observe(horizons.urls, rpcs.urls, timeout=1.0)
        grade = graded(observations)
        assert wall < 1.8, wall
        assert len(grade.endpoints) == 20
        assert all(e.status == "fail" for e in grade.endpoints)
        assert {f.code for f in grade.findings} == {"CHAIN_ENDPOINT_UNREACHABLE"}
        assert grade.status == "fail"


# --- errors ----------------------------------------------------------------------------------


def test_503_problem_document_is_an_endpoint_error_after_retries() -> None:
    stale = fixture_reply("horizon/problems/derived/503_stale_history.json", 503)
    with LoopbackServer(horizon_routes(**{"GET /": stale})) as h:
        grade = graded(observe([h.url])[0])
        found = finding(grade, "CHAIN_ENDPOINT_ERROR", h.url)
        assert "HTTP 503: Historical DB Is Too Stale" in found.summary
        assert found.evidence["http_status"] == [503]
        assert codes_for(grade, h.url) == {"CHAIN_ENDPOINT_ERROR"}
        assert [r.path for r in h.requests].count("/") == 3  # idempotent read, retried twice


def test_transient_502_is_retried_inside_the_deadline() -> None:
    routes = horizon_routes()
    routes["GET /"] = [html_reply(502), routes["GET /"]]
    with LoopbackServer(routes) as h:
        grade = graded(observe([h.url])[0])
        assert grade.findings == ()
        assert [r.path for r in h.requests].count("/") == 2


def test_no_retry_when_the_deadline_leaves_no_time() -> None:
    with LoopbackServer({"*": html_reply(502)}) as h:

        async def run() -> Exchange:
            async with make_client(timeout=1.0) as client:
                deadline = Deadline(0.12)  # the first pause (0.1 s) + a useful slice don't fit
                return await fetch(
                    client,
                    "GET",
                    h.url + "/",
                    endpoint=h.url,
                    call="root",
                    deadline=deadline,
                    retry=READ_RETRY,
                )

        exchange = asyncio.run(run())
        assert exchange.status == 502
        assert exchange.attempt == 1
        assert len(h.requests) == 1


@pytest.mark.parametrize(
    "reply",
    [html_reply(502), html_reply(200, "Welcome to nginx!"), json_reply({"hello": "proxy"})],
    ids=["html-502", "html-200", "json-not-horizon"],
)
def test_html_or_foreign_json_instead_of_horizon_root(reply: Reply) -> None:
    with LoopbackServer(horizon_routes(**{"GET /": reply})) as h:
        grade = graded(observe([h.url])[0])
        assert codes_for(grade, h.url) == {"CHAIN_ENDPOINT_ERROR"}
        found = finding(grade, "CHAIN_ENDPOINT_ERROR", h.url)
        assert "root" in found.evidence["calls"]


def test_html_instead_of_json_rpc() -> None:
    with LoopbackServer(pubnet_rpc(**{"RPC getNetwork": html_reply(200, "Login")})) as r:
        grade = graded(observe([], [r.url])[0])
        found = finding(grade, "CHAIN_ENDPOINT_ERROR", r.url)
        assert "text/html" in found.evidence["calls"]["getNetwork"]


@pytest.mark.parametrize(
    ("fixture", "code"),
    [
        ("rpc/errors/derived/method_not_found_-32601.json", -32601),
        ("rpc/errors/method_not_found_-32601_py.json", -32601),
        ("rpc/errors/derived/request_exceeded_processing_limit_-32001.json", -32001),
    ],
)
def test_json_rpc_error_on_a_read_is_an_endpoint_error(fixture: str, code: int) -> None:
    with LoopbackServer(pubnet_rpc(**{"RPC getLatestLedger": fixture_reply(fixture)})) as r:
        grade = graded(observe([], [r.url])[0])
        assert codes_for(grade, r.url) == {"CHAIN_ENDPOINT_ERROR"}
        assert finding(grade, "CHAIN_ENDPOINT_ERROR", r.url).evidence["rpc_error_code"] == [code]


def test_rpc_reply_that_is_neither_result_nor_error() -> None:
    with LoopbackServer(pubnet_rpc(**{"RPC getNetwork": json_reply({"jsonrpc": "2.0"})})) as r:
        grade = graded(observe([], [r.url])[0])
        assert codes_for(grade, r.url) == {"CHAIN_ENDPOINT_ERROR"}


def test_rate_limited_reports_retry_after_and_rate_limit_headers() -> None:
    with LoopbackServer(horizon_routes(**{"GET /fee_stats": rate_limited("17")})) as h:
        grade = graded(observe([h.url])[0])
        found = finding(grade, "CHAIN_RATE_LIMITED", h.url)
        assert found.evidence["retry_after"] == "17"
        assert found.evidence["headers"] == {
            "Retry-After": "17",
            "X-RateLimit-Limit": "3600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "60",
        }
        assert "Retry-After 17" in found.summary
        assert codes_for(grade, h.url) == {"CHAIN_RATE_LIMITED"}
        assert grade.status == "warn"
        assert [r.path for r in h.requests].count("/fee_stats") == 1  # a 429 is not retried


# --- health ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "failing"),
    [
        ("horizon/health/503_core_not_synced.json", ["core_synced"]),
        ("horizon/health/503_core_down.json", ["core_up", "core_synced"]),
        ("horizon/health/503_db_down.json", ["database_connected"]),
    ],
)
def test_health_503_is_horizon_unhealthy_alone(fixture: str, failing: list[str]) -> None:
    with LoopbackServer(horizon_routes(health=fixture)) as h:
        grade = graded(observe([h.url])[0])
        assert codes_for(grade, h.url) == {"CHAIN_HORIZON_UNHEALTHY"}
        assert finding(grade, "CHAIN_HORIZON_UNHEALTHY", h.url).evidence["failing"] == failing
        assert [r.path for r in h.requests].count("/health") == 1  # the answer, not a fault


def test_health_503_from_a_proxy_is_still_unhealthy_alone() -> None:
    with LoopbackServer(horizon_routes(health=html_reply(503, "503 Service Unavailable"))) as h:
        grade = graded(observe([h.url])[0])
        assert codes_for(grade, h.url) == {"CHAIN_HORIZON_UNHEALTHY"}


def test_health_404_is_skipped() -> None:
    missing = fixture_reply("horizon/problems/404_not_found_py.json", 404)
    with LoopbackServer(horizon_routes(health=missing, fee_stats=missing)) as h:
        observations, _ = observe([h.url])
        grade = graded(observations)
        assert grade.findings == ()
        outcomes = {c.call: c.outcome for c in observations.endpoints[0].calls}
        assert outcomes == {"root": "ok", "health": "skipped", "fee_stats": "skipped"}


def test_health_200_that_is_not_a_health_document() -> None:
    with LoopbackServer(horizon_routes(health=json_reply({"status": "ok"}))) as h:
        grade = graded(observe([h.url])[0])
        assert codes_for(grade, h.url) == {"CHAIN_ENDPOINT_ERROR"}


@pytest.mark.parametrize(
    "fixture",
    [
        "rpc/errors/derived/getHealth_latency_too_high_-32603.json",
        "rpc/errors/derived/getHealth_not_initialized_-32603.json",
    ],
)
def test_get_health_error_is_rpc_unhealthy(fixture: str) -> None:
    with LoopbackServer(pubnet_rpc(health=fixture)) as r:
        grade = graded(observe([], [r.url])[0])
        assert codes_for(grade, r.url) == {"CHAIN_RPC_UNHEALTHY"}
        found = finding(grade, "CHAIN_RPC_UNHEALTHY", r.url)
        assert found.evidence["message"] == load_fixture(fixture)["error"]["message"]
        assert grade.status == "fail"


def test_get_health_status_not_healthy() -> None:
    unhealthy = fixture_reply(
        "rpc/getHealth_healthy_pre_v27_py.json", overrides={"result": {"status": "unhealthy"}}
    )
    with LoopbackServer(pubnet_rpc(health=unhealthy)) as r:
        grade = graded(observe([], [r.url])[0])
        assert codes_for(grade, r.url) == {"CHAIN_RPC_UNHEALTHY"}


# --- network, ledgers, fees --------------------------------------------------------------------


def test_wrong_network_on_both_kinds() -> None:
    with (
        LoopbackServer(horizon_routes()) as pubnet_horizon,
        LoopbackServer(rpc_routes(network="rpc/getNetwork_futurenet_docs.json")) as futurenet,
    ):
        observations, _ = observe([pubnet_horizon.url], [futurenet.url], network=TESTNET)
        grade = graded(observations, network=TESTNET)
        assert finding(grade, "CHAIN_NETWORK_MISMATCH", pubnet_horizon.url).evidence == {
            "network_passphrase": PUBLIC,
            "expected": TESTNET,
        }
        assert (
            finding(grade, "CHAIN_NETWORK_MISMATCH", futurenet.url).evidence["network_passphrase"]
            == FUTURENET
        )
        assert grade.status == "fail"


def test_stale_close_time_on_horizon_and_rpc() -> None:
    old = HORIZON_CLOSED_AT - timedelta(seconds=20)  # 25 s old at NOW: a warning
    routes = horizon_routes(root={"history_latest_ledger_closed_at": rfc3339(old)})
    older = HORIZON_CLOSED_AT - timedelta(seconds=60)  # 65 s: critical
    with LoopbackServer(routes) as h, LoopbackServer(pubnet_rpc(close_time=older)) as r:
        grade = graded(observe([h.url], [r.url])[0])
        assert finding(grade, "CHAIN_LEDGER_STALE", h.url).severity.value == "warning"
        assert finding(grade, "CHAIN_LEDGER_STALE", r.url).severity.value == "critical"
        assert [e.ledger_age_seconds for e in grade.endpoints] == [25.0, 65.0]
        assert grade.status == "fail"  # the only RPC is critical


def test_ingest_lag() -> None:
    routes = horizon_routes(root={"core_latest_ledger": HORIZON_LEDGER + 25})
    with LoopbackServer(routes) as h:
        grade = graded(observe([h.url])[0])
        found = finding(grade, "CHAIN_HORIZON_INGEST_LAG", h.url)
        assert found.severity.value == "critical"
        assert found.evidence["ingest_lag"] == 25
        assert grade.endpoints[0].ingest_lag == 25


def test_protocol_mismatch() -> None:
    with LoopbackServer(horizon_routes(root={"core_supported_protocol_version": 21})) as h:
        grade = graded(observe([h.url])[0])
        assert codes_for(grade, h.url) == {"CHAIN_PROTOCOL_MISMATCH"}


def test_endpoints_diverged() -> None:
    behind = HORIZON_LEDGER - 30
    with (
        LoopbackServer(horizon_routes()) as ahead,
        LoopbackServer(pubnet_rpc(latest_ledger=behind)) as lagging,
    ):
        grade = graded(observe([ahead.url], [lagging.url])[0])
        found = finding(grade, "CHAIN_ENDPOINTS_DIVERGED", lagging.url)
        assert found.evidence["behind"] == 30
        assert codes_for(grade, ahead.url) == set()


def test_fee_surge() -> None:
    with LoopbackServer(horizon_routes(fee_stats="horizon/fee_stats_docs.json")) as h:
        grade = graded(observe([h.url])[0])
        assert finding(grade, "CHAIN_FEE_SURGE", h.url).evidence["fee_charged_p90"] == 5500


def test_older_shapes_numbers_as_strings_and_no_close_times() -> None:
    """The 2019 testnet root (no closed_at), string protocol versions, pre-v27 getHealth."""
    horizon = {
        "GET /": fixture_reply("horizon/root_testnet_2019.json"),
        "GET /health": fixture_reply("horizon/problems/404_not_found_py.json", 404),
        "GET /fee_stats": fixture_reply("horizon/fee_stats_pubnet_2019.json"),
    }
    rpc = rpc_routes(
        passphrase=TESTNET,
        health="rpc/getHealth_healthy_pre_v27_py.json",
        network="rpc/getNetwork_standalone_py.json",
        latest=fixture_reply(
            "rpc/getLatestLedger_full_py.json",
            overrides={"result": {"sequence": "84959", "closeTime": ..., "protocolVersion": "11"}},
        ),
    )
    with LoopbackServer(horizon) as h, LoopbackServer(rpc) as r:
        observations, _ = observe([h.url], [r.url], network=TESTNET)
        grade = graded(observations, now=datetime(2030, 1, 1, tzinfo=UTC), network=TESTNET)
        assert grade.findings == ()
        assert [e.ledger_age_seconds for e in grade.endpoints] == [None, None]
        # getHealth's 50000 (pre-v27 mock) and getLatestLedger's "84959" (a string): the highest.
        assert [e.latest_ledger for e in grade.endpoints] == [84959, 84959]


# --- recording and replay ----------------------------------------------------------------------


def test_recording_replays_to_the_same_grade(tmp_path: Any) -> None:
    routes = horizon_routes(health="horizon/health/503_core_not_synced.json")
    routes["GET /fee_stats"] = [html_reply(502), rate_limited("9")]
    with (
        LoopbackServer(routes) as h,
        LoopbackServer(
            pubnet_rpc(health="rpc/errors/derived/getHealth_latency_too_high_-32603.json")
        ) as r,
        LoopbackServer({"*": HANG}) as hung,
    ):
        recorder = Recorder()
        observations, _ = observe([h.url, hung.url], [r.url], timeout=2.0, recorder=recorder)
    live = graded(observations)
    recorder.now = NOW
    path = tmp_path / "round.json"
    recorder.write(path)
    recording = read_recording(path)
    replayed = graded(observations_from_recording(recording))
    assert replayed == live
    assert recording.now == NOW
    assert recording.network_passphrase == PUBLIC
    assert recording.timeout_seconds == 2.0
    doc = json.loads(path.read_text())
    fee_attempts = [
        x for x in doc["exchanges"] if x["endpoint"] == h.url and x["call"] == "fee_stats"
    ]
    assert [(x["status"], x["attempt"]) for x in fee_attempts] == [(502, 1), (429, 2)]
    assert fee_attempts[1]["headers"]["retry-after"] == "9"
    assert "text/html" in fee_attempts[0]["headers"]["content-type"]
    rpc_call = next(x for x in doc["exchanges"] if x["call"] == "getHealth")
    assert json.loads(rpc_call["request_body"])["method"] == "getHealth"
    assert "latency" in rpc_call["body"]
    hung_calls = [x for x in doc["exchanges"] if x["endpoint"] == hung.url]
    assert {x["error"] for x in hung_calls} == {"deadline"}
    assert all(
        x["observed_at"].endswith("Z") and x["elapsed_seconds"] >= 0 for x in doc["exchanges"]
    )


def test_malformed_recordings_are_input_errors(tmp_path: Any) -> None:
    from streampay_incident.errors import InputError

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_recording(bad)
    with pytest.raises(InputError, match="file not found"):
        read_recording(tmp_path / "missing.json")
    with pytest.raises(InputError, match="not a chain recording"):
        Recording.from_json({"schema": "other"})
    doc = {
        "schema": "streampay-incident.chain-recording/v1",
        "network_passphrase": "",
        "timeout_seconds": "soon",
        "endpoints": [{"url": "u", "kind": "ftp"}, {"kind": "rpc"}],
        "exchanges": [
            {"endpoint": "u"},
            {
                "endpoint": "u",
                "call": "root",
                "method": "GET",
                "url": "u",
                "observed_at": "2024-01-01T00:00:00Z",
                "status": None,
            },
        ],
        "now": "yesterday",
    }
    with pytest.raises(InputError) as raised:
        Recording.from_json(doc, source="r.json")
    fields = [p.field for p in raised.value.problems]
    assert fields == [
        "network_passphrase",
        "timeout_seconds",
        "endpoints[0]",
        "endpoints[1]",
        "exchanges[0]",
        "exchanges[1]",
        "now",
    ]
    assert "missing field 'url'" in str(raised.value)
    empty = {
        "schema": "streampay-incident.chain-recording/v1",
        "network_passphrase": PUBLIC,
        "endpoints": [],
        "exchanges": "nope",
    }
    with pytest.raises(InputError) as raised:
        Recording.from_json(empty)
    assert [p.field for p in raised.value.problems] == ["endpoints", "exchanges"]
    with pytest.raises(InputError) as raised:
        Recording.from_json({**empty, "exchanges": []})
    assert [p.field for p in raised.value.problems] == ["endpoints"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", 200.5),  # int() would quietly make it 200
        ("status", True),  # int() would make it 1
        ("status", "200"),
        ("status", 99),
        ("status", 600),
        ("attempt", 0),
        ("attempt", 1.0),
        ("attempt", None),
        ("attempt", 10**6),
    ],
)
def test_recorded_status_and_attempt_are_whole_numbers_in_range(field: str, value: Any) -> None:
    from streampay_incident.probes.exchange import Exchange

    doc = {
        "endpoint": "u",
        "call": "root",
        "method": "GET",
        "url": "u",
        "observed_at": "2024-01-01T00:00:00Z",
        "status": 200,
        "attempt": 2,
    }
    assert (Exchange.from_json(doc).status, Exchange.from_json(doc).attempt) == (200, 2)
    with pytest.raises(ValueError, match=f"^{field}: expected a whole number from"):
        Exchange.from_json({**doc, field: value})


# --- logging, client, helpers ------------------------------------------------------------------


def test_probe_result_log_event_per_endpoint(caplog: pytest.LogCaptureFixture) -> None:
    with (
        LoopbackServer(horizon_routes()) as h,
        LoopbackServer(pubnet_rpc(**{"RPC getNetwork": html_reply(502)})) as r,
        LoopbackServer(horizon_routes(**{"GET /": rate_limited()})) as limited,
        RefusingEndpoint() as refusing,
        caplog.at_level(logging.INFO, logger="streampay_incident"),
    ):
        observe([h.url, limited.url, refusing.url], [r.url])
    lines = [rec.getMessage() for rec in caplog.records if "probe_result" in rec.getMessage()]
    assert len(lines) == 4
    by_endpoint = {line.split("endpoint=")[1].split()[0]: line for line in lines}
    assert "kind=horizon outcome=ok" in by_endpoint[h.url]
    assert "outcome=rate_limited" in by_endpoint[limited.url]
    assert "outcome=unreachable" in by_endpoint[refusing.url]
    assert "kind=rpc outcome=error" in by_endpoint[r.url]
    assert all("duration_ms=" in line for line in lines)


def test_a_given_client_is_used_and_left_open() -> None:
    with LoopbackServer(horizon_routes()) as h:

        async def run() -> bool:
            async with make_client(timeout=1.0) as client:
                config = ChainConfig((h.url,), (), PUBLIC, 1.0)
                await observe_chain(config, client=client)
                return client.is_closed

        assert asyncio.run(run()) is False


def test_transport_error_names() -> None:
    refused = httpx.ConnectError("x")
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert classify_transport_error(refused) == "refused"
    dns = httpx.ConnectError("x")
    dns.__context__ = socket.gaierror(-2, "Name or service not known")
    assert classify_transport_error(dns) == "dns"
    assert classify_transport_error(httpx.ConnectError("[Errno -3] getaddrinfo failed")) == "dns"
    assert (
        classify_transport_error(httpx.ConnectError("All connection attempts failed")) == "connect"
    )
    assert classify_transport_error(httpx.ConnectError("Connection refused")) == "refused"
    assert classify_transport_error(httpx.ReadTimeout("slow")) == "timeout"
    assert classify_transport_error(httpx.UnsupportedProtocol("ftp")) == "invalid_url"
    assert classify_transport_error(httpx.RemoteProtocolError("closed")) == "protocol"


def test_read_timeout_and_oversized_bodies() -> None:
    slow = Reply(body=b"{}", delay=0.5)
    with LoopbackServer({"GET /slow": slow, "GET /big": Reply(body=b"x" * 2048)}) as server:

        async def run() -> tuple[Exchange, Exchange, Exchange]:
            import streampay_incident.probes.http as http

            async with make_client(timeout=0.2) as client:
                deadline = Deadline(5.0)
                timed_out = await fetch(
                    client,
                    "GET",
                    server.url + "/slow",
                    endpoint=server.url,
                    call="x",
                    deadline=deadline,
                )
                limit, http.MAX_BODY_BYTES = http.MAX_BODY_BYTES, 1024
                try:
                    big = await fetch(
                        client,
                        "GET",
                        server.url + "/big",
                        endpoint=server.url,
                        call="x",
                        deadline=deadline,
                    )
                finally:
                    http.MAX_BODY_BYTES = limit
                expired = await fetch(
                    client,
                    "GET",
                    server.url + "/big",
                    endpoint=server.url,
                    call="x",
                    deadline=Deadline(0.0),
                )
                return timed_out, big, expired

        timed_out, big, expired = asyncio.run(run())
        assert (timed_out.error, timed_out.status) == ("timeout", None)
        assert big.error == "too_large"
        assert expired.error == "deadline"
        assert not expired.answered


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://127.0.0.1:1/", "invalid_url"),
        ("http://[::1/", "invalid_url"),
        ("http://127.0.0.1:99999/", "connect"),  # anyio raises an ExceptionGroup here
    ],
)
def test_invalid_url_is_unreachable_not_a_crash(url: str, error: str) -> None:
    grade = graded(observe([url], timeout=0.5)[0])
    assert {f.code for f in grade.findings} == {"CHAIN_ENDPOINT_UNREACHABLE"}
    assert all(d.startswith(error) for d in grade.findings[0].evidence["calls"].values())


def test_run_within_cancels_what_outlives_the_deadline() -> None:
    async def forever() -> int:
        await asyncio.sleep(60)
        return 1

    async def quick() -> int:
        return 2

    async def broken() -> int:
        raise RuntimeError("no")

    async def run() -> list[int | None]:
        return await run_within(Deadline(0.1), [forever(), quick(), broken()], grace=0.0)

    started = time.monotonic()
    assert asyncio.run(run()) == [None, 2, None]
    assert time.monotonic() - started < 0.5
    assert asyncio.run(run_within(Deadline(1), [])) == []


def test_value_parsers_accept_both_shapes() -> None:
    assert as_int(5) == as_int("5") == 5
    assert as_int(" -3 ") == -3
    assert as_int(True) is None
    assert as_int("5.0") is None
    assert as_int("-") is None
    assert as_int(None) is None
    assert as_unix_time("1784671485") == datetime.fromtimestamp(1784671485, UTC)
    assert as_unix_time(0) is None
    assert as_unix_time(10**20) is None
    assert as_rfc3339("2024-12-15T11:39:19Z") == HORIZON_CLOSED_AT
    assert as_rfc3339("yesterday") is None
    assert as_rfc3339(5) is None
    assert join_url("http://h/x/?a=1", "health") == "http://h/x/health?a=1"


def test_parsers_on_recorded_bodies() -> None:
    root = HorizonRoot.from_json(load_fixture("horizon/root_pubnet_2024-12.json"))
    assert (root.history_latest_ledger, root.ingest_lag, root.core_supported_protocol_version) == (
        HORIZON_LEDGER,
        0,
        22,
    )
    old = HorizonRoot.from_json(load_fixture("horizon/root_testnet_2019.json"))
    assert old.history_latest_ledger_closed_at is None and old.ingest_latest_ledger is None
    assert (
        HorizonRoot.from_json({"network_passphrase": PUBLIC, "history_latest_ledger": 1}).ingest_lag
        is None
    )
    with pytest.raises(ValueError):
        HorizonRoot.from_json({"network_passphrase": PUBLIC})
    health = HorizonHealth.from_json(
        load_fixture("horizon/health/200_healthy.json"), http_status=200
    )
    assert health.healthy and health.failing == ()
    with pytest.raises(ValueError):
        HorizonHealth.from_json({}, http_status=200)
    fees = HorizonFeeStats.from_json(load_fixture("horizon/fee_stats_docs.json"))
    assert (fees.fee_charged_p90, fees.fee_charged_p50, fees.last_ledger) == (5500, 5001, 43277313)
    with pytest.raises(ValueError):
        HorizonFeeStats.from_json({"fee_charged": "none"})
    v27 = RpcHealth.from_json(load_fixture("rpc/getHealth_healthy_v27_docs.json")["result"])
    assert v27.latest_ledger_close_time == datetime.fromtimestamp(1784671485, UTC)
    assert v27.oldest_ledger_close_time == datetime.fromtimestamp(1784065656, UTC)
    pre = RpcHealth.from_json(load_fixture("rpc/getHealth_healthy_pre_v27_py.json")["result"])
    assert (pre.latest_ledger, pre.latest_ledger_close_time, pre.ledger_retention_window) == (
        50000,
        None,
        10000,
    )
    with pytest.raises(ValueError):
        RpcHealth.from_json({})
    standalone = RpcNetwork.from_json(load_fixture("rpc/getNetwork_standalone_py.json")["result"])
    assert standalone.protocol_version == 20
    with pytest.raises(ValueError):
        RpcNetwork.from_json({})
    latest = RpcLatestLedger.from_json(
        load_fixture("rpc/getLatestLedger_docs_TRUNCATED_metadata.json")["result"]
    )
    assert (latest.sequence, latest.protocol_version) == (3730795, 27)
    with pytest.raises(ValueError):
        RpcLatestLedger.from_json({"sequence": "x"})


def test_a_call_that_ignores_its_timeout_is_cut_off_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The outer bound: even a call that never returns cannot hold the round past the deadline."""
    import streampay_incident.probes as probes

    async def stuck(*args: Any, **kwargs: Any) -> Exchange:
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    monkeypatch.setattr(probes, "fetch", stuck)
    recorder = Recorder()
    observations, wall = observe(
        ["http://127.0.0.1:9/"], ["http://127.0.0.1:9/rpc"], timeout=0.3, recorder=recorder
    )
    assert wall < 1.0
    grade = graded(observations)
    assert {f.code for f in grade.findings} == {"CHAIN_ENDPOINT_UNREACHABLE"}
    assert {x.error for x in recorder.exchanges} == {"deadline"}
    assert len(recorder.exchanges) == 6
    assert observations.of_kind("rpc")[0].url == "http://127.0.0.1:9/rpc"


def test_config_lists_each_endpoint_once_per_kind() -> None:
    config = ChainConfig(("http://a", "http://a", "http://b"), ("http://a", "http://a"), PUBLIC)
    assert config.endpoints == (
        ("http://a", "horizon"),
        ("http://b", "horizon"),
        ("http://a", "rpc"),
    )


def _exchange(call: str, status: int | None, body: str | None = None, **kwargs: Any) -> Exchange:
    return Exchange(
        endpoint="http://e",
        call=call,
        method="GET",
        url="http://e/",
        observed_at=NOW,
        elapsed_seconds=0.01,
        status=status,
        body=body,
        error=None if status is not None else "refused",
        **kwargs,
    )


def test_partial_and_odd_answers_are_interpreted_not_crashed_on() -> None:
    from streampay_incident.probes.horizon import horizon_observation
    from streampay_incident.probes.http import final_exchanges
    from streampay_incident.probes.rpc import rpc_observation

    root = json.dumps(load_fixture("horizon/root_pubnet_2024-12.json"))
    only_root = horizon_observation("http://e", [_exchange("root", 200, root)], duration_seconds=0)
    assert [c.call for c in only_root.calls] == ["root"]
    assert only_root.health is None and only_root.fee_stats is None
    odd = horizon_observation(
        "http://e",
        [
            _exchange("health", 403, "<html>Forbidden</html>"),
            _exchange("fee_stats", 500, '{"error": "boom"}'),
        ],
        duration_seconds=0,
    )
    assert [(c.outcome, c.detail) for c in odd.calls] == [
        ("bad_body", "HTTP 403: not a Horizon health document"),
        ("http_error", "HTTP 500"),
    ]
    fees = horizon_observation(
        "http://e",
        [_exchange("fee_stats", 200, "<html/>"), _exchange("root", 200, "{}")],
        duration_seconds=0,
    )
    assert [c.outcome for c in fees.calls] == ["bad_body", "bad_body"]
    no_fee_fields = horizon_observation(
        "http://e", [_exchange("fee_stats", 200, '{"last_ledger": "1"}')], duration_seconds=0
    )
    assert "last_ledger_base_fee" in no_fee_fields.calls[0].detail
    rpc_only_network = rpc_observation(
        "http://e",
        [
            _exchange(
                "getNetwork", 200, '{"jsonrpc": "2.0", "id": 2, "result": {"friendbotUrl": ""}}'
            )
        ],
        duration_seconds=0,
    )
    assert [(c.call, c.outcome) for c in rpc_only_network.calls] == [("getNetwork", "bad_body")]
    assert (
        rpc_only_network.latest_ledger is None and rpc_only_network.latest_ledger_close_time is None
    )
    # The last attempt stands, whatever order the exchanges come in.
    late, early = _exchange("root", 200, attempt=2), _exchange("root", 502, attempt=1)
    assert final_exchanges([late, early])["root"] is late
    with pytest.raises(ValueError):
        _exchange("root", None).json_body()


# --- live transaction lookups for settlements ---------------------------------------------------

TX_OK = load_fixture("horizon/transaction_detail_pubnet_docs.json")["hash"]
TX_FAILED = load_fixture("horizon/transaction_detail_testnet_2019_memo_text.json")["hash"]
RPC_OK = load_fixture("rpc/getTransaction_SUCCESS_testnet_docs.json")["result"]["txHash"]
RPC_FAILED = load_fixture("rpc/getTransaction_FAILED_testnet_docs.json")["result"]["txHash"]
RPC_MISSING = load_fixture("rpc/getTransaction_NOT_FOUND_docs.json")["result"]["txHash"]
TX_404, TX_410, TX_HANG, TX_NO_WINDOW, TX_BAD = (c * 64 for c in "abcde")
ACCOUNT = load_fixture("horizon/transaction_detail_pubnet_docs.json")["source_account"]


def tx_horizon_routes(root: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    routes = horizon_routes(root=root)
    routes.update(
        {
            f"GET /transactions/{TX_OK}": fixture_reply(
                "horizon/transaction_detail_pubnet_docs.json"
            ),
            f"GET /transactions/{TX_FAILED}": fixture_reply(
                "horizon/transaction_detail_testnet_2019_memo_text.json",
                overrides={"successful": False},
            ),
            f"GET /transactions/{TX_410}": fixture_reply(
                "horizon/problems/410_before_history_docs.json", 410
            ),
            f"GET /transactions/{TX_HANG}": HANG,
            f"GET /transactions/{TX_BAD}": html_reply(200, "cached page"),
            # Horizon's account resource: only the fields read here (no recorded account body).
            f"GET /accounts/{ACCOUNT}": json_reply(
                {"id": ACCOUNT, "account_id": ACCOUNT, "sequence": "65046128646685390"}
            ),
        }
    )
    routes.update(extra)
    return routes


def get_transaction(request: Any) -> Reply:
    tx_hash = request.json()["params"]["hash"]
    if tx_hash == RPC_OK:
        return fixture_reply("rpc/getTransaction_SUCCESS_testnet_docs.json")
    if tx_hash == RPC_FAILED:
        return fixture_reply("rpc/getTransaction_FAILED_testnet_docs.json")
    if tx_hash == TX_NO_WINDOW:
        return fixture_reply(
            "rpc/getTransaction_NOT_FOUND_docs.json",
            overrides={"result": {"txHash": tx_hash, "oldestLedgerCloseTime": ...}},
        )
    if tx_hash == TX_HANG:
        return HANG
    if tx_hash == TX_410:  # a lying server: the answer is about another transaction
        return fixture_reply("rpc/getTransaction_SUCCESS_testnet_docs.json")
    if tx_hash == TX_BAD:
        return fixture_reply("rpc/errors/derived/getTransaction_bad_hash_-32602.json")
    return fixture_reply(
        "rpc/getTransaction_NOT_FOUND_docs.json", overrides={"result": {"txHash": tx_hash}}
    )


def lookup(
    horizons: list[str],
    rpcs: list[str],
    hashes: list[str],
    *,
    accounts: tuple[str, ...] = (),
    timeout: float = 0.8,
    network: str = PUBLIC,
) -> tuple[Any, float]:
    from streampay_incident.probes.transactions import observe_settlement_chain

    config = ChainConfig(tuple(horizons), tuple(rpcs), network, timeout)
    started = time.monotonic()
    observed = asyncio.run(
        observe_settlement_chain(config, tx_hashes=hashes, accounts=accounts, concurrency=4)
    )
    return observed, time.monotonic() - started


def test_horizon_lookups_found_not_found_and_unknown() -> None:
    with LoopbackServer(tx_horizon_routes()) as h:
        hashes = [TX_OK, TX_FAILED.upper(), TX_404, TX_410, TX_HANG, TX_BAD]
        observed, wall = lookup([h.url], [], hashes, accounts=(ACCOUNT, "G" + "A" * 55))
        order = [req.path.split("/")[1] for req in h.requests]
    assert wall < 1.5
    # The endpoint's latest ledger, then sequence numbers, then transactions: a "not found"
    # is newer than the ledger and the sequence numbers it is weighed against.
    first_account, first_tx = order.index("accounts"), order.index("transactions")
    # (the root and its elder ledger twice: the chain round, then where its history starts)
    assert set(order[:first_account]) == {"", "health", "fee_stats", "ledgers"}
    assert set(order[first_account:first_tx]) == {"accounts"}
    assert set(order[first_tx:]) == {"transactions"}
    status = {a.transaction.hash: a.transaction.status for a in observed.transactions}
    assert status == {
        TX_OK: "success",
        TX_FAILED: "failed",
        TX_404: "not_found",
        TX_410: "unknown",
        TX_HANG: "unknown",
        TX_BAD: "unknown",
    }
    assert all(a.endpoint == h.url for a in observed.transactions)
    assert {a.transaction.source for a in observed.transactions} == {f"horizon {h.url}"}
    assert [(s.account, s.sequence) for s in observed.sequences] == [(ACCOUNT, 65046128646685390)]
    assert observed.chain.endpoints[0].url == h.url


def test_rpc_lookups_keep_the_retention_window() -> None:
    with LoopbackServer(pubnet_rpc(**{"RPC getTransaction": get_transaction})) as r:
        hashes = [RPC_OK, RPC_FAILED, RPC_MISSING, TX_NO_WINDOW, TX_BAD, TX_HANG, TX_410]
        observed, wall = lookup([], [r.url], hashes, timeout=0.6)
    assert wall < 1.3
    by_hash = {a.transaction.hash: a.transaction for a in observed.transactions}
    assert {h: tx.status for h, tx in by_hash.items()} == {
        RPC_OK: "success",
        RPC_FAILED: "failed",
        RPC_MISSING: "not_found",
        TX_NO_WINDOW: "unknown",  # a NOT_FOUND that does not say where its window starts
        TX_BAD: "unknown",
        TX_HANG: "unknown",
        TX_410: "unknown",
    }
    assert by_hash[RPC_MISSING].oldest_ledger_close_time == datetime.fromtimestamp(1700078913, UTC)
    requests = [req.json() for req in r.requests if req.rpc_method == "getTransaction"]
    assert {req["params"]["hash"] for req in requests} == set(hashes)


def test_settlement_facts_trust_not_found_only_on_the_expected_network() -> None:
    from streampay_incident.checks.evidence import settlement_chain_facts

    lagging = tx_horizon_routes(
        root={"history_latest_ledger_closed_at": "2024-12-15T11:39:00Z"},
        **{f"GET /accounts/{ACCOUNT}": json_reply({"id": ACCOUNT, "sequence": "7"})},
    )
    testnet = tx_horizon_routes(root={"network_passphrase": TESTNET})
    with (
        LoopbackServer(tx_horizon_routes()) as h1,
        LoopbackServer(lagging) as h2,
        LoopbackServer(testnet) as other,
    ):
        observed, _ = lookup([h1.url, h2.url, other.url], [], [TX_OK, TX_404], accounts=(ACCOUNT,))
    facts = settlement_chain_facts(observed, expected_network=PUBLIC)
    statuses = sorted(
        (tx.source.split()[1] == other.url, tx.hash, tx.status) for tx in facts.transactions
    )
    assert statuses == sorted(
        [
            (False, "a" * 64, "not_found"),
            (False, "a" * 64, "not_found"),
            (False, TX_OK, "success"),
            (False, TX_OK, "success"),
            (True, "a" * 64, "unknown"),  # not found on another network proves nothing
            (True, TX_OK, "success"),
        ]
    )
    # The highest sequence from a Horizon on the expected network; the testnet one is ignored.
    assert facts.account_sequences == {ACCOUNT: 65046128646685390}
    assert facts.latest_ledger_close_time == HORIZON_CLOSED_AT


def test_lookups_cut_off_as_a_whole_are_all_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    import streampay_incident.probes.transactions as transactions

    async def stuck(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(60)

    monkeypatch.setattr(transactions, "lookup_transactions", stuck)
    monkeypatch.setattr(transactions, "lookup_account_sequences", stuck)
    monkeypatch.setattr(transactions, "observe_chain", stuck)
    monkeypatch.setattr(transactions, "_GRACE", 0.05)
    observed, wall = lookup(
        ["http://127.0.0.1:9"], ["http://127.0.0.1:9/rpc"], [TX_OK], timeout=0.2
    )
    assert wall < 0.8
    assert [(a.endpoint, a.transaction.status) for a in observed.transactions] == [
        ("http://127.0.0.1:9", "unknown"),
        ("http://127.0.0.1:9/rpc", "unknown"),
    ]
    assert observed.sequences == () and observed.chain.endpoints == ()


def test_account_sequence_shapes() -> None:
    from streampay_incident.probes.transactions import horizon_sequence

    assert horizon_sequence(_exchange("account", 200, '{"sequence": "12"}')) == 12
    assert horizon_sequence(_exchange("account", 200, '{"sequence": 12}')) == 12
    assert horizon_sequence(_exchange("account", 200, '{"sequence": "x"}')) is None
    assert horizon_sequence(_exchange("account", 200, "<html/>")) is None
    assert horizon_sequence(_exchange("account", 404, "{}")) is None


def test_settlement_lookup_uses_a_given_client() -> None:
    from streampay_incident.probes.transactions import observe_settlement_chain

    with LoopbackServer(tx_horizon_routes()) as h:

        async def run() -> tuple[Any, bool]:
            async with make_client(timeout=1.0) as client:
                config = ChainConfig((h.url,), (), PUBLIC, 1.0)
                observed = await observe_settlement_chain(config, tx_hashes=[TX_OK], client=client)
                return observed, client.is_closed

        observed, closed = asyncio.run(run())
    assert closed is False
    assert [a.transaction.status for a in observed.transactions] == ["success"]
