"""Escrow reconciliation: what left the escrow on chain against StreamPay's payout rows.

Over 400 lines as one thing: one pairing of rows with payments and its findings.

Pure: payout rows and chain payments in, findings out. The chain payments come
from :mod:`streampay_incident.io.chain_payments` (a file) or
:mod:`streampay_incident.probes.payments` (live Horizon / Stellar RPC), which
also say which time window the chain data covers (:class:`CoverageWindow`).

Counting only what actually moved:

- a payment of a failed transaction moved nothing and is ignored (it is only
  quoted as evidence when a confirmed payout points at it);
- a fee-bump transaction has an outer and an inner hash; a payout row may have
  recorded either, and both identify the same chain payments;
- a path payment's destination receives ``amount`` of the destination asset;
  that (not the ``source_amount`` the escrow sent) is what the payout promised;
- ``create_account`` moves the ``starting_balance`` out of the funder;
- ``account_merge`` moves the whole merged balance. Horizon's payment records
  do not carry that amount (``amount`` is None): such a payment matches a
  payout row by tx hash, destination and asset only, and its findings say the
  amount is unknown;
- payments into the escrow (funding) and the escrow paying itself (a path
  payment converting between its own assets) are not outflows;
- destinations compare exactly as given: an ``M...`` muxed address differs from
  its ``G...`` base and from other muxed ids; except that a ``G...`` row with a
  memo id matches that account muxed with the same id (CAP-67 events carry the
  memo id as ``to_muxed_id``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..amounts import format_stroops
from ..hookspecs import hookimpl
from ..model import (
    Asset,
    ChainPayment,
    CoverageWindow,
    Finding,
    Payout,
    make_finding,
)
from ..stellar.strkey import base_account, muxed_parts
from ..timefmt import format_rfc3339

MERGE_AMOUNT_NOTE = (
    "Horizon payment records for account_merge do not carry the merged amount; "
    "read it from the operation's account_credited effect"
)


# --- reconciliation ------------------------------------------------------------------------


def _asset_key(asset: Asset) -> tuple[str, ...]:
    # ``native`` and ``XLM`` are the same asset; credit assets by code and issuer.
    return ("native",) if asset.is_native else (asset.code, asset.issuer or "")


def _asset_text(asset: Asset | None) -> str | None:
    return None if asset is None else str(asset)


def is_outflow(payment: ChainPayment, escrow: str) -> bool:
    """A payment out of ``escrow`` to someone else (funding and self-payments are not)."""
    return (
        base_account(payment.from_account) == escrow and base_account(payment.to_account) != escrow
    )


def _payment_json(p: ChainPayment) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "tx_hash": p.tx_hash.lower(),
        "tx_hashes": list(p.all_hashes),
        "operation_id": p.operation_id,
        "kind": p.kind,
        "successful": p.successful,
        "from": p.from_account,
        "destination": p.to_account,
        "asset": str(p.asset),
        "amount": format_stroops(p.amount) if p.amount is not None else None,
        "ledger": p.ledger,
        "closed_at": format_rfc3339(p.closed_at) if p.closed_at else None,
    }
    if p.amount is None:
        doc["amount_note"] = MERGE_AMOUNT_NOTE if p.kind == "account_merge" else "amount unknown"
    if p.source_asset is not None or p.source_amount is not None:
        doc["source_asset"] = _asset_text(p.source_asset)
        doc["source_amount"] = (
            format_stroops(p.source_amount) if p.source_amount is not None else None
        )
    return doc


def _payout_json(row: Payout) -> dict[str, Any]:
    return {
        "payout_id": row.payout_id,
        "settlement_id": row.settlement_id,
        "status": row.status,
        "tx_hash": row.tx_hash.lower() if row.tx_hash else None,
        "destination": row.destination,
        "asset": str(row.asset),
        "amount": format_stroops(row.amount),
        "created_at": format_rfc3339(row.created_at),
    }


def _payment_order(p: ChainPayment) -> tuple[Any, ...]:
    return (
        p.tx_hash.lower(),
        p.operation_id or "",
        p.to_account,
        _asset_key(p.asset),
        -1 if p.amount is None else p.amount,
        p.kind,
    )


def _payout_order(row: Payout) -> tuple[str, ...]:
    return ((row.tx_hash or "").lower(), row.payout_id)


def _sums(items: Iterable[tuple[Asset, int | None]]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for asset, amount in items:
        if amount is not None:
            totals[str(asset) if not asset.is_native else "native"] += amount
    return dict(totals)


def _decimal_map(totals: Mapping[str, int]) -> dict[str, str]:
    return {asset: format_stroops(amount) for asset, amount in sorted(totals.items())}


class _Transactions:
    """Union of hashes: every hash a payment answers to joins one transaction."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def find(self, h: str) -> str:
        root = h
        while self._parent.setdefault(root, root) != root:
            root = self._parent[root]
        while self._parent[h] != root:
            self._parent[h], h = root, self._parent[h]
        return root

    def join(self, hashes: Sequence[str]) -> None:
        roots = sorted({self.find(h) for h in hashes})
        for other in roots[1:]:
            self._parent[other] = roots[0]

    def known(self, h: str) -> bool:
        return h in self._parent


