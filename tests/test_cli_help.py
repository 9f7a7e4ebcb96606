"""Every option and argument of every command says what it is for."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import pytest

from streampay_incident.cli import main


def commands(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    """``(name path, command)`` for the group and every command below it."""
    yield " ".join(("streampay-incident", *path)), command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from commands(sub, (*path, name))


COMMANDS = list(commands(main))
PARAMS = [(name, cmd, p) for name, cmd in COMMANDS for p in cmd.params]


@pytest.mark.parametrize(
    ("name", "command", "param"),
    PARAMS,
    ids=[f"{name} {p.name}" for name, _, p in PARAMS],
)
def test_every_option_and_argument_has_help(
    name: str, command: click.Command, param: click.Parameter
) -> None:
    if isinstance(param, click.Option):
        assert param.help and param.help.strip(), f"{name}: {param.opts} has no help text"
        return
    # click arguments carry no help of their own: the command's help must name them.
    ctx = click.Context(command, info_name=name)
    metavar = param.make_metavar(ctx)
    words = [w for w in re.split(r"[^A-Z_]+", metavar.upper()) if w and w != "-"]
    text = command.help or ""
    assert words and all(word in text for word in words), (
        f"{name}: the help does not say what {metavar} is"
    )


def test_the_walk_sees_every_command() -> None:
    names = {name for name, _ in COMMANDS}
    for sub in (
        "payouts",
        "settlements",
        "chain",
        "tx inspect",
        "checks",
        "demo",
        "serve",
        "runbook",
    ):
        assert f"streampay-incident {sub}" in names
    assert len(PARAMS) > 40
