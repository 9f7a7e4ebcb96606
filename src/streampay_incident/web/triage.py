"""Triage over HTTP: request bodies into rows, rows into the CLI's report.

A body is a JSON array of records, an object holding that array under
``payouts`` / ``settlements``, or JSON Lines (``application/x-ndjson``). The
records go through the same parsers and checks as the CLI's files, so the
answer is the same ``streampay-incident.report/v1`` document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import pluggy

from ..checks.inputs import input_empty
from ..errors import InputError, InputProblem
from ..io import strict_json
from ..io.rows import JsonNumber, Row, iter_text_rows, rows_from_json_document
from ..model import (
    ChainTransaction,
    Finding,
    PayoutPolicy,
    Report,
    Settlement,
    SettlementPolicy,
    Status,
    make_finding,
)
from ..registry import plugin_name, run_checks

SOURCE = "request body"
RecordKind = Literal["payouts", "settlements"]
BodyFormat = Literal["json", "jsonl"]

_JSONL_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/json-lines",
        "application/jsonlines",
    }
)


def body_format(content_type: str | None, text: str) -> BodyFormat:
    """JSON Lines when the media type says so; JSON for a JSON type; else sniffed."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _JSONL_TYPES:
        return "jsonl"
    if media == "application/json" or media.endswith("+json"):
        return "json"
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("{"):
        # One object is the {"payouts": [...]} form; several lines of objects are JSON Lines.
        try:
            strict_json.loads(stripped)
        except strict_json.JsonProblem:
            return "jsonl"
    return "json"