def _same_destination(row: Payout, paid_to: str) -> bool:
    """Exactly the row's destination; or, for a ``G...`` row with a memo id, that account
    muxed with the memo id: a CAP-67 event carries a transaction's memo id as
    ``to_muxed_id``, which reads as a muxed ``M...`` destination."""
    if paid_to == row.destination:
        return True
    if not paid_to.startswith("M") or row.memo.type != "id":
        return False
    base, muxed_id = muxed_parts(paid_to)
    return base == row.destination and muxed_id == row.memo.value


def _pair(
    rows: list[Payout], outflows: list[ChainPayment]
) -> tuple[list[Payout], list[ChainPayment]]:
    """Pair each row with a payment of the same destination, asset and amount.

    Returns what is left unpaired on each side. A payment of unknown amount
    (Horizon ``account_merge``) pairs on destination and asset alone, after the
    exact pairs are taken.
    """
    left_rows = sorted(rows, key=_payout_order)
    left_pay = sorted(outflows, key=_payment_order)
    for exact in (True, False):
        remaining_rows: list[Payout] = []
        for row in left_rows:
            match = None
            for i, p in enumerate(left_pay):
                if not _same_destination(row, p.to_account) or _asset_key(p.asset) != _asset_key(
                    row.asset
                ):
                    continue
                if (exact and p.amount == row.amount) or (not exact and p.amount is None):
                    match = i
                    break
            if match is None:
                remaining_rows.append(row)
            else:
                del left_pay[match]
        left_rows = remaining_rows
    return left_rows, left_pay


def _differences(rows: list[Payout], outflows: list[ChainPayment]) -> list[str]:
    """Which of destination, asset, amount disagree (for one row against one payment)."""
    if len(rows) != 1 or len(outflows) != 1:
        return ["payments"]
    row, pay = rows[0], outflows[0]
    diffs = []
    if not _same_destination(row, pay.to_account):
        diffs.append("destination")
    if _asset_key(row.asset) != _asset_key(pay.asset):
        diffs.append("asset")
    if pay.amount is not None and pay.amount != row.amount:
        diffs.append("amount")
    return diffs


def reconcile_escrow(
    payouts: Iterable[Payout],
    chain_payments: Iterable[ChainPayment],
    *,
    escrow: str,
    window: CoverageWindow,
) -> list[Finding]:
    """Compare payout rows with what actually left ``escrow`` on chain.

    Findings (sorted by code and subject, so the result does not depend on
    input order):

    - ``ESCROW_UNRECORDED_OUTFLOW``: a successful payment out of the escrow,
      inside ``window``, whose transaction (any of its hashes) no payout row
      names. Subject: the tx hash.
    - ``ESCROW_AMOUNT_MISMATCH``: the rows naming a transaction and the
      escrow's payments in it do not pair up one to one on destination, asset
      and amount. Subject: the tx hash the rows recorded.
    - ``ESCROW_RECORD_NOT_ON_CHAIN``: a ``confirmed`` row created inside
      ``window`` whose tx hash has no successful payment from the escrow (or
      that has no tx hash at all). Subject: the tx hash, else the payout_id.
    - ``ESCROW_OUTSIDE_WINDOW`` [info]: confirmed rows that match nothing but
      were created outside ``window`` (not called missing). Subject: the escrow.
    - ``ESCROW_COVERAGE_INCOMPLETE`` [warning]: the chain source failed or does
      not cover everything asked (``window.complete`` False). No row is then
      called missing: an unreachable source is not evidence. The confirmed
      rows that match nothing are counted as not checked, and the finding
      names the failed endpoint and its error. Subject: the escrow.
    """
    rows = list(payouts)
    payments = list(chain_payments)
    findings: list[Finding] = []

    outflows = [p for p in payments if p.successful and is_outflow(p, escrow)]
    failed_out = [p for p in payments if not p.successful and is_outflow(p, escrow)]
    succeeded_elsewhere = [p for p in payments if p.successful and not is_outflow(p, escrow)]

    txs = _Transactions()
    for p in outflows:
        txs.join(p.all_hashes)
    by_tx: dict[str, list[ChainPayment]] = defaultdict(list)
    for p in outflows:
        by_tx[txs.find(p.all_hashes[0])].append(p)

    rows_by_tx: dict[str, list[Payout]] = defaultdict(list)
    unmatched_rows: list[Payout] = []
    for row in rows:
        h = row.tx_hash.lower() if row.tx_hash else None
        if h is not None and txs.known(h):
            rows_by_tx[txs.find(h)].append(row)
        else:
            unmatched_rows.append(row)

    outside_chain: list[ChainPayment] = []
    for root, group in by_tx.items():
        recorded = rows_by_tx.get(root, [])
        group = sorted(group, key=_payment_order)
        if not recorded:
            if not any(window.contains(p.closed_at) for p in group):
                outside_chain.extend(group)
                continue
            findings.append(_unrecorded(group, escrow))
            continue
        left_rows, left_pay = _pair(recorded, group)
        if left_rows or left_pay:
            findings.append(_mismatch(recorded, group, left_rows, left_pay, escrow))

    failed_by_hash: dict[str, list[ChainPayment]] = defaultdict(list)
    for p in failed_out:
        for h in p.all_hashes:
            failed_by_hash[h].append(p)
    elsewhere_hashes = {h for p in succeeded_elsewhere for h in p.all_hashes}

    missing: dict[str, list[Payout]] = defaultdict(list)
    outside_rows: list[Payout] = []
    unchecked: list[Payout] = []
    for row in unmatched_rows:
        if row.status != "confirmed":
            continue
        if not window.contains(row.created_at):
            outside_rows.append(row)
            continue
        if not window.complete:
            # The data may end, or have a hole, anywhere: absence proves nothing.
            unchecked.append(row)
            continue
        missing[row.tx_hash.lower() if row.tx_hash else row.payout_id].append(row)
    for subject, group_rows in missing.items():
        findings.append(
            _not_on_chain(
                subject,
                group_rows,
                failed_by_hash.get(subject, []),
                subject in elsewhere_hashes,
                escrow,
                window,
            )
        )

    if outside_rows or outside_chain:
        findings.append(_outside(outside_rows, outside_chain, escrow, window))
    if not window.complete:
        findings.append(_coverage_incomplete(unchecked, escrow, window))

    return sorted(findings, key=lambda f: (f.code, f.subject))


