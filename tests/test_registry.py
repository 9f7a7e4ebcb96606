from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from streampay_incident import codes, hookimpl, hookspecs
from streampay_incident.codes import FindingCode, Severity
from streampay_incident.model import Finding, make_finding
from streampay_incident.registry import (
    DEFAULT_PLUGINS,
    PluginSettings,
    checks_document,
    code_table,
    get_plugin_manager,
    loaded_plugins,
    plugin_settings_from_env,
    run_checks,
)

HOOK = "streampay_incident_register_payout_checks"


class GoodPlugin:
    @hookimpl
    def streampay_incident_register_codes(self) -> list[FindingCode]:
        return [FindingCode("TEAM_X_ODD_PAYOUT", Severity.INFO, "Odd payout", "README.md")]

    @hookimpl
    def streampay_incident_register_payout_checks(self) -> list[Any]:
        def odd(payouts: list[str], *, policy: object) -> list[Finding]:
            return [make_finding("TEAM_X_ODD_PAYOUT", p, "odd") for p in payouts]

        return [odd]


class RaisingCheck:
    @hookimpl
    def streampay_incident_register_payout_checks(self) -> list[Any]:
        def boom(payouts: object, *, policy: object) -> list[Finding]:
            raise RuntimeError("kaboom")

        return [boom]


class RaisingRegistration:
    @hookimpl
    def streampay_incident_register_payout_checks(self) -> list[Any]:
        raise ValueError("cannot register")


class WrongType:
    @hookimpl
    def streampay_incident_register_payout_checks(self) -> list[Any]:
        return [lambda payouts, *, policy: ["not a finding"]]


def test_a_raising_plugin_becomes_a_finding_and_others_still_run(
    streampay_incident_plugin: Any,
) -> None:
    streampay_incident_plugin(GoodPlugin(), name="good")
    streampay_incident_plugin(RaisingCheck(), name="raiser")
    streampay_incident_plugin(RaisingRegistration(), name="reg")
    pm = streampay_incident_plugin(WrongType(), name="wrong")
    # These fake payouts are strings: keep the built-in payout rules out of this test.
    pm.unregister(name="streampay_incident.checks.payouts")
    # The good plugin was registered after the manager was built: its code is declared anyway.
    findings = run_checks(pm, HOOK, ["p1", "p2"], policy=None)
    by_code: dict[str, list[Finding]] = {}
    for f in findings:
        by_code.setdefault(f.code, []).append(f)
    assert [f.subject for f in by_code["TEAM_X_ODD_PAYOUT"]] == ["p1", "p2"]
    errors = {f.subject: f for f in by_code["PLUGIN_ERROR"]}
    assert set(errors) == {"raiser", "reg", "wrong"}
    assert errors["raiser"].severity is Severity.WARNING
    assert "kaboom" in errors["raiser"].summary
    assert "cannot register" in errors["reg"].summary
    assert "not a Finding" in errors["wrong"].summary


def test_plugin_codes_live_with_their_plugin_manager(streampay_incident_plugin: Any) -> None:
    pm = streampay_incident_plugin(GoodPlugin(), name="good")
    hook = pm.hook.streampay_incident_register_codes
    assert [c.code for declared in hook() for c in declared] == ["TEAM_X_ODD_PAYOUT"]
    assert "TEAM_X_ODD_PAYOUT" in code_table(pm)
    assert "TEAM_X_ODD_PAYOUT" not in codes.CODES
    assert "TEAM_X_ODD_PAYOUT" in [c["code"] for c in checks_document(pm)["codes"]]
    other = get_plugin_manager(load_entry_points=False)
    assert "TEAM_X_ODD_PAYOUT" not in code_table(other)
    assert code_table(other) is code_table(other)  # declared once while the plugins stay
    with pytest.raises(KeyError, match="not declared"):
        make_finding("TEAM_X_ODD_PAYOUT", "p1", "outside any run of pm's checks")
    with codes.declared(code_table(pm)):
        assert make_finding("TEAM_X_ODD_PAYOUT", "p1", "odd").severity is Severity.INFO


def test_a_conflicting_plugin_code_fails_alone_naming_the_plugin() -> None:
    class Conflict:
        @hookimpl
        def streampay_incident_register_codes(self) -> list[FindingCode]:
            return [FindingCode("PLUGIN_ERROR", Severity.INFO, "other", "README.md")]

    pm = get_plugin_manager(load_entry_points=False)
    pm.register(Conflict(), name="conflict")
    assert code_table(pm)["PLUGIN_ERROR"] == codes.CODES["PLUGIN_ERROR"]
    (error,) = run_checks(pm, HOOK, [], policy=None)
    assert error.code == "PLUGIN_ERROR" and error.subject == "conflict"
    assert "already declared differently (built-in)" in error.summary
    with pytest.raises(RuntimeError, match="conflict"):
        code_table(pm, strict=True)


