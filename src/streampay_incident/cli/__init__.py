"""The ``streampay-incident`` command line: the imperative shell around the checks.

Exit codes for every command: 3 internal error (a bug); 2 usage or input error;
else 1 when the report's status is at or above ``--fail-on``; else 0.
"""

from __future__ import annotations

import click

from ..__about__ import __version__
from . import chain, checks_cmd, demo, payouts, runbook, serve, settlements, tx
from .common import CommandGroup


@click.group(
    cls=CommandGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="streampay-incident")
def main() -> None:
    """Incident triage for StreamPay: stuck settlements, double payouts, Stellar outages.

    Read-only: nothing here signs, submits or moves money.
    """


# Each subcommand lives in its own module (the attribute named like the module,
# except ``checks``); optional extras (web) are imported inside their command,
# so every command is listed even without them.
main.add_command(payouts.payouts)
main.add_command(settlements.settlements)
main.add_command(tx.tx)
main.add_command(chain.chain)
main.add_command(checks_cmd.checks)
main.add_command(demo.demo)
main.add_command(serve.serve)
main.add_command(runbook.runbook)
