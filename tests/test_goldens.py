"""Golden reports: the exact output of the CLI on fixed inputs.

Recorded before the use-case-layer refactor (issue 8) so that moving code
cannot change a report by accident. A change that is meant to alter a report
re-records the goldens in the same commit and says why in CHANGELOG:

    STREAMPAY_INCIDENT_RECORD_GOLDENS=1 pytest tests/test_goldens.py

Every case runs offline, with ``--now`` where the command takes it; the
``generated_at`` stamp of commands without ``--now`` is masked.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FIXTURES
from streampay_incident.cli import main
from streampay_incident.cli.demo import demo_data_dir

HERE = Path(__file__).resolve().parent
GOLDENS = HERE / "goldens"
DEMO = HERE.parent / "src" / "streampay_incident" / "demo_data"
NOW = "2026-11-27T03:00:00Z"
CLOSE = "2026-11-27T02:59:56Z"
ESCROW = "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"

SETTLEMENTS = [str(DEMO / "settlements.jsonl"), "--transactions", str(DEMO / "transactions.json")]

CASES: dict[str, list[str]] = {
    # The demo's envelopes are testnet ones: under --network public this is the record of
    # the wrong-network exit 2 (issue 9 §1).
    "settlements-json": [
        "settlements",
        *SETTLEMENTS,
        "--network",
        "public",
        "--now",
        NOW,
        "--latest-ledger-close-time",
        CLOSE,
        "--format",
        "json",
    ],
    "settlements-testnet-json": [
        "settlements",
        *SETTLEMENTS,
        "--network",
        "testnet",
        "--now",
        NOW,
        "--latest-ledger-close-time",
        CLOSE,
        "--format",
        "json",
    ],
    "settlements-no-close-json": [
        "settlements",
        *SETTLEMENTS,
        "--network",
        "testnet",
        "--now",
        NOW,
        "--format",
        "json",
    ],
    "settlements-text": [
        "settlements",
        *SETTLEMENTS,
        "--network",
        "testnet",
        "--now",
        NOW,
        "--latest-ledger-close-time",
        CLOSE,
    ],
    "settlements-markdown": [
        "settlements",
        *SETTLEMENTS,
        "--network",
        "testnet",
        "--now",
        NOW,
        "--format",
        "markdown",
    ],
    "payouts-json": ["payouts", str(DEMO / "payouts.csv"), "--format", "json"],
    "payouts-window-json": [
        "payouts",
        str(DEMO / "payouts.csv"),
        "--repeat-window",
        "90s",
        "--format",
        "json",
    ],
    "payouts-text": ["payouts", str(DEMO / "payouts.csv")],
    "payouts-markdown": ["payouts", str(DEMO / "payouts.csv"), "--format", "markdown"],
    "escrow-json": [
        "payouts",
        str(GOLDENS / "escrow-payouts.csv"),
        "--escrow",
        ESCROW,
        "--chain-payments",
        str(FIXTURES / "horizon/account_payments_pubnet_docs.json"),
        "--format",
        "json",
    ],
    "chain-snapshot-json": [
        "chain",
        "--snapshot",
        str(DEMO / "chain-outage.json"),
        "--now",
        NOW,
        "--format",
        "json",
    ],
    "chain-snapshot-text": ["chain", "--snapshot", str(DEMO / "chain-outage.json"), "--now", NOW],
    "checks-json": ["checks", "--format", "json"],
    "checks-text": ["checks"],
    "demo-all": ["demo", "--scenario", "all"],
}

_STAMP = re.compile(r'("generated_at": |at |Generated )"?\d{4}-\d\d-\d\dT[0-9:.]+Z"?')


def _masked(text: str) -> str:
    return _STAMP.sub(r"\1<generated_at>", text)


def _run(argv: list[str]) -> str:
    env = {"STREAMPAY_INCIDENT_DISABLE_PLUGINS": "all", "COLUMNS": "100"}
    result = CliRunner().invoke(main, argv, env=env)
    repo = str(HERE.parent)
    # The fixtures sit inside the repository: mask the longer paths first. `demo` reads the
    # installed package's demo data (site-packages under tox): masked, so the golden holds.
    with demo_data_dir() as demo_data:
        out = result.output.replace(str(FIXTURES), "<fixtures>")
        for folder in {str(demo_data), str(DEMO)}:
            out = out.replace(folder, "<demo_data>")
    out = out.replace(repo, "<repo>")
    return f"exit {result.exit_code}\n{_masked(out)}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    path = GOLDENS / f"{name}.out"
    actual = _run(CASES[name])
    if os.environ.get("STREAMPAY_INCIDENT_RECORD_GOLDENS"):
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no golden for {name}: record it (see module docstring)"
    assert actual == path.read_text(encoding="utf-8")