def decode_body(body: bytes) -> str:
    """The body as text; :class:`InputError` when it is not UTF-8."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(InputProblem(SOURCE, None, None, "body is not UTF-8 text")) from None


def rows_from_text(text: str, fmt: BodyFormat, *, kind: RecordKind) -> list[Row]:
    """Every record of a request body as a Row (``line``: JSON Lines line or array index).

    Raises :class:`InputError` naming every bad record; secret seeds are refused unechoed.
    """
    if fmt == "jsonl":
        return list(iter_text_rows(text, source=SOURCE, fmt="jsonl"))
    if not text.strip():
        raise InputError(
            InputProblem(SOURCE, None, None, f"empty body: send a JSON array of {kind}")
        )
    if text.lstrip("\ufeff \t\r\n").startswith("["):
        return list(iter_text_rows(text, source=SOURCE, fmt="json"))
    return _rows_from_object(text, kind)


def read_body(
    body: bytes, content_type: str | None, *, kind: RecordKind
) -> tuple[BodyFormat, list[Row] | InputError]:
    """The body's format and its rows, or the :class:`InputError` naming every bad record.

    Returns the error instead of raising it so that the caller knows whether to
    name problems by array index or by line either way.
    """
    fmt: BodyFormat = "json"
    try:
        text = decode_body(body)
        fmt = body_format(content_type, text)
        return fmt, rows_from_text(text, fmt, kind=kind)
    except InputError as error:
        return fmt, error


def _rows_from_object(text: str, kind: RecordKind) -> list[Row]:
    from ..io.rows import contains_seed, seed_problem

    try:
        doc = strict_json.loads(text, parse_float=JsonNumber, parse_int=JsonNumber)
    except strict_json.JsonProblem as exc:
        if contains_seed(text):
            raise InputError(seed_problem(SOURCE, None, None)) from None
        raise InputError(InputProblem(SOURCE, exc.lineno, exc.key, exc.message)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get(kind), list):
        raise InputError(
            InputProblem(
                SOURCE, None, kind, f"expected a JSON array, or an object with a {kind!r} array"
            )
        )
    return list(rows_from_json_document(doc, source=SOURCE, key=kind))


def problems_json(error: InputError, fmt: BodyFormat) -> list[dict[str, Any]]:
    """One entry per bad record: index (JSON array) or line (JSON Lines), field, message."""
    where = "line" if fmt == "jsonl" else "index"
    return [{where: p.line, "field": p.field, "message": p.message} for p in error.problems]


def _plugin_error(plugin: str, where: str, exc: BaseException) -> Finding:
    return make_finding(
        "PLUGIN_ERROR",
        subject=plugin,
        summary=f"plugin {plugin!r} failed in {where}: {type(exc).__name__}",
        evidence={"plugin": plugin, "check": where, "error": type(exc).__name__},
    )


def triage_payouts(
    rows: Sequence[Row],
    *,
    pm: pluggy.PluginManager,
    policy: PayoutPolicy,
    now: datetime,
    inputs: Mapping[str, Any],
) -> Report:
    """Parse the rows as payouts and run every registered payout check (built-ins included)."""
    from ..io.payouts import payouts_from_rows

    payouts = payouts_from_rows(rows, source=SOURCE)
    findings = run_checks(pm, "streampay_incident_register_payout_checks", payouts, policy=policy)
    if not payouts:
        findings = (*findings, input_empty(SOURCE, "payout"))
    return Report(
        command="payouts",
        findings=findings,
        generated_at=now,
        inputs={**inputs, "records": len(payouts)},
    )


def triage_settlements(
    settlements: Sequence[Settlement],
    *,
    pm: pluggy.PluginManager,
    transactions: Iterable[ChainTransaction] = (),
    now: datetime,
    chain_status: Status | None,
    inputs: Mapping[str, Any],
    latest_ledger_close_time: datetime | None = None,
    policy: SettlementPolicy | None = None,
) -> Report:
    """Verdicts from the classifier, findings from every registered settlement check.

    The same split as ``streampay-incident settlements``: the built-in rules are
    one registered check, so a plugin that raises becomes a finding.
    """
    from ..checks.settlements import TransactionIndex, classify_settlements

    policy = policy or SettlementPolicy()
    index = TransactionIndex(
        transactions, latest_ledger_close_time=latest_ledger_close_time, chain_status=chain_status
    )
    triage = classify_settlements(
        settlements,
        transactions=index,
        now=now,
        latest_ledger_close_time=latest_ledger_close_time,
        policy=policy,
        chain_status=chain_status,
    )
    findings = run_checks(
        pm,
        "streampay_incident_register_settlement_checks",
        settlements,
        transactions=index,
        now=now,
        policy=policy,
    )
    if not settlements:
        findings = (*findings, input_empty(SOURCE, "settlement"))
    return Report(
        command="settlements",
        findings=findings,
        generated_at=now,
        inputs={**inputs, "records": len(settlements)},
        settlements=tuple(triage.verdicts),
    )


def settlements_from_body_rows(
    rows: Sequence[Row], *, network_passphrase: str | None
) -> list[Settlement]:
    from ..io.settlements import settlements_from_rows

    return list(settlements_from_rows(rows, source=SOURCE, network_passphrase=network_passphrase))


LookupResult = tuple[Settlement | None, ChainTransaction | None, Finding | None]


def find_settlement(pm: pluggy.PluginManager, settlement_id: str) -> LookupResult:
    """Ask the host's ``streampay_incident_find_settlement`` hooks, first answer wins.

    Calls each implementation on its own (in pluggy's order) so that one that
    raises, or answers something that is not a Settlement, becomes a
    ``PLUGIN_ERROR`` finding naming it.
    """
    caller = pm.hook.streampay_incident_find_settlement
    for impl in reversed(caller.get_hookimpls()):
        if getattr(impl, "hookwrapper", False) or getattr(impl, "wrapper", False):
            continue
        name = plugin_name(pm, impl.plugin)
        try:
            answer = impl.function(settlement_id=settlement_id)
        except Exception as exc:  # noqa: BLE001 - the host's fault becomes a finding
            return None, None, _plugin_error(name, "streampay_incident_find_settlement", exc)
        if answer is None:
            continue
        transaction = None
        if isinstance(answer, tuple) and len(answer) == 2:
            answer, transaction = answer
        if not isinstance(answer, Settlement) or not (
            transaction is None or isinstance(transaction, ChainTransaction)
        ):
            problem = TypeError("answered something other than a Settlement")
            return None, None, _plugin_error(name, "streampay_incident_find_settlement", problem)
        return answer, transaction, None
    return None, None, None