def test_register_code_conflict() -> None:
    codes.register_code(codes.CODES["PLUGIN_ERROR"])  # identical re-declaration is fine
    with pytest.raises(ValueError, match="already declared"):
        codes.register_code(FindingCode("PLUGIN_ERROR", Severity.INFO, "other", "README.md"))
    with pytest.raises(KeyError, match="not declared"):
        codes.lookup("NOPE")


def test_env_switches() -> None:
    s = plugin_settings_from_env(
        {
            "STREAMPAY_INCIDENT_DISABLE_PLUGINS": "a, b",
            "STREAMPAY_INCIDENT_LOAD_PLUGINS": "c",
            "STREAMPAY_INCIDENT_TRACE_PLUGINS": "1",
        }
    )
    assert s == PluginSettings(frozenset({"a", "b"}), False, frozenset({"c"}), True)
    assert plugin_settings_from_env({"STREAMPAY_INCIDENT_DISABLE_PLUGINS": "all"}).disable_all
    assert plugin_settings_from_env({}) == PluginSettings()


def test_builtins_are_plugins_and_listed(capsys: pytest.CaptureFixture[str]) -> None:
    pm = get_plugin_manager(PluginSettings(trace=True))
    names = [p["name"] for p in loaded_plugins(pm)]
    for builtin in DEFAULT_PLUGINS:
        assert builtin in names
    run_checks(pm, HOOK, [], policy=None)
    assert "streampay_incident_register_payout_checks" in capsys.readouterr().err


def test_entry_point_plugins_load_and_obey_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md

    class EP:
        def __init__(self, name: str) -> None:
            self.name = name
            self.dist = type("D", (), {"version": "9.9"})()

        def load(self) -> object:
            return GoodPlugin()

    eps = [EP("alpha"), EP("beta"), EP("gamma")]
    monkeypatch.setattr(md, "entry_points", lambda group: eps)
    pm = get_plugin_manager(PluginSettings(disabled=frozenset({"beta"})))
    listed = {p["name"]: p["version"] for p in loaded_plugins(pm)}
    assert listed["alpha"] == "9.9" and "gamma" in listed and "beta" not in listed
    pm = get_plugin_manager(PluginSettings(allow=frozenset({"gamma"})))
    assert {p["name"] for p in loaded_plugins(pm)} & {"alpha", "gamma"} == {"gamma"}
    pm = get_plugin_manager(PluginSettings(disable_all=True))
    assert not {p["name"] for p in loaded_plugins(pm)} & {"alpha", "beta", "gamma"}


def test_every_hookspec_is_documented_and_tested() -> None:
    """datasette's test_plugin_hooks_are_documented / _have_tests, for our hooks."""
    from pathlib import Path

    specs = [n for n in dir(hookspecs) if n.startswith("streampay_incident_")]
    assert specs, "no hookspecs found"
    docs = Path(__file__).parents[1] / "docs" / "plugins.md"
    tests_text = "\n".join(
        p.read_text(encoding="utf-8") for p in Path(__file__).parent.glob("test_*.py")
    )
    for name in specs:
        fn = getattr(hookspecs, name)
        assert fn.__doc__ and len(fn.__doc__.strip()) > 40, f"{name} has no docstring"
        assert name in tests_text.replace("def " + name, ""), f"{name} has no test"
        if docs.exists():
            assert name in docs.read_text(encoding="utf-8"), f"{name} missing from docs/plugins.md"


def test_import_stays_light() -> None:
    code = (
        "import sys, streampay_incident; "
        "heavy = [m for m in ('stellar_sdk', 'httpx', 'starlette', 'rich', 'duckdb', 'pyspark') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_plugin_whose_codes_fail_after_start_up_fails_alone(
    streampay_incident_plugin: Any,
) -> None:
    class BrokenCodes:
        @hookimpl
        def streampay_incident_register_codes(self) -> list[FindingCode]:
            raise RuntimeError("cannot declare")

        @hookimpl
        def streampay_incident_register_payout_checks(self) -> list[Any]:
            def uses_its_code(payouts: Any, *, policy: Any) -> list[Finding]:
                return [make_finding("BROKEN_CODE", "p1", "never declared")]

            return [uses_its_code]

    streampay_incident_plugin(GoodPlugin(), name="good")
    pm = streampay_incident_plugin(BrokenCodes(), name="broken-codes")
    pm.unregister(name="streampay_incident.checks.payouts")
    findings = run_checks(pm, HOOK, ["p1"], policy=None)
    assert {f.code for f in findings} == {"TEAM_X_ODD_PAYOUT", "PLUGIN_ERROR"}
    (error,) = [f for f in findings if f.code == "PLUGIN_ERROR"]
    assert error.subject == "broken-codes"
    fresh = get_plugin_manager(load_entry_points=False)
    fresh.register(BrokenCodes())
    with pytest.raises(RuntimeError, match="cannot declare"):
        code_table(fresh, strict=True)
