"""A secret seed is never echoed by the command line: refused with where it is, never what.

Issue 10 B: a snapshot endpoint URL holding a seed was printed in the report; a
``payout_id`` of ``"X" + seed`` (a seed glued to other base32 characters, which
the seed shape's look-arounds miss) was echoed in a finding; evidence strings
(a plugin's) reached the report. Each is refused with exit 2 naming the field.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pluggy
import pytest
from click.testing import CliRunner, Result
from stellar_sdk import Keypair

from streampay_incident import hookimpl
from streampay_incident.cli import main
from streampay_incident.cli import payouts as payouts_cli
from streampay_incident.model import make_finding

DEMO = Path(str(resources.files("streampay_incident") / "demo_data"))
NOW = "2026-11-27T03:00:00Z"
SEED = Keypair.random().secret


def run(args: list[str], **env: str) -> Result:
    return CliRunner().invoke(
        main,
        args,
        env={"STREAMPAY_INCIDENT_DISABLE_PLUGINS": "all", **env},
        catch_exceptions=False,
    )


def assert_refused(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert SEED not in result.stderr and SEED[1:] not in result.stderr
    assert "secret seed" in result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def test_a_snapshot_endpoint_url_holding_a_seed_is_refused(tmp_path: Path) -> None:
    doc = json.loads((DEMO / "chain-outage.json").read_text(encoding="utf-8"))
    doc["endpoints"][0]["url"] = f"https://horizon.example/{SEED}"
    snapshot = tmp_path / "snap.json"
    snapshot.write_text(json.dumps(doc), encoding="utf-8")
    result = run(["chain", "--snapshot", str(snapshot), "--now", NOW])
    assert_refused(result, "snap.json: field 'endpoints[0].url'")


def test_a_seed_in_a_recorded_body_or_key_is_refused_naming_where(tmp_path: Path) -> None:
    doc = json.loads((DEMO / "chain-outage.json").read_text(encoding="utf-8"))
    doc["exchanges"][1]["body"] = f'{{"note": "X{SEED}"}}'
    doc["exchanges"][0]["headers"][SEED] = "1"
    snapshot = tmp_path / "snap.json"
    snapshot.write_text(json.dumps(doc), encoding="utf-8")
    result = run(["chain", "--snapshot", str(snapshot), "--now", NOW])
    assert_refused(result, "field 'exchanges[0].headers.<key>'", "field 'exchanges[1].body'")


def test_a_live_endpoint_url_with_a_glued_seed_is_refused() -> None:
    result = run(["chain", "--horizon", f"https://h.example/X{SEED}", "--network", "testnet"])
    assert_refused(result, "--horizon")


@pytest.mark.parametrize("name", ["p.csv", "p.jsonl"])
def test_a_payout_id_of_x_plus_seed_is_refused_not_echoed(tmp_path: Path, name: str) -> None:
    header, first, *rest = (DEMO / "payouts.csv").read_text(encoding="utf-8").splitlines()
    rows = [first.replace("p-001", f"X{SEED}", 1), *rest]
    if name.endswith(".csv"):
        text = "\n".join([header, *rows]) + "\n"
    else:
        keys = header.split(",")
        text = "".join(
            json.dumps({k: v for k, v in zip(keys, row.split(","), strict=True) if v}) + "\n"
            for row in rows
        )
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = run(["payouts", str(path)])
    line = 2 if name.endswith(".csv") else 1  # the CSV header is line 1
    assert_refused(result, f"{name}:{line}: field 'payout_id'")


def test_a_settlement_id_with_a_glued_seed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(
        json.dumps({"settlement_id": f"stl-{SEED}", "status": "pending", "created_at": NOW}) + "\n",
        encoding="utf-8",
    )
    assert_refused(run(["settlements", str(path), "--now", NOW]), "s.jsonl:1")


class SeedEchoingPlugin:
    """A plugin whose finding carries a secret in its evidence (a bug in someone's plugin)."""

    @hookimpl
    def streampay_incident_register_payout_checks(self) -> list[Any]:
        def leaky(payouts: Any, *, policy: Any) -> list[Any]:
            return [
                make_finding(
                    "PAYOUT_SUSPECTED_REPEAT",
                    "p-001",
                    "looks repeated",
                    {"signer": f"key={SEED}", "payout_ids": ["p-001"]},
                )
            ]

        return [leaky]


def test_evidence_holding_a_seed_keeps_the_report_from_being_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = payouts_cli.registry.get_plugin_manager

    def with_plugin(*args: Any, **kwargs: Any) -> pluggy.PluginManager:
        pm = real(*args, **kwargs)
        pm.register(SeedEchoingPlugin(), name="leaky-plugin")
        return pm

    monkeypatch.setattr(payouts_cli.registry, "get_plugin_manager", with_plugin)
    for fmt in ("text", "json", "markdown"):
        result = run(["payouts", str(DEMO / "payouts.csv"), "--format", fmt])
        assert_refused(result, "report: field 'findings[", "].evidence.signer'")
