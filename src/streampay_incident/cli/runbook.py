"""``streampay-incident runbook [CODE|NAME]``: the on-call runbooks, wherever the tool is installed.

No argument lists the runbooks and their sections; a finding code prints its
section; a runbook name prints the whole runbook. On a terminal the Markdown is
rendered with rich; piped, it is printed as the Markdown it is.
"""

from __future__ import annotations

import difflib
import os
import sys
from typing import NoReturn

import click

from ..codes import CODES
from ..runbooks import Runbook, load_runbooks, without_heading_ids
from .common import EXIT_INPUT


def _on_terminal() -> bool:
    """Whether stdout is a terminal that takes rich's rendering."""
    return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"


def _print_markdown(markdown: str) -> None:
    if not _on_terminal():
        click.echo(markdown, nl=False)
        return
    from rich.console import Console
    from rich.markdown import Markdown

    Console(soft_wrap=False).print(Markdown(without_heading_ids(markdown)))


def _listing(runbooks: tuple[Runbook, ...]) -> str:
    lines = []
    for book in runbooks:
        lines.append(f"{book.name:<18} {book.title}")
        for section in book.sections:
            if section.level > 1:
                lines.append(f"{'':<18} {'  ' * (section.level - 2)}{section.title}")
    lines.append("")
    lines.append("streampay-incident runbook NAME prints a runbook, ... runbook CODE its section.")
    return "\n".join(lines) + "\n"


def _unknown(topic: str, runbooks: tuple[Runbook, ...]) -> NoReturn:
    names = [book.name for book in runbooks] + list(CODES)
    by_folded = {name.casefold(): name for name in names}
    closest = difflib.get_close_matches(topic.casefold(), list(by_folded), n=3, cutoff=0.5)
    hint = (
        "closest: " + ", ".join(by_folded[c] for c in closest)
        if closest
        else "run `streampay-incident runbook` for the list"
    )
    click.echo(f"error: no runbook or finding code {topic!r}; {hint}", err=True)
    sys.exit(EXIT_INPUT)


@click.command("runbook")
@click.argument("topic", required=False, metavar="[CODE|NAME]")
def runbook(topic: str | None) -> None:
    """Print a runbook (by NAME), a finding code's section (by CODE), or list them all.

    CODE is a finding code such as SETTLEMENT_STUCK_UNCONFIRMED (its section);
    NAME a runbook name such as stuck-settlement (the whole runbook); without
    either, every runbook and its sections are listed.
    """
    runbooks = load_runbooks()
    if topic is None:
        click.echo(_listing(runbooks), nl=False)
        return
    by_name = {book.name.casefold(): book for book in runbooks}
    code = CODES.get(topic.strip().upper())
    if code is not None:
        book = by_name.get(code.runbook_file.removesuffix(".md").casefold())
        section = book.section(code.anchor) if book else None
        if section is None:
            click.echo(f"error: {code.code}: no section {code.runbook} is shipped", err=True)
            sys.exit(EXIT_INPUT)
        _print_markdown(section.text)
        return
    book = by_name.get(topic.strip().removesuffix(".md").casefold())
    if book is None:
        _unknown(topic, runbooks)
    _print_markdown(book.text)
