"""Issue 9 §10: the runbooks agree with the tool and with each other."""

from __future__ import annotations

import re
from pathlib import Path

RUNBOOKS = Path(__file__).resolve().parents[1] / "docs" / "runbooks"


def read(name: str) -> str:
    return re.sub(r"\s+", " ", (RUNBOOKS / name).read_text(encoding="utf-8"))


def section(name: str, heading: str) -> str:
    text = (RUNBOOKS / name).read_text(encoding="utf-8")
    start = text.index(heading)
    following = re.search(r"^## ", text[start + len(heading) :], re.MULTILINE)
    end = start + len(heading) + (following.start() if following else len(text))
    return re.sub(r"\s+", " ", text[start:end])


def test_one_severity_table_referenced_by_both_payment_runbooks() -> None:
    table = section("README.md", "## Incident severity")
    for code in ("PAYOUT_DUPLICATE_SETTLEMENT", "SETTLEMENT_ALREADY_PAID", "ESCROW_UNRECORDED"):
        assert code in table
    assert "amount_exposed" in table and "dead letters included" in table
    for name in ("stuck-settlement.md", "double-payout.md"):
        severity = section(name, "### Severity")
        assert "[incident severity table](README.md#severity)" in severity
        # Only the reference row: the severities live in one place.
        assert "**SEV2**" not in severity and "**SEV3**" not in severity


def test_never_submitted_and_the_two_person_rule_require_the_already_paid_check() -> None:
    text = (RUNBOOKS / "stuck-settlement.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `never_submitted` |"))
    assert "already-paid check" in row and "PAYOUT_IDEMPOTENCY_CONFLICT" in row
    for name in ("stuck-settlement.md", "double-payout.md"):
        rule = section(name, "## Two-person rule")
        assert "already-paid check" in rule and "PAYOUT_IDEMPOTENCY_CONFLICT" in rule


def test_every_step_of_the_stuck_settlement_runbook_uses_the_same_evidence() -> None:
    text = (RUNBOOKS / "stuck-settlement.md").read_text(encoding="utf-8")
    offline = [
        line
        for line in text.splitlines()
        if line.startswith("streampay-incident settlements") and "--transactions" in line
    ]
    assert len(offline) >= 2
    # One evidence for step 2, step 3 and the two-person rule: the chain snapshot, the
    # payouts export and a fixed --now (issue 9 §10); the lines differ only in the output.
    for line in offline:
        assert all(flag in line for flag in ("--chain-snapshot", "--payouts", "--now")), line
    evidence = {line.split(" --format")[0] for line in offline}
    assert len(evidence) == 1, evidence
    rule = section("stuck-settlement.md", "## Two-person rule")
    assert "--chain-snapshot" in rule and "--payouts" in rule


def test_duplicate_memo_section_says_misdirected_payment() -> None:
    memo = section("double-payout.md", "## PAYOUT_DUPLICATE_MEMO")
    assert "two customers never share a deposit memo" in memo
    assert "misdirected payment" in memo and "recipients of the streams" in memo


def test_comms_template_for_a_customer_paid_twice() -> None:
    template = section("comms-templates.md", "## Customer paid twice: recovery")
    assert "{#customer-paid-twice}" in template and "[AMOUNT] [ASSET]" in template
    assert "comms-templates.md#customer-paid-twice" in read("double-payout.md")


def test_one_escalation_policy_name() -> None:
    policies = set()
    for path in RUNBOOKS.glob("*.md"):
        text = re.sub(r"\s+", " ", path.read_text(encoding="utf-8"))
        policies |= set(re.findall(r"`([\w-]+)`(?: PagerDuty)? escalation policy", text))
    assert policies == {"streampay-settlement"}


def test_chain_outage_decision_tree_starts_from_the_diagnosis() -> None:
    tree = section("chain-outage.md", "### Step 2")
    for kind in ("our_endpoints_down", "network_down", "degraded", "healthy"):
        assert f"`{kind}`" in tree
