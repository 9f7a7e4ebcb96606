"""Plugins fail alone, on time, configured (issue 10 G).

Each failure is first reproduced the way another team's plugin would cause it,
through the real command line with the plugin installed as an entry point;
each must become a ``PLUGIN_ERROR`` (or ``PLUGIN_TIMEOUT``) finding naming the
plugin, never a traceback.
"""

from __future__ import annotations

import importlib.metadata as md
import inspect
import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import REPO
from streampay_incident import hookimpl, hookspecs
from streampay_incident.cli import main
from streampay_incident.codes import FindingCode, Severity
from streampay_incident.model import Finding, make_finding
from streampay_incident.registry import (
    DEFAULT_CHECK_BUDGET,
    PluginSettings,
    checks_document,
    code_table,
    failed_plugins,
    get_plugin_manager,
    loaded_plugins,
    plugin_config,
    plugin_settings_from_env,
    run_checks,
)
from streampay_incident.testing import RegisterPlugin

DEMO = REPO / "src" / "streampay_incident" / "demo_data"
PAYOUTS = str(DEMO / "payouts.csv")
SNAPSHOT = str(DEMO / "chain-outage.json")
SNAPSHOT_NOW = "2026-11-27T03:00:00Z"
CLEAN_ENV = {
    "STREAMPAY_INCIDENT_DISABLE_PLUGINS": None,
    "STREAMPAY_INCIDENT_LOAD_PLUGINS": None,
    "STREAMPAY_INCIDENT_TRACE_PLUGINS": None,
}

RISK = FindingCode("RISK_LARGE_PAYOUT", Severity.WARNING, "Payout above the risk limit")


