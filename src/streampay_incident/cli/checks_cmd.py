"""``streampay-incident checks``: every finding code the tool can emit, and the loaded plugins."""

from __future__ import annotations

import json
import os

import click

from ..registry import checks_document, get_plugin_manager, plugin_settings_from_env
from .common import docs_url, docs_url_option


@click.command("checks")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for machines.",
)
@docs_url_option
def checks(fmt: str) -> None:
    """List every finding code (severity, title, runbook) and the loaded plugins.

    A code that escalates shows both severities (``warning|critical``) and when it
    escalates; in JSON ``severity`` is the default and ``escalates_to`` the higher one.
    """
    pm = get_plugin_manager(plugin_settings_from_env(os.environ))
    doc = checks_document(pm, docs_url=docs_url())
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    for c in doc["codes"]:
        severity = c["severity"] + (f"|{c['escalates_to']}" if c["escalates_to"] else "")
        click.echo(f"{c['code']:<36} {severity:<17} {c['title']}")
        if c["escalates_to"]:
            click.echo(f"{'':<36} {c['escalates_to']} when {c['escalation']}")
        click.echo(f"{'':<36} {c['runbook']}")
    click.echo("")
    click.echo("Plugins:")
    for p in doc["plugins"]:
        click.echo(f"  {p['name']} {p['version']}")
    if doc["plugin_errors"]:
        click.echo("")
        click.echo("Plugins left out (PLUGIN_ERROR):")
        for f in doc["plugin_errors"]:
            click.echo(f"  {f['summary']}")
