"""The evidence laid over a settlement's verdict: already paid, or landed on another network.

Pure. A verdict that is not ``settled`` is overturned when a payout shows the
settlement was already paid by another transfer, or when the chain knows its
envelope under another network's passphrase; see :mod:`.settlements`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..amounts import format_stroops
from ..model import ChainTransaction, Finding, Payout, Settlement, make_finding
from .tx_index import index_transactions

PayoutIndex = Mapping[str, Sequence[Payout]]


def payouts_paying(s: Settlement, payouts: PayoutIndex) -> list[Payout]:
    """The payouts that show ``s`` was already paid by a transfer other than its own attempt.

    A payout is for ``s`` when its settlement id or idempotency key is the
    settlement's id or event key. It counts when ``confirmed``, or ``submitted``
    with a tx hash that is not one of the settlement's own (either hash of a
    fee-bump). The settlement's own attempt never counts: a row carrying one of
    its own hashes, or its own outbox row (``payout_id`` is the settlement id)
    with no hash of its own. Sorted by payout id, each payout once.
    """
    own = {h.lower() for h in s.all_tx_hashes}
    keys = {s.settlement_id} if s.event_key is None else {s.settlement_id, s.event_key}
    found: dict[str, Payout] = {}
    for key in keys:
        for payout in payouts.get(key, ()):
            tx_hash = payout.tx_hash.lower() if payout.tx_hash else None
            if tx_hash is not None and tx_hash in own:
                continue  # the settlement's own transaction
            if tx_hash is None and payout.payout_id == s.settlement_id:
                continue  # the settlement's own outbox row
            if payout.status == "confirmed" or (payout.status == "submitted" and tx_hash):
                found[payout.payout_id] = payout
    return [found[k] for k in sorted(found)]


def network_mismatch(
    s: Settlement, transactions: Mapping[str, ChainTransaction]
) -> tuple[str, str, ChainTransaction] | None:
    """``(network, hash, record)`` when the chain knows the envelope under another network.

    A network is "another" when its hashes are none of the settlement's own
    (which were computed under the network the export was read with). Only a
    ``success`` or ``failed`` record counts: the transaction was applied there.
    Success wins over failed; then networks in ``network_hashes`` order.
    """
    hits: list[tuple[int, str, str, ChainTransaction]] = []
    for network, hashes in other_networks(s):
        for tx_hash in hashes:
            tx = transactions.get(tx_hash.lower())
            if tx is not None and tx.status in ("success", "failed"):
                hits.append((0 if tx.status == "success" else 1, network, tx_hash.lower(), tx))
    if not hits:
        return None
    _, network, tx_hash, tx = min(hits, key=lambda hit: hit[0])
    return network, tx_hash, tx


def other_networks(s: Settlement) -> Iterable[tuple[str, tuple[str, ...]]]:
    """The envelope's hashes under each network other than the one it was read with."""
    own = {h.lower() for h in s.all_tx_hashes}
    for network, hashes in s.network_hashes:
        if not own & {h.lower() for h in hashes}:
            yield network, hashes


def _amounts(payouts: Sequence[Payout]) -> dict[str, str]:
    """Per asset, the sum of the payouts' amounts (a transfer recorded twice counted once)."""
    by_transfer = {p.transfer_key: p for p in sorted(payouts, key=lambda p: p.payout_id)}
    totals: dict[str, int] = defaultdict(int)
    for payout in by_transfer.values():
        totals[str(payout.asset)] += payout.amount
    return {asset: format_stroops(total) for asset, total in sorted(totals.items())}


def already_paid_finding(
    s: Settlement, paid: Sequence[Payout], state: str, reason: str, base: Mapping[str, Any]
) -> Finding:
    """``SETTLEMENT_ALREADY_PAID`` for ``s``: the payouts in ``paid`` show it was paid."""
    amounts = _amounts(paid)
    shown = ", ".join(
        f"{p.payout_id} ({p.status}{', tx ' + p.tx_hash.lower() if p.tx_hash else ''})"
        for p in paid
    )
    total = ", ".join(f"{amount} {asset}" for asset, amount in amounts.items())
    evidence = {
        **base,
        "payout_ids": [p.payout_id for p in paid],
        "payout_tx_hashes": sorted({p.tx_hash.lower() for p in paid if p.tx_hash}),
        "payout_statuses": {p.payout_id: p.status for p in paid},
        "amounts": amounts,
        "payouts_checked": True,
    }
    return make_finding(
        "SETTLEMENT_ALREADY_PAID",
        s.settlement_id,
        f"already paid by payout {shown} for {total}: the {state} verdict "
        f"({reason}) does not stand; do NOT retry (already_paid), a replay pays twice",
        evidence,
    )