class EntryPoint:
    """An installed plugin, as ``importlib.metadata`` lists it."""

    def __init__(self, name: str, plugin: object, version: str = "1.2.3") -> None:
        self.name = name
        self._plugin = plugin
        self.dist = type("Dist", (), {"version": version})()

    def load(self) -> object:
        if isinstance(self._plugin, BaseException):
            raise self._plugin
        return self._plugin


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``installed(name=plugin, ...)``: those plugins are the entry points for the test."""
    eps: list[EntryPoint] = []
    monkeypatch.setattr(md, "entry_points", lambda group: list(eps))

    def install(**plugins: object) -> list[EntryPoint]:
        eps.extend(EntryPoint(name, plugin) for name, plugin in plugins.items())
        return eps

    yield install


def cli(*args: str, env: dict[str, str | None] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env={**CLEAN_ENV, **(env or {})})


def payouts_json(env: dict[str, str | None] | None = None) -> tuple[Any, dict[str, Any]]:
    result = cli("payouts", PAYOUTS, "--format", "json", env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result, json.loads(result.stdout)


def plugin_errors(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["subject"]: f for f in doc["findings"] if f["code"] == "PLUGIN_ERROR"}


def risky(payouts: Sequence[Any], *, policy: Any) -> list[Finding]:
    return [make_finding("RISK_LARGE_PAYOUT", payouts[0].payout_id, "large")]


class Good:
    """A well-behaved plugin: proves the others still run."""

    @hookimpl
    def streampay_incident_register_codes(self) -> list[FindingCode]:
        return [RISK]

    @hookimpl
    def streampay_incident_register_payout_checks(self) -> list[Any]:
        return [risky]


# --- every plugin failure is a PLUGIN_ERROR naming the plugin ---------------------------


class RaisingCodes:
    @hookimpl
    def streampay_incident_register_codes(self) -> list[FindingCode]:
        raise RuntimeError("codes table unreadable")

    @hookimpl
    def streampay_incident_register_payout_checks(self) -> list[Any]:
        raise AssertionError("never called: the plugin is out")  # pragma: no cover


class BuiltinConflict:
    @hookimpl
    def streampay_incident_register_codes(self) -> list[FindingCode]:
        return [FindingCode("PAYOUT_DUPLICATE_MEMO", Severity.INFO, "ours", "README.md")]


class PluginConflict:
    @hookimpl
    def streampay_incident_register_codes(self) -> list[FindingCode]:
        return [FindingCode("RISK_LARGE_PAYOUT", Severity.CRITICAL, "ours", "README.md")]


class UnknownSeverity:
    @hookimpl
    def streampay_incident_register_codes(self) -> list[FindingCode]:
        return [FindingCode("TEAM_Y_ODD", Severity.INFO, "odd")]

    @hookimpl
    def streampay_incident_register_payout_checks(self) -> list[Any]:
        def high(payouts: Any, *, policy: Any) -> list[Finding]:
            return [make_finding("TEAM_Y_ODD", "p", "odd", severity="high")]  # type: ignore[arg-type]

        return [high]


class Misspelt:
    @hookimpl
    def streampay_incident_register_payout_check(self) -> list[Any]:  # no trailing s
        return [risky]  # pragma: no cover

    @hookimpl
    def streampay_incident_register_codes(self) -> list[FindingCode]:
        return [RISK]  # pragma: no cover


class HandBuilt:
    @hookimpl
    def streampay_incident_register_payout_checks(self) -> list[Any]:
        def undeclared(payouts: Any, *, policy: Any) -> list[Finding]:
            return [Finding("TEAM_Z_NOT_DECLARED", Severity.CRITICAL, "p", "hand-built")]

        return [undeclared]


def test_a_raising_register_codes_fails_alone(installed: Any) -> None:
    installed(good=Good(), codes_raise=RaisingCodes())
    result, doc = payouts_json()
    assert result.exit_code == 1  # the demo's own critical findings; no traceback
    error = plugin_errors(doc)["codes_raise"]
    assert error["evidence"] == {
        "plugin": "codes_raise",
        "check": hookspecs.REGISTER_CODES,
        "error": "RuntimeError",
    }
    assert "codes table unreadable" in error["summary"]
    assert "RISK_LARGE_PAYOUT" in {f["code"] for f in doc["findings"]}  # the good one ran


def test_a_code_declared_differently_from_a_builtin_names_the_plugin(installed: Any) -> None:
    installed(conflict=BuiltinConflict())
    _, doc = payouts_json()
    summary = plugin_errors(doc)["conflict"]["summary"]
    assert "plugin 'conflict'" in summary
    assert "'PAYOUT_DUPLICATE_MEMO' is already declared differently (built-in)" in summary
    memo = [f for f in doc["findings"] if f["code"] == "PAYOUT_DUPLICATE_MEMO"]
    assert memo and all(f["severity"] == "critical" for f in memo)  # the built-in stands


def test_a_code_declared_differently_from_another_plugin_names_both(installed: Any) -> None:
    installed(good=Good(), late=PluginConflict())
    _, doc = payouts_json()
    summary = plugin_errors(doc)["late"]["summary"]
    assert "already declared differently (plugin 'good')" in summary
    assert "good" not in plugin_errors(doc)


def test_an_unknown_severity_in_a_finding(installed: Any) -> None:
    installed(severe=UnknownSeverity(), good=Good())
    result, doc = payouts_json()
    assert result.exit_code == 1
    error = plugin_errors(doc)["severe"]
    assert error["evidence"]["check"].endswith("high")
    assert "severity 'high'" in error["summary"]
    assert "TEAM_Y_ODD" not in {f["code"] for f in doc["findings"]}


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (FindingCode("TEAM_A", "warning", "str severity"), "severity 'warning'"),  # type: ignore[arg-type]
        (FindingCode("team-a", Severity.INFO, "lower case"), "not an upper-case name"),
        (FindingCode("TEAM_A", Severity.INFO, "t", runbook_url="wiki/a"), "not an absolute URL"),
        ("TEAM_A", "not a FindingCode"),
        (FindingCode("TEAM_A", Severity.INFO, None), "must be strings"),  # type: ignore[arg-type]
        (FindingCode("TEAM_A", Severity.INFO, "t", escalates_to="high"), "escalates to 'high'"),  # type: ignore[arg-type]
    ],
)
def test_a_malformed_code_declaration(
    streampay_incident_plugin: RegisterPlugin, bad: Any, problem: str
) -> None:
    class Declares:
        @hookimpl
        def streampay_incident_register_codes(self) -> list[Any]:
            return [bad]

    pm = streampay_incident_plugin(Declares(), name="declares")
    (error,) = failed_plugins(pm).values()
    assert error.subject == "declares" and problem in error.summary
    assert error in run_checks(pm, hookspecs.PAYOUT_CHECKS, [], policy=None)


def test_a_misspelt_hook_is_a_plugin_error_naming_the_hook(installed: Any) -> None:
    installed(typo=Misspelt(), good=Good())
    result, doc = payouts_json()
    assert result.exit_code == 1
    error = plugin_errors(doc)["typo"]
    assert error["evidence"]["check"] == "streampay_incident_register_payout_check"
    assert "unknown hook streampay_incident_register_payout_check" in error["summary"]
    checks = cli("checks", "--format", "json")
    listed = json.loads(checks.stdout)
    assert "typo" not in {p["name"] for p in listed["plugins"]}  # unregistered
    assert [e["subject"] for e in listed["plugin_errors"]] == ["typo"]
    assert "Plugins left out (PLUGIN_ERROR):" in cli("checks").stdout


def test_a_hook_pluggy_refuses_is_a_plugin_error(streampay_incident_plugin: RegisterPlugin) -> None:
    class WrongArguments:
        @hookimpl
        def streampay_incident_register_payout_checks(self, payouts: Any) -> list[Any]:
            return []  # pragma: no cover

    pm = streampay_incident_plugin(WrongArguments(), name="wrong-args")
    (error,) = run_checks(pm, hookspecs.PAYOUT_CHECKS, [], policy=None)
    assert error.subject == "wrong-args" and error.evidence["check"] == "register"
    assert error.evidence["error"] == "PluginValidationError"


def test_a_hand_built_finding_with_an_undeclared_code(installed: Any) -> None:
    installed(hand=HandBuilt())
    _, doc = payouts_json()
    assert "TEAM_Z_NOT_DECLARED" not in {f["code"] for f in doc["findings"]}
    assert "'TEAM_Z_NOT_DECLARED' is not declared" in plugin_errors(doc)["hand"]["summary"]


def test_non_json_evidence_is_made_safe_and_the_finding_kept(installed: Any) -> None:
    """Chosen: the finding is kept (it may be the critical one) with its evidence as text."""

    class Evidence:
        @hookimpl
        def streampay_incident_register_codes(self) -> list[FindingCode]:
            return [RISK]

        @hookimpl
        def streampay_incident_register_payout_checks(self) -> list[Any]:
            def odd_evidence(payouts: Any, *, policy: Any) -> list[Finding]:
                evidence = {
                    "amount": Decimal("50000.5"),
                    "at": datetime(2026, 11, 27, 3, tzinfo=UTC),
                    "ids": {"p1"},
                    "pair": ("a", float("nan")),
                    1: b"\x00",
                }
                return [make_finding("RISK_LARGE_PAYOUT", "p1", "large", evidence)]

            return [odd_evidence]

    installed(evidence=Evidence())
    result, doc = payouts_json()
    assert result.exit_code == 1
    (finding,) = [f for f in doc["findings"] if f["code"] == "RISK_LARGE_PAYOUT"]
    assert finding["evidence"] == {
        "amount": "50000.5",
        "at": "2026-11-27 03:00:00+00:00",
        "ids": "{'p1'}",
        "pair": ["a", "nan"],
        "1": "b'\\x00'",
    }
    assert not plugin_errors(doc)


def test_a_plugin_raising_during_load(installed: Any) -> None:
    installed(broken_import=ImportError("No module named 'team_risk_internal'"), good=Good())
    result, doc = payouts_json()
    assert result.exit_code == 1
    error = plugin_errors(doc)["broken_import"]
    assert error["evidence"] == {"plugin": "broken_import", "check": "load", "error": "ImportError"}
    assert "RISK_LARGE_PAYOUT" in {f["code"] for f in doc["findings"]}
    listed = {p["name"]: p["version"] for p in loaded_plugins(get_plugin_manager())}
    assert "broken_import" not in listed and listed["good"] == "1.2.3"


def test_a_failing_plugins_other_checks_are_skipped_for_the_run(
    streampay_incident_plugin: RegisterPlugin,
) -> None:
    calls: list[str] = []

    class TwoChecks:
        @hookimpl
        def streampay_incident_register_payout_checks(self) -> list[Any]:
            def first(payouts: Any, *, policy: Any) -> list[Finding]:
                calls.append("first")
                raise ZeroDivisionError("oops")

            def second(payouts: Any, *, policy: Any) -> list[Finding]:
                calls.append("second")  # pragma: no cover
                return []  # pragma: no cover

            return [first, second]

        @hookimpl
        def streampay_incident_register_escrow_checks(self) -> list[Any]:
            def escrow(*args: Any, **kwargs: Any) -> list[Finding]:
                calls.append("escrow")
                return []

            return [escrow]

    from streampay_incident.model import CoverageWindow, EscrowObservation, PayoutPolicy
    from streampay_incident.usecases import triage_payouts

    pm = streampay_incident_plugin(TwoChecks(), name="two")
    chain = EscrowObservation(escrow="G", source="file", payments=(), window=CoverageWindow())
    now = datetime(2026, 11, 27, 3, tzinfo=UTC)
    report = triage_payouts([], policy=PayoutPolicy(), now=now, pm=pm, inputs={}, escrow=chain)
    assert calls == ["first"]  # neither its second payout check nor its escrow check ran
    assert [f.subject for f in report.findings if f.code == "PLUGIN_ERROR"] == ["two"]
    # The next run (the next report) tries it again, once.
    triage_payouts([], policy=PayoutPolicy(), now=now, pm=pm, inputs={}, escrow=chain)
    assert calls == ["first", "first"]


def test_start_up_failures_are_reported_once_per_report(installed: Any) -> None:
    installed(typo=Misspelt(), broken_import=ImportError("gone"))
    pm = get_plugin_manager()
    assert set(failed_plugins(pm)) == {"typo", "broken_import"}
    from streampay_incident.model import CoverageWindow, EscrowObservation, PayoutPolicy
    from streampay_incident.usecases import triage_payouts

    chain = EscrowObservation(escrow="G", source="file", payments=(), window=CoverageWindow())
    now = datetime(2026, 11, 27, 3, tzinfo=UTC)
    for _ in range(2):
        report = triage_payouts([], policy=PayoutPolicy(), now=now, pm=pm, inputs={}, escrow=chain)
        errors = sorted(f.subject for f in report.findings if f.code == "PLUGIN_ERROR")
        assert errors == ["broken_import", "typo"]


# --- the time budget --------------------------------------------------------------------


@pytest.fixture
def stalled() -> Iterator[threading.Event]:
    """Set at teardown, so the abandoned check threads end with the test."""
    released = threading.Event()
    yield released
    released.set()


def slow_plugin(released: threading.Event, hook: str, seconds: float = 5.0) -> object:
    class Slow:
        @hookimpl
        def streampay_incident_register_codes(self) -> list[FindingCode]:
            return [RISK]

    def slow_check(*args: Any, **kwargs: Any) -> list[Finding]:
        released.wait(seconds)
        return [make_finding("RISK_LARGE_PAYOUT", "p", "too late to count")]

    def register(self: Any) -> list[Any]:
        return [slow_check]

    setattr(Slow, hook, hookimpl(register))
    return Slow()


def test_a_slow_chain_check_is_abandoned_within_the_timeout(
    installed: Any, stalled: threading.Event
) -> None:
    installed(slow=slow_plugin(stalled, hookspecs.CHAIN_CHECKS))
    started = time.monotonic()
    result = cli(
        "chain", "--snapshot", SNAPSHOT, "--now", SNAPSHOT_NOW, "--timeout", "1",
        "--format", "json",
    )  # fmt: skip
    took = time.monotonic() - started
    assert 1.0 <= took < 2.5, took  # the budget is the --timeout (1 s), not the 5 s sleep
    doc = json.loads(result.stdout)
    (timeout,) = [f for f in doc["findings"] if f["code"] == "PLUGIN_TIMEOUT"]
    assert timeout["severity"] == "warning" and timeout["subject"] == "slow"
    assert timeout["evidence"] == {
        "plugin": "slow",
        "check": "slow_plugin.<locals>.slow_check",
        "budget_seconds": 1.0,
    }
    assert timeout["runbook"] == "docs/runbooks/README.md#plugin-timeout"
    assert "RISK_LARGE_PAYOUT" not in {f["code"] for f in doc["findings"]}


def test_a_slow_payout_check_is_abandoned_after_the_default_budget(
    installed: Any, stalled: threading.Event
) -> None:
    installed(slow=slow_plugin(stalled, hookspecs.PAYOUT_CHECKS), good=Good())
    started = time.monotonic()
    result, doc = payouts_json({"STREAMPAY_INCIDENT_TRACE_PLUGINS": "1"})
    took = time.monotonic() - started
    assert DEFAULT_CHECK_BUDGET <= took < DEFAULT_CHECK_BUDGET + 1.5, took
    codes_found = {f["code"] for f in doc["findings"]}
    assert {"PLUGIN_TIMEOUT", "RISK_LARGE_PAYOUT", "PAYOUT_DUPLICATE_MEMO"} <= codes_found
    # The trace gives every check's duration, the built-in ones included.
    assert re.search(r"payout_checks good risky -> 1 finding\(s\) in \d+\.\d{3} s", result.stderr)
    assert re.search(
        r"payout_checks slow slow_plugin\.<locals>\.slow_check failed after 2\.\d{3} s",
        result.stderr,
    )
    assert re.search(r"streampay_incident\.checks\.payouts \w+ -> \d+ finding", result.stderr)


def test_the_budget_never_exceeds_the_commands_timeout() -> None:
    assert plugin_settings_from_env({}).check_budget == DEFAULT_CHECK_BUDGET
    assert plugin_settings_from_env({}, timeout=0.5).check_budget == 0.5
    assert plugin_settings_from_env({}, timeout=30).check_budget == DEFAULT_CHECK_BUDGET


def test_built_in_checks_have_no_budget() -> None:
    class SlowBuiltin:
        @hookimpl
        def streampay_incident_register_payout_checks(self) -> list[Any]:
            def slow_builtin(payouts: Any, *, policy: Any) -> list[Finding]:
                time.sleep(0.3)
                return [make_finding("PAYOUT_DUPLICATE_MEMO", "m", "slow but counted")]

            return [slow_builtin]

    pm = get_plugin_manager(PluginSettings(check_budget=0.05), load_entry_points=False)
    pm.unregister(name="streampay_incident.checks.payouts")
    pm.register(SlowBuiltin(), name="streampay_incident.checks.payouts")
    (finding,) = run_checks(pm, hookspecs.PAYOUT_CHECKS, [], policy=None)
    assert finding.code == "PAYOUT_DUPLICATE_MEMO"


def test_a_check_in_its_thread_still_raises_as_a_plugin_error(
    streampay_incident_plugin: RegisterPlugin,
) -> None:
    class Raises:
        @hookimpl
        def streampay_incident_register_payout_checks(self) -> list[Any]:
            def boom(payouts: Any, *, policy: Any) -> Iterator[Finding]:
                yield from ()
                raise KeyError("lazy")

            return [boom]

    pm = streampay_incident_plugin(Raises(), name="raises")
    (error,) = [
        f for f in run_checks(pm, hookspecs.PAYOUT_CHECKS, [], policy=None) if f.subject == "raises"
    ]
    assert error.code == "PLUGIN_ERROR" and error.evidence["error"] == "KeyError"


# --- plugin settings --------------------------------------------------------------------


class Configured:
    """Reads its limit from its settings; keeps what it was given."""

    seen: list[Any] = []

    @hookimpl
    def streampay_incident_register_codes(self) -> list[FindingCode]:
        return [RISK]

    @hookimpl
    def streampay_incident_register_payout_checks(self) -> list[Any]:
        def limited(payouts: Any, *, policy: Any, config: Any) -> list[Finding]:
            Configured.seen.append(config)
            limit = int(config.get("limit_units", "0"))
            return [make_finding("RISK_LARGE_PAYOUT", f"limit {limit}", "configured")]

        return [limited]


def test_plugin_settings_come_from_the_environment(installed: Any) -> None:
    Configured.seen.clear()
    installed(**{"team-risk": Configured(), "team": Good()})
    env = {
        "STREAMPAY_INCIDENT_PLUGIN_TEAM_RISK_LIMIT_UNITS": "50000",
        "STREAMPAY_INCIDENT_PLUGIN_TEAM_RISK_OWNER": "risk@",
        "STREAMPAY_INCIDENT_PLUGIN_TEAM_CHANNEL": "#team",
        "STREAMPAY_INCIDENT_PLUGIN_OTHER_LIMIT_UNITS": "1",
    }
    _, doc = payouts_json(env)
    subjects = {f["subject"] for f in doc["findings"] if f["code"] == "RISK_LARGE_PAYOUT"}
    assert "limit 50000" in subjects
    (config,) = Configured.seen
    assert dict(config) == {"limit_units": "50000", "owner": "risk@"}
    with pytest.raises(TypeError):
        config["limit_units"] = "1"  # read-only


def test_plugin_config_resolves_overlapping_names() -> None:
    environ = {
        "STREAMPAY_INCIDENT_PLUGIN_TEAM_RISK_LIMIT": "5",
        "STREAMPAY_INCIDENT_PLUGIN_TEAM_CHANNEL": "#t",
        "STREAMPAY_INCIDENT_PLUGIN_TEAM_": "no key",
    }
    pm = get_plugin_manager(plugin_settings_from_env(environ), load_entry_points=False)
    pm.register(Good(), name="team")
    pm.register(Good(), name="team.risk")
    assert dict(plugin_config(pm, "team.risk")) == {"limit": "5"}
    assert dict(plugin_config(pm, "team")) == {"channel": "#t"}
    assert dict(plugin_config(pm, "absent")) == {}


def test_the_fixture_hands_a_plugin_its_settings(streampay_incident_plugin: RegisterPlugin) -> None:
    Configured.seen.clear()
    pm = streampay_incident_plugin(Configured(), name="team_risk", config={"limit_units": "7"})
    findings = run_checks(pm, hookspecs.PAYOUT_CHECKS, [], policy=None)
    assert "limit 7" in {f.subject for f in findings}
    assert dict(Configured.seen[0]) == {"limit_units": "7"}


def test_the_fixtures_signature_is_the_documented_one(
    streampay_incident_plugin: RegisterPlugin,
) -> None:
    words = []
    for p in inspect.signature(streampay_incident_plugin).parameters.values():
        if p.kind is p.KEYWORD_ONLY and "*" not in words:
            words.append("*")
        words.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    shown = f"register({', '.join(words)})"
    assert shown == "register(plugin, name=None, *, config=None)"
    assert f"`{shown}`" in (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    from streampay_incident import testing

    assert shown in (testing.__doc__ or "")
    assert inspect.signature(streampay_incident_plugin) == inspect.signature(
        RegisterPlugin.__call__
    ).replace(parameters=list(inspect.signature(RegisterPlugin.__call__).parameters.values())[1:])


# --- runbook URLs -----------------------------------------------------------------------


def test_a_plugin_code_may_carry_its_own_runbook_url(installed: Any) -> None:
    url = "https://wiki.example.org/risk/runbooks#large-payout"

    class OwnRunbook(Good):
        @hookimpl
        def streampay_incident_register_codes(self) -> list[FindingCode]:
            return [
                FindingCode("RISK_LARGE_PAYOUT", Severity.WARNING, "Payout above", runbook_url=url)
            ]

    installed(risk=OwnRunbook())
    _, doc = payouts_json()
    (finding,) = [f for f in doc["findings"] if f["code"] == "RISK_LARGE_PAYOUT"]
    assert finding["runbook"] == url
    text = cli("payouts", PAYOUTS).stdout
    assert f"    runbook: {url}\n" in text  # no `streampay-incident runbook CODE` hint
    listed = {
        c["code"]: c["runbook"]
        for c in json.loads(cli("checks", "--format", "json").stdout)["codes"]
    }
    assert listed["RISK_LARGE_PAYOUT"] == url
    assert url in cli("checks").stdout


# --- STREAMPAY_INCIDENT_LOAD_PLUGINS ----------------------------------------------------


def test_unknown_and_empty_load_lists_are_warned_about(installed: Any) -> None:
    installed(team_risk=Good())
    result = cli("checks", env={"STREAMPAY_INCIDENT_LOAD_PLUGINS": "Team_Risk,nope"})
    assert result.exit_code == 0
    assert (
        "streampay-incident: warning: STREAMPAY_INCIDENT_LOAD_PLUGINS names 'Team_Risk', which "
        "is not installed (names are case-sensitive: did you mean 'team_risk'?)"
    ) in result.stderr
    assert "names 'nope', which is not installed\n" in result.stderr
    assert "team_risk" not in result.stdout  # case-sensitive: not loaded
    empty = cli("checks", env={"STREAMPAY_INCIDENT_LOAD_PLUGINS": " "})
    assert "STREAMPAY_INCIDENT_LOAD_PLUGINS is set but empty" in empty.stderr
    fine = cli("checks", env={"STREAMPAY_INCIDENT_LOAD_PLUGINS": "team_risk"})
    assert fine.stderr == "" and "team_risk 1.2.3" in fine.stdout


def test_disable_wins_over_load(installed: Any) -> None:
    installed(team_risk=Good())
    env = {
        "STREAMPAY_INCIDENT_LOAD_PLUGINS": "team_risk",
        "STREAMPAY_INCIDENT_DISABLE_PLUGINS": "team_risk",
    }
    result = cli("checks", env=env)
    assert "team_risk" not in result.stdout and result.stderr == ""
    doc = checks_document(get_plugin_manager(PluginSettings(disable_all=True, allow=frozenset())))
    assert doc["plugin_errors"] == []


def test_a_check_calling_sys_exit_is_a_plugin_error(
    streampay_incident_plugin: RegisterPlugin,
) -> None:
    class Exits:
        @hookimpl
        def streampay_incident_register_payout_checks(self) -> list[Any]:
            def leave(payouts: Any, *, policy: Any) -> list[Finding]:
                raise SystemExit(3)

            return [leave]

    pm = streampay_incident_plugin(Exits(), name="exits")
    errors = [f for f in run_checks(pm, hookspecs.PAYOUT_CHECKS, [], policy=None)]
    assert [(f.subject, f.evidence["error"]) for f in errors] == [("exits", "SystemExit")]


# --- the web app: the same failures, no 500 ---------------------------------------------

DESTINATION = "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"


@pytest.mark.network
def test_web_plugins_fail_alone_and_on_time(stalled: threading.Event) -> None:
    import httpx

    from streampay_incident.web import WebConfig, create_app
    from web_harness import KEY_ID, PREFIX, SECRET, mounted, running, signed

    record = {
        "payout_id": "p1",
        "settlement_id": "s1",
        "destination": DESTINATION,
        "asset": "native",
        "amount": "25",
        "status": "confirmed",
        "tx_hash": "ab" * 32,
        "created_at": "2026-11-27T02:00:00Z",
    }
    config = WebConfig(hmac_keys={KEY_ID: SECRET})
    pm = get_plugin_manager(PluginSettings(check_budget=0.2), load_entry_points=False)
    app = create_app(
        config,
        plugin_manager=pm,
        plugins=[Misspelt(), slow_plugin(stalled, hookspecs.PAYOUT_CHECKS), HandBuilt()],
    )
    body = json.dumps([record]).encode()
    full = PREFIX + "/triage/payouts"
    with running(mounted(app)) as url, httpx.Client(base_url=url, timeout=10) as client:
        headers = {**signed("POST", full, body), "content-type": "application/json"}
        response = client.post(full, headers=headers, content=body)
        listed = client.get(PREFIX + "/checks", headers=signed("GET", PREFIX + "/checks"))
    (left_out,) = listed.json()["plugin_errors"]
    assert left_out["subject"] == "Misspelt" and "(misspelt?)" not in left_out["summary"]
    assert left_out["evidence"]["check"] == "streampay_incident_register_payout_check"
    assert response.status_code == 200
    found = {(f["code"], f["subject"]) for f in response.json()["findings"]}
    assert {
        ("PLUGIN_ERROR", "Misspelt"),
        ("PLUGIN_TIMEOUT", "slow_plugin.<locals>.Slow"),
        ("PLUGIN_ERROR", "HandBuilt"),
    } <= found


def test_a_misspelt_plugin_through_the_fixture_is_reported_and_cleaned_up(
    streampay_incident_plugin: RegisterPlugin,
) -> None:
    pm = streampay_incident_plugin(Misspelt(), name="typo")
    assert not pm.has_plugin("typo")
    (error,) = run_checks(pm, hookspecs.ESCROW_CHECKS, [], [], escrow="G", window=None)[:1]
    assert error.subject == "typo" and "unknown hook" in error.summary


def test_a_manager_built_elsewhere_runs_with_the_defaults() -> None:
    import pluggy

    pm = pluggy.PluginManager("streampay_incident")
    pm.add_hookspecs(hookspecs)
    pm.register(Good(), name="good")
    assert dict(plugin_config(pm, "good")) == {}
    (finding,) = run_checks(pm, hookspecs.PAYOUT_CHECKS, [_Payout("p9")], policy=None)
    assert finding.subject == "p9"


class _Payout:
    def __init__(self, payout_id: str) -> None:
        self.payout_id = payout_id


def test_an_entry_point_listed_twice_or_without_a_distribution(installed: Any) -> None:
    installed(good=Good())
    eps = installed(good=Good(), bare=HandBuilt())
    eps[-1].dist = None
    pm = get_plugin_manager()
    versions = {p["name"]: p["version"] for p in loaded_plugins(pm)}
    assert versions["good"] == "1.2.3" and versions["bare"] == "unknown"


@pytest.mark.network
def test_a_slow_chain_plugin_does_not_stall_the_web_app(stalled: threading.Event) -> None:
    import httpx

    from loopback import LoopbackServer, horizon_routes, rfc3339, rpc_routes
    from streampay_incident.stellar.networks import PUBLIC
    from streampay_incident.web import WebConfig, create_app
    from web_harness import KEY_ID, PREFIX, SECRET, mounted, running, signed

    recent = datetime.now(UTC)
    horizon = horizon_routes(root={"history_latest_ledger_closed_at": rfc3339(recent)})
    rpc = rpc_routes(passphrase=PUBLIC, close_time=recent)
    health = PREFIX + "/health"
    with LoopbackServer(horizon) as h, LoopbackServer(rpc) as r:
        config = WebConfig(
            hmac_keys={KEY_ID: SECRET},
            horizon_urls=(h.url,),
            rpc_urls=(r.url,),
            network_passphrase=PUBLIC,
        )
        pm = get_plugin_manager(PluginSettings(check_budget=1.5), load_entry_points=False)
        app = create_app(
            config, plugin_manager=pm, plugins=[slow_plugin(stalled, hookspecs.CHAIN_CHECKS)]
        )
        with running(mounted(app)) as url:
            answers: dict[str, Any] = {}
            probe = threading.Thread(
                target=lambda: answers.update(
                    health=httpx.get(url + health, headers=signed("GET", health), timeout=10)
                )
            )
            probe.start()
            time.sleep(0.4)  # the round is now inside the slow check
            started = time.monotonic()
            live = httpx.get(url + PREFIX + "/livez", timeout=10)
            livez_took = time.monotonic() - started
            probe.join()
    assert live.status_code == 200 and livez_took < 0.9, livez_took  # blocked: >= 1.1 s
    assert answers["health"].status_code in (200, 503)
    assert "PLUGIN_TIMEOUT" in answers["health"].text


def test_payouts_timeout_caps_the_budget(installed: Any, stalled: threading.Event) -> None:
    installed(slow=slow_plugin(stalled, hookspecs.ESCROW_CHECKS))
    chain_payments = str(DEMO / "chain-payments.json")
    started = time.monotonic()
    result = cli(
        "payouts", PAYOUTS, "--escrow", DESTINATION, "--chain-payments", chain_payments,
        "--timeout", "0.5", "--format", "json",
    )  # fmt: skip
    took = time.monotonic() - started
    assert took < DEFAULT_CHECK_BUDGET, took
    (timeout,) = [f for f in json.loads(result.stdout)["findings"] if f["code"] == "PLUGIN_TIMEOUT"]
    assert timeout["evidence"]["budget_seconds"] == 0.5


def test_a_misspelt_plugin_registered_directly_is_left_out_too() -> None:
    pm = get_plugin_manager(load_entry_points=False)
    pm.register(Misspelt(), name="direct")  # bypassing register_plugin, as a host may
    (error,) = run_checks(pm, hookspecs.PAYOUT_CHECKS, [], policy=None)
    assert error.subject == "direct" and "unknown hook" in error.summary
    assert "RISK_LARGE_PAYOUT" not in code_table(pm)  # its codes are left out with it
