"""The docs site builds with ``zensical build --strict``, and its nav covers every page.

Zensical (the successor of Material for MkDocs, same team) reads ``mkdocs.yml``
as it is. It is in the ``docs`` extra, which the test environment installs: a
missing Zensical is a failure here, not a skip. Zensical's strict mode fails on
broken links and anchors; it does not check the nav against the pages (MkDocs'
``validation.nav``), so ``test_nav_lists_every_page_and_only_pages_that_exist``
does. Zensical writes the site and a ``.cache`` next to the config file, so the
tests build a copy of ``mkdocs.yml`` and ``docs/`` in a temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
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
from streampay_incident.runbooks import DOCS_URL_ENV, docs_link

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
MKDOCS_YML = REPO / "mkdocs.yml"
# The built-in codes, taken at import: tests of plugins register codes of their own later.
BUILTIN_CODES = all_codes()
# The site is built as if published here (mkdocs.yml reads site_url from $DOCS_URL_ENV).
SITE_URL = "https://docs.example/streampay-incident/"


class _MkdocsLoader(yaml.SafeLoader):
    """safe_load plus mkdocs' ``!ENV [NAME, default]`` tag (read as its default)."""


_MkdocsLoader.add_constructor(
    "!ENV",
    lambda loader, node: loader.construct_sequence(node)[-1],
)


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
    # mkdocs.yml may hold !!python tags in general; ours does not, so a safe loader reads it.
    return yaml.load(MKDOCS_YML.read_text(encoding="utf-8"), Loader=_MkdocsLoader)  # noqa: S506


def zensical_build(project: Path) -> subprocess.CompletedProcess[str]:
    """``zensical build --strict`` of a copy of the docs in ``project`` (site: ``project/site``)."""
    try:
        import zensical  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        pytest.fail(f"zensical must be installed (extra 'docs'): {exc}")
    shutil.copy(MKDOCS_YML, project / "mkdocs.yml")
    if not (project / "docs").exists():
        shutil.copytree(DOCS, project / "docs")
    return subprocess.run(
        [sys.executable, "-m", "zensical", "build", "--strict", "-f", "mkdocs.yml"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=project,
        env={**os.environ, DOCS_URL_ENV: SITE_URL, "NO_COLOR": "1"},
    )


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("docs-project")
    result = zensical_build(project)
    assert result.returncode == 0, (
        f"zensical build --strict failed:\n{result.stderr}{result.stdout}"
    )
    return project / "site"


def test_strict_build_fails_on_a_broken_anchor(tmp_path: Path) -> None:
    shutil.copytree(DOCS, tmp_path / "docs")
    with (tmp_path / "docs" / "web.md").open("a", encoding="utf-8") as page:
        page.write("\n[gone](runbooks/rollback.md#no-such-heading)\n")
    result = zensical_build(tmp_path)
    assert result.returncode != 0
    assert "anchor does not exist" in result.stdout + result.stderr


def test_strict_build_passes(built_site: Path) -> None:
    assert (built_site / "index.html").is_file()
    assert (built_site / "runbooks" / "index.html").is_file()  # runbooks/README.md


def test_every_finding_codes_docs_link_is_an_id_in_the_built_site(built_site: Path) -> None:
    # attr_list turns `## CODE {#code-anchor}` into id="code-anchor" in the HTML; the
    # link --docs-url prints must be that page and id of the site built at site_url.
    for code in BUILTIN_CODES:
        link = docs_link(code.runbook, SITE_URL)
        page, _, anchor = link.removeprefix(SITE_URL).partition("#")
        html_path = built_site / page / "index.html"
        html = html_path.read_text(encoding="utf-8")
        assert anchor == code.anchor
        assert f'id="{code.anchor}"' in html, f"{code.code}: no id {code.anchor} in {html_path}"
        assert f'<link rel="canonical" href="{link.partition("#")[0]}">' in html


def test_site_url_comes_from_the_docs_url_variable(config: dict[str, Any]) -> None:
    text = MKDOCS_YML.read_text(encoding="utf-8")
    assert f'site_url: !ENV [{DOCS_URL_ENV}, ""]' in text
    assert config["site_url"] == ""


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
