"""``streampay-incident runbook``: the runbooks from the package, and links to the docs site."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REPO
from streampay_incident import runbooks
from streampay_incident.cli import main
from streampay_incident.cli import runbook as runbook_cmd
from streampay_incident.codes import FindingCode, Severity, all_codes
from streampay_incident.runbooks import docs_link, load_runbooks, parse_runbook

RUNBOOKS = REPO / "docs" / "runbooks"
BUILTIN_CODES = all_codes()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["runbook", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_list_names_every_runbook_and_every_code_section() -> None:
    code, out, _ = run()
    assert code == 0
    for page in RUNBOOKS.glob("*.md"):
        assert any(line.startswith(page.stem + " ") for line in out.splitlines()), page.stem
    for finding_code in BUILTIN_CODES:
        assert f" {finding_code.code}\n" in out


@pytest.mark.parametrize("finding_code", BUILTIN_CODES, ids=lambda c: c.code)
def test_every_code_prints_exactly_its_section(finding_code: FindingCode) -> None:
    code, out, _ = run(finding_code.code)
    assert code == 0
    assert out.splitlines()[0] == f"## {finding_code.code} {{#{finding_code.anchor}}}"
    # The section ends before the next heading of its level: no other code's section.
    others = [c.code for c in BUILTIN_CODES if c.code != finding_code.code]
    assert not any(f"## {other} " in out for other in others)
    assert out in (RUNBOOKS / finding_code.runbook_file).read_text(encoding="utf-8")


def test_a_code_is_case_insensitive_and_a_name_prints_the_whole_runbook() -> None:
    assert run("settlement_stuck_unconfirmed")[1] == run("SETTLEMENT_STUCK_UNCONFIRMED")[1]
    whole = (RUNBOOKS / "rollback.md").read_text(encoding="utf-8")
    assert run("rollback") == (0, whole, "")
    assert run("Rollback.md")[1] == whole
    assert run("README")[1] == (RUNBOOKS / "README.md").read_text(encoding="utf-8")


def test_an_unknown_topic_exits_2_with_the_closest_names() -> None:
    code, out, err = run("SETTLEMENT_STUCK")
    assert (code, out) == (2, "")
    assert err == (
        "error: no runbook or finding code 'SETTLEMENT_STUCK'; closest: "
        "SETTLEMENT_STUCK_UNSUBMITTED, SETTLEMENT_STUCK_UNCONFIRMED, SETTLEMENT_TX_FAILED\n"
    )
    assert "closest: stuck-settlement" in run("stuck-setlement")[2]
    code, _, err = run("nothing-like-it")
    assert code == 2 and "run `streampay-incident runbook` for the list" in err


def test_a_plugin_code_without_a_shipped_section_exits_2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugin_code = FindingCode("ACME_THING", Severity.WARNING, "Acme", "acme.md")
    monkeypatch.setitem(runbook_cmd.CODES, "ACME_THING", plugin_code)
    code, _, err = run("ACME_THING")
    assert code == 2
    assert err == "error: ACME_THING: no section docs/runbooks/acme.md#acme-thing is shipped\n"


def test_on_a_terminal_the_markdown_is_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runbook_cmd, "_on_terminal", lambda: True)
    code, out, _ = run("SETTLEMENT_STUCK_UNCONFIRMED")
    assert code == 0
    assert "SETTLEMENT_STUCK_UNCONFIRMED" in out
    assert "{#" not in out and "**Meaning.**" not in out  # heading ids and emphasis rendered
    assert "Meaning." in out


def test_a_dumb_terminal_gets_plain_markdown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("TERM", "dumb")
    assert runbook_cmd._on_terminal() is False
    monkeypatch.setenv("TERM", "xterm")
    assert runbook_cmd._on_terminal() is True


def test_sections_skip_fenced_code_and_derive_missing_ids() -> None:
    book = parse_runbook(
        "x",
        "# Title\n\n```sh\n# not a heading\n```\n\n## Plain Heading\ntext\n### Sub {#sub}\nmore\n",
    )
    assert [(s.level, s.title, s.anchor) for s in book.sections] == [
        (1, "Title", "title"),
        (2, "Plain Heading", "plain-heading"),
        (3, "Sub", "sub"),
    ]
    assert book.section("plain-heading").text == "## Plain Heading\ntext\n### Sub {#sub}\nmore\n"
    assert book.section("missing") is None
    assert parse_runbook("untitled", "no headings\n").title == "untitled"


def test_docs_links_follow_the_sites_url_scheme() -> None:
    base = "https://docs.example/incident/"
    assert docs_link("docs/runbooks/stuck-settlement.md#settlement-tx-failed", base) == (
        "https://docs.example/incident/runbooks/stuck-settlement/#settlement-tx-failed"
    )
    assert docs_link("docs/runbooks/README.md#plugin-error", base) == (
        "https://docs.example/incident/runbooks/#plugin-error"
    )
    assert docs_link("docs/runbooks/rollback.md", base) == (
        "https://docs.example/incident/runbooks/rollback/"
    )
    unchanged = "https://acme.example/runbook#x"
    assert docs_link(unchanged, base) == unchanged
    assert docs_link("docs/runbooks/rollback.md#before", None) == "docs/runbooks/rollback.md#before"


def test_the_runbooks_read_are_exactly_docs_runbooks() -> None:
    # A source checkout reads docs/runbooks itself; an installed wheel (tox) its copy of it.
    folder = runbooks.runbook_dir()
    assert Path(str(folder)) == RUNBOOKS or folder.name == runbooks.PACKAGE_DIR
    shipped = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}
    source = {p.name: p.read_text(encoding="utf-8") for p in RUNBOOKS.iterdir()}
    assert shipped == source
    assert [b.name for b in load_runbooks()][0] == "README"


def test_an_installed_package_reads_its_own_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packaged = tmp_path / runbooks.PACKAGE_DIR
    packaged.mkdir()
    (packaged / "only.md").write_text("# Only {#only}\n", encoding="utf-8")
    monkeypatch.setattr(runbooks, "files", lambda package: tmp_path)
    assert runbooks.runbook_dir() == packaged
    assert [b.title for b in load_runbooks()] == ["Only"]


@pytest.mark.slow
def test_the_installed_wheel_carries_the_runbooks(tmp_path: Path) -> None:
    """Build the wheel, install it into a fresh virtualenv outside the repository, run it there."""
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["-q", "-w", str(wheels), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("streampay_incident-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # The dependencies come from this interpreter's site-packages, after the venv's own
    # (a .pth line is appended to sys.path): no network, and the wheel's copy wins.
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "deps.pth").write_text("\n".join(sorted(deps)) + "\n", encoding="utf-8")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps"]
        # The deps.pth folders may hold an installed streampay-incident (tox does): install
        # into the venv regardless.
        + ["--no-index", "--ignore-installed", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "COV_CORE_SOURCE"}}
    result = subprocess.run(
        [str(env_dir / "bin" / "streampay-incident"), "runbook", "SETTLEMENT_STUCK_UNCONFIRMED"],
        capture_output=True,
        text=True,
        cwd=outside,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    expected = parse_runbook(
        "stuck-settlement", (RUNBOOKS / "stuck-settlement.md").read_text(encoding="utf-8")
    ).section("settlement-stuck-unconfirmed")
    assert expected is not None
    assert result.stdout == expected.text
    where = subprocess.run(
        [str(python), "-c", "import streampay_incident.runbooks as r; print(r.runbook_dir())"],
        capture_output=True,
        text=True,
        cwd=outside,
        env=env,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(site)) and where.endswith("streampay_incident/runbook_docs")
