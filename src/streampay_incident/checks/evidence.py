"""Which chain answers count: what a live lookup learned, reduced to what can be trusted. Pure.

Feeds retry safety, so it errs towards "unknown": a found transaction is
trusted from any endpoint (its hash commits to the network), a ``not_found``
or a sequence number only from an endpoint confirmed on the expected network.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..model import ChainTransaction
from ..observations import ChainObservations, SettlementChainFacts, SettlementChainObservations
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


def endpoints_on_other_network(
    observed: ChainObservations, *, expected_network: str
) -> tuple[tuple[str, str, str], ...]:
    """``(url, kind, passphrase)`` of every endpoint that reported another passphrase. Pure.

    Horizon's root and RPC ``getNetwork`` name the network an endpoint serves;
    one serving another network than ``--network`` would answer "not found"
    for every hash computed under ``--network``, which looks like proof of
    expiry. An endpoint that did not say is not listed (it is graded, and its
    ``not_found`` is not trusted, see :func:`settlement_chain_facts`).
    """
    return tuple(
        (obs.url, obs.kind, obs.network_passphrase)
        for obs in observed.endpoints
        if obs.network_passphrase is not None and obs.network_passphrase != expected_network
    )


_FAILED_OUTCOMES = ("unreachable", "http_error", "rate_limited", "bad_body", "rpc_error")


def endpoint_lookups(observed: SettlementChainObservations) -> list[dict[str, Any]]:
    """Per endpoint: how many lookups it was asked, how many it answered, and its errors. Pure.

    An answer is a record or a ``not_found``; an ``unknown`` is not one. The
    errors name what went wrong the way on-call says it (refused, timeout,
    HTTP status), from the chain round's calls and from the lookups, so an
    endpoint that failed is never silently counted.
    """
    order: dict[str, str] = {}
    for obs in observed.chain.endpoints:
        order.setdefault(obs.url, obs.kind)
    for answer in observed.transactions:
        kind = answer.transaction.source.split(" ", 1)[0]
        order.setdefault(answer.endpoint, kind if kind in ("horizon", "rpc") else "unknown")
    out: list[dict[str, Any]] = []
    for url, kind in order.items():
        errors: list[str] = []
        for obs in observed.chain.endpoints:
            if obs.url == url:
                errors += [
                    f"{c.call}: {c.detail or c.outcome}"
                    for c in obs.calls
                    if c.outcome in _FAILED_OUTCOMES
                ]
        mine = [a.transaction for a in observed.transactions if a.endpoint == url]
        unknown = Counter(tx.detail or "no answer" for tx in mine if tx.status == "unknown")
        errors += [f"{n} lookup(s): {detail}" for detail, n in sorted(unknown.items())]
        out.append(
            {
                "url": url,
                "kind": kind,
                "lookups_asked": len(mine),
                "lookups_answered": sum(1 for tx in mine if tx.status != "unknown"),
                "errors": errors,
            }
        )
    return out


def endpoint_errors_line(endpoints: list[dict[str, Any]]) -> str:
    """One line naming every endpoint that failed and its errors ('' when none did). Pure."""
    return "; ".join(
        f"{e['kind']} {e['url']}: {', '.join(e['errors'])}" for e in endpoints if e["errors"]
    )
