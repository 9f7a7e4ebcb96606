"""Fee-bump hashes of RPC events: which to resolve, and the payments with both hashes. Pure.

``getEvents`` reports the outer hash of a fee-bump, while a payout row may
have recorded the inner one; ``getTransaction`` finds either and its envelope
gives both. Only hashes that could matter are resolved: the transactions of
escrow outflows that no payout row names, and only while some payout row
names a hash that no outflow has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from ..model import ChainPayment, Payout
from .escrow import is_outflow

#: At most this many getTransaction calls per reconciliation.
MAX_RESOLVE = 100


def hashes_to_resolve(
    payouts: Iterable[Payout], payments: Sequence[ChainPayment], escrow: str
) -> list[str]:
    """Listed hashes of the escrow's outflows no payout row names, when a row's hash is
    on no outflow (it may be the inner hash of one of them); sorted, at most
    :data:`MAX_RESOLVE`."""
    outflows = [p for p in payments if is_outflow(p, escrow)]
    on_chain = {h for p in outflows for h in p.all_hashes}
    named = {r.tx_hash.lower() for r in payouts if r.tx_hash}
    if not named - on_chain:
        return []
    unnamed = {p.tx_hash.lower() for p in outflows if not set(p.all_hashes) & named}
    return sorted(unnamed)[:MAX_RESOLVE]


def with_hashes(
    payments: Iterable[ChainPayment], known: Mapping[str, Sequence[str]]
) -> tuple[ChainPayment, ...]:
    """Each payment whose listed hash was resolved, with every hash of its transaction."""
    out: list[ChainPayment] = []
    for p in payments:
        extra = known.get(p.tx_hash.lower())
        if extra:
            p = attrs.evolve(p, hashes=tuple(dict.fromkeys((*p.hashes, *extra))))
        out.append(p)
    return tuple(out)
