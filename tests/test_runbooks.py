"""The runbooks are tied to the tool: codes resolve, sections are in order, commands run.

- Every finding code of ``streampay_incident.codes`` has a heading with its
  explicit id in the runbook file it names, and every code-like heading has a
  declared code.
- Each incident runbook has the nine pinned sections, in order.
- The commands in the runbooks' shell blocks are ones the tests can run, and
  cover what on-call needs (``tests/test_doc_commands.py`` runs each of them).
- The tabletop answer keys match what the tool really prints for the demo data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from doc_commands import (
    _FENCE,
    _SHELL_LANGS,
    RunbookCommand,
    _code_blocks,
    commands_in,
    parse_command,
)
from streampay_incident.checks.settlements import RETRY_REASONS
from streampay_incident.cli import main
from streampay_incident.codes import CODES, all_codes, anchor_for

REPO = Path(__file__).resolve().parents[1]
RUNBOOKS = REPO / "docs" / "runbooks"
INCIDENT_RUNBOOKS = ("stuck-settlement.md", "double-payout.md", "chain-outage.md")
# The built-in codes, taken at import: tests of plugins register codes of their own later.
BUILTIN_CODES = all_codes()

# The demo scenarios' clock (streampay_incident.cli.demo DEMO_NOW / DEMO_LEDGER_CLOSE).
DEMO_NOW = "2026-11-27T03:00:00Z"
DEMO_LEDGER_CLOSE = "2026-11-27T02:59:56Z"

_HEADING = re.compile(r"^(#{1,6}) (.+?)(?: \{#([^}]+)\})?\s*$", re.MULTILINE)
_CODE_LIKE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")


# --- reading the runbooks -------------------------------------------------------------


def _runbook_files() -> list[Path]:
    return sorted(RUNBOOKS.glob("*.md"))


def _headings(path: Path) -> list[tuple[int, str, str | None]]:
    """(level, text, explicit id) of every heading outside fenced code."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return [(len(m.group(1)), m.group(2), m.group(3)) for m in _HEADING.finditer(text)]


def runbook_commands() -> list[RunbookCommand]:
    return [command for path in _runbook_files() for command in commands_in(path)]


COMMANDS = runbook_commands()


# --- finding codes and headings ------------------------------------------------------------


@pytest.mark.parametrize("code", BUILTIN_CODES, ids=lambda c: c.code)
def test_every_code_resolves_to_a_heading_with_its_explicit_id(code: Any) -> None:
    path = RUNBOOKS / code.runbook_file
    assert path.is_file(), f"{code.code}: {path} does not exist"
    assert code.runbook == f"docs/runbooks/{code.runbook_file}#{anchor_for(code.code)}"
    assert (2, code.code, code.anchor) in _headings(path), (
        f"{code.code}: no heading '## {code.code} {{#{code.anchor}}}' in {code.runbook_file}"
    )


