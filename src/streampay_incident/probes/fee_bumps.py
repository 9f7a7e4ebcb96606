"""Both hashes of fee-bump transactions, from RPC ``getTransaction`` (see ``checks.fee_bumps``).

``getNetwork`` gives the passphrase the envelope is hashed under; each
``getTransaction`` of a hash returns the envelope, whose hashes (outer, inner)
are computed by :mod:`streampay_incident.stellar.envelope`. Every call runs
under one deadline; a hash that could not be resolved is left out (the
reconciliation then treats it as before: never a guess).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..stellar.envelope import EnvelopeError, transaction_hashes
from .http import READ_RETRY, Deadline, fetch, make_client, run_sync, run_within
from .rpc import rpc_reply, rpc_request_body


async def _result(client: Any, url: str, method: str, params: Any, deadline: Deadline) -> Any:
    exchange = await fetch(
        client,
        "POST",
        url,
        endpoint=url,
        call=f"escrow.{method}",
        deadline=deadline,
        request_body=rpc_request_body(method, 1, params),
        retry=READ_RETRY,
    )
    call, result, _error = rpc_reply(exchange)
    return result if call.outcome == "ok" and isinstance(result, dict) else None


async def resolve_hashes(
    rpc_url: str, hashes: Iterable[str], *, timeout: float, client: Any = None
) -> dict[str, tuple[str, ...]]:
    """``{listed hash: (outer, inner)}`` for each fee-bump among ``hashes`` the RPC has."""
    wanted = list(dict.fromkeys(h.lower() for h in hashes))
    if not wanted:
        return {}
    deadline = Deadline(timeout)
    own = client is None
    active = client or make_client(timeout=timeout)
    found: dict[str, tuple[str, ...]] = {}
    try:
        network = await _result(active, rpc_url, "getNetwork", None, deadline)
        passphrase = network.get("passphrase") if network else None
        if not isinstance(passphrase, str):
            return {}

        async def one(tx_hash: str) -> None:
            result = await _result(active, rpc_url, "getTransaction", {"hash": tx_hash}, deadline)
            envelope = result.get("envelopeXdr") if result else None
            if not isinstance(envelope, str):
                return
            try:
                both = transaction_hashes(envelope, network_passphrase=passphrase)
            except EnvelopeError:
                return
            if tx_hash in both and len(both) > 1:
                found[tx_hash] = both

        await run_within(deadline, [one(h) for h in wanted])
    finally:
        if own:
            await active.aclose()
    return found


def resolve_hashes_sync(
    rpc_url: str, hashes: Iterable[str], *, timeout: float
) -> dict[str, tuple[str, ...]]:
    """The blocking entry point for the CLI (see :func:`resolve_hashes`)."""
    return run_sync(resolve_hashes(rpc_url, hashes, timeout=timeout))
