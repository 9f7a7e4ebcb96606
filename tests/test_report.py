from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from streampay_incident.cli import main
from streampay_incident.cli.common import exit_code_for
from streampay_incident.codes import CODES, Severity, all_codes, anchor_for
from streampay_incident.logevents import format_event, log_event
from streampay_incident.model import Report, SettlementVerdict, make_finding, status_from_findings
from streampay_incident.report import SCHEMA, render, report_to_json

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _report(**kw: Any) -> Report:
    findings = (
        make_finding(
            "PAYOUT_SUSPECTED_REPEAT",
            "GDEST",
            "two payouts | one pipe",
            {"payout_ids": [f"p{i}" for i in range(10)], "amount_at_risk": {"native": "1.0000000"}},
        ),
        make_finding("PAYOUT_DUPLICATE_MEMO", "text:abc", "memo paid twice"),
        make_finding("ESCROW_OUTSIDE_WINDOW", "p9", "outside"),
    )
    return Report(
        command="payouts", findings=findings, generated_at=NOW, inputs={"file": "p.csv"}, **kw
    )


def test_status_and_exit_codes() -> None:
    assert status_from_findings([]) == "pass"
    info = make_finding("ESCROW_OUTSIDE_WINDOW", "x", "y")
    warn = make_finding("PAYOUT_SUSPECTED_REPEAT", "x", "y")
    crit = make_finding("PAYOUT_DUPLICATE_MEMO", "x", "y")
    assert status_from_findings([info]) == "pass"
    assert status_from_findings([info, warn]) == "warn"
    assert status_from_findings([warn, crit]) == "fail"
    assert (
        make_finding("PAYOUT_SUSPECTED_REPEAT", "x", "y", severity=Severity.CRITICAL).severity
        is Severity.CRITICAL
    )
    assert [exit_code_for(s, "warning") for s in ("pass", "warn", "fail")] == [0, 1, 1]
    assert [exit_code_for(s, "critical") for s in ("pass", "warn", "fail")] == [0, 0, 1]
    assert Severity.INFO < Severity.WARNING <= Severity.CRITICAL
    assert Severity.INFO.__lt__(1) is NotImplemented and Severity.INFO.__le__(1) is NotImplemented


def test_json_report_contract() -> None:
    verdicts = (SettlementVerdict("s1", "stuck", True, "never_submitted"),)
    doc = report_to_json(_report(settlements=verdicts, extra={"endpoints": []}))
    assert doc["schema"] == SCHEMA == "streampay-incident.report/v1"
    assert doc["status"] == "fail"
    assert doc["generated_at"] == "2026-11-27T03:00:00Z"
    assert doc["tool"]["name"] == "streampay-incident"
    assert doc["inputs"] == {"file": "p.csv"}
    assert [f["code"] for f in doc["findings"]] == [
        "PAYOUT_DUPLICATE_MEMO",
        "PAYOUT_SUSPECTED_REPEAT",
        "ESCROW_OUTSIDE_WINDOW",
    ]
    first = doc["findings"][0]
    assert set(first) == {"code", "severity", "subject", "summary", "evidence", "runbook"}
    assert first["runbook"] == "docs/runbooks/double-payout.md#payout-duplicate-memo"
    assert doc["settlements"] == [
        {
            "settlement_id": "s1",
            "state": "stuck",
            "retry_safe": True,
            "retry_reason": "never_submitted",
            "action": "investigate",
        }
    ]
    assert doc["endpoints"] == []
    assert "settlements" not in report_to_json(_report())
    assert json.loads(render(_report(status="warn"), "json"))["status"] == "warn"


def test_text_and_markdown() -> None:
    verdicts = (
        SettlementVerdict("s1", "stuck", False, "tx_may_still_land"),
        SettlementVerdict("s2", "stuck", True, "tx_expired"),
    )
    text = render(_report(settlements=verdicts), "text")
    assert text.index("CRITICAL") < text.index("WARNING") < text.index("INFO")
    assert "(+2 more)" in text and "at risk: 1.0000000 native" in text
    assert "runbook: docs/runbooks/double-payout.md#payout-duplicate-memo" in text
    assert "tx_may_still_land" in text and "NO" in text
    colored = render(_report(), "text", color=True)
    assert "\x1b[" in colored
    md = render(_report(settlements=verdicts), "markdown")
    assert "**FAIL**" in md and "two payouts \\| one pipe" in md and "| `s2` | stuck | yes |" in md
    empty = Report(command="settlements", findings=(), generated_at=NOW)
    assert "No findings." in render(empty, "text")
    assert "No findings." in render(empty, "markdown")
    assert "PASS" in render(empty, "text")