def mismatch_finding(
    s: Settlement,
    mismatch: tuple[str, str, ChainTransaction],
    base: Mapping[str, Any],
    retry: str,
) -> Finding:
    """``SETTLEMENT_NETWORK_MISMATCH`` for ``s``: the chain knows its envelope elsewhere."""
    network, tx_hash, tx = mismatch
    landed = "landed" if tx.status == "success" else "was applied and failed"
    evidence = {
        **base,
        "matched_network": network,
        "matched_hash": tx_hash,
        "matched_status": tx.status,
        "network_hashes": {name: list(hashes) for name, hashes in s.network_hashes},
    }
    if tx.ledger is not None:
        evidence["matched_ledger"] = tx.ledger
    return make_finding(
        "SETTLEMENT_NETWORK_MISMATCH",
        s.settlement_id,
        f"the envelope {landed} on {network} as tx {tx_hash}, not on the network the export "
        f"was read with: wrong --network, or the worker signs for {network}; {retry}",
        evidence,
    )


@attrs.frozen
class EnvelopeNetworkCheck:
    """Whether an export's envelopes were found under ``--network`` or under another network.

    ``envelopes``: settlements with an envelope; ``found``: how many of them the
    chain records know under ``network``; ``elsewhere``: per other network, how
    many of them it knows there (most first). ``wrong_network`` is the exit-2
    case of the ``settlements`` command: none found under ``network``, some
    elsewhere; ``message`` says so.
    """

    network: str
    envelopes: int
    found: int
    elsewhere: tuple[tuple[str, int], ...]

    @property
    def wrong_network(self) -> bool:
        return self.envelopes > 0 and self.found == 0 and bool(self.elsewhere)

    @property
    def counts(self) -> str:
        """``none of N envelopes was found; M match testnet`` (the message without the option)."""
        matches = "; ".join(f"{count} match {name}" for name, count in self.elsewhere)
        return f"none of {self.envelopes} envelopes was found; {matches}"

    @property
    def message(self) -> str | None:
        if not self.wrong_network:
            return None
        return f"--network {self.network}: {self.counts}"

    def plus(self, other: EnvelopeNetworkCheck) -> EnvelopeNetworkCheck:
        """The check over both sets of settlements (one export read a batch at a time)."""
        elsewhere = dict(self.elsewhere)
        for name, count in other.elsewhere:
            elsewhere[name] = elsewhere.get(name, 0) + count
        return EnvelopeNetworkCheck(
            network=self.network,
            envelopes=self.envelopes + other.envelopes,
            found=self.found + other.found,
            elsewhere=_ranked(elsewhere),
        )


def check_envelope_network(
    settlements: Iterable[Settlement],
    *,
    transactions: Iterable[ChainTransaction] | Mapping[str, ChainTransaction],
    network: str,
) -> EnvelopeNetworkCheck:
    """Count the envelopes the chain records know under ``network`` and under the others.

    ``network`` is the name (or passphrase) the export was read with, for the
    message. A record counts when it is ``success`` or ``failed`` (the
    transaction was applied). Pure.
    """
    index = index_transactions(transactions)
    envelopes = found = 0
    elsewhere: dict[str, int] = defaultdict(int)
    for s in settlements:
        if not s.network_hashes:
            continue
        envelopes += 1
        if _applied(s.all_tx_hashes, index):
            found += 1
        for name, hashes in other_networks(s):
            if _applied(hashes, index):
                elsewhere[name] += 1
    return EnvelopeNetworkCheck(
        network=network, envelopes=envelopes, found=found, elsewhere=_ranked(elsewhere)
    )


def _ranked(elsewhere: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(elsewhere.items(), key=lambda item: (-item[1], item[0])))


def _applied(hashes: Iterable[str], index: Mapping[str, ChainTransaction]) -> bool:
    for tx_hash in hashes:
        tx = index.get(tx_hash.lower())
        if tx is not None and tx.status in ("success", "failed"):
            return True
    return False