def _unrecorded(group: list[ChainPayment], escrow: str) -> Finding:
    subject = min(p.tx_hash.lower() for p in group)
    moved = _sums((p.asset, p.amount) for p in group)
    unknown = [p for p in group if p.amount is None]
    amounts = ", ".join(f"{amt} {asset}" for asset, amt in _decimal_map(moved).items())
    if unknown:
        amounts = (amounts + " and " if amounts else "") + "an unknown amount (account_merge)"
    destinations = sorted({p.to_account for p in group})
    evidence: dict[str, Any] = {
        "escrow": escrow,
        "payout_ids": [],
        "tx_hashes": sorted({h for p in group for h in p.all_hashes}),
        "on_chain": [_payment_json(p) for p in group],
        "destinations": destinations,
        "amount_at_risk": _decimal_map(moved),
    }
    if unknown:
        evidence["amount_unknown"] = MERGE_AMOUNT_NOTE
    return make_finding(
        "ESCROW_UNRECORDED_OUTFLOW",
        subject=subject,
        summary=(
            f"{amounts} left escrow {escrow} in tx {subject} to {', '.join(destinations)} "
            "and no payout row records this transaction"
        ),
        evidence=evidence,
    )


def _mismatch(
    recorded: list[Payout],
    group: list[ChainPayment],
    left_rows: list[Payout],
    left_pay: list[ChainPayment],
    escrow: str,
) -> Finding:
    recorded = sorted(recorded, key=_payout_order)
    subject = min(r.tx_hash.lower() for r in recorded if r.tx_hash)
    on_chain = _sums((p.asset, p.amount) for p in group)
    in_rows = _sums((r.asset, r.amount) for r in recorded)
    at_risk = {
        asset: amount - in_rows.get(asset, 0)
        for asset, amount in on_chain.items()
        if amount > in_rows.get(asset, 0)
    }
    diffs = _differences(left_rows, left_pay)
    if left_rows and left_pay:
        what = f"{', '.join(diffs)} differ"
    elif left_pay:
        what = f"{len(left_pay)} payment(s) out of the escrow in this tx match no row"
    else:
        what = f"{len(left_rows)} row(s) match no payment out of the escrow in this tx"
    evidence: dict[str, Any] = {
        "escrow": escrow,
        "payout_ids": sorted(r.payout_id for r in recorded),
        "tx_hashes": sorted({h for p in group for h in p.all_hashes}),
        "differences": diffs if (left_rows and left_pay) else [],
        "recorded": [_payout_json(r) for r in recorded],
        "on_chain": [_payment_json(p) for p in group],
        "unmatched_recorded": [_payout_json(r) for r in left_rows],
        "unmatched_on_chain": [_payment_json(p) for p in left_pay],
        "recorded_total": _decimal_map(in_rows),
        "on_chain_total": _decimal_map(on_chain),
        "amount_at_risk": _decimal_map(at_risk),
    }
    if any(p.amount is None for p in group):
        evidence["amount_unknown"] = MERGE_AMOUNT_NOTE
    return make_finding(
        "ESCROW_AMOUNT_MISMATCH",
        subject=subject,
        summary=f"tx {subject}: payout record and escrow payment disagree: {what}",
        evidence=evidence,
    )


