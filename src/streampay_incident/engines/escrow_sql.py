"""Escrow reconciliation on the DuckDB engine: SQL picks the payout rows that can matter.

What is SQL and what is not. The chain payments (few: a file or a live probe,
already Python values) go into a DuckDB table of their hashes; a join of the
typed ``payouts`` relation with it selects every row the reference
:func:`~streampay_incident.checks.escrow.reconcile_escrow` could pair, flag or
count, and only those come back as :class:`~streampay_incident.model.Payout`
values:

- every row whose tx hash (lower-cased) is a hash of an escrow outflow (a
  fee-bump's outer and inner hashes, failed transactions included), whatever
  its status: these are paired with the payments;
- every ``confirmed`` row: one whose transaction is not among the outflows is
  called missing, not checked or outside the window, and its finding lists it;
- one other row with a tx hash that no outflow has, if any: the live RPC path
  resolves fee-bumps only when such a row exists
  (:func:`~streampay_incident.checks.fee_bumps.hashes_to_resolve`).

Every other row (not confirmed, its hash on no outflow) is ignored by the
reference, so the pairing itself (union of fee-bump hashes, destination /
asset / amount pairs, the window) stays the reference's pure code over the
narrowed rows; ``tests/test_escrow_sql.py`` holds the two to the same findings
on random rows and payments. Memory grows with the rows above, not with the
export: the five payout rules never build a row, and the rows no escrow finding
or pair can name stay in DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ..checks.escrow import is_outflow
from ..io.payout_fields import parse_asset, parse_memo
from ..model import Asset, ChainPayment, Payout, Report
from .findings import moment

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

#: The payout rows that can matter to these payments out of this escrow.
RowsFor = Callable[[Sequence[ChainPayment], str], Sequence[Payout]]
#: The reconciliation, given how to get those rows: ``reconcile(rows_for) -> Report``.
EscrowReconcile = Callable[[RowsFor], Report]

_COLUMNS = (
    "payout_id, settlement_id, destination, asset, amount_stroops, status, created_us, "
    "tx_hash, memo_type, memo_value, idempotency_key"
)
# The rows :func:`reconcile_escrow` (and the live path's fee-bump resolution and
# classic-event coverage) can read for a set of outflow hashes; see the module docstring.
NARROWED_SQL = f"""
SELECT {_COLUMNS} FROM payouts
WHERE status = 'confirmed' OR tx_hash IN (SELECT hash FROM escrow_hashes)
UNION ALL
SELECT * FROM (
    SELECT {_COLUMNS} FROM payouts
    WHERE status <> 'confirmed' AND tx_hash IS NOT NULL
      AND tx_hash NOT IN (SELECT hash FROM escrow_hashes)
    ORDER BY payout_id LIMIT 1
) AS witness
"""
_FETCH_ROWS = 10_000


def outflow_hashes(payments: Sequence[ChainPayment], escrow: str) -> list[str]:
    """Every hash (lower-case) of the payments out of ``escrow``, failed ones included; sorted."""
    return sorted({h for p in payments if is_outflow(p, escrow) for h in p.all_hashes})


class Narrowing:
    """The rows that can matter for a set of payments, read from ``payouts`` in ``con``.

    Calling it again with the very same payments (the live path asks more than
    once) returns the rows already read.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._assets: dict[str, Asset] = {}
        # Few destinations pay many rows: one string each, not one a row.
        self._destinations: dict[str, str] = {}
        self._last: tuple[Sequence[ChainPayment], str, list[Payout]] | None = None

    def __call__(self, payments: Sequence[ChainPayment], escrow: str) -> list[Payout]:
        if self._last is not None and self._last[0] is payments and self._last[1] == escrow:
            return self._last[2]
        self._last = None  # free the rows of other payments first
        con = self._con
        con.execute("CREATE OR REPLACE TEMP TABLE escrow_hashes (hash VARCHAR)")
        hashes = outflow_hashes(payments, escrow)
        if hashes:
            con.execute("INSERT INTO escrow_hashes SELECT unnest(?::VARCHAR[])", [hashes])
        rows = list(self._payouts(con.execute(NARROWED_SQL)))
        self._last = (payments, escrow, rows)
        return rows

    def _payouts(self, cursor: Any) -> Iterator[Payout]:
        while batch := cursor.fetchmany(_FETCH_ROWS):
            for (
                payout_id, settlement_id, destination, asset, amount, status, created_us,
                tx_hash, memo_type, memo_value, idempotency_key,
            ) in batch:  # fmt: skip
                yield Payout(
                    payout_id=payout_id,
                    settlement_id=settlement_id,
                    destination=self._destinations.setdefault(destination, destination),
                    asset=self._asset(asset),
                    amount=amount,
                    status=status,
                    created_at=moment(created_us),
                    tx_hash=tx_hash,
                    memo=parse_memo(memo_type, memo_value),
                    idempotency_key=idempotency_key,
                )

    def _asset(self, text: str) -> Asset:
        asset = self._assets.get(text)
        if asset is None:
            asset = self._assets[text] = parse_asset(text)
        return asset


def with_escrow(report: Report, reconciled: Report) -> Report:
    """The payouts report with the reconciliation's findings and inputs after its own,
    as the reference's use case adds them."""
    return attrs.evolve(
        report,
        findings=(*report.findings, *reconciled.findings),
        inputs={**report.inputs, **reconciled.inputs},
    )
