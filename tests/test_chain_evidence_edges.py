"""Edges of the chain-evidence readers (issue 13): burn/clawback event shapes, bad payment
columns, a Horizon whose history start cannot be read, callers' own clients."""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from typing import Any

import pytest
from stellar_sdk import Address, scval

from loopback import LoopbackServer, html_reply, json_reply
from streampay_incident.io.payment_records import RecordProblem, chain_payment_from_rpc_event
from streampay_incident.io.settlement_payment import settlement_payment
from streampay_incident.probes.fee_bumps import resolve_hashes
from streampay_incident.probes.horizon_history import FULL_HISTORY, HorizonHistory, horizon_history
from streampay_incident.probes.http import Deadline, make_client
from streampay_incident.probes.rpc_transfers import fetch_rpc_transfers
from streampay_incident.probes.search import search_transfers
from streampay_incident.stellar.networks import PUBLIC, TESTNET
from test_escrow_classic_events import FEE_BUMP
from test_submission_search import ALICE, DOC, ESCROW, EVENTS, FIRST, close_time, stand_in

BURN = next(e for e in EVENTS if e["ledger"] == FIRST + 80)


def burn(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(BURN)
    event.update(changes)
    return event


def test_burn_shapes() -> None:
    two = burn(topic=BURN["topic"][:2])
    custom = chain_payment_from_rpc_event(two)
    assert custom is not None and custom.asset.code == "token"
    assert custom.to_account == BURN["contractId"] and custom.kind == "sac_burn"
    # A look-alike contract on another network keeps its token asset.
    other = chain_payment_from_rpc_event(BURN, network_passphrase=PUBLIC)
    assert other is not None and other.asset.code == "token"
    sac = chain_payment_from_rpc_event(BURN, network_passphrase=TESTNET)
    assert sac is not None and sac.asset.code == "USDC"
    bad = [
        burn(topic=[*BURN["topic"], BURN["topic"][2]]),
        burn(topic=[BURN["topic"][0], BURN["topic"][1], scval.to_uint64(1).to_xdr()]),
        burn(inSuccessfulContractCall="yes"),
    ]
    for event in bad:
        with pytest.raises(RecordProblem):
            chain_payment_from_rpc_event(event)


def test_payment_columns_that_are_not_strings() -> None:
    problems: list[tuple[str, str]] = []
    got = settlement_payment(
        {"destination": 5, "asset": ["native"], "payer": Address(ESCROW).address},
        lambda f, m: problems.append((f, m)),
    )
    assert got == (ESCROW, None, None, None)
    assert [f for f, _ in problems] == ["destination", "asset"]


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        (html_reply(200, "cached"), HorizonHistory(full=False)),
        (json_reply([1, 2]), HorizonHistory(full=False)),
        (json_reply({"history_elder_ledger": 1}), FULL_HISTORY),
    ],
)
def test_horizon_history_from_odd_roots(root: Any, expected: HorizonHistory) -> None:
    async def ask(url: str) -> HorizonHistory:
        async with make_client(timeout=2) as client:
            return await horizon_history(client, url, deadline=Deadline(2))

    with LoopbackServer({"GET /": root}) as horizon:
        assert asyncio.run(ask(horizon.url)) == expected


def test_since_just_after_the_oldest_ledger_starts_there() -> None:
    since = close_time(DOC["result"]["oldestLedger"]) + timedelta(seconds=1)
    with LoopbackServer(stand_in().routes()) as rpc:
        fetched = asyncio.run(fetch_rpc_transfers(rpc.url, ESCROW, since=since))
    assert fetched.first_ledger == DOC["result"]["oldestLedger"]


def test_probes_use_the_callers_client() -> None:
    async def both(url: str) -> tuple[Any, Any]:
        async with make_client(timeout=2) as client:
            found = await resolve_hashes(url, [FEE_BUMP["txHash"]], timeout=2, client=client)
            searched = await search_transfers(
                [(ESCROW, ALICE, close_time(FIRST))], rpc_urls=[url], timeout=2, client=client
            )
            return found, searched

    with LoopbackServer(stand_in(transactions={FEE_BUMP["txHash"]: FEE_BUMP}).routes()) as rpc:
        found, searched = asyncio.run(both(rpc.url))
    assert len(found[FEE_BUMP["txHash"]]) == 2
    assert searched[0].fetched is not None and len(searched[0].fetched.payments) == 2


def test_an_rpc_that_does_not_say_its_latest_close_time_starts_at_its_oldest_ledger() -> None:
    server = stand_in()
    oldest = DOC["result"]["oldestLedger"]
    routes = server.routes()
    routes["RPC getHealth"] = json_reply(
        {"jsonrpc": "2.0", "id": 1, "result": {"status": "healthy", "oldestLedger": oldest,
                                               "latestLedger": server.latest_ledger}}
    )  # fmt: skip
    routes["RPC getLedgers"] = lambda request: json_reply(
        {"jsonrpc": "2.0", "id": 1, "result": {"ledgers": [
            {"sequence": oldest, "ledgerCloseTime": str(int(close_time(oldest).timestamp()))}
        ]}}
    )  # fmt: skip
    since = close_time(oldest) + timedelta(hours=1)
    with LoopbackServer(routes) as rpc:
        fetched = asyncio.run(fetch_rpc_transfers(rpc.url, ESCROW, since=since))
    assert fetched.first_ledger == oldest and fetched.stop is None
