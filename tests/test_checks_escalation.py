"""``checks`` shows where a code escalates, and the declarations match what the checks do."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from click.testing import CliRunner

from streampay_incident.checks.chain import ChainPolicy
from streampay_incident.cli import main
from streampay_incident.codes import Severity, all_codes, lookup
from streampay_incident.timefmt import format_duration


def test_the_escalating_codes_are_the_ones_the_checks_raise() -> None:
    escalating = {c.code for c in all_codes() if c.escalates_to is not None}
    # SETTLEMENT_CONFIRMED_NOT_RECORDED is critical by default since decision table v2 (a
    # warning only while a worker holds a live lease): it no longer escalates.
    assert escalating == {
        "PAYOUT_DUPLICATE_SETTLEMENT",
        "CHAIN_LEDGER_STALE",
        "CHAIN_HORIZON_INGEST_LAG",
    }
    for code in all_codes():
        # An escalation goes up and says when; a code without one says nothing.
        if code.escalates_to is None:
            assert code.escalation == ""
        else:
            assert code.severity < code.escalates_to and code.escalation


def test_the_chain_escalations_name_the_policy_thresholds() -> None:
    policy = ChainPolicy()
    stale = lookup("CHAIN_LEDGER_STALE").escalation
    assert f"older than {format_duration(policy.stale_critical_seconds)}" in stale
    assert f"warning from {format_duration(policy.stale_warning_seconds)}" in stale
    lag = lookup("CHAIN_HORIZON_INGEST_LAG").escalation
    assert f"more than {policy.ingest_lag_critical} ledgers" in lag
    assert f"warning from {policy.ingest_lag_warning}" in lag


def test_the_payout_escalation_happens() -> None:
    from streampay_incident.checks.payouts import find_payout_anomalies
    from streampay_incident.model import NATIVE, Payout

    def row(payout_id: str, tx: str) -> Payout:
        return Payout(
            payout_id=payout_id,
            settlement_id="stl-1",
            destination="GASWJWFRYE55KC7MGANZMMRBK5NPXT3HMPDQ6SEXZN6ZPWYXVVYBFRTE",
            asset=NATIVE,
            amount=10_000_0000,
            status="confirmed",
            created_at=datetime(2026, 11, 27, tzinfo=UTC),
            tx_hash=tx * 64,
        )

    findings = find_payout_anomalies([row("p-1", "a"), row("p-2", "b")])
    paid_twice = next(f for f in findings if f.code == "PAYOUT_DUPLICATE_SETTLEMENT")
    assert paid_twice.severity is lookup(paid_twice.code).escalates_to is Severity.CRITICAL


def test_checks_text_shows_both_severities_and_when() -> None:
    out = CliRunner().invoke(main, ["checks"]).stdout
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("CHAIN_LEDGER_STALE "))
    assert lines[at].split()[1] == "warning|critical"
    assert lines[at + 1].strip() == f"critical when {lookup('CHAIN_LEDGER_STALE').escalation}"
    plain = next(line for line in lines if line.startswith("CHAIN_FEE_SURGE "))
    assert plain.split()[1] == "warning"


def test_checks_json_keeps_the_default_severity_and_adds_escalates_to() -> None:
    doc = json.loads(CliRunner().invoke(main, ["checks", "--format", "json"]).stdout)
    by_code = {c["code"]: c for c in doc["codes"]}
    stale = by_code["CHAIN_LEDGER_STALE"]
    assert (stale["severity"], stale["escalates_to"]) == ("warning", "critical")
    assert stale["escalation"] == lookup("CHAIN_LEDGER_STALE").escalation
    surge = by_code["CHAIN_FEE_SURGE"]
    assert (surge["severity"], surge["escalates_to"], surge["escalation"]) == (
        "warning",
        None,
        None,
    )
