"""Build the demo's submission-search data: ``unhashed-settlements.jsonl`` and
``search-events.json`` in ``src/streampay_incident/demo_data/``.

The story: StreamPay's worker sent stl-3100's payment (25 XLM from the escrow to
the creator) and crashed before recording the hash; the row is ``processing``
with an expired lease and no tx hash, so the lease reaper would pay it again.
stl-3101 (10 XLM to another creator) was never sent. ``search-events.json`` is a
testnet ``getEvents`` result constructed from CAP-67 (see
``tests/fixtures/stellar/rpc/cap67/README.md``): the escrow's transfer to the
first creator, and an unrelated transfer. Re-run to regenerate.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stellar_sdk import Address, Asset, Keypair, scval

TESTNET = "Test SDF Network ; September 2015"
DATA = Path(__file__).resolve().parents[1] / "src" / "streampay_incident" / "demo_data"


def account(name: str) -> str:
    return Keypair.from_raw_ed25519_seed(hashlib.sha256(name.encode()).digest()).public_key


ESCROW = account("demo-escrow")
CREATOR = account("demo-creator-ana")
OTHER = account("demo-creator-bo")
UNRELATED = account("demo-unrelated")
FIRST_LEDGER = 1_283_000
FIRST_AT = datetime(2026, 11, 27, 2, 24, 0, tzinfo=UTC)


def event(n: int, offset: int, src: str, dst: str, stroops: int) -> dict[str, object]:
    ledger = FIRST_LEDGER + offset
    return {
        "type": "contract",
        "ledger": ledger,
        "ledgerClosedAt": (FIRST_AT + timedelta(seconds=5 * offset)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "contractId": Asset.native().contract_id(TESTNET),
        "id": f"{(ledger << 32) + (1 << 12):019d}-{n:010d}",
        "operationIndex": 0,
        "transactionIndex": 1,
        "inSuccessfulContractCall": True,
        "topic": [
            scval.to_symbol("transfer").to_xdr(),
            Address(src).to_xdr_sc_val().to_xdr(),
            Address(dst).to_xdr_sc_val().to_xdr(),
            scval.to_string("native").to_xdr(),
        ],
        "value": scval.to_int128(stroops).to_xdr(),
        "txHash": hashlib.sha256(f"demo-search-{n}".encode()).hexdigest(),
    }


def main() -> None:
    events = [
        event(1, 30, ESCROW, CREATOR, 250_000_000),  # 02:26:30, a minute after stl-3100's row
        event(2, 40, UNRELATED, OTHER, 100_000_000),
    ]
    latest = FIRST_LEDGER + 400
    doc = {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {
            "events": events,
            "latestLedger": latest,
            "latestLedgerCloseTime": str(int((FIRST_AT + timedelta(seconds=5 * 400)).timestamp())),
            "oldestLedger": FIRST_LEDGER - 120_000,
            "oldestLedgerCloseTime": str(int((FIRST_AT - timedelta(days=7)).timestamp())),
            "cursor": f"{(latest + 1) << 32:019d}-0000000000",
        },
    }
    (DATA / "search-events.json").write_text(json.dumps(doc, indent=1) + "\n")
    rows = [
        {
            "settlement_id": "stl-3100",
            "status": "processing",
            "created_at": "2026-11-27T02:25:30Z",
            "updated_at": "2026-11-27T02:26:00Z",
            "attempts": 1,
            "lease_until": "2026-11-27T02:31:00Z",
            "payer": ESCROW,
            "destination": CREATOR,
            "asset": "native",
            "amount": "25.0000000",
        },
        {
            "settlement_id": "stl-3101",
            "status": "processing",
            "created_at": "2026-11-27T02:27:00Z",
            "updated_at": "2026-11-27T02:27:30Z",
            "attempts": 1,
            "lease_until": "2026-11-27T02:32:30Z",
            "payer": ESCROW,
            "destination": OTHER,
            "asset": "native",
            "amount": "10.0000000",
        },
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (DATA / "unhashed-settlements.jsonl").write_text(text)


if __name__ == "__main__":
    main()
