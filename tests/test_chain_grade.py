"""The pure chain grader: every rule, its thresholds, the status rule, plugins, and properties.

Observations are built from the real recorded bodies in tests/fixtures/stellar
(parsed by the probes' own ``from_json``), changed only where a test needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import load_fixture
from streampay_incident import hookimpl, make_finding
from streampay_incident.checks.chain import (
    ChainPolicy,
    EndpointGrade,
    builtin_chain_check,
    grade_chain,
    latest_ledger_close_time,
    overall_status,
    streampay_incident_register_chain_checks,
)
from streampay_incident.codes import Severity
from streampay_incident.probes import ChainObservations
from streampay_incident.probes.horizon import (
    HorizonFeeStats,
    HorizonHealth,
    HorizonObservation,
    HorizonRoot,
)
from streampay_incident.probes.http import CallObservation
from streampay_incident.probes.rpc import (
    RpcError,
    RpcHealth,
    RpcLatestLedger,
    RpcNetwork,
    RpcObservation,
)
from streampay_incident.stellar.networks import FUTURENET, PUBLIC, TESTNET

CLOSED_AT = datetime(2024, 12, 15, 11, 39, 19, tzinfo=UTC)  # root_pubnet_2024-12.json
LEDGER = 54837706
NOW = CLOSED_AT + timedelta(seconds=5)


def ok_calls(*names: str) -> tuple[CallObservation, ...]:
    return tuple(CallObservation(call=name, outcome="ok", status=200) for name in names)


def horizon(
    url: str = "https://horizon.example",
    *,
    root: Mapping[str, Any] | None = None,
    health: str | None = "horizon/health/200_healthy.json",
    health_status: int = 200,
    fees: str | None = "horizon/fee_stats_pubnet_2019.json",
    fee_overrides: Mapping[str, Any] | None = None,
    calls: tuple[CallObservation, ...] | None = None,
    no_root: bool = False,
) -> HorizonObservation:
    doc = dict(load_fixture("horizon/root_pubnet_2024-12.json"))
    doc.update(root or {})
    fee_doc = None
    if fees is not None:
        fee_doc = dict(load_fixture(fees))
        fee_doc.update(fee_overrides or {})
    return HorizonObservation(
        url=url,
        calls=calls if calls is not None else ok_calls("root", "health", "fee_stats"),
        root=None if no_root else HorizonRoot.from_json(doc),
        health=(
            None
            if health is None
            else HorizonHealth.from_json(load_fixture(health), http_status=health_status)
        ),
        fee_stats=None if fee_doc is None else HorizonFeeStats.from_json(fee_doc),
        duration_seconds=0.05,
    )


def rpc(
    url: str = "https://rpc.example",
    *,
    passphrase: str = PUBLIC,
    ledger: int = LEDGER,
    close_time: datetime | None = CLOSED_AT,
    status: str = "healthy",
    health_error: str | None = None,
    calls: tuple[CallObservation, ...] | None = None,
) -> RpcObservation:
    health_doc = dict(load_fixture("rpc/getHealth_healthy_pre_v27_py.json")["result"])
    health_doc.update({"status": status, "latestLedger": ledger})
    network_doc = dict(load_fixture("rpc/getNetwork_testnet_docs.json")["result"])
    network_doc["passphrase"] = passphrase
    latest_doc = dict(load_fixture("rpc/getLatestLedger_full_py.json")["result"])
    latest_doc["sequence"] = str(ledger)
    latest_doc["closeTime"] = str(int(close_time.timestamp())) if close_time else None
    error = None
    if health_error is not None:
        error = RpcError.from_json(load_fixture(health_error)["error"])
    return RpcObservation(
        url=url,
        calls=calls
        if calls is not None
        else ok_calls("getHealth", "getNetwork", "getLatestLedger"),
        health=None if error else RpcHealth.from_json(health_doc),
        health_error=error,
        network=RpcNetwork.from_json(network_doc),
        latest=RpcLatestLedger.from_json(latest_doc),
        duration_seconds=0.04,
    )


def grade(*endpoints: Any, now: datetime = NOW, network: str = PUBLIC, **kwargs: Any) -> Any:
    return grade_chain(
        ChainObservations(tuple(endpoints)), now=now, expected_network=network, **kwargs
    )


def codes(result: Any, subject: str | None = None) -> set[str]:
    return {f.code for f in result.findings if subject is None or f.subject == subject}


def only(result: Any, code: str) -> Any:
    matches = [f for f in result.findings if f.code == code]
    assert len(matches) == 1, result.findings
    return matches[0]


# --- clean data -------------------------------------------------------------------------


def test_healthy_horizon_and_rpc_pass_with_endpoint_figures() -> None:
    result = grade(horizon(), rpc())
    assert result.status == "pass"
    assert result.findings == ()
    h, r = result.endpoints
    assert h == EndpointGrade(
        url="https://horizon.example",
        kind="horizon",
        status="pass",
        latest_ledger=LEDGER,
        ledger_age_seconds=5.0,
        ingest_lag=0,
        duration_seconds=0.05,
        latest_ledger_close_time=CLOSED_AT,
        network_passphrase=PUBLIC,
    )
    assert (r.kind, r.status, r.latest_ledger, r.ledger_age_seconds, r.ingest_lag) == (
        "rpc",
        "pass",
        LEDGER,
        5.0,
        None,
    )
    assert h.to_json()["ledger_age_seconds"] == 5.0
    assert h.to_json()["latest_ledger_close_time"] == "2024-12-15T11:39:19Z"
    assert "network_passphrase" not in h.to_json()


# --- one rule at a time -----------------------------------------------------------------


def test_unreachable_call_is_critical_once_per_endpoint() -> None:
    calls = (
        CallObservation("root", "unreachable", detail="refused: ConnectError"),
        CallObservation("health", "unreachable", detail="refused: ConnectError"),
        CallObservation("fee_stats", "unreachable", detail="refused: ConnectError"),
    )
    result = grade(horizon(calls=calls, no_root=True, health=None, fees=None))
    finding = only(result, "CHAIN_ENDPOINT_UNREACHABLE")
    assert finding.severity is Severity.CRITICAL
    assert "connection refused" in finding.summary
    assert set(finding.evidence["calls"]) == {"root", "health", "fee_stats"}
    assert result.status == "fail"


def test_http_error_bad_body_and_rpc_errors_are_endpoint_errors() -> None:
    h_calls = (
        CallObservation("root", "http_error", status=503, detail="HTTP 503: Historical DB"),
        CallObservation("health", "ok", status=200),
        CallObservation("fee_stats", "bad_body", status=200, detail="HTTP 200 (text/html)"),
    )
    r_calls = (
        CallObservation("getHealth", "ok", status=200),
        CallObservation("getNetwork", "rpc_error", status=200, rpc_error_code=-32601),
        CallObservation("getLatestLedger", "ok", status=200),
    )
    result = grade(horizon(calls=h_calls, no_root=True, fees=None), rpc(calls=r_calls))
    h_error = [f for f in result.findings if f.subject == "https://horizon.example"]
    assert [f.code for f in h_error] == ["CHAIN_ENDPOINT_ERROR"]
    assert h_error[0].evidence["http_status"] == [200, 503]
    assert set(h_error[0].evidence["calls"]) == {"root", "fee_stats"}
    r_error = only(grade(rpc(calls=r_calls)), "CHAIN_ENDPOINT_ERROR")
    assert r_error.evidence["rpc_error_code"] == [-32601]


def test_get_health_error_is_rpc_unhealthy_not_endpoint_error() -> None:
    calls = (
        CallObservation("getHealth", "rpc_error", status=200, rpc_error_code=-32603),
        CallObservation("getNetwork", "ok", status=200),
        CallObservation("getLatestLedger", "ok", status=200),
    )
    for fixture in (
        "rpc/errors/derived/getHealth_latency_too_high_-32603.json",
        "rpc/errors/derived/getHealth_not_initialized_-32603.json",
    ):
        result = grade(rpc(health_error=fixture, calls=calls))
        assert codes(result) == {"CHAIN_RPC_UNHEALTHY"}
        finding = only(result, "CHAIN_RPC_UNHEALTHY")
        assert finding.evidence["rpc_error_code"] == -32603
        assert result.status == "fail"


def test_rpc_status_other_than_healthy() -> None:
    finding = only(grade(rpc(status="unhealthy")), "CHAIN_RPC_UNHEALTHY")
    assert finding.evidence == {"status": "unhealthy"}


def test_rate_limited_is_a_warning_with_headers() -> None:
    calls = (
        CallObservation(
            "root",
            "rate_limited",
            status=429,
            rate_limit={"retry-after": "30", "x-ratelimit-remaining": "0"},
        ),
        CallObservation("health", "ok", status=200),
        CallObservation("fee_stats", "rate_limited", status=429, rate_limit={"retry-after": "31"}),
    )
    result = grade(horizon(calls=calls, no_root=True))
    finding = only(result, "CHAIN_RATE_LIMITED")
    assert finding.severity is Severity.WARNING
    assert finding.evidence["retry_after"] == "30"
    assert finding.evidence["headers"] == {"Retry-After": "30", "X-RateLimit-Remaining": "0"}
    assert "Retry-After 30" in finding.summary
    assert result.status == "warn"
    assert result.endpoints[0].status == "warn"


@pytest.mark.parametrize(
    ("fixture", "failing"),
    [
        ("horizon/health/503_core_down.json", ["core_up", "core_synced"]),
        ("horizon/health/503_core_not_synced.json", ["core_synced"]),
        ("horizon/health/503_db_down.json", ["database_connected"]),
    ],
)
def test_horizon_unhealthy_names_the_false_flags(fixture: str, failing: list[str]) -> None:
    result = grade(horizon(health=fixture, health_status=503))
    finding = only(result, "CHAIN_HORIZON_UNHEALTHY")
    assert finding.evidence == {"http_status": 503, "failing": failing}
    for name in failing:
        assert f"{name} is false" in finding.summary
    assert codes(result) == {"CHAIN_HORIZON_UNHEALTHY"}


def test_horizon_health_503_without_flags_and_200_with_a_false_flag() -> None:
    bare = attrs.evolve(horizon(), health=HorizonHealth.from_json(None, http_status=503))
    assert "answered 503" in only(grade(bare), "CHAIN_HORIZON_UNHEALTHY").summary
    lying = attrs.evolve(
        horizon(), health=HorizonHealth.from_json({"core_synced": False}, http_status=200)
    )
    assert only(grade(lying), "CHAIN_HORIZON_UNHEALTHY").evidence["failing"] == ["core_synced"]


def test_network_mismatch_for_both_kinds() -> None:
    result = grade(horizon(root={"network_passphrase": TESTNET}), rpc(passphrase=FUTURENET))
    assert {f.code for f in result.findings} == {"CHAIN_NETWORK_MISMATCH"}
    assert len(result.findings) == 2
    assert result.status == "fail"
    rpc_finding = [f for f in result.findings if f.subject == "https://rpc.example"][0]
    assert rpc_finding.evidence == {"network_passphrase": FUTURENET, "expected": PUBLIC}


@pytest.mark.parametrize(
    ("age", "severity"),
    [(15, None), (15.5, "warning"), (30, "warning"), (30.001, "critical"), (3600, "critical")],
)
def test_ledger_stale_thresholds(age: float, severity: str | None) -> None:
    result = grade(horizon(), rpc(), now=CLOSED_AT + timedelta(seconds=age))
    stale = [f for f in result.findings if f.code == "CHAIN_LEDGER_STALE"]
    if severity is None:
        assert stale == []
    else:
        assert {f.severity.value for f in stale} == {severity}
        assert {f.subject for f in stale} == {"https://horizon.example", "https://rpc.example"}
        assert stale[0].evidence["closed_at"] == "2024-12-15T11:39:19Z"


def test_no_close_time_means_no_age_and_no_stale_finding() -> None:
    old_root = horizon(root={"history_latest_ledger_closed_at": None})
    no_time = rpc(close_time=None)
    result = grade(old_root, no_time, now=CLOSED_AT + timedelta(days=1))
    assert result.findings == ()
    assert [e.ledger_age_seconds for e in result.endpoints] == [None, None]


def test_rpc_uses_the_close_time_of_its_newest_ledger() -> None:
    obs = rpc(close_time=CLOSED_AT)
    newer_health = RpcHealth.from_json(
        {
            "status": "healthy",
            "latestLedger": LEDGER + 1,
            "latestLedgerCloseTime": str(int(CLOSED_AT.timestamp()) + 6),
        }
    )
    obs = attrs.evolve(obs, health=newer_health)
    assert obs.latest_ledger == LEDGER + 1
    assert obs.latest_ledger_close_time == CLOSED_AT + timedelta(seconds=6)


@pytest.mark.parametrize(
    ("lag", "severity"), [(5, None), (6, "warning"), (20, "warning"), (21, "critical")]
)
def test_ingest_lag_thresholds(lag: int, severity: str | None) -> None:
    result = grade(horizon(root={"core_latest_ledger": LEDGER + lag}))
    found = [f for f in result.findings if f.code == "CHAIN_HORIZON_INGEST_LAG"]
    assert [f.severity.value for f in found] == ([] if severity is None else [severity])
    assert result.endpoints[0].ingest_lag == lag
    if found:
        assert found[0].evidence["core_latest_ledger"] == LEDGER + lag


def test_protocol_mismatch_only_when_core_is_behind() -> None:
    behind = grade(horizon(root={"core_supported_protocol_version": 21}))
    assert only(behind, "CHAIN_PROTOCOL_MISMATCH").severity is Severity.WARNING
    # The 2019 testnet root: core supports 11, network on 10 -> fine.
    testnet = HorizonRoot.from_json(load_fixture("horizon/root_testnet_2019.json"))
    ahead = attrs.evolve(horizon(), root=testnet)
    assert "CHAIN_PROTOCOL_MISMATCH" not in codes(grade(ahead, network=TESTNET))


def test_endpoints_diverged_beyond_ten_ledgers() -> None:
    result = grade(
        horizon("https://h1", root={"history_latest_ledger": LEDGER}),
        horizon(
            "https://h2",
            root={"history_latest_ledger": LEDGER - 10, "core_latest_ledger": LEDGER - 10},
        ),
        horizon(
            "https://h3",
            root={"history_latest_ledger": LEDGER - 11, "core_latest_ledger": LEDGER - 11},
        ),
        rpc(ledger=LEDGER - 50),
    )
    diverged = {f.subject: f for f in result.findings if f.code == "CHAIN_ENDPOINTS_DIVERGED"}
    assert set(diverged) == {"https://h3", "https://rpc.example"}
    assert diverged["https://h3"].evidence == {
        "latest_ledger": LEDGER - 11,
        "highest_ledger": LEDGER,
        "behind": 11,
    }
    assert result.status == "warn"


def test_other_network_ledgers_do_not_count_for_divergence() -> None:
    testnet_root = {
        "network_passphrase": TESTNET,
        "history_latest_ledger": 100,
        "core_latest_ledger": 100,
    }
    result = grade(horizon("https://h1"), horizon("https://h2", root=testnet_root))
    assert "CHAIN_ENDPOINTS_DIVERGED" not in codes(result)


@pytest.mark.parametrize(
    ("p90", "surge"), [("1000", False), ("1001", True), (5500, True), (100, False)]
)
def test_fee_surge_strings_and_numbers(p90: Any, surge: bool) -> None:
    fees = dict(load_fixture("horizon/fee_stats_pubnet_2019.json")["fee_charged"])
    fees["p90"] = p90
    result = grade(horizon(fee_overrides={"fee_charged": fees, "last_ledger_base_fee": 100}))
    assert ("CHAIN_FEE_SURGE" in codes(result)) is surge


def test_fee_surge_on_the_docs_sample() -> None:
    finding = only(grade(horizon(fees="horizon/fee_stats_docs.json")), "CHAIN_FEE_SURGE")
    assert finding.evidence == {"fee_charged_p90": 5500, "last_ledger_base_fee": 100}


# --- status rule ------------------------------------------------------------------------


def _down(url: str) -> HorizonObservation:
    return horizon(
        url, calls=(CallObservation("root", "unreachable", detail="deadline: x"),), no_root=True
    )


def test_status_fail_only_when_every_endpoint_of_a_given_kind_is_critical() -> None:
    assert grade(_down("https://h1"), horizon("https://h2")).status == "warn"
    assert grade(_down("https://h1"), _down("https://h2")).status == "fail"
    # Every Horizon down, RPC fine: Horizon access is gone -> fail.
    assert grade(_down("https://h1"), rpc()).status == "fail"
    # A kind that was not given never counts as "all down".
    assert grade(horizon()).status == "pass"


def test_overall_status_with_warnings_only() -> None:
    endpoints = (EndpointGrade("u", "horizon", "warn", 1, 1.0, 0, 0.1),)
    warning = make_finding("CHAIN_RATE_LIMITED", "u", "429")
    assert overall_status(endpoints, [warning]) == "warn"
    assert overall_status(endpoints, []) == "pass"


def test_same_url_twice_gives_one_finding_per_code() -> None:
    result = grade(_down("https://h1"), _down("https://h1"))
    assert len(result.findings) == 1


def test_latest_ledger_close_time_only_from_the_expected_network() -> None:
    newer_elsewhere = horizon(
        "https://h2",
        root={
            "network_passphrase": TESTNET,
            "history_latest_ledger_closed_at": "2025-01-01T00:00:00Z",
        },
    )
    observations = ChainObservations((horizon(), newer_elsewhere, rpc(close_time=None)))
    assert latest_ledger_close_time(observations, expected_network=PUBLIC) == CLOSED_AT
    assert latest_ledger_close_time(ChainObservations(()), expected_network=PUBLIC) is None


# --- plugins ------------------------------------------------------------------------------


class _RaisingChainCheck:
    @hookimpl
    def streampay_incident_register_chain_checks(self) -> list[Any]:
        def boom(observations: Any, **kwargs: Any) -> list[Any]:
            raise RuntimeError("plugin bug")

        return [boom]


class _ExtraChainCheck:
    @hookimpl
    def streampay_incident_register_chain_checks(self) -> list[Any]:
        def flag_rpc(observations: Any, *, now: datetime, **kwargs: Any) -> list[Any]:
            return [
                make_finding("CHAIN_ENDPOINT_ERROR", e.url, "plugin says no")
                for e in observations.endpoints
                if e.kind == "rpc"
            ]

        return [flag_rpc]


def test_plugin_checks_run_through_the_registry(streampay_incident_plugin: Any) -> None:
    from streampay_incident import usecases

    # A raising plugin fails alone: the other plugin's check still counts.
    streampay_incident_plugin(_RaisingChainCheck(), name="raising-chain")
    pm = streampay_incident_plugin(_ExtraChainCheck(), name="extra-chain")
    result = usecases.grade_observations(
        ChainObservations((horizon(), rpc())), now=NOW, expected_network=PUBLIC, plugin_manager=pm
    )
    assert codes(result) == {"PLUGIN_ERROR", "CHAIN_ENDPOINT_ERROR"}
    assert only(result, "PLUGIN_ERROR").subject == "raising-chain"
    # The plugin's critical finding on the only RPC makes the RPC kind all-critical.
    assert [e.status for e in result.endpoints] == ["pass", "fail"]
    assert result.status == "fail"


def test_builtin_check_is_registered_as_a_plugin() -> None:
    assert streampay_incident_register_chain_checks() == [builtin_chain_check]


def test_policy_is_a_parameter() -> None:
    strict = ChainPolicy(stale_warning_seconds=1, stale_critical_seconds=2)
    assert only(grade(horizon(), policy=strict), "CHAIN_LEDGER_STALE").severity is Severity.CRITICAL


# --- properties -----------------------------------------------------------------------------

_URLS = [f"https://e{i}.example" for i in range(6)]


@st.composite
def endpoint(draw: st.DrawFn, url: str) -> Any:
    """A random endpoint: healthy or broken in one or more of the ways the rules know."""
    kind = draw(st.sampled_from(["horizon", "rpc"]))
    age = draw(st.integers(min_value=-5, max_value=120))
    behind = draw(st.integers(min_value=0, max_value=40))
    lag = draw(st.integers(min_value=0, max_value=40))
    wrong_network = draw(st.booleans())
    broken = draw(st.sampled_from(["none", "unreachable", "http_error", "rate_limited"]))
    closed_at = NOW - timedelta(seconds=age)
    ledger = LEDGER - behind
    if kind == "horizon":
        obs = horizon(
            url,
            root={
                "history_latest_ledger": ledger,
                "core_latest_ledger": ledger + lag,
                "history_latest_ledger_closed_at": closed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "network_passphrase": TESTNET if wrong_network else PUBLIC,
            },
            health=draw(
                st.sampled_from(
                    ["horizon/health/200_healthy.json", "horizon/health/503_core_not_synced.json"]
                )
            ),
        )
    else:
        obs = rpc(
            url,
            ledger=ledger,
            close_time=closed_at,
            passphrase=TESTNET if wrong_network else PUBLIC,
            status=draw(st.sampled_from(["healthy", "healthy", "unhealthy"])),
        )
    if broken != "none":
        bad = CallObservation(obs.calls[0].call, broken, status=None, detail=f"{broken}: x")
        obs = attrs.evolve(obs, calls=(bad, *obs.calls[1:]))
    return obs


@st.composite
def rounds(draw: st.DrawFn) -> list[Any]:
    count = draw(st.integers(min_value=1, max_value=5))
    return [draw(endpoint(url)) for url in _URLS[:count]]


@given(rounds(), st.randoms(use_true_random=False))
def test_property_order_does_not_matter(endpoints: list[Any], random: Any) -> None:
    shuffled = list(endpoints)
    random.shuffle(shuffled)
    a, b = grade(*endpoints), grade(*shuffled)
    assert set(a.findings) == set(b.findings)
    assert a.status == b.status
    assert {e.url: e for e in a.endpoints} == {e.url: e for e in b.endpoints}


@given(rounds())
def test_property_findings_are_keyed_by_endpoint_and_unique(endpoints: list[Any]) -> None:
    result = grade(*endpoints)
    urls = {e.url for e in endpoints}
    keys = [(f.code, f.subject) for f in result.findings]
    assert len(keys) == len(set(keys))
    assert all(f.subject in urls for f in result.findings)
    assert all(f.code.startswith("CHAIN_") for f in result.findings)


@given(rounds())
def test_property_status_follows_the_chain_rule(endpoints: list[Any]) -> None:
    result = grade(*endpoints)
    critical = {f.subject for f in result.findings if f.severity is Severity.CRITICAL}
    all_down = any(
        urls and urls <= critical
        for urls in ({e.url for e in endpoints if e.kind == kind} for kind in ("horizon", "rpc"))
    )
    expected = "fail" if all_down else ("warn" if result.findings else "pass")
    assert result.status == expected
    for grade_ in result.endpoints:
        mine = [f for f in result.findings if f.subject == grade_.url]
        worst = max((f.severity for f in mine), default=Severity.INFO)
        assert grade_.status == {"critical": "fail", "warning": "warn", "info": "pass"}[worst.value]


@given(
    st.lists(st.integers(min_value=0, max_value=10), min_size=1, max_size=5),
    st.integers(min_value=0, max_value=15),
)
def test_property_no_false_positives_on_clean_data(behind: list[int], age: int) -> None:
    endpoints = []
    for index, lag_behind in enumerate(behind):
        closed_at = (NOW - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
        ledger = LEDGER - lag_behind
        if index % 2:
            endpoints.append(
                rpc(_URLS[index], ledger=ledger, close_time=NOW - timedelta(seconds=age))
            )
        else:
            endpoints.append(
                horizon(
                    _URLS[index],
                    root={
                        "history_latest_ledger": ledger,
                        "core_latest_ledger": ledger + 5,
                        "history_latest_ledger_closed_at": closed_at,
                    },
                )
            )
    result = grade(*endpoints)
    assert result.findings == ()
    assert result.status == "pass"


@given(rounds())
def test_property_adding_a_healthy_endpoint_removes_no_finding(endpoints: list[Any]) -> None:
    before = set(grade(*endpoints).findings)
    lowest = min((e.latest_ledger for e in endpoints if e.latest_ledger), default=LEDGER)
    extra = horizon(
        "https://extra.example",
        root={
            "history_latest_ledger": min(lowest, LEDGER),
            "core_latest_ledger": min(lowest, LEDGER),
        },
    )
    after = set(grade(*endpoints, extra).findings)
    assert before <= after


@given(rounds(), st.integers(min_value=0, max_value=600))
def test_property_later_now_never_removes_a_stale_finding(endpoints: list[Any], later: int) -> None:
    def stale(now: datetime) -> dict[str, Severity]:
        return {
            f.subject: f.severity
            for f in grade(*endpoints, now=now).findings
            if f.code == "CHAIN_LEDGER_STALE"
        }

    early, late = stale(NOW), stale(NOW + timedelta(seconds=later))
    assert set(early) <= set(late)
    assert all(early[url] <= late[url] for url in early)


@given(rounds())
def test_property_builtin_check_is_pure(endpoints: list[Any]) -> None:
    observations = ChainObservations(tuple(endpoints))
    first = builtin_chain_check(observations, now=NOW, expected_network=PUBLIC)
    second = builtin_chain_check(observations, now=NOW, expected_network=PUBLIC)
    assert first == second
