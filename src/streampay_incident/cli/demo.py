"""``streampay-incident demo``: the real commands on bundled data, read as on-call would.

Each scenario prints the command an engineer types, its real output, and the
runbook step to follow for every answer. ``--write-data DIR`` copies the
bundled files out for tabletop exercises.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import click

from ..report import RETRY_ADVICE, advice  # noqa: F401 - RETRY_ADVICE: its old home
from .common import EXIT_INPUT

DEMO_NOW = "2026-11-27T03:00:00Z"
DEMO_LEDGER_CLOSE = "2026-11-27T02:59:56Z"
# What `--write-data` writes: the inputs, then where they come from (README.md).
DATA_FILES = (
    "payouts.csv",
    "settlements.jsonl",
    "transactions.json",
    "chain-outage.json",
    "chain-payments.json",
    "envelopes.txt",
    "unhashed-settlements.jsonl",
    "search-events.json",
    "README.md",
)
# The escrow account whose recorded payments are chain-payments.json (see its README).
DEMO_ESCROW = "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"


@attrs.frozen
class Scenario:
    name: str
    title: str
    story: str
    args: tuple[str, ...]
    runbook: str


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "stuck-settlement",
        "Stuck settlement",
        "SettlementJobStuck fired. Which settlements are stuck, and which may be retried?",
        (
            "settlements",
            "{data}/settlements.jsonl",
            "--transactions",
            "{data}/transactions.json",
            "--network",
            "testnet",
            "--now",
            DEMO_NOW,
            "--latest-ledger-close-time",
            DEMO_LEDGER_CLOSE,
            "--payouts",
            "{data}/payouts.csv",
        ),
        "docs/runbooks/stuck-settlement.md",
    ),
    Scenario(
        "double-payout",
        "Suspected double payout",
        "Finance saw the escrow balance drop faster than payouts explain. Any paid twice?",
        ("payouts", "{data}/payouts.csv", "--now", DEMO_NOW),
        "docs/runbooks/double-payout.md",
    ),
    Scenario(
        "chain-outage",
        "Stellar or Horizon outage",
        "Settlements stopped confirming. Is the network or our Horizon/RPC the problem?",
        (
            "chain",
            "--snapshot",
            "{data}/chain-outage.json",
            "--now",
            DEMO_NOW,
            "--network",
            "testnet",
        ),
        "docs/runbooks/chain-outage.md",
    ),
    Scenario(
        "unhashed-settlement",
        "Stuck settlement with no tx hash",
        "Two rows are processing with expired leases and no tx hash: the lease reaper will "
        "re-run them. Did their payments land anyway?",
        (
            "settlements",
            "{data}/unhashed-settlements.jsonl",
            "--search-payments",
            "{data}/search-events.json",
            "--network",
            "testnet",
            "--now",
            DEMO_NOW,
        ),
        "docs/runbooks/stuck-settlement.md#submission-search",
    ),
)


@contextlib.contextmanager
def demo_data_dir() -> Iterator[Path]:
    """The bundled demo files as a real directory (package data)."""
    with resources.as_file(resources.files("streampay_incident") / "demo_data") as path:
        yield Path(path)


def _run(args: list[str], *, capture: bool) -> tuple[int, str]:
    from . import main

    buf = io.StringIO()
    target = buf if capture else None
    with contextlib.redirect_stdout(target) if target else contextlib.nullcontext():
        try:
            main.main(args=args, prog_name="streampay-incident", standalone_mode=False)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, buf.getvalue()


def _advice(scenario: Scenario, doc: dict[str, Any]) -> list[str]:
    """One line per settlement verdict, then per finding not about a settlement."""
    runbook_by_subject: dict[str, str] = {}
    for f in doc.get("findings", []):  # worst first: a settlement's worst finding decides
        runbook_by_subject.setdefault(f["subject"], f["runbook"])
    lines = []
    covered = set()
    for verdict in doc.get("settlements", []):
        sid = verdict["settlement_id"]
        said = advice(verdict["retry_reason"], verdict.get("action", "investigate"))
        line = f"  {sid:<12} {said} ({verdict['retry_reason']})"
        if sid in runbook_by_subject:
            line += f"\n  {'':<12} runbook: {runbook_by_subject[sid]}"
            covered.add(sid)
        lines.append(line)
    for finding in doc.get("findings", []):
        if finding["subject"] not in covered:
            lines.append(
                f"  {finding['code']} {finding['subject']}\n      runbook: {finding['runbook']}"
            )
    if not lines:
        lines.append(f"  nothing to do; runbook: {scenario.runbook}")
    return lines


def run_scenario(scenario: Scenario, data: Path) -> int:
    """Print one scenario; return the command's exit code (0 or 1 are both a success)."""
    args = [a.replace("{data}", str(data)) for a in scenario.args]
    shown = " ".join(a.replace("{data}/", "") for a in scenario.args)
    click.secho(f"=== {scenario.title} ({scenario.name}) ===", bold=True)
    click.echo(scenario.story)
    click.echo("")
    click.secho(f"$ streampay-incident {shown}", fg="cyan")
    code, _ = _run(args, capture=False)
    if code not in (0, 1):
        return code
    _, raw = _run([*args, "--format", "json"], capture=True)
    click.echo("")
    click.secho(
        f"What to do (runbook {scenario.runbook}; no money moves without a second "
        "engineer checking destination, amount, asset and retry_safe):",
        bold=True,
    )
    for line in _advice(scenario, json.loads(raw)):
        click.echo(line)
    click.echo("")
    return code


def _write_data(data: Path, target: Path, *, force: bool) -> None:
    """Copy every demo file to ``target``; exit 2 before writing anything that would overwrite."""
    existing = [target / name for name in DATA_FILES if (target / name).exists()]
    if existing and not force:
        for path in existing:
            click.echo(f"error: {path} exists; pass --force to overwrite it", err=True)
        raise SystemExit(EXIT_INPUT)
    target.mkdir(parents=True, exist_ok=True)
    for name in DATA_FILES:
        shutil.copy(data / name, target / name)
        click.echo(str(target / name))


@click.command("demo")
@click.option(
    "--scenario",
    type=click.Choice(["all", *(s.name for s in SCENARIOS)]),
    default="all",
    show_default=True,
    help="Which incident to replay.",
)
@click.option(
    "--write-data",
    type=click.Path(file_okay=False, path_type=Path),
    help=(
        "Copy the bundled demo files and their provenance README to this directory "
        "(for tabletop exercises) and exit."
    ),
)
@click.option(
    "--force",
    is_flag=True,
    help="With --write-data: overwrite files of the same names already in the directory.",
)
def demo(scenario: str, write_data: Path | None, force: bool) -> None:
    """Replay bundled incidents through the real commands, with the runbook step to follow."""
    with demo_data_dir() as data:
        if write_data is not None:
            _write_data(data, write_data, force=force)
            return
        chosen = [s for s in SCENARIOS if scenario in ("all", s.name)]
        for sc in chosen:
            code = run_scenario(sc, data)
            if code not in (0, 1):
                raise SystemExit(code)
