"""Findings from the rows the rule SQL returns: the same codes, subjects, summaries and
evidence as :mod:`streampay_incident.checks.payouts` (which stays the reference).

Pure: rows in (one per finding, and the amount at risk per finding and asset),
findings out, in the reference's order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ..amounts import format_stroops
from ..checks.payouts import count_noun, finding_order
from ..codes import Severity
from ..model import Finding, make_finding
from ..timefmt import format_duration, format_rfc3339
from .sql import RULE_CODES

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STATUSES = ("confirmed", "failed", "pending", "submitted")  # sorted, as the reference's dict


def moment(us: int) -> datetime:
    """An epoch-microsecond count as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=us)


class RecordCount(int):
    """How many records an engine read, and the newest one's ``created_at`` (for the
    reference's stale-export note)."""

    newest: datetime

    def __new__(cls, count: int, *, newest: datetime) -> RecordCount:
        counted = super().__new__(cls, count)
        counted.newest = newest
        return counted


def findings_from_rows(
    rows: Iterable[Mapping[str, Any]],
    at_risk: Iterable[Mapping[str, Any]],
    *,
    repeat_window: timedelta,
) -> list[Finding]:
    """The findings the rule rows describe, sorted as the reference sorts them.

    ``at_risk``: the rows of :func:`~.sql.at_risk_sql` (``amount_at_risk`` and
    ``amount_exposed`` per finding and asset).
    """
    sums: dict[tuple[str, int, str], dict[str, int]] = defaultdict(dict)
    for row in at_risk:
        key = (str(row["kind"]), int(row["rule"]), str(row["group_key"]))
        sums[key][str(row["asset"])] = int(row["stroops"])

    def amounts(kind: str, row: Mapping[str, Any]) -> dict[str, str]:
        totals = sums.get((kind, int(row["rule"]), str(row["group_key"])), {})
        return {asset: format_stroops(total) for asset, total in sorted(totals.items()) if total}

    # Ties of the reference's order (two repeat chains from one transfer under two
    # memos) keep the reference's generation order: memo classes as it orders them.
    ordered = sorted(rows, key=_memo_class_order)
    findings = [
        _finding(row, amounts("at_risk", row), amounts("exposed", row), repeat_window)
        for row in ordered
    ]
    findings.sort(key=finding_order)
    return findings


def _memo_class_order(row: Mapping[str, Any]) -> str:
    """A repeat chain's memo class as ``repr`` of the reference's memo key, else ""."""
    if int(row["rule"]) != 5:
        return ""
    memo_class = str(row["group_key"]).split("|", 3)[3].rsplit("|", 1)[0]
    kind, _, value = memo_class.partition(":")
    if not kind:
        return ""
    if kind == "id" and value.isdigit():
        return repr((kind, int(value)))
    return repr((kind, value.encode()))


def _values(row: Mapping[str, Any], name: str) -> list[Any]:
    """A list column (an engine may give NULL for a group with no value)."""
    return list(row[name] or ())


def _evidence(
    row: Mapping[str, Any], at_risk: dict[str, str], exposed: dict[str, str]
) -> dict[str, Any]:
    return {
        "payout_ids": _values(row, "payout_ids"),
        "amount_at_risk": at_risk,
        "amount_exposed": exposed,
        "transfers": int(row["transfers"]),
        "settlement_ids": _values(row, "settlement_ids"),
        "tx_hashes": _values(row, "tx_hashes"),
        "destinations": _values(row, "destinations"),
        "statuses": {status: int(row[f"n_{status}"]) for status in _STATUSES if row[f"n_{status}"]},
    }


def _finding(
    row: Mapping[str, Any], at_risk: dict[str, str], exposed: dict[str, str], window: timedelta
) -> Finding:
    code = RULE_CODES[int(row["rule"]) - 1]
    key = str(row["group_key"])
    evidence = _evidence(row, at_risk, exposed)
    settlements = count_noun(len(_values(row, "settlement_ids")), "settlement")
    transfers = int(row["transfers"])
    if code == "PAYOUT_DUPLICATE_TX_RECORD":
        summary = f"{row['row_count']} payout rows record the same transaction for {settlements}"
        return make_finding(code, subject=key, summary=summary, evidence=evidence)
    if code == "PAYOUT_DUPLICATE_SETTLEMENT":
        confirmed = int(row["confirmed_transfers"])
        return make_finding(
            code,
            subject=key,
            summary=(
                f"settlement {key} was paid by {transfers} distinct transfers "
                f"({confirmed} confirmed)"
            ),
            evidence={**evidence, "confirmed_transfers": confirmed},
            severity=Severity.CRITICAL if confirmed >= 2 else Severity.WARNING,
        )
    if code == "PAYOUT_DUPLICATE_MEMO":
        subject = f"{row['memo_type']}:{row['memo_value']}"
        return make_finding(
            code,
            subject=subject,
            summary=f"memo {subject} is on {transfers} confirmed transfers for {settlements}",
            evidence={**evidence, "memo_type": row["memo_type"], "memo": row["memo_value"]},
        )
    if code == "PAYOUT_IDEMPOTENCY_CONFLICT":
        differs = [
            name
            for name in ("settlement_id", "destination", "asset", "amount")
            if row[f"differs_{name.removesuffix('_id')}"]
        ]
        return make_finding(
            code,
            subject=key,
            summary=(
                f"idempotency key {key} is on {row['row_count']} rows that differ in "
                f"{', '.join(differs)}"
            ),
            evidence={
                **evidence,
                "differs_in": differs,
                "assets": _values(row, "assets"),
                "amounts": sorted(format_stroops(int(a)) for a in _values(row, "amounts")),
            },
        )
    return _repeat(row, evidence, settlements, window)


def _repeat(
    row: Mapping[str, Any], evidence: dict[str, Any], settlements: str, window: timedelta
) -> Finding:
    asset = str(row["asset"])
    amount = format_stroops(int(row["amount_stroops"]))
    largest_gap = timedelta(microseconds=int(row["largest_gap_us"]))
    return make_finding(
        "PAYOUT_SUSPECTED_REPEAT",
        subject=str(row["destination"]),
        summary=(
            f"{row['transfers']} transfers of {amount} {asset.partition(':')[0]} to the same "
            f"destination for {settlements}, each within {format_duration(window)} of the previous"
        ),
        evidence={
            **evidence,
            "asset": asset,
            "amount": amount,
            "first_created_at": format_rfc3339(moment(int(row["first_us"]))),
            "last_created_at": format_rfc3339(moment(int(row["last_us"]))),
            "largest_gap_seconds": largest_gap.total_seconds(),
            "repeat_window_seconds": window.total_seconds(),
        },
    )
