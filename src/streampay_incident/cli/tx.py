"""``streampay-incident tx inspect``: what an envelope is (hash, memo, time bounds, operations).

The network passphrase is required: the wrong one silently gives another
hash, and a hash looked up on the wrong network is "not found" forever.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..errors import InputError, InputProblem
from ..io.rows import contains_seed, seed_problem
from ..report import shown_text
from ..stellar.envelope import EnvelopeError, TransactionSummary, inspect_transaction
from .common import Network, fail_input


def _text(summary: TransactionSummary) -> str:
    """Key: value lines for people; operations indented under their number. A memo is
    anyone's text: its control characters are shown escaped (``report.shown_text``)."""
    doc = summary.to_json()
    lines = []
    for key, value in doc.items():
        if key == "operations":
            for number, op in enumerate(value, 1):
                details = ", ".join(f"{k}={shown_text(v)}" for k, v in op.items() if k != "type")
                lines.append(f"  op {number}: {op['type']}" + (f" ({details})" if details else ""))
        else:
            lines.append(f"{key}: {'-' if value is None else shown_text(value)}")
    return "\n".join(lines) + "\n"


def _render(summary: TransactionSummary, fmt: str, *, pretty: bool) -> str:
    if fmt == "text":
        return _text(summary)
    doc: dict[str, Any] = summary.to_json()
    if pretty:
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"


def _inspect(text: str, network: str, *, source: str, line: int | None) -> TransactionSummary:
    if contains_seed(text):
        raise InputError(seed_problem(source, line, None))
    try:
        return inspect_transaction(text, network_passphrase=network)
    except EnvelopeError as exc:
        raise InputError(InputProblem(source, line, None, exc.reason)) from None


@click.group("tx")
def tx() -> None:
    """Transaction envelopes: hashes, memos, time bounds, operations (read-only)."""


@tx.command("inspect")
@click.argument("envelope", metavar="XDR|-")
@click.option(
    "--network",
    type=Network(),
    required=True,
    help="public, testnet or a full passphrase (required: it determines the hash).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    help="json: one flat object (JSON Lines for -); text: for people.",
)
def inspect(envelope: str, network: str, fmt: str) -> None:
    """Decode a base64 transaction envelope (V0, V1 or fee-bump) and compute its hash.

    XDR is the envelope, or ``-`` to read one envelope per line from stdin and
    print one JSON object per line. Exit 2 when an input is not an envelope
    (naming the stdin line); nothing is printed then.
    """
    if envelope != "-":
        try:
            summary = _inspect(envelope, network, source="XDR argument", line=None)
        except InputError as error:
            fail_input(error)
        click.echo(_render(summary, fmt, pretty=True), nl=False)
        return
    out: list[str] = []
    problems: list[InputProblem] = []
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            summary = _inspect(line, network, source="<stdin>", line=number)
        except InputError as error:
            problems.extend(error.problems)
            continue
        if not problems:  # all or nothing: never a partial answer
            out.append(_render(summary, fmt, pretty=False) + ("\n" if fmt == "text" else ""))
    if problems:
        fail_input(InputError(problems))
    sys.stdout.write("".join(out))