def _not_on_chain(
    subject: str,
    rows: list[Payout],
    failed: list[ChainPayment],
    seen_elsewhere: bool,
    escrow: str,
    window: CoverageWindow,
) -> Finding:
    rows = sorted(rows, key=_payout_order)
    has_hash = rows[0].tx_hash is not None
    if not has_hash:
        chain_status, why = "no_tx_hash", "the row has no tx hash to look for"
    elif failed:
        chain_status, why = "failed", "its transaction failed on chain and moved nothing"
    elif seen_elsewhere:
        chain_status = "not_from_escrow"
        why = "the transaction succeeded but paid nothing out of the escrow"
    else:
        chain_status, why = "not_found", "no successful payment from the escrow has this hash"
    recorded = _sums((r.asset, r.amount) for r in rows)
    evidence: dict[str, Any] = {
        "escrow": escrow,
        "payout_ids": [r.payout_id for r in rows],
        "tx_hashes": [subject] if has_hash else [],
        "chain_status": chain_status,
        "recorded": [_payout_json(r) for r in rows],
        "recorded_total": _decimal_map(recorded),
        "window": window.to_json(),
    }
    if failed:
        evidence["on_chain"] = [_payment_json(p) for p in sorted(failed, key=_payment_order)]
    ids = ", ".join(r.payout_id for r in rows)
    who = f"payout {ids} is" if len(rows) == 1 else f"payouts {ids} are"
    return make_finding(
        "ESCROW_RECORD_NOT_ON_CHAIN",
        subject=subject,
        summary=f"{who} confirmed but {why}",
        evidence=evidence,
    )


def _outside(
    rows: list[Payout], chain: list[ChainPayment], escrow: str, window: CoverageWindow
) -> Finding:
    rows = sorted(rows, key=_payout_order)
    span = (
        f"{format_rfc3339(window.since) if window.since else 'the start'} .. "
        f"{format_rfc3339(window.until) if window.until else 'now'}"
    )
    parts = []
    if rows:
        parts.append(
            f"{len(rows)} confirmed payout row(s) fall outside the chain data's window {span} "
            "and were not checked"
        )
    if chain:
        parts.append(
            f"{len(chain)} escrow payment(s) in the chain data fall outside the window {span} "
            "and were not judged"
        )
    evidence: dict[str, Any] = {
        "escrow": escrow,
        "payout_ids": [r.payout_id for r in rows],
        "tx_hashes": sorted({r.tx_hash.lower() for r in rows if r.tx_hash}),
        "window": window.to_json(),
        "outside_recorded": [_payout_json(r) for r in rows],
    }
    if chain:
        evidence["outside_on_chain"] = [_payment_json(p) for p in sorted(chain, key=_payment_order)]
    return make_finding(
        "ESCROW_OUTSIDE_WINDOW",
        subject=escrow,
        summary="; ".join(parts),
        evidence=evidence,
    )


def _coverage_incomplete(rows: list[Payout], escrow: str, window: CoverageWindow) -> Finding:
    rows = sorted(rows, key=_payout_order)
    if window.failed_endpoint is not None:
        why = f"chain source {window.failed_endpoint} failed: {window.failure}"
    else:
        why = "the chain data does not cover everything asked"
    if window.note and window.note != window.failure:
        why += f" ({window.note})"
    evidence: dict[str, Any] = {
        "escrow": escrow,
        "rows_not_checked": len(rows),
        "payout_ids": [r.payout_id for r in rows],
        "tx_hashes": sorted({r.tx_hash.lower() for r in rows if r.tx_hash}),
        "window": window.to_json(),
        "not_checked": [_payout_json(r) for r in rows],
    }
    if window.failed_endpoint is not None:
        evidence["endpoint"] = window.failed_endpoint
        evidence["error"] = window.failure
    return make_finding(
        "ESCROW_COVERAGE_INCOMPLETE",
        subject=escrow,
        summary=(
            f"{why}; {len(rows)} confirmed payout row(s) could not be checked against the "
            "chain (not called missing)"
        ),
        evidence=evidence,
    )


@hookimpl
def streampay_incident_register_escrow_checks() -> Sequence[Any]:
    """The built-in reconciliation is a plugin like any other."""
    return [reconcile_escrow]
