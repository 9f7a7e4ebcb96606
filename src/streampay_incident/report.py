"""Rendering a :class:`~streampay_incident.model.Report` for people and machines.

JSON is the pinned contract (``streampay-incident.report/v1``); text is for a
terminal at 3 a.m. (grouped by severity, coloured on a TTY); Markdown is for
the incident channel and the postmortem.

Over 400 lines as one thing: every piece of each format lives here once, so that
:mod:`streampay_incident.report_stream` writes a report of any size a piece at a time
with the very same bytes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .__about__ import __version__
from .checks.verdict_facts import count_actions
from .codes import RUNBOOK_DIR, Severity
from .model import Finding, Report, SettlementVerdict
from .runbooks import docs_link
from .timefmt import format_duration, format_rfc3339

SCHEMA = "streampay-incident.report/v1"
TOOL = {"name": "streampay-incident", "version": __version__}

_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
_STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_STATUS_STYLE = {"pass": "bold green", "warn": "bold yellow", "fail": "bold red"}


#: One line of advice per retry reason: what on-call does about the verdict (text, Markdown,
#: and the demo's "What to do" list).
RETRY_ADVICE: dict[str, str] = {
    "never_submitted": "retry is safe: it was never submitted",
    "tx_expired": "retry is safe: a ledger closed after the transaction's max time",
    "tx_failed": "retry is safe: the transaction failed on chain",
    "sequence_consumed": "retry is safe: the source account's sequence moved past it",
    "tx_landed": "DO NOT RETRY: the transaction landed; record it as paid",
    "recorded_succeeded": "nothing to do: recorded as succeeded",
    "in_flight": "wait: still within its normal time",
    "unknown_submission": "DO NOT RETRY: it may have been submitted; find the tx hash first",
    "tx_may_still_land": "DO NOT RETRY: the transaction can still land",
    "no_ledger_after_max_time": (
        "DO NOT RETRY yet: pass --chain-snapshot (or --horizon, --latest-ledger-close-time) "
        "to prove expiry"
    ),
    "tx_status_unknown": "DO NOT RETRY: the chain could not say; look it up again",
    "chain_unhealthy": "DO NOT RETRY: the network is unhealthy; never retry into an outage",
    "already_paid": "DO NOT RETRY: another payout already paid it; a replay pays twice",
    "network_mismatch": "DO NOT RETRY: its envelope is on another network; check --network",
    "backing_off": "wait: StreamPay's worker retries it at available_at",
    "search_ambiguous": "DO NOT RETRY: several transfers could be its payment; tell them apart",
}
#: Where a verdict without a finding points: the stuck-settlement decision tree.
DECISION_TREE = f"{RUNBOOK_DIR}/stuck-settlement.md#decision-tree"


def advice(retry_reason: str, action: str) -> str:
    """The one line of advice for a verdict (a settled one with no finding: nothing to do)."""
    if action == "none":
        return "nothing to do: settled"
    return RETRY_ADVICE.get(retry_reason, retry_reason)


def verdict_advice(verdict: SettlementVerdict) -> str:
    """:func:`advice` for ``verdict``."""
    return advice(verdict.retry_reason, verdict.action)


#: The finding that decides a verdict overturned by an overlay (its retry reason).
_DECIDING_CODE = {
    "already_paid": "SETTLEMENT_ALREADY_PAID",
    "network_mismatch": "SETTLEMENT_NETWORK_MISMATCH",
    "chain_unhealthy": "SETTLEMENT_CHAIN_BLOCKED",
}


def verdict_runbook(verdict: SettlementVerdict, findings: tuple[Finding, ...]) -> str:
    """The runbook link of the finding that decides the verdict (an overlay's when it
    overturned the rule's verdict, else the first), else the decision tree."""
    wanted = [_DECIDING_CODE.get(verdict.retry_reason), verdict.code]
    for code in wanted:
        for finding in findings:
            if (
                code is not None
                and finding.subject == verdict.settlement_id
                and finding.code == code
            ):
                return finding.runbook
    return DECISION_TREE


def settlements_summary(verdicts: tuple[SettlementVerdict, ...]) -> dict[str, Any]:
    """``summary`` of a settlements report: ``actions`` counts (``none`` not counted)."""
    return {"actions": count_actions(verdicts)}


def finding_rank(f: Finding) -> tuple[int, str, str]:
    """Where ``f`` goes in a report: worst first, then by code and subject."""
    return (_ORDER[f.severity], f.code, f.subject)


def sorted_findings(findings: Sequence[Finding]) -> list[Finding]:
    """Worst first, then by code and subject: a stable order for every output."""
    return sorted(findings, key=finding_rank)


def report_to_json(report: Report) -> dict[str, Any]:
    """The pinned JSON document."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "status": report.overall,
        "generated_at": format_rfc3339(report.generated_at),
        "tool": dict(TOOL),
        "inputs": dict(report.inputs),
        "findings": [f.to_json() for f in sorted_findings(report.findings)],
    }
    if report.settlements is not None:
        doc["summary"] = settlements_summary(report.settlements)
        doc["settlements"] = [v.to_json() for v in report.settlements]
    for key, value in report.extra.items():
        doc.setdefault(key, value)
    return doc


def render_json(report: Report) -> str:
    # Written piece by piece: json.dumps would first hold every piece of a report of
    # a million settlements in one list (several KiB per settlement).
    out = io.StringIO()
    encoder = json.JSONEncoder(indent=2, ensure_ascii=False)
    out.writelines(encoder.iterencode(report_to_json(report)))
    out.write("\n")
    return out.getvalue()


#: How render_json writes a string (non-ASCII kept, as ``ensure_ascii=False``).
_JSON_STRING = json.encoder.encode_basestring
_JSON_ITEM_INDENT = "\n    "  # an item of a top-level list: two levels of two spaces


def json_item(value: Any) -> str:
    """An item of one of the report's top-level lists (``findings``, ``settlements``) exactly
    as :func:`render_json` writes it, without the indent of its first line.

    The same bytes as ``json.dumps(value, indent=2, ensure_ascii=False)`` indented two
    levels, several times faster (json's indenting encoder is pure Python).
    """
    return _indented(value, _JSON_ITEM_INDENT)


def _indented(value: Any, indent: str) -> str:
    # json.encoder's order of type tests: str, None, booleans, int, float, list/tuple, dict.
    if isinstance(value, str):
        return str(_JSON_STRING(value))
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = indent + "  "
        members = f",{inner}".join(
            f"{_JSON_STRING(_json_key(key))}: {_indented(item, inner)}"
            for key, item in value.items()
        )
        return f"{{{inner}{members}{indent}}}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        inner = indent + "  "
        items = f",{inner}".join(_indented(item, inner) for item in value)
        return f"[{inner}{items}{indent}]"
    return _json_scalar(value)


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    return _json_scalar(key)  # None, booleans and numbers become their JSON text, as json does


_JSON_CONSTANTS = {True: "true", False: "false", None: "null"}


def _json_scalar(value: Any) -> str:
    if isinstance(value, str):
        return str(_JSON_STRING(value))
    if value is None or value is True or value is False:
        return _JSON_CONSTANTS[value]
    if isinstance(value, int):
        return int.__repr__(value)  # as json writes an int (an IntEnum too)
    return json.dumps(value)  # floats, and the TypeError json gives for anything else


def verdict_json_item(verdict: SettlementVerdict) -> str:
    """:func:`json_item` of a verdict, written directly: a verdict is a flat object of
    strings and booleans, and there may be millions of them."""
    members = ",\n      ".join(
        f"{_JSON_STRING(key)}: {_json_scalar(value)}" for key, value in verdict.to_json().items()
    )
    return f"{{\n      {members}\n    }}"


def _evidence_line(finding: Finding) -> str:
    parts = []
    ev = finding.evidence
    if ev.get("payout_ids"):
        ids = list(ev["payout_ids"])
        shown = ", ".join(ids[:8]) + (f" (+{len(ids) - 8} more)" if len(ids) > 8 else "")
        parts.append(f"payouts: {shown}")
    if "amount_at_risk" in ev and ev["amount_at_risk"]:
        risk = ", ".join(f"{amt} {asset}" for asset, amt in sorted(ev["amount_at_risk"].items()))
        parts.append(f"at risk: {risk}")
    if ev.get("amount_exposed"):
        exposed = ", ".join(f"{amt} {asset}" for asset, amt in sorted(ev["amount_exposed"].items()))
        parts.append(f"about to leave: {exposed}")
    # StreamPay's outbox: the idempotency key and the stream a settlement is known by.
    parts += [f"{key}: {ev[key]}" for key in ("event_key", "aggregate_id") if ev.get(key)]
    if ev.get("aggregate_ids"):
        parts.append(f"streams: {', '.join(ev['aggregate_ids'])}")
    return "; ".join(parts)


#: A piece of a text line: text as it is, or ``(style, text)`` (a rich style, on a colour
#: terminal only).
Piece = str | tuple[str, str]

# Control characters (C0 but none kept, DEL, C1) in a value are shown as ``\xNN``: a value
# from an export must not move the cursor, recolour the terminal or start a line of its own.
_SHOWN = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}


def shown_text(value: object) -> str:
    """``value`` as a text report shows it: its control characters escaped (``\\x1b``)."""
    return str(value).translate(_SHOWN)


class TextWriter:
    """Where a text report's lines go: written as they are, or styled through rich on a
    colour terminal. Nothing is read as markup or as an emoji code; lines are never
    wrapped (hashes and addresses stay whole for copy-paste and grep).

    Plain lines are written directly: rich takes about 50 us a line, which made a
    100k-settlement report take 25 s longer than its JSON.
    """

    def __init__(self, out: Any, *, color: bool = False, width: int = 100) -> None:
        self._out = out
        self._console: Any = None
        if color:
            from rich.console import Console

            self._console = Console(
                file=out,
                force_terminal=True,
                width=width,
                highlight=False,
                soft_wrap=True,
                markup=False,
                emoji=False,
            )

    def line(self, *pieces: Piece) -> None:
        """One line of ``pieces`` (none: an empty line)."""
        if self._console is None:
            self._out.write("".join(p if isinstance(p, str) else p[1] for p in pieces) + "\n")
            return
        from rich.text import Text

        self._console.print(
            Text.assemble(*(p if isinstance(p, str) else (p[1], p[0]) for p in pieces))
        )


def text_head(out: TextWriter, report: Report, findings: int) -> None:
    """The status line (``findings`` is how many the report holds), inputs and notes."""
    status = report.overall
    out.line(
        (_STATUS_STYLE[status], status.upper()),
        f" streampay-incident {report.command}: "
        f"{findings} finding(s) at {format_rfc3339(report.generated_at)}",
    )
    for key, value in report.inputs.items():
        out.line(f"  {shown_text(key)}: {shown_text(value)}")
    for note in report.extra.get("notes", ()):
        out.line(f"  note: {shown_text(note)}")


def text_group_head(out: TextWriter, severity: Severity, findings: int) -> None:
    out.line()
    out.line((_STYLE[severity], f"{severity.value.upper()} ({findings})"))


def text_finding(out: TextWriter, f: Finding, *, runbook_hint: bool) -> None:
    """One finding: code and subject, summary, evidence line, runbook (and its command)."""
    out.line("  ", (_STYLE[f.severity], f.code), f" {shown_text(f.subject)}")
    out.line(f"    {shown_text(f.summary)}")
    extra = _evidence_line(f)
    if extra:
        out.line(f"    {shown_text(extra)}")
    # A plugin's own runbook URL is not in the bundled runbooks: no command to print it.
    bundled = not f.runbook.startswith(("https://", "http://"))
    hint = f" (streampay-incident runbook {f.code})" if runbook_hint and bundled else ""
    out.line(f"    runbook: {shown_text(f.runbook)}{hint}")


def text_settlements_head(out: TextWriter, actions: Mapping[str, int]) -> None:
    out.line()
    out.line(("bold", "Settlements"), f" ({actions_line(actions)})")
    out.line(f"  {'settlement_id':<36} {'state':<11} {'retry_safe':<10} {'reason':<24} action")


def text_verdict(out: TextWriter, v: SettlementVerdict, runbook: str) -> None:
    """One verdict's row, its advice and its runbook link (``runbook``, as shown)."""
    safe: Piece = ("green", "yes") if v.retry_safe else ("red", "NO")
    out.line(
        f"  {shown_text(v.settlement_id):<36} {v.state:<11} ",
        safe,
        f"{'' if v.retry_safe else ' '}        {v.retry_reason:<24} {v.action}",
    )
    out.line(f"    {shown_text(verdict_advice(v))}")
    out.line(f"    runbook: {shown_text(runbook)}")


def render_text(
    report: Report,
    *,
    color: bool = False,
    width: int = 100,
    runbook_hint: bool = True,
    docs_url: str | None = None,
) -> str:
    """Findings grouped by severity, worst first, each with its runbook link.

    With ``runbook_hint`` each link is followed by the ``streampay-incident
    runbook CODE`` command that prints the same section where the tool is
    installed. Lines are never hard-wrapped (soft wrap), so hashes and addresses
    stay whole for copy-paste and grep.
    """
    buf = io.StringIO()
    out = TextWriter(buf, color=color, width=width)
    text_head(out, report, len(report.findings))
    ordered = sorted_findings(report.findings)
    for severity in (Severity.CRITICAL, Severity.WARNING, Severity.INFO):
        group = [f for f in ordered if f.severity is severity]
        if not group:
            continue
        text_group_head(out, severity, len(group))
        for f in group:
            text_finding(out, f, runbook_hint=runbook_hint)
    if report.settlements is not None:
        text_settlements_head(out, count_actions(report.settlements))
        for v in report.settlements:
            text_verdict(out, v, docs_link(verdict_runbook(v, report.findings), docs_url))
    if not report.findings:
        out.line("No findings.")
    return buf.getvalue()


def actions_line(actions: Mapping[str, int]) -> str:
    """``retry 3, wait 2, ...``: the counts of ``summary.actions``."""
    return ", ".join(f"{a} {n}" for a, n in actions.items())


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_head(report: Report) -> list[str]:
    """The title, inputs and notes of a Markdown report."""
    lines = [
        f"## streampay-incident {report.command}: **{report.overall.upper()}**",
        "",
        f"Generated {format_rfc3339(report.generated_at)} by streampay-incident {__version__}.",
        "",
    ]
    if report.inputs:
        lines += [f"- {k}: `{v}`" for k, v in report.inputs.items()] + [""]
    notes = report.extra.get("notes", ())
    if notes:
        lines += [f"> note: {note}" for note in notes] + [""]
    return lines


MARKDOWN_FINDINGS_HEAD = [
    "| severity | code | subject | summary | runbook |",
    "|---|---|---|---|---|",
]


def markdown_finding(f: Finding) -> str:
    return (
        f"| {f.severity.value} | `{f.code}` | `{_md_cell(f.subject)}` | "
        f"{_md_cell(f.summary)} | [{f.code}]({f.runbook}) |"
    )


def markdown_settlements_head(actions: Mapping[str, int]) -> list[str]:
    return [
        "",
        f"Actions: {actions_line(actions)}.",
        "",
        "| settlement | state | retry safe | reason | action | advice |",
        "|---|---|---|---|---|---|",
    ]


def markdown_verdict(v: SettlementVerdict, runbook: str) -> str:
    safe = "yes" if v.retry_safe else "**no**"
    return (
        f"| `{_md_cell(v.settlement_id)}` | {v.state} | {safe} | {v.retry_reason} | "
        f"{v.action} | {_md_cell(verdict_advice(v))} ([runbook]({runbook})) |"
    )


def render_markdown(report: Report, *, docs_url: str | None = None) -> str:
    """A Markdown summary for the incident channel or a postmortem."""
    lines = markdown_head(report)
    if report.findings:
        lines += MARKDOWN_FINDINGS_HEAD
        lines += [markdown_finding(f) for f in sorted_findings(report.findings)]
    else:
        lines.append("No findings.")
    if report.settlements is not None:
        lines += markdown_settlements_head(count_actions(report.settlements))
        for v in report.settlements:
            runbook = docs_link(verdict_runbook(v, report.findings), docs_url)
            lines.append(markdown_verdict(v, runbook))
    return "\n".join(lines) + "\n"


def with_docs_url(report: Report, docs_url: str | None) -> Report:
    """The report with every finding's runbook link on the docs site at ``docs_url``."""
    if not docs_url:
        return report
    findings = tuple(
        attrs.evolve(f, runbook=docs_link(f.runbook, docs_url)) for f in report.findings
    )
    return attrs.evolve(report, findings=findings)


def render(report: Report, fmt: str, *, color: bool = False, docs_url: str | None = None) -> str:
    """The report as ``fmt``; runbook links absolute on the docs site when ``docs_url`` is set."""
    report = with_docs_url(report, docs_url)
    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report, docs_url=docs_url)
    return render_text(report, color=color, runbook_hint=not docs_url, docs_url=docs_url)


def _ledger_age(endpoint: Mapping[str, Any]) -> str | None:
    """The endpoint's ledger age as a duration (``1m05s``), None when unknown."""
    seconds = endpoint["ledger_age_seconds"]
    return None if seconds is None else format_duration(round(seconds))


def endpoint_table_text(endpoints: Sequence[Mapping[str, Any]]) -> str:
    lines = ["", "Endpoints"]
    for e in endpoints:
        age = _ledger_age(e) or "-"
        lag = "-" if e["ingest_lag"] is None else str(e["ingest_lag"])
        ledger = "-" if e["latest_ledger"] is None else str(e["latest_ledger"])
        closed = e.get("latest_ledger_close_time")
        ledger += f" closed {closed}" if closed else ""
        lines.append(
            f"  {e['status'].upper():<5} {e['kind']:<8} {shown_text(e['url'])}  ledger {ledger}, "
            f"age {age}, "
            f"ingest lag {lag}, {e['duration_seconds']:.2f}s"
        )
    return "\n".join(lines) + "\n"


def endpoint_table_markdown(endpoints: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "",
        "| endpoint | kind | status | latest ledger | closed at | ledger age | ingest lag "
        "| probe (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in endpoints:
        cells = [
            f"`{e['url']}`",
            e["kind"],
            e["status"],
            "" if e["latest_ledger"] is None else str(e["latest_ledger"]),
            e.get("latest_ledger_close_time") or "",
            _ledger_age(e) or "",
            "" if e["ingest_lag"] is None else str(e["ingest_lag"]),
            f"{e['duration_seconds']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_diagnosis(report: Report, fmt: str) -> str:
    """The chain report's first line for people: Stellar or us (text, markdown); else ``""``."""
    diagnosis = report.extra.get("diagnosis")
    if diagnosis and fmt == "text":
        return f"{shown_text(diagnosis['summary'])}\n"
    if diagnosis and fmt == "markdown":
        return f"**{diagnosis['summary']}**\n\n"
    return ""


def render_endpoint_table(report: Report, fmt: str) -> str:
    """The per-endpoint table of a chain report for people (text, markdown); else ``""``."""
    endpoints = report.extra.get("endpoints", [])
    if fmt == "text" and endpoints:
        return endpoint_table_text(endpoints)
    if fmt == "markdown" and endpoints:
        return endpoint_table_markdown(endpoints)
    return ""
