"""The on-call runbooks as data: where they are, their sections, and links to them.

``docs/runbooks/`` in the repository is the one source. The wheel carries a copy
made at build time (hatch ``force-include`` into ``streampay_incident/runbook_docs``),
so ``streampay-incident runbook CODE`` works wherever the tool is installed; a
source checkout reads ``docs/runbooks/`` itself.

Links: every finding carries ``docs/runbooks/<file>.md#<anchor>``. With a docs
site base URL (``--docs-url`` / ``STREAMPAY_INCIDENT_DOCS_URL``, the same value as
``site_url`` in ``mkdocs.yml``) :func:`docs_link` turns it into the site's own
address, ``<base>/runbooks/<file>/#<anchor>`` (``README.md`` is the folder's index).
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import attrs

from .codes import RUNBOOK_DIR

DOCS_URL_ENV = "STREAMPAY_INCIDENT_DOCS_URL"
PACKAGE_DIR = "runbook_docs"  # where the wheel carries docs/runbooks

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)(?:\s+\{#([A-Za-z0-9_-]+)\})?\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(rf"^{re.escape(RUNBOOK_DIR)}/([A-Za-z0-9_.-]+)\.md(#[A-Za-z0-9_-]+)?$")
_ATTR_LIST = re.compile(r"\s+\{#[A-Za-z0-9_-]+\}\s*$", re.MULTILINE)


@attrs.frozen
class Section:
    """One heading of a runbook and the lines it spans (up to the next heading as high)."""

    level: int
    title: str
    anchor: str
    text: str


@attrs.frozen
class Runbook:
    """One runbook page: its name (the file name without ``.md``), title and sections."""

    name: str
    title: str
    text: str
    sections: tuple[Section, ...]

    def section(self, anchor: str) -> Section | None:
        """The section whose heading id is ``anchor``, if there is one."""
        return next((s for s in self.sections if s.anchor == anchor), None)


def runbook_dir() -> Traversable:
    """The runbooks the installed package carries, else the source checkout's ``docs/runbooks``."""
    packaged = files("streampay_incident") / PACKAGE_DIR
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / RUNBOOK_DIR


def parse_runbook(name: str, text: str) -> Runbook:
    """Split Markdown into sections at its headings (fenced code is not a heading)."""
    lines = text.splitlines(keepends=True)
    headings: list[tuple[int, int, str, str]] = []  # (line index, level, title, anchor)
    in_fence = False
    for index, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else _HEADING.match(line)
        if match:
            title = match.group(2)
            anchor = match.group(3) or re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
            headings.append((index, len(match.group(1)), title, anchor))
    sections = []
    for position, (start, level, title, anchor) in enumerate(headings):
        end = next((i for i, lv, _, _ in headings[position + 1 :] if lv <= level), len(lines))
        sections.append(Section(level, title, anchor, "".join(lines[start:end]).rstrip() + "\n"))
    title = next((s.title for s in sections if s.level == 1), name)
    return Runbook(name=name, title=title, text=text, sections=tuple(sections))


def load_runbooks(directory: Traversable | None = None) -> tuple[Runbook, ...]:
    """Every runbook, the index (``README``) first, then by name."""
    folder = runbook_dir() if directory is None else directory
    pages = [p for p in folder.iterdir() if p.name.endswith(".md")]
    pages.sort(key=lambda p: (p.name != "README.md", p.name))
    return tuple(parse_runbook(p.name[: -len(".md")], p.read_text(encoding="utf-8")) for p in pages)


def without_heading_ids(markdown: str) -> str:
    """Markdown with the ``{#anchor}`` heading ids removed (for rendering on a terminal)."""
    return _ATTR_LIST.sub("", markdown)


def docs_link(runbook: str, docs_url: str | None) -> str:
    """A runbook link as the docs site serves it, or unchanged without a base URL.

    ``docs/runbooks/stuck-settlement.md#settlement-stuck-unconfirmed`` with base
    ``https://docs.example/incident`` becomes
    ``https://docs.example/incident/runbooks/stuck-settlement/#settlement-stuck-unconfirmed``
    (MkDocs directory URLs; ``README.md`` is ``runbooks/``). A link of another
    shape (a plugin's own URL) is returned as it is.
    """
    match = _LINK.match(runbook)
    if not docs_url or not match:
        return runbook
    page, fragment = match.group(1), match.group(2) or ""
    path = "runbooks/" if page == "README" else f"runbooks/{page}/"
    return f"{docs_url.rstrip('/')}/{path}{fragment}"
