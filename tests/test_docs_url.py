"""``--docs-url`` / ``STREAMPAY_INCIDENT_DOCS_URL``: runbook links on the docs site, or the hint."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from streampay_incident.cli import main
from streampay_incident.codes import all_codes

DEMO = Path(__file__).resolve().parents[1] / "src" / "streampay_incident" / "demo_data"
PAYOUTS = str(DEMO / "payouts.csv")
CHAIN = ["chain", "--snapshot", str(DEMO / "chain-outage.json"), "--now", "2026-11-27T03:00:00Z"]
BASE = "https://docs.example/incident"
SITE_LINK = re.compile(rf"^{re.escape(BASE)}/runbooks/([a-z-]+/)?#[a-z0-9-]+$")
REPO_LINK = re.compile(r"^docs/runbooks/[a-zA-Z-]+\.md#[a-z0-9-]+$")


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def _json_links(out: str) -> list[str]:
    return [f["runbook"] for f in json.loads(out)["findings"]]


def test_without_a_docs_url_links_stay_repository_paths_and_text_names_the_command() -> None:
    code, out, _ = run("payouts", PAYOUTS)
    assert code == 1
    lines = [line.strip() for line in out.splitlines() if line.strip().startswith("runbook: ")]
    assert lines  # the demo payouts have findings
    for line in lines:
        match = re.fullmatch(r"runbook: (\S+) \(streampay-incident runbook ([A-Z_]+)\)", line)
        assert match, line
        link, finding_code = match.groups()
        assert REPO_LINK.match(link) and link.endswith("#" + finding_code.lower().replace("_", "-"))
    assert all(
        REPO_LINK.match(link)
        for link in _json_links(run("payouts", PAYOUTS, "--format", "json")[1])
    )


@pytest.mark.parametrize("via", ["option", "environment"])
def test_a_docs_url_makes_every_format_link_into_the_site(via: str) -> None:
    def report(fmt: str) -> str:
        if via == "option":
            return run("payouts", PAYOUTS, "--format", fmt, "--docs-url", BASE + "/")[1]
        return run("payouts", PAYOUTS, "--format", fmt, env={"STREAMPAY_INCIDENT_DOCS_URL": BASE})[
            1
        ]

    links = _json_links(report("json"))
    assert links and all(SITE_LINK.match(link) for link in links)
    assert f"{BASE}/runbooks/double-payout/#payout-duplicate-memo" in links
    markdown = report("markdown")
    assert (
        f"[PAYOUT_DUPLICATE_MEMO]({BASE}/runbooks/double-payout/#payout-duplicate-memo)" in markdown
    )
    text = report("text")
    assert f"    runbook: {BASE}/runbooks/double-payout/#payout-duplicate-memo\n" in text
    assert "streampay-incident runbook " not in text  # the link is enough


def test_chain_and_checks_take_the_docs_url_too() -> None:
    code, out, _ = run(*CHAIN, "--format", "json", "--docs-url", BASE)
    assert code == 1
    assert all(SITE_LINK.match(link) for link in _json_links(out))
    doc = json.loads(run("checks", "--format", "json", "--docs-url", BASE)[1])
    assert [c["runbook"] for c in doc["codes"]][: len(all_codes())] == [
        f"{BASE}/runbooks/{'' if c.runbook_file == 'README.md' else c.runbook_file[:-3] + '/'}"
        f"#{c.anchor}"
        for c in all_codes()
    ]
    default = json.loads(run("checks", "--format", "json")[1])
    assert [c["runbook"] for c in default["codes"]] == [c.runbook for c in all_codes()]


def test_a_docs_url_that_is_not_an_http_url_is_a_usage_error() -> None:
    code, out, err = run("payouts", PAYOUTS, "--docs-url", "docs.example/incident")
    assert (code, out) == (2, "")
    assert "give the docs site's absolute http(s) URL" in err
