"""What every command shares: output format, ``--fail-on``, exit codes, input errors.

Exit codes: 0 nothing at or above ``--fail-on``; 1 findings at or above it;
2 usage or input error (named on stderr, nothing on stdout); 3 an internal
error (a bug: one line on stderr, the traceback with ``STREAMPAY_INCIDENT_DEBUG=1``).
"""

from __future__ import annotations

import errno
import functools
import os
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from ..errors import InputError, InputProblem, SecretSeedError, shown
from ..model import Report
from ..report import render
from ..runbooks import DOCS_URL_ENV
from ..stellar.networks import resolve_network
from ..timefmt import parse_rfc3339

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_INPUT = 2
EXIT_INTERNAL = 3
# A full disk or quota: exit 2 with what to do, not a bug (exit 3).
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)

DEBUG_ENV = "STREAMPAY_INCIDENT_DEBUG"

_FAIL_LEVELS = {"warning": ("warn", "fail"), "critical": ("fail",)}


def exit_code_for(status: str, fail_on: str) -> int:
    """1 when the status is at or above ``--fail-on``, else 0."""
    return EXIT_FINDINGS if status in _FAIL_LEVELS[fail_on] else EXIT_OK


_DOCS_URL_KEY = "streampay_incident.docs_url"


def _check_docs_url(value: str | None) -> str | None:
    if value and not value.startswith(("https://", "http://")):
        raise click.BadParameter(f"{value!r}: give the docs site's absolute http(s) URL")
    return value or None


def _keep_docs_url(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    ctx.meta[_DOCS_URL_KEY] = _check_docs_url(value)


def docs_url_option(func: F) -> F:
    """``--docs-url BASE`` (or ``$STREAMPAY_INCIDENT_DOCS_URL``): absolute runbook links.

    Kept in the click context for :func:`emit` (commands don't take it as a parameter).
    """
    return click.option(
        "--docs-url",
        metavar="BASE",
        envvar=DOCS_URL_ENV,
        expose_value=False,
        callback=_keep_docs_url,
        help=(
            "Base URL of the published docs site (mkdocs site_url): runbook links become "
            f"BASE/runbooks/<file>/#<anchor>. Default: ${DOCS_URL_ENV}; unset, links stay "
            "docs/runbooks/<file>.md#<anchor>."
        ),
    )(func)


def docs_url() -> str | None:
    """The ``--docs-url`` of the running command, if one was given."""
    ctx = click.get_current_context(silent=True)
    return None if ctx is None else ctx.meta.get(_DOCS_URL_KEY)


def output_options(func: F) -> F:
    """``--format text|json|markdown``, ``--fail-on warning|critical`` and ``--docs-url``."""
    func = docs_url_option(func)
    func = click.option(
        "--fail-on",
        type=click.Choice(["warning", "critical"]),
        default="warning",
        show_default=True,
        help="Exit 1 when the report's status is at or above this severity.",
    )(func)
    func = click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json", "markdown"]),
        default="text",
        show_default=True,
        help="text for people, json for machines, markdown for the incident channel.",
    )(func)
    return func


def refuse_secrets(report: Report) -> None:
    """:class:`SecretSeedError` naming each part of ``report`` that holds something shaped
    like a secret seed (a plugin's evidence, an echoed value): such a report is never printed.
    """
    from ..io.rows import seed_paths
    from ..report import report_to_json

    refuse_seed_paths(seed_paths(report_to_json(report)))


def refuse_seed_paths(paths: list[str]) -> None:
    """:class:`SecretSeedError` naming each of ``paths`` (parts holding a seed), if any."""
    if paths:
        message = (
            "holds something shaped like a Stellar secret seed (S...); the report is not "
            "printed (the value is not shown; this tool never needs a secret)"
        )
        raise SecretSeedError([InputProblem("report", None, path, message) for path in paths])


def output_color(fmt: str) -> bool:
    """Colour: text on a terminal, unless ``NO_COLOR`` is set."""
    return fmt == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ


def emit(report: Report, fmt: str, fail_on: str) -> None:
    """Print the report on stdout and exit with the code its status calls for.

    A report holding a secret seed is refused (exit 2) instead: :func:`refuse_secrets`.
    """
    refuse_secrets(report)
    click.echo(render(report, fmt, color=output_color(fmt), docs_url=docs_url()), nl=False)
    sys.exit(exit_code_for(report.overall, fail_on))


def emit_spooled(spool: Any, streamed: Any, fail_on: str) -> None:
    """:func:`emit` for a report kept on disk (:class:`~streampay_incident.report_stream.
    SettlementSpool` holding what :class:`~streampay_incident.usecases.StreamedTriage`
    counts): rendered into a scratch file, refused when it holds a seed, and only then
    copied to stdout, whole."""
    import tempfile

    from ..io.rows import seed_paths
    from ..report import report_to_json

    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as rendered:
        spool.write(streamed.report, streamed, rendered)
        refuse_seed_paths(sorted({*seed_paths(report_to_json(streamed.report)), *spool.seed_paths}))
        rendered.seek(0)
        while chunk := rendered.read(1 << 20):
            click.echo(chunk, nl=False)
    sys.exit(exit_code_for(streamed.report.overall, fail_on))


def fail_input(error: InputError) -> None:
    """Exit 2 with one line per problem on stderr, and no report."""
    for problem in error.problems:
        click.echo(f"error: {problem}", err=True)
    sys.exit(EXIT_INPUT)


def handle_input_errors(func: F) -> F:
    """Turn :class:`InputError` raised anywhere in a command into exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as error:
            fail_input(error)

    return wrapper  # type: ignore[return-value]


def fail_internal(error: Exception) -> None:
    """Exit 3 with one line naming the bug (a secret seed in its message is hidden).

    The traceback goes to stderr only when ``STREAMPAY_INCIDENT_DEBUG`` is set
    (to anything but empty or 0): a script can tell a crash from a finding.
    """
    from ..io.rows import hide_seeds

    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        traceback.print_exception(error, file=sys.stderr)
    message = " ".join(hide_seeds(str(error)).split())
    click.echo(
        f"internal error: {type(error).__name__}: {shown(message, quote=False)}; "
        f"set {DEBUG_ENV}=1 for the traceback",
        err=True,
    )
    sys.exit(EXIT_INTERNAL)


class CommandGroup(click.Group):
    """The command group: an exception no command handled is a bug, exit 3 (not a traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise  # click's own ways out: usage errors (2), --help, aborts
        except OSError as error:
            if error.errno not in _DISK_FULL:
                fail_internal(error)
            # Not a bug: the machine's disk (a report spooled to $TMPDIR, DuckDB's spill).
            import tempfile

            where = error.filename or f"a temporary file in {tempfile.gettempdir()}"
            click.echo(
                f"error: no space left writing {where} ({error.strerror}): free space there, "
                "or set TMPDIR to a folder with room",
                err=True,
            )
            sys.exit(EXIT_INPUT)
        except Exception as error:  # noqa: BLE001 - the one place every bug ends up
            fail_internal(error)


class RFC3339(click.ParamType):
    """A click parameter: an RFC 3339 timestamp with offset -> aware UTC datetime."""

    name = "RFC3339"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            return parse_rfc3339(str(value))
        except ValueError as exc:
            self.fail(f"{shown(value)}: {exc}", param, ctx)


class Network(click.ParamType):
    """``public``, ``testnet``, ``futurenet``, ``standalone`` or a full passphrase."""

    name = "public|testnet|PASSPHRASE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip()
        if not text:
            self.fail("empty network passphrase", param, ctx)
        return resolve_network(text)


def utc_now() -> datetime:
    """The one place the CLI reads the clock (``--now`` overrides it)."""
    return datetime.now(UTC)