_ANSI_STYLE = re.compile("\x1b\\[[0-9;]*m")


def _text_report(subject: str, summary: str, settlement_id: str, note: str) -> Report:
    return Report(
        command="settlements",
        findings=(make_finding("PAYOUT_DUPLICATE_MEMO", subject, summary),),
        generated_at=NOW,
        inputs={"file": note},
        settlements=(
            SettlementVerdict(settlement_id, "stuck", False, "tx_may_still_land"),
            SettlementVerdict("s2", "stuck", True, "tx_expired"),
        ),
        extra={"notes": [note]},
    )


def test_text_shows_hostile_values_literally_and_escapes_control_characters() -> None:
    """A value from an export is shown as text: no markup, no emoji code, and no control
    character reaches the terminal (a terminal title, a colour, a forged line)."""
    forged = "s1\x1b]0;pwned\x07\n  CRITICAL (9)\r\t:rocket: [bold]x[/] \\[y]\x9b2J"
    for color in (False, True):
        text = render(_text_report(forged, forged, forged, forged), "text", color=color)
        shown = _ANSI_STYLE.sub("", text)
        assert "\x1b]0;" not in text and "\x07" not in text and "\r" not in text
        assert "\x9b" not in text and "\t" not in text
        assert "\n  CRITICAL (9)" not in text
        escaped = (
            "s1\\x1b]0;pwned\\x07\\x0a  CRITICAL (9)\\x0d\\x09:rocket: [bold]x[/] \\[y]\\x9b2J"
        )
        assert shown.count(escaped) == 5  # subject, summary, the input, the note, the verdict
        assert "\U0001f680" not in text


@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=40), st.text(max_size=20))
def test_text_in_colour_is_the_plain_text_styled(
    subject: str, summary: str, settlement_id: str, note: str
) -> None:
    """Rich only adds styles on a colour terminal: the text is the same as written plainly."""
    report = _text_report(subject, summary, settlement_id, note)
    plain = render(report, "text")
    assert _ANSI_STYLE.sub("", render(report, "text", color=True)) == plain
    assert "\x1b" not in plain


def test_codes_table_is_consistent() -> None:
    for c in all_codes():
        assert c.code == c.code.upper() and " " not in c.code
        assert c.runbook == f"docs/runbooks/{c.runbook_file}#{anchor_for(c.code)}"
    assert anchor_for("PAYOUT_DUPLICATE_MEMO") == "payout-duplicate-memo"
    assert CODES["PLUGIN_ERROR"].severity is Severity.WARNING


def test_checks_command_json_and_text() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["checks", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert {c["code"] for c in doc["codes"]} >= {
        "PAYOUT_DUPLICATE_MEMO",
        "PLUGIN_ERROR",
        "CHAIN_LEDGER_STALE",
    }
    keys = {"code", "severity", "escalates_to", "escalation", "title", "runbook"}
    assert all(set(c) == keys for c in doc["codes"])
    assert all(set(p) == {"name", "version"} for p in doc["plugins"])
    text = runner.invoke(main, ["checks"])
    assert text.exit_code == 0 and "Plugins:" in text.output
    assert runner.invoke(main, ["--version"]).output.startswith("streampay-incident, version")


def test_log_events(caplog: pytest.LogCaptureFixture) -> None:
    assert (
        format_event(
            "auth_failed", reason="BAD_SIGNATURE", service="ops cli", n=3, skipped=None, empty=""
        )
        == 'event=auth_failed reason=BAD_SIGNATURE service="ops cli" n=3 empty=""'
    )
    with caplog.at_level(logging.INFO, logger="streampay_incident"):
        log_event("report", command="payouts", findings=2)
    assert caplog.records[0].getMessage() == "event=report command=payouts findings=2"
