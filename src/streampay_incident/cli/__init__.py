"""The ``streampay-incident`` command line: the imperative shell around the checks.

Exit codes for every command: 2 usage or input error; else 1 when the report's
status is at or above ``--fail-on``; else 0.
"""

from __future__ import annotations

import importlib

import click

from ..__about__ import __version__

# Each subcommand lives in its own module; (module, attribute) pairs, loaded
# when the group is built so that a broken optional extra cannot hide the rest.
_COMMANDS: tuple[tuple[str, str], ...] = (
    ("payouts", "payouts"),
    ("settlements", "settlements"),
    ("tx", "tx"),
    ("chain", "chain"),
    ("checks_cmd", "checks"),
    ("demo", "demo"),
    ("serve", "serve"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="streampay-incident")
def main() -> None:
    """Incident triage for StreamPay: stuck settlements, double payouts, Stellar outages.

    Read-only: nothing here signs, submits or moves money.
    """


for _module, _attr in _COMMANDS:
    try:
        _mod = importlib.import_module(f".{_module}", __name__)
    except ModuleNotFoundError as _exc:  # pragma: no cover - only while a command is being built
        if _exc.name != f"{__name__}.{_module}":
            raise
        continue
    main.add_command(getattr(_mod, _attr))
