"""The docs site builds with ``mkdocs build --strict``, and its nav covers every page.

mkdocs and mkdocs-material are in the ``docs`` extra, which the test
environment installs: a missing mkdocs is a failure here, not a skip.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from streampay_incident import codes
from streampay_incident.codes import all_codes

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
MKDOCS_YML = REPO / "mkdocs.yml"
# The built-in codes, taken at import: tests of plugins register codes of their own later.
BUILTIN_CODES = all_codes()


def _nav_files(nav: Any) -> list[str]:
    """Every page path in an mkdocs nav tree."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [f for item in nav for f in _nav_files(item)]
    if isinstance(nav, dict):
        return [f for value in nav.values() for f in _nav_files(value)]
    return []


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    # mkdocs.yml may hold !!python tags in general; ours does not, so safe_load reads it.
    return yaml.safe_load(MKDOCS_YML.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import material  # noqa: F401
        import mkdocs  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the test extra installs both
        pytest.fail(f"mkdocs / mkdocs-material must be installed (extra 'docs'): {exc}")
    site = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict"]
        + ["-f", str(MKDOCS_YML), "-d", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}{result.stdout}"
    return site


def test_mkdocs_build_strict_passes(built_site: Path) -> None:
    assert (built_site / "index.html").is_file()
    assert (built_site / "runbooks" / "index.html").is_file()  # runbooks/README.md


def test_every_finding_code_anchor_is_an_id_in_the_built_site(built_site: Path) -> None:
    # attr_list turns `## CODE {#code-anchor}` into id="code-anchor" in the HTML.
    for code in BUILTIN_CODES:
        page = code.runbook_file.removesuffix(".md")
        html_path = built_site / "runbooks" / (
            "index.html" if page == "README" else f"{page}/index.html"
        )
        html = html_path.read_text(encoding="utf-8")
        assert f'id="{code.anchor}"' in html, f"{code.code}: no id {code.anchor} in {html_path}"


def test_config_uses_material_and_the_pinned_extensions(config: dict[str, Any]) -> None:
    assert config["docs_dir"] == "docs"
    assert config["theme"]["name"] == "material"
    names = [e if isinstance(e, str) else next(iter(e)) for e in config["markdown_extensions"]]
    for ext in ("attr_list", "admonition", "toc", "tables"):
        assert ext in names
    toc = next(e for e in config["markdown_extensions"] if isinstance(e, dict) and "toc" in e)
    assert toc["toc"]["permalink"] is True


def test_nav_lists_every_page_and_only_pages_that_exist(config: dict[str, Any]) -> None:
    nav = _nav_files(config["nav"])
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(set(nav)) == sorted(nav), "a page is listed twice in the nav"
    assert sorted(nav) == pages, "nav and docs/ disagree"


def test_docs_do_not_link_outside_docs() -> None:
    # A Markdown link to ../../ops/... breaks `mkdocs build --strict`; ops files are
    # named as code paths instead.
    link = re.compile(r"\]\((\.\./)+(?!docs/)[^)]*\)")
    for page in DOCS.rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        depth = len(page.relative_to(DOCS).parts) - 1
        for match in link.finditer(text):
            ups = match.group(0).count("../")
            assert ups <= depth, f"{page}: link leaves docs/: {match.group(0)}"


def _python_blocks(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return [textwrap.dedent(b) for b in re.findall(r"```python\n(.*?)```", text, re.DOTALL)]


def test_the_plugin_example_and_its_test_work(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    streampay_incident_plugin: Callable[..., Any],
) -> None:
    # docs/plugins.md shows a whole plugin module and a pytest test for it: run both as shown.
    plugin_source, test_source = _python_blocks(DOCS / "plugins.md")
    package = tmp_path / "team_risk_checks"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "plugin.py").write_text(plugin_source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict[str, Any] = {}
    exec(compile(test_source, "docs/plugins.md", "exec"), namespace)  # noqa: S102
    namespace["test_large_payouts_are_flagged"](streampay_incident_plugin)
    # The example's code lives with the fixture's plugin manager, not in the global table.
    assert "RISK_LARGE_PAYOUT" not in codes.CODES
    sys.modules.pop("team_risk_checks.plugin", None)
    sys.modules.pop("team_risk_checks", None)
