"""The alert rules and the Grafana dashboard: valid for promtool, tested, tied to the runbooks.

promtool (Debian's ``prometheus`` package) runs ``check rules`` and the unit
tests in ``ops/prometheus/incident-alerts.test.yml``. Without promtool these
tests skip, unless ``STREAMPAY_INCIDENT_REQUIRE_PROMTOOL=1`` (set by
``.ci/run``), where a missing promtool is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "ops" / "prometheus" / "incident-rules.yml"
RULE_TESTS = REPO / "ops" / "prometheus" / "incident-alerts.test.yml"
DASHBOARD = REPO / "ops" / "grafana" / "streampay-incident.json"
RUNBOOKS = REPO / "docs" / "runbooks"

# The metric names pinned between the web service (issue 4) and these files.
PINNED_METRICS = {
    "streampay_incident_chain_status",
    "streampay_incident_chain_overall_status",
    "streampay_incident_ledger_age_seconds",
    "streampay_incident_horizon_ingest_lag_ledgers",
    "streampay_incident_probe_duration_seconds",
    "streampay_incident_probe_duration_seconds_bucket",
    "streampay_incident_probe_duration_seconds_count",
    "streampay_incident_probe_duration_seconds_sum",
    "streampay_incident_last_probe_timestamp_seconds",
    "streampay_incident_probe_rounds_total",
    "streampay_incident_findings",
    "streampay_settlement_job_oldest_seconds",
    "streampay_settlement_dlq_depth",
}
_METRIC = re.compile(r"\bstreampay_[a-z_]+\b")
_HEADING_ID = re.compile(r"^#{1,6} .*\{#([a-z0-9-]+)\}\s*$", re.MULTILINE)
_RUNBOOK_URL = re.compile(r"(?:^|/)docs/runbooks/([A-Za-z0-9-]+\.md)#([a-z0-9-]+)$")


def heading_ids(markdown: Path) -> set[str]:
    """The explicit ``{#id}`` of every heading in a Markdown file."""
    return set(_HEADING_ID.findall(markdown.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("STREAMPAY_INCIDENT_REQUIRE_PROMTOOL") == "1":
            pytest.fail(
                "promtool is required (STREAMPAY_INCIDENT_REQUIRE_PROMTOOL=1) but not on PATH"
            )
        pytest.skip("promtool not on PATH (apt-get install prometheus); alert rules not checked")
    return path


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)


def _alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def _dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, expr) for every query target in the dashboard."""
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    out = []
    for panel in doc["panels"]:
        for nested in [panel, *panel.get("panels", [])]:
            for target in nested.get("targets", []):
                out.append((nested["title"], target["expr"]))
    return out


# --- alert rules --------------------------------------------------------------


def test_rules_pass_promtool_check(promtool: str) -> None:
    result = _run([promtool, "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass(promtool: str) -> None:
    # rule_files in the test file are relative to the test file's directory.
    result = _run([promtool, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_not_firing_unit_test() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    assert tests["rule_files"] == [RULES.name]
    firing: set[str] = set()
    silent: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {r["alert"] for r in _alert_rules()}
    assert names - firing == set(), "alerts with no firing test"
    assert names - silent == set(), "alerts with no not-firing test"
    assert (firing | silent) - names == set(), "tests for alerts that do not exist"


def test_alert_names_are_unique() -> None:
    names = [r["alert"] for r in _alert_rules()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: r["alert"])
def test_alert_has_severity_and_a_runbook_url_that_resolves(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in ("critical", "warning")
    for key in ("summary", "description", "runbook_url"):
        assert rule["annotations"].get(key), f"{rule['alert']} has no {key}"
    match = _RUNBOOK_URL.search(rule["annotations"]["runbook_url"])
    assert match, f"{rule['alert']}: runbook_url must end in docs/runbooks/<file>.md#<anchor>"
    runbook, anchor = match.groups()
    assert (RUNBOOKS / runbook).is_file(), f"{rule['alert']}: {runbook} does not exist"
    assert anchor in heading_ids(RUNBOOKS / runbook), (
        f"{rule['alert']}: no {{#{anchor}}} in {runbook}"
    )


def test_alerts_only_use_pinned_metrics() -> None:
    used = {m for r in _alert_rules() for m in _METRIC.findall(r["expr"])}
    assert used <= PINNED_METRICS, f"unknown metric names: {used - PINNED_METRICS}"


def test_the_alerts_the_issue_asks_for_exist() -> None:
    by_name = {r["alert"]: r for r in _alert_rules()}
    stuck = by_name["SettlementJobStuck"]
    assert re.search(r"streampay_settlement_job_oldest_seconds\s*>\s*1800\b", stuck["expr"])
    assert "streampay_settlement_dlq_depth" in by_name["SettlementDLQNotEmpty"]["expr"]
    chain_down = by_name["StreampayChainDown"]
    assert "streampay_incident_chain_overall_status" in chain_down["expr"]
    assert chain_down["for"] == "2m"
    assert "streampay_incident_ledger_age_seconds" in by_name["StreampayLedgerStale"]["expr"]
    assert (
        "streampay_incident_horizon_ingest_lag_ledgers"
        in (by_name["StreampayHorizonIngestLag"]["expr"])
    )
    stale = by_name["StreampayIncidentProbeStale"]["expr"]
    assert re.search(
        r"time\(\)\s*-\s*streampay_incident_last_probe_timestamp_seconds\s*>\s*300", stale
    )
    assert by_name["StreampayIncidentProbeMissing"]["expr"].startswith("absent(")
    critical = by_name["StreampayIncidentCriticalFindings"]["expr"]
    assert 'streampay_incident_findings{severity="critical"}' in critical


# --- dashboard ----------------------------------------------------------------


def test_dashboard_parses_and_has_the_panels_on_call_needs() -> None:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert doc["uid"] and doc["title"]
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    exprs = " ".join(e for _, e in _dashboard_exprs())
    for metric in (
        "streampay_incident_chain_status",  # chain status per endpoint
        "streampay_incident_ledger_age_seconds",
        "streampay_incident_horizon_ingest_lag_ledgers",
        "streampay_incident_findings",  # findings by code
        "streampay_incident_probe_duration_seconds_bucket",
    ):
        assert metric in exprs, f"no panel over {metric}"
    assert "by (endpoint" in exprs and "by (code" in exprs


def test_dashboard_only_uses_pinned_metrics() -> None:
    used = {m for _, e in _dashboard_exprs() for m in _METRIC.findall(e)}
    assert used <= PINNED_METRICS, f"unknown metric names: {used - PINNED_METRICS}"


def test_every_dashboard_expression_passes_promtool(promtool: str, tmp_path: Path) -> None:
    exprs = _dashboard_exprs()
    assert exprs
    rules = {
        "groups": [
            {
                "name": "dashboard-exprs",
                "rules": [
                    {"record": f"dashboard:expr_{i}", "expr": expr}
                    for i, (_title, expr) in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-exprs.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = _run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_promtool_check_catches_a_broken_expression(promtool: str, tmp_path: Path) -> None:
    # The check above must be able to fail: a syntax error is reported.
    path = tmp_path / "broken.yml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "r", "expr": "sum(("}]}]}),
        encoding="utf-8",
    )
    assert _run([promtool, "check", "rules", str(path)]).returncode != 0
