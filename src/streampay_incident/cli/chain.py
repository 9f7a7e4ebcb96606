"""``streampay-incident chain``: is Stellar (or our Horizon) down? Probe, grade, report.

Live: probe every ``--horizon`` / ``--rpc`` endpoint under one ``--timeout``
deadline, optionally ``--record`` every raw answer. Offline: ``--snapshot
FILE --now T`` grades a recording again, with no network access at all.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from .. import envvars
from ..errors import InputError, InputProblem, SecretSeedError, shown
from ..io.rows import contains_seed
from ..logevents import log_event
from ..model import Report
from ..report import render, render_diagnosis, render_endpoint_table
from ..timefmt import format_rfc3339
from ..usecases import grade_chain
from .common import (
    RFC3339,
    Network,
    docs_url,
    exit_code_for,
    handle_input_errors,
    output_options,
    refuse_secrets,
    utc_now,
)

if TYPE_CHECKING:
    import pluggy

    from ..probes.record import Recording

HORIZON_ENV = envvars.HORIZON_URLS
RPC_ENV = envvars.RPC_URLS
NETWORK_ENV = envvars.NETWORK


def endpoint_urls(given: Sequence[str], env_value: str | None, *, option: str) -> tuple[str, ...]:
    """The URLs given with ``option``, else the comma-separated environment value; validated.

    Each URL is kept exactly as given (it is the subject of its findings), once.
    Raises :class:`click.UsageError` for one that is not http(s), and
    :class:`SecretSeedError` for one holding something shaped like a secret seed.
    """
    raw = list(given) if given else [u for u in (env_value or "").split(",")]
    urls: list[str] = []
    for value in raw:
        url = value.strip()
        if not url:
            continue
        if contains_seed(url):
            raise SecretSeedError(
                InputProblem(
                    option, None, None, "looks like a Stellar secret seed; refused (not shown)"
                )
            )
        try:
            parts = urlsplit(url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            _ = parts.port  # raises ValueError for a port out of range
        except ValueError:
            valid = False
        if not valid:
            raise click.UsageError(f"{option}: {shown(url)} is not an http(s) URL")
        if url not in urls:
            urls.append(url)
    return tuple(urls)


def emit_chain_report(report: Report, fmt: str, fail_on: str) -> None:
    """Print the report (led by its diagnosis, with an endpoint table for people) and exit.

    A report holding a secret seed is refused (exit 2) instead.
    """
    refuse_secrets(report)
    color = fmt == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    text = render_diagnosis(report, fmt) + render(report, fmt, color=color, docs_url=docs_url())
    text += render_endpoint_table(report, fmt)
    click.echo(text, nl=False)
    log_event("report", command="chain", status=report.overall, findings=len(report.findings))
    sys.exit(exit_code_for(report.overall, fail_on))


@click.command("chain")
@click.option(
    "--horizon",
    "horizon",
    multiple=True,
    metavar="URL",
    help=f"A Horizon endpoint (repeatable). Default: ${HORIZON_ENV} (comma-separated).",
)
@click.option(
    "--rpc",
    "rpc",
    multiple=True,
    metavar="URL",
    help=f"A Stellar RPC endpoint (repeatable). Default: ${RPC_ENV} (comma-separated).",
)
@click.option(
    "--network",
    type=Network(),
    envvar=NETWORK_ENV,
    help=f"public, testnet or a passphrase: the endpoints' network. Default: ${NETWORK_ENV}.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds for the whole run, however many endpoints hang.",
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write every raw answer (status, headers, body, timing) to this JSON file.",
)
@click.option(
    "--snapshot",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
    help="Grade a recording made with --record instead of probing (at its own time unless "
    "--now is given; - for stdin).",
)
@click.option(
    "--now",
    type=RFC3339(),
    help="Grade as of this RFC 3339 time (with --snapshot: default the recording's own time; "
    "not more than 1 s before it started).",
)
@output_options
@click.pass_context
@handle_input_errors
def chain(
    ctx: click.Context,
    horizon: tuple[str, ...],
    rpc: tuple[str, ...],
    network: str | None,
    timeout: float,
    record: Path | None,
    snapshot: Path | None,
    now: datetime | None,
    fmt: str,
    fail_on: str,
) -> None:
    """Probe Horizon and Stellar RPC endpoints and grade chain health.

    Findings per endpoint: unreachable, errors, rate limiting, unhealthy,
    wrong network, stale ledger, ingest lag, protocol mismatch, divergence,
    fee surge. Status: fail when every endpoint of a kind given has a critical
    finding; else warn on any finding; else pass.
    """
    from ..registry import get_plugin_manager, plugin_settings_from_env

    pm = get_plugin_manager(plugin_settings_from_env(os.environ, timeout=timeout))
    if snapshot is not None:
        if horizon or rpc:
            raise click.UsageError(
                "--snapshot replays the recorded endpoints: drop --horizon, --rpc"
            )
        if record is not None:
            raise click.UsageError("--record and --snapshot do not go together")
        given = ctx.get_parameter_source("network") is click.core.ParameterSource.COMMANDLINE
        report = replay_report(snapshot, now=now, network=network if given else None, pm=pm)
    else:
        horizon_urls = endpoint_urls(horizon, os.environ.get(HORIZON_ENV), option="--horizon")
        rpc_urls = endpoint_urls(rpc, os.environ.get(RPC_ENV), option="--rpc")
        if not horizon_urls and not rpc_urls:
            raise click.UsageError(
                f"no endpoint: give --horizon URL and/or --rpc URL "
                f"(or set {HORIZON_ENV} / {RPC_ENV})"
            )
        if not network:
            raise click.UsageError(
                f"no network: give --network public|testnet|PASSPHRASE (or set {NETWORK_ENV})"
            )
        report = live_report(
            horizon_urls, rpc_urls, network=network, timeout=timeout, record=record, now=now, pm=pm
        )
    emit_chain_report(report, fmt, fail_on)


#: How far before a recording started ``--now`` may be (clock skew between machines).
SNAPSHOT_SKEW = timedelta(seconds=1)


def snapshot_moment(recording: Recording, now: datetime | None) -> datetime:
    """When to grade ``recording``: ``--now``, else the recording's own time.

    The recording's own time is the moment its live run graded it (``now``),
    else when its round finished or started. Raises :class:`click.UsageError`
    (exit 2) for a ``--now`` more than 1 s before the recording started (its
    ledgers would be "from the future") and when neither time is known.
    """
    if now is None:
        own = recording.now or recording.finished_at or recording.started_at
        if own is None:
            raise click.UsageError(
                "--snapshot: the recording has no time of its own; give --now "
                "(the moment to grade the recording at)"
            )
        return own
    started = recording.started_at
    if started is not None and now < started - SNAPSHOT_SKEW:
        raise click.UsageError(
            f"--now {format_rfc3339(now)} is before the recording started "
            f"({format_rfc3339(started)}): grade it at or after that moment"
        )
    return now


def replay_report(
    snapshot: Path, *, now: datetime | None, network: str | None, pm: pluggy.PluginManager
) -> Report:
    """Grade a recording at ``now`` (else its own time; against ``network``, else the
    recorded one). No network I/O."""
    from ..probes import observations_from_recording, read_recording

    recording = read_recording(snapshot)
    now = snapshot_moment(recording, now)
    passphrase = network or recording.network_passphrase
    observations = observations_from_recording(recording)
    return grade_chain(
        observations,
        now=now,
        network_passphrase=passphrase,
        pm=pm,
        horizon_urls=[e.url for e in recording.endpoints if e.kind == "horizon"],
        rpc_urls=[e.url for e in recording.endpoints if e.kind == "rpc"],
        timeout=recording.timeout_seconds,
    )


def live_report(
    horizon_urls: tuple[str, ...],
    rpc_urls: tuple[str, ...],
    *,
    network: str,
    timeout: float,
    record: Path | None,
    now: datetime | None,
    pm: pluggy.PluginManager,
) -> Report:
    """Probe the endpoints within ``timeout``, grade, and write the recording when asked."""
    from ..probes import ChainConfig, Recorder, observe_chain
    from ..probes.http import run_sync

    config = ChainConfig(horizon_urls, rpc_urls, network, timeout)
    recorder = Recorder() if record is not None else None
    observations = run_sync(observe_chain(config, recorder=recorder))
    # The one clock read: after the round, so ledger ages are not understated.
    graded_at = now or utc_now()
    if recorder is not None and record is not None:
        recorder.now = graded_at
        try:
            recorder.write(record)
        except OSError as exc:
            raise InputError(
                InputProblem(str(record), None, None, f"cannot write the recording: {exc.strerror}")
            ) from None
    return grade_chain(
        observations,
        now=graded_at,
        network_passphrase=network,
        pm=pm,
        horizon_urls=horizon_urls,
        rpc_urls=rpc_urls,
        timeout=timeout,
    )
