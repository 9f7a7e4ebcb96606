"""Live lookups for settlement triage: what the network says about each tx hash, now.

Horizon ``GET /transactions/{hash}`` and Stellar RPC ``getTransaction``
answer for each hash (every endpoint is asked, so a lagging Horizon's 404 for
a transaction that did land is overruled by another endpoint that has it);
Horizon ``GET /accounts/{id}`` gives a source account's current sequence
number; a chain-health round, run at the same time under the same deadline,
gives the grade and the latest ledger close time.

What an answer means (the pure classifier decides the rest):

- Horizon 200 -> the record (success or failed); Horizon 404 -> ``not_found``;
- RPC SUCCESS/FAILED -> the record; RPC NOT_FOUND -> ``not_found`` with the
  RPC's ``oldestLedgerCloseTime`` (before that the RPC cannot know);
- Horizon 410 ``before_history``, a lookup that timed out or errored, an RPC
  NOT_FOUND without a retention window, and a ``not_found`` from an endpoint
  not confirmed to be on the expected network -> ``unknown``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ..errors import InputError
from ..model import ChainTransaction, Settlement
from ..observations import (
    SequenceAnswer,
    SettlementChainObservations,
    TransactionAnswer,
    as_int,
)
from . import ChainConfig, ChainObservations, observe_chain
from .horizon_history import FULL_HISTORY, HorizonHistory, horizon_history
from .http import (
    READ_RETRY,
    Deadline,
    Exchange,
    ExchangeSink,
    bounded_map,
    fetch,
    join_url,
    run_within,
    transport_outcome,
)
from .rpc import rpc_reply, rpc_request_body

if TYPE_CHECKING:
    import httpx

    from .record import Recorder

DEFAULT_CONCURRENCY = 8
# The inner rounds end themselves at the deadline; the outer bound waits a little longer.
_GRACE = 0.5


_NO_ANSWER = "no answer before the deadline"


def _unknown(tx_hash: str, source: str, detail: str = _NO_ANSWER) -> ChainTransaction:
    return ChainTransaction(hash=tx_hash, status="unknown", source=source, detail=detail)


def _exchange_problem(exchange: Exchange) -> str:
    """What went wrong with one lookup, the way on-call says it (refused, timeout, HTTP 503)."""
    decided = transport_outcome(exchange)
    if decided is not None:
        return decided.detail
    return f"HTTP {exchange.status}"


def horizon_transaction(
    exchange: Exchange, tx_hash: str, history: HorizonHistory = FULL_HISTORY
) -> ChainTransaction:
    """Interpret ``GET /transactions/{hash}``: record, ``not_found`` (404) or ``unknown``.

    A 404 covers the Horizon's ``history``: all ledgers, or from its start (kept as
    the not-found's window, like an RPC's retention); when where it starts is
    unknown the 404 is ``unknown``.
    """
    from ..io.transactions import chain_transaction_from_horizon

    source = f"horizon {exchange.endpoint}"
    if exchange.status == 404:
        if history.full:
            return ChainTransaction(hash=tx_hash, status="not_found", source=source)
        if history.starts_at is None:
            at = f"ledger {history.elder_ledger}" if history.elder_ledger else "an unknown ledger"
            return _unknown(
                tx_hash,
                source,
                f"404, but Horizon keeps history from {at} closed at an unknown time",
            )
        return ChainTransaction(
            hash=tx_hash,
            status="not_found",
            source=source,
            oldest_ledger_close_time=history.starts_at,
        )
    if exchange.status != 200:
        # 410 before_history, 429, 5xx, no answer: it may exist; we cannot tell.
        return _unknown(tx_hash, source, _exchange_problem(exchange))
    try:
        record = exchange.json_body()
        return chain_transaction_from_horizon(record, source=source)
    except (ValueError, InputError):
        return _unknown(tx_hash, source, "HTTP 200 but not a transaction record")


def rpc_transaction(exchange: Exchange, tx_hash: str) -> ChainTransaction:
    """Interpret ``getTransaction``: record, ``not_found`` (with the window) or ``unknown``."""
    from ..io.transactions import chain_transaction_from_rpc

    source = f"rpc {exchange.endpoint}"
    call, result, _error = rpc_reply(exchange)
    if call.outcome != "ok" or not isinstance(result, Mapping):
        return _unknown(tx_hash, source, call.detail or f"HTTP {exchange.status}")
    try:
        transaction = chain_transaction_from_rpc(result, tx_hash, source=source)
    except InputError:
        return _unknown(tx_hash, source, "not a getTransaction result")
    if transaction.status == "not_found" and transaction.oldest_ledger_close_time is None:
        # Every RPC keeps a window; one that does not say where it starts proves nothing.
        return _unknown(tx_hash, source, "NOT_FOUND without a retention window")
    return transaction


def horizon_sequence(exchange: Exchange) -> int | None:
    """``sequence`` of ``GET /accounts/{id}`` (a decimal string), or None."""
    if exchange.status != 200:
        return None
    try:
        doc = exchange.json_body()
    except ValueError:
        return None
    value = doc.get("sequence") if isinstance(doc, dict) else None
    return as_int(value, signed=False)


async def lookup_transactions(
    client: httpx.AsyncClient,
    tx_hashes: Iterable[str],
    *,
    horizon_urls: Iterable[str] = (),
    rpc_urls: Iterable[str] = (),
    deadline: Deadline,
    concurrency: int = DEFAULT_CONCURRENCY,
    sink: ExchangeSink | None = None,
    into: dict[tuple[str, str, str], ChainTransaction] | None = None,
    horizon_histories: Mapping[str, HorizonHistory] | None = None,
) -> list[TransactionAnswer]:
    """Ask every endpoint about every hash, ``concurrency`` hashes at a time, within ``deadline``.

    Never raises on network faults: a hash an endpoint did not answer for in
    time is ``unknown`` from that endpoint. ``into`` (keyed ``(kind, url,
    hash)``) receives each answer as it arrives, so a caller that is cut off
    keeps what came back.
    """
    hashes = list(dict.fromkeys(h.lower() for h in tx_hashes))
    horizons, rpcs = list(horizon_urls), list(rpc_urls)
    answers: dict[tuple[str, str, str], ChainTransaction] = {} if into is None else into

    async def one(tx_hash: str) -> None:
        async def ask_horizon(url: str) -> None:
            exchange = await fetch(
                client,
                "GET",
                join_url(url, f"transactions/{tx_hash}"),
                endpoint=url,
                call="transaction",
                deadline=deadline,
                retry=READ_RETRY,
                sink=sink,
            )
            history = (horizon_histories or {}).get(url, FULL_HISTORY)
            answers[("horizon", url, tx_hash)] = horizon_transaction(exchange, tx_hash, history)

        async def ask_rpc(url: str) -> None:
            exchange = await fetch(
                client,
                "POST",
                url,
                endpoint=url,
                call="getTransaction",
                deadline=deadline,
                request_body=rpc_request_body("getTransaction", 1, {"hash": tx_hash}),
                retry=READ_RETRY,
                sink=sink,
            )
            answers[("rpc", url, tx_hash)] = rpc_transaction(exchange, tx_hash)

        await run_within(deadline, [*map(ask_horizon, horizons), *map(ask_rpc, rpcs)])

    await run_within(deadline, [bounded_map(one, hashes, concurrency=concurrency)])
    result: list[TransactionAnswer] = []
    for tx_hash in hashes:
        for kind, urls in (("horizon", horizons), ("rpc", rpcs)):
            for url in urls:
                tx = answers.get((kind, url, tx_hash)) or _unknown(tx_hash, f"{kind} {url}")
                result.append(TransactionAnswer(url, tx))
    return result


async def lookup_account_sequences(
    client: httpx.AsyncClient,
    accounts: Iterable[str],
    *,
    horizon_urls: Iterable[str],
    deadline: Deadline,
    concurrency: int = DEFAULT_CONCURRENCY,
    sink: ExchangeSink | None = None,
    into: list[SequenceAnswer] | None = None,
) -> list[SequenceAnswer]:
    """Each account's current sequence number from every Horizon that answers in time.

    ``into`` receives each answer as it arrives (see :func:`lookup_transactions`).
    """
    wanted = list(dict.fromkeys(accounts))
    horizons = list(horizon_urls)
    found: list[SequenceAnswer] = [] if into is None else into

    async def one(account: str) -> None:
        async def ask(url: str) -> None:
            exchange = await fetch(
                client,
                "GET",
                join_url(url, f"accounts/{account}"),
                endpoint=url,
                call="account",
                deadline=deadline,
                retry=READ_RETRY,
                sink=sink,
            )
            sequence = horizon_sequence(exchange)
            if sequence is not None:
                found.append(SequenceAnswer(url, account, sequence))

        await run_within(deadline, [ask(url) for url in horizons])

    await run_within(deadline, [bounded_map(one, wanted, concurrency=concurrency)])
    return found


async def observe_settlement_chain(
    config: ChainConfig,
    *,
    tx_hashes: Iterable[str],
    accounts: Iterable[str] = (),
    concurrency: int = DEFAULT_CONCURRENCY,
    client: httpx.AsyncClient | None = None,
    recorder: Recorder | None = None,
) -> SettlementChainObservations:
    """A chain round, then on each endpoint its sequence and tx lookups, within ``config.timeout``.

    Order matters on each endpoint: its latest ledger (chain round), then the
    accounts' sequence numbers, then the tx lookups. A "not found" therefore
    covers every ledger up to the one whose close time the endpoint reported
    and every ledger in which it saw the sequence numbers: a transaction that
    lands meanwhile can not be mistaken for an expired one, nor its own
    sequence number for a consumed one. Endpoints run concurrently; a hung
    one holds up only itself. Whatever was not answered in time is ``unknown``.
    """
    from .http import make_client

    hashes = list(dict.fromkeys(h.lower() for h in tx_hashes))
    wanted = list(dict.fromkeys(accounts))
    deadline = Deadline(config.timeout)
    own_client = client is None
    active = client if client is not None else make_client(timeout=config.timeout)
    answers: dict[tuple[str, str, str], ChainTransaction] = {}
    sequences: list[SequenceAnswer] = []

    histories: dict[str, HorizonHistory] = {}

    async def lookups(url: str, kind: str) -> None:
        if kind == "horizon" and hashes:
            histories[url] = await horizon_history(active, url, deadline=deadline, sink=recorder)
        if kind == "horizon" and wanted:
            await lookup_account_sequences(
                active,
                wanted,
                horizon_urls=[url],
                deadline=deadline,
                concurrency=concurrency,
                sink=recorder,
                into=sequences,
            )
        await lookup_transactions(
            active,
            hashes,
            horizon_urls=[url] if kind == "horizon" else [],
            rpc_urls=[url] if kind == "rpc" else [],
            deadline=deadline,
            concurrency=concurrency,
            sink=recorder,
            into=answers,
            horizon_histories=histories,
        )

    try:
        (chain,) = await run_within(
            deadline,
            [observe_chain(config, client=active, recorder=recorder, then=lookups)],
            grace=_GRACE,
        )
    finally:
        if own_client:
            await active.aclose()
    transactions = [
        TransactionAnswer(
            url, answers.get((kind, url, tx_hash)) or _unknown(tx_hash, f"{kind} {url}")
        )
        for tx_hash in hashes
        for url, kind in config.endpoints
    ]
    return SettlementChainObservations(
        chain=chain if chain is not None else ChainObservations(()),
        transactions=tuple(transactions),
        sequences=tuple(sequences),
    )


__all__ = [
    "SequenceAnswer",
    "SettlementChainObservations",
    "TransactionAnswer",
    "FULL_HISTORY",
    "HorizonHistory",
    "horizon_history",
    "horizon_sequence",
    "horizon_transaction",
    "lookup_account_sequences",
    "lookup_transactions",
    "observe_settlement_chain",
    "observe_settlements",
    "rpc_transaction",
]


def observe_settlements(
    settlements: Iterable[Settlement],
    *,
    horizon_urls: Iterable[str],
    rpc_urls: Iterable[str],
    network_passphrase: str,
    timeout: float,
    known: Iterable[ChainTransaction] = (),
    concurrency: int = DEFAULT_CONCURRENCY,
) -> SettlementChainObservations:
    """Ask the network now about ``settlements``, within ``timeout`` in all.

    Synchronous (for the CLI): every tx hash not already found in ``known``
    (success or failed), the source accounts' sequence numbers (when the
    envelope gave them), and a chain-health round. Never raises on network
    faults: what could not be looked up is ``unknown``. Grading the round and
    deciding what to trust is the use case's job.
    """
    from .http import run_sync

    settled = {h for tx in known if tx.status in ("success", "failed") for h in tx.all_hashes}
    records = list(settlements)
    hashes = [h.lower() for s in records for h in s.all_tx_hashes if h.lower() not in settled]
    accounts = [s.source_account for s in records if s.source_account and s.sequence is not None]
    config = ChainConfig(
        tuple(dict.fromkeys(horizon_urls)),
        tuple(dict.fromkeys(rpc_urls)),
        network_passphrase,
        timeout,
    )
    return run_sync(
        observe_settlement_chain(
            config, tx_hashes=hashes, accounts=accounts, concurrency=concurrency
        )
    )
