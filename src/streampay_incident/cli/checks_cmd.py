"""``streampay-incident checks``: every finding code the tool can emit, and the loaded plugins."""

from __future__ import annotations

import json
import os

import click

from ..registry import checks_document, get_plugin_manager, plugin_settings_from_env


@click.command("checks")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def checks(fmt: str) -> None:
    """List every finding code (severity, title, runbook) and the loaded plugins."""
    pm = get_plugin_manager(plugin_settings_from_env(os.environ))
    doc = checks_document(pm)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    for c in doc["codes"]:
        click.echo(f"{c['code']:<36} {c['severity']:<9} {c['title']}")
        click.echo(f"{'':<36} {c['runbook']}")
    click.echo("")
    click.echo("Plugins:")
    for p in doc["plugins"]:
        click.echo(f"  {p['name']} {p['version']}")