def test_checks_command_lists_runbook_links_that_resolve() -> None:
    result = CliRunner().invoke(main, ["checks", "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)["codes"]
    builtin = {c.code for c in BUILTIN_CODES}
    assert {c["code"] for c in listed} >= builtin
    for entry in (e for e in listed if e["code"] in builtin):
        file, _, anchor = entry["runbook"].removeprefix("docs/runbooks/").partition("#")
        ids = {h[2] for h in _headings(RUNBOOKS / file)}
        assert anchor in ids, f"{entry['code']}: {entry['runbook']} does not resolve"


def test_every_code_like_heading_has_a_declared_code() -> None:
    for path in _runbook_files():
        for _level, text, anchor in _headings(path):
            if not _CODE_LIKE.match(text):
                continue
            assert text in CODES, f"{path.name}: heading {text} is not a declared finding code"
            declared = CODES[text]
            assert anchor == declared.anchor, f"{path.name}: {text} needs {{#{declared.anchor}}}"
            assert path.name == declared.runbook_file, (
                f"{text} belongs in {declared.runbook_file}, not {path.name}"
            )


def test_heading_ids_are_unique_per_file() -> None:
    for path in _runbook_files():
        ids = [h[2] for h in _headings(path) if h[2]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate heading ids"


def test_heading_checker_sees_a_wrong_or_missing_id(tmp_path: Path) -> None:
    # The checks above must be able to fail.
    sample = tmp_path / "sample.md"
    sample.write_text("## PAYOUT_DUPLICATE_MEMO {#wrong}\n## NOT_A_REAL_CODE {#x}\n", "utf-8")
    headings = _headings(sample)
    assert (2, "PAYOUT_DUPLICATE_MEMO", "wrong") in headings
    assert not {h[1] for h in headings if _CODE_LIKE.match(h[1])} <= set(CODES)


# --- structure of the incident runbooks ----------------------------------------------------

_SECTIONS = (
    (
        "header",
        re.compile(
            r"\*\*Owner\*\*.*\*\*Linked alerts\*\*.*\*\*Last reviewed\*\*.*"
            r"\*\*Last tabletop\*\*",
            re.DOTALL,
        ),
    ),
    ("meaning and impact", re.compile(r"^## Meaning and impact", re.MULTILINE)),
    ("severity table", re.compile(r"^### Severity.*?^\| \*\*SEV1\*\*", re.MULTILINE | re.DOTALL)),
    ("first 5 minutes", re.compile(r"^## First 5 minutes \{#first-5-minutes\}", re.MULTILINE)),
    ("L1 steps", re.compile(r"^## L1 steps", re.MULTILINE)),
    ("decision tree", re.compile(r"\{#decision-tree\}|\{#triage-by-finding\}")),
    ("L2 escalation", re.compile(r"^## L2 escalation", re.MULTILINE)),
    ("two-person rule", re.compile(r"^## Two-person rule", re.MULTILINE)),
    ("verification", re.compile(r"^## Verification and exit criteria", re.MULTILINE)),
    ("PII rules", re.compile(r"^## PII rules for customer comms", re.MULTILINE)),
    (
        "tabletop",
        re.compile(
            r"^- \[[ x]\] Quarterly tabletop exercise run \(date, facilitator\)", re.MULTILINE
        ),
    ),
)


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    following = re.search(r"^## ", text[start + len(heading) :], re.MULTILINE)
    return text[start : start + len(heading) + (following.start() if following else len(text))]


@pytest.mark.parametrize("name", INCIDENT_RUNBOOKS)
def test_incident_runbook_has_the_sections_in_order(name: str) -> None:
    text = (RUNBOOKS / name).read_text(encoding="utf-8")
    positions = []
    for label, pattern in _SECTIONS:
        match = pattern.search(text)
        assert match, f"{name}: no {label} section"
        positions.append((match.start(), label))
    assert positions == sorted(positions), f"{name}: sections out of order: {positions}"
    assert text.rstrip().endswith("- [ ] Quarterly tabletop exercise run (date, facilitator)") or (
        "- [x] Quarterly tabletop exercise run" in text
    )


@pytest.mark.parametrize("name", INCIDENT_RUNBOOKS)
def test_incident_runbook_content(name: str) -> None:
    text = (RUNBOOKS / name).read_text(encoding="utf-8")
    first5 = re.sub(r"\s+", " ", _section(text, "## First 5 minutes"))
    for command in ("streampay-incident chain", "streampay-incident settlements"):
        assert command in first5, f"{name}: first 5 minutes lacks {command}"
    assert "Admin pause" in first5 and "circuit breaker" in first5
    assert "*settle* and *cancel* stay allowed" in first5
    assert "two-person rule" in first5
    l2 = _section(text, "## L2 escalation")
    for role in (
        "incident commander",
        "deputy",
        "scribe",
        "subject-matter expert",
        "customer liaison",
        "internal liaison to finance",
    ):
        assert role in l2.replace("\n", " ").replace("*", ""), f"{name}: L2 lacks role {role}"
    assert "Time box" in l2
    two = re.sub(r"\s+", " ", _section(text, "## Two-person rule"))
    for word in (
        "destination",
        "amount",
        "asset",
        "retry_safe",
        "Recorded" if "Recorded" in two else "records",
    ):
        assert word in two, f"{name}: two-person rule lacks {word}"
    verification = _section(text, "## Verification and exit criteria")
    for link in ("rollback.md", "key-rotation.md", "comms-templates.md", "Grafana"):
        assert link in verification, f"{name}: verification lacks {link}"
    assert "ops/prometheus/incident-rules.yml" in verification
    pii = re.sub(r"\s+", " ", _section(text, "## PII rules for customer comms"))
    for item in ("account IDs", "memos", "names", "per customer", "tx hashes", "May be said"):
        assert item.lower() in pii.lower(), f"{name}: PII rules lack {item}"


def test_stuck_settlement_runbook_covers_every_retry_reason() -> None:
    text = (RUNBOOKS / "stuck-settlement.md").read_text(encoding="utf-8")
    reasons = sorted(RETRY_REASONS)  # every reason the tool can give, from the code
    tree = _section(text, "### Step 6")
    for reason in reasons:
        assert f"`{reason}`" in tree, f"decision tree lacks {reason}"
    table = {row.split("|")[1].strip(" `") for row in tree.splitlines() if row.startswith("| `")}
    table.discard("retry_reason")  # the header row
    assert table == set(reasons)


def test_double_payout_runbook_names_the_traps() -> None:
    text = (RUNBOOKS / "double-payout.md").read_text(encoding="utf-8").replace("\n", " ")
    for trap in (
        "Never sum the stream contract's `settled` events",
        "Sum `withdrawn`",
        "outer",
        "inner hash",
        "Horizon lag returns 404",
        "reused by exchanges",
        "Muxed accounts behind one `G` address",
        "amount_at_risk",
        "payout_ids",
    ):
        assert trap in text, f"double-payout.md lacks {trap!r}"


def test_index_has_what_the_issue_asks_for() -> None:
    text = (RUNBOOKS / "README.md").read_text(encoding="utf-8")
    for link in INCIDENT_RUNBOOKS + (
        "rollback.md",
        "key-rotation.md",
        "comms-templates.md",
        "tabletop.md",
    ):
        assert f"({link}" in text, f"README.md does not link {link}"
    for heading in (
        "## Incident severity",
        "## Roles",
        "## How to get the tool",
        "## Two-person rule",
        "## PLUGIN_ERROR {#plugin-error}",
        "## Reviewer completeness checklist",
        "### Security reviewer",
        "### Ops reviewer",
    ):
        assert heading in text
    checklist = text[text.index("## Reviewer completeness checklist") :]
    assert "- [x]" in checklist
    assert not re.search(r"^## ", checklist[3:], re.MULTILINE), "the checklist must come last"
    for variable in (
        "STREAMPAY_INCIDENT_DISABLE_PLUGINS",
        "STREAMPAY_INCIDENT_LOAD_PLUGINS",
        "STREAMPAY_INCIDENT_TRACE_PLUGINS",
    ):
        assert variable in _section(text, "## PLUGIN_ERROR")


def test_comms_templates_follow_the_pagerduty_cadence() -> None:
    text = (RUNBOOKS / "comms-templates.md").read_text(encoding="utf-8")
    for anchor in ("{#initial}", "{#customer-initial}", "{#update}", "{#all-clear}"):
        assert anchor in text
    assert "we are having payment delays" in text.lower()
    assert "within **5 minutes**" in text and "every **20 minutes**" in text


@pytest.mark.parametrize("scenario", ["stuck-settlement", "double-payout", "chain-outage"])
def test_tabletop_has_one_exercise_per_runbook(scenario: str) -> None:
    text = (RUNBOOKS / "tabletop.md").read_text(encoding="utf-8")
    exercise = _section(text, f"{{#exercise-{scenario}}}")
    assert f"streampay-incident demo --scenario {scenario}" in exercise
    assert f"({scenario}.md)" in exercise


def test_tool_commands_only_appear_in_shell_blocks() -> None:
    # A command in a ```text block would escape the run test below.
    for path in _runbook_files():
        for lang, line, body in _code_blocks(path):
            if lang in _SHELL_LANGS:
                continue
            for offset, raw in enumerate(body.splitlines()):
                assert not raw.strip().removeprefix("$ ").startswith("streampay-incident "), (
                    f"{path.name}:{line + offset}: tool command outside a shell block"
                )


def test_the_runbooks_show_the_commands_on_call_needs() -> None:
    shown = {
        " ".join(c.args[:2]) if c.args[:1] == ["tx"] else (c.args[0] if c.args else "")
        for c in COMMANDS
    }
    assert {"chain", "settlements", "payouts", "tx inspect", "checks", "demo"} <= shown
    flags = {a for c in COMMANDS for a in c.args if a.startswith("--")}
    assert {
        "--horizon",
        "--rpc",
        "--transactions",
        "--escrow",
        "--chain-payments",
        "--snapshot",
        "--record",
        "--latest-ledger-close-time",
    } <= flags


def test_command_parser_handles_env_pipes_and_placeholders() -> None:
    path = RUNBOOKS / "README.md"
    cmd = parse_command(
        path,
        1,
        "$ STREAMPAY_INCIDENT_DISABLE_PLUGINS=all streampay-incident "
        "payouts <PAYOUTS_FILE> --format json > out.json",
    )
    assert cmd is not None
    assert cmd.env == {"STREAMPAY_INCIDENT_DISABLE_PLUGINS": "all"}
    assert cmd.args == ["payouts", "<PAYOUTS_FILE>", "--format", "json"]
    piped = parse_command(path, 1, "streampay-incident settlements <DEMO_DIR>/s.jsonl | jq '.x'")
    assert piped is not None and piped.args == ["settlements", "<DEMO_DIR>/s.jsonl"]
    assert parse_command(path, 1, "pipx install streampay-incident") is None
    with pytest.raises(AssertionError):
        parse_command(path, 1, "echo x | streampay-incident tx inspect - --network testnet")


# --- tabletop answer keys ---------------------------------------------------------------------


def _answer_rows(exercise: str, first_cell: str) -> list[list[str]]:
    text = (RUNBOOKS / "tabletop.md").read_text(encoding="utf-8")
    section = _section(text, f"{{#exercise-{exercise}}}")
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and re.match(first_cell, cells[0]):
            rows.append(cells)
    return rows


def _run_json(args: list[str]) -> dict[str, Any]:
    result = CliRunner().invoke(main, [*args, "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def test_stuck_settlement_answer_key_matches_the_tool(demo_data: Path) -> None:
    doc = _run_json(
        [
            "settlements",
            str(demo_data / "settlements.jsonl"),
            "--transactions",
            str(demo_data / "transactions.json"),
            "--network",
            "testnet",
            "--now",
            DEMO_NOW,
            "--latest-ledger-close-time",
            DEMO_LEDGER_CLOSE,
            "--payouts",
            str(demo_data / "payouts.csv"),
        ]
    )
    got = {
        v["settlement_id"]: (v["state"], "yes" if v["retry_safe"] else "no", v["retry_reason"])
        for v in doc["settlements"]
    }
    codes: dict[str, list[str]] = {}
    for f in doc["findings"]:
        codes.setdefault(f["subject"], []).append(f["code"])
    rows = _answer_rows("stuck-settlement", r"stl-\d+")
    assert len(rows) == len(got)
    for settlement, state, safe, reason, finding in rows:
        assert got[settlement] == (state, safe, reason), settlement
        assert ", ".join(sorted(codes.get(settlement, ["none"]))) == finding, settlement


def test_double_payout_answer_key_matches_the_tool(demo_data: Path) -> None:
    doc = _run_json(["payouts", str(demo_data / "payouts.csv")])
    got = sorted(
        (f["code"], f["severity"], tuple(f["evidence"]["payout_ids"])) for f in doc["findings"]
    )
    rows = _answer_rows("double-payout", r"PAYOUT_|ESCROW_")
    expected = sorted(
        (code, severity, tuple(p.strip() for p in payouts.split(",")))
        for code, severity, payouts, _why in rows
    )
    assert got == expected


def test_chain_outage_answer_key_matches_the_tool(demo_data: Path) -> None:
    doc = _run_json(
        [
            "chain",
            "--snapshot",
            str(demo_data / "chain-outage.json"),
            "--now",
            DEMO_NOW,
            "--network",
            "testnet",
        ]
    )
    assert doc["status"] == "fail"
    got = sorted((f["code"], f["severity"], f["subject"]) for f in doc["findings"])
    rows = _answer_rows("chain-outage", r"CHAIN_")
    assert got == sorted((code, severity, endpoint) for code, severity, endpoint, _why in rows)


_CODE_SECTION_PARTS = (
    "**Meaning.**",
    "**What to check.**",
    "**Is retry safe?**",
    "**When to escalate.**",
)


@pytest.mark.parametrize("code", BUILTIN_CODES, ids=lambda c: c.code)
def test_every_code_section_says_meaning_check_retry_and_escalation(code: Any) -> None:
    text = (RUNBOOKS / code.runbook_file).read_text(encoding="utf-8")
    section = _section(text, f"## {code.code} {{#{code.anchor}}}")
    for part in _CODE_SECTION_PARTS:
        assert part in section, f"{code.code}: its section lacks {part}"


def test_grafana_panels_named_in_the_runbooks_exist() -> None:
    board = REPO / "ops" / "grafana" / "streampay-incident.json"
    dashboard = json.loads(board.read_text(encoding="utf-8"))
    titles = {p["title"] for p in dashboard["panels"]}
    named: set[str] = set()
    for path in _runbook_files():
        text = re.sub(r"\s+", " ", path.read_text(encoding="utf-8"))
        for match in re.finditer(r"\bpanels?\b", text):
            window = text[match.end() : match.end() + 120]
            named |= {b for b in re.findall(r"\*\*([^*]+)\*\*", window) if b[-1] not in ".?:"}
    assert len(named) >= 6, named
    assert named <= titles, f"panels named in the runbooks, not on the dashboard: {named - titles}"
