"""Which chain answers count: what a live lookup learned, reduced to what can be trusted. Pure.

Feeds retry safety, so it errs towards "unknown": a found transaction is
trusted from any endpoint (its hash commits to the network), a ``not_found``
or a sequence number only from an endpoint confirmed on the expected network.
"""

from __future__ import annotations

from ..model import ChainTransaction
from ..observations import SettlementChainFacts, SettlementChainObservations
from .chain import latest_ledger_close_time


def _unknown(tx_hash: str, source: str) -> ChainTransaction:
    return ChainTransaction(hash=tx_hash, status="unknown", source=source)


def settlement_chain_facts(
    observed: SettlementChainObservations, *, expected_network: str
) -> SettlementChainFacts:
    """Keep only what can be trusted. Pure.

    A found transaction is trusted from any endpoint (its hash commits to the
    network); a ``not_found`` only from an endpoint confirmed on
    ``expected_network`` (else ``unknown``); a sequence number likewise (the
    highest wins: sequence numbers only grow, and a lagging Horizon shows an
    older one); the latest ledger close time is the newest on that network.
    """
    confirmed = {
        obs.url for obs in observed.chain.endpoints if obs.network_passphrase == expected_network
    }
    transactions: list[ChainTransaction] = []
    for answer in observed.transactions:
        tx = answer.transaction
        if tx.status == "not_found" and answer.endpoint not in confirmed:
            tx = _unknown(tx.hash, tx.source)
        transactions.append(tx)
    sequences: dict[str, int] = {}
    for seq in observed.sequences:
        if seq.endpoint in confirmed:
            sequences[seq.account] = max(seq.sequence, sequences.get(seq.account, seq.sequence))
    return SettlementChainFacts(
        transactions=tuple(transactions),
        account_sequences=sequences,
        latest_ledger_close_time=latest_ledger_close_time(
            observed.chain, expected_network=expected_network
        ),
    )
