"""The transactions index the settlement checks read: every hash -> its strongest record. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from ..model import ChainTransaction


class TransactionIndex(dict[str, ChainTransaction]):
    """Lower-case tx hash -> the strongest record the chain gave for it.

    This is the ``transactions`` mapping settlement checks receive through
    ``streampay_incident_register_settlement_checks``: every hash a transaction
    answers to (outer and inner of a fee-bump) maps to its strongest record.
    What else the chain said (grade, latest close time, account sequences)
    comes in the check's typed ``context``
    (:class:`~streampay_incident.model.SettlementContext`), not in here.
    """

    __slots__ = ()

    def __init__(
        self,
        transactions: Iterable[ChainTransaction] | Mapping[str, ChainTransaction] = (),
    ) -> None:
        super().__init__()
        if isinstance(transactions, Mapping):
            for key, tx in transactions.items():
                self._add(str(key).lower(), tx)
                for tx_hash in tx.all_hashes:
                    self._add(tx_hash.lower(), tx)
        else:
            for tx in transactions:
                for tx_hash in tx.all_hashes:
                    self._add(tx_hash.lower(), tx)

    def _add(self, tx_hash: str, tx: ChainTransaction) -> None:
        current = self.get(tx_hash)
        if current is None or _strength(tx) > _strength(current):
            self[tx_hash] = tx


def _strength(tx: ChainTransaction) -> tuple[int, float]:
    if tx.status == "success":
        return (4, 0.0)
    if tx.status == "failed":
        return (3, 0.0)
    if tx.status == "unknown":
        return (2, 0.0)
    if tx.oldest_ledger_close_time is None:  # Horizon 404: no retention window
        return (1, math.inf)
    return (1, -tx.oldest_ledger_close_time.timestamp())  # the longer window knows more


def index_transactions(
    transactions: Iterable[ChainTransaction] | Mapping[str, ChainTransaction],
) -> TransactionIndex:
    """Every hash each transaction answers to (lower-case) -> the strongest record."""
    if isinstance(transactions, TransactionIndex):
        return transactions
    return TransactionIndex(transactions)
