"""Build ``src/streampay_incident/demo_data/chain-outage.json`` from the recorded fixture bodies.

The bundled chain-outage scenario is a ``--record`` recording, as
``streampay-incident chain --record`` writes it, whose response bodies are
the real ones in ``tests/fixtures/stellar`` (see its README for where each
comes from). The story, on testnet, graded at 2026-11-27T03:00:00Z (the demo's
``--now``):

- our Horizon answers ``/`` but ``/health`` is 503 ``core_not_synced``
  (``horizon/health/503_core_not_synced.json``, verbatim) and its latest
  ledger closed 65 s ago;
- our Stellar RPC answers ``getHealth`` with -32603 "latency (1m5s) since last
  known ledger closed is too high (>30s)"
  (``rpc/errors/derived/getHealth_latency_too_high_-32603.json``, verbatim),
  ``getNetwork`` with ``rpc/getNetwork_testnet_docs.json`` (verbatim) and
  ``getLatestLedger`` with ``rpc/getLatestLedger_full_py.json``.

Changed from the fixtures (and only these, so both endpoints tell one
consistent story): the Horizon root (``horizon/root_pubnet_2024-12.json``, the
only recorded root with ``history_latest_ledger_closed_at``) gets the testnet
passphrase, the RPC fixture's ledger sequence and a close time 65 s before
the demo's ``now``; the RPC ``getLatestLedger`` close time is set to the same
moment. Every other body is byte-for-byte the fixture file.

Run ``python benchmarks/make_chain_outage_recording.py`` to rewrite the file;
``tests/test_chain_cli.py`` checks the bundled file is exactly what this
script produces.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streampay_incident.probes.http import Exchange
from streampay_incident.probes.record import RecordedEndpoint, Recording
from streampay_incident.probes.rpc import RPC_CALLS
from streampay_incident.stellar.networks import TESTNET

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "stellar"
OUTPUT = REPO / "src" / "streampay_incident" / "demo_data" / "chain-outage.json"

HORIZON = "https://horizon.streampay.internal"
RPC = "https://rpc.streampay.internal"
NOW = datetime(2026, 11, 27, 3, 0, 0, tzinfo=UTC)
OBSERVED_AT = NOW - timedelta(seconds=1)
LAST_CLOSE = NOW - timedelta(seconds=65)
TIMEOUT = 5.0

HAL_JSON = "application/hal+json; charset=utf-8"
JSON = "application/json; charset=utf-8"
RPC_JSON = "application/json"


def fixture_text(relative: str) -> str:
    return (FIXTURES / relative).read_text(encoding="utf-8")


def with_overrides(relative: str, overrides: dict[str, Any], *, inside: str | None = None) -> str:
    doc = json.loads(fixture_text(relative))
    target = doc[inside] if inside else doc
    target.update(overrides)
    return json.dumps(doc, indent=2) + "\n"


def exchange(
    endpoint: str,
    call: str,
    method: str,
    url: str,
    status: int,
    body: str,
    content_type: str,
    elapsed: float,
    request_body: str | None = None,
) -> Exchange:
    return Exchange(
        endpoint=endpoint,
        call=call,
        method=method,
        url=url,
        observed_at=OBSERVED_AT,
        elapsed_seconds=elapsed,
        request_body=request_body,
        status=status,
        headers={"content-type": content_type},
        body=body,
    )


def build_recording() -> dict[str, Any]:
    """The recording document, deterministic."""
    rpc_ledger = json.loads(fixture_text("rpc/getLatestLedger_full_py.json"))["result"]["sequence"]
    root = with_overrides(
        "horizon/root_pubnet_2024-12.json",
        {
            "network_passphrase": TESTNET,
            "ingest_latest_ledger": rpc_ledger,
            "history_latest_ledger": rpc_ledger,
            "history_latest_ledger_closed_at": LAST_CLOSE.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "core_latest_ledger": rpc_ledger,
        },
    )
    latest = with_overrides(
        "rpc/getLatestLedger_full_py.json",
        {"closeTime": str(int(LAST_CLOSE.timestamp()))},
        inside="result",
    )
    bodies = {spec.call: spec.body for spec in RPC_CALLS}
    exchanges = [
        exchange(HORIZON, "root", "GET", f"{HORIZON}/", 200, root, HAL_JSON, 0.084),
        exchange(
            HORIZON,
            "health",
            "GET",
            f"{HORIZON}/health",
            503,
            fixture_text("horizon/health/503_core_not_synced.json"),
            JSON,
            0.021,
        ),
        exchange(
            HORIZON,
            "fee_stats",
            "GET",
            f"{HORIZON}/fee_stats",
            200,
            fixture_text("horizon/fee_stats_pubnet_2019.json"),
            HAL_JSON,
            0.097,
        ),
        exchange(
            RPC,
            "getHealth",
            "POST",
            RPC,
            200,
            fixture_text("rpc/errors/derived/getHealth_latency_too_high_-32603.json"),
            RPC_JSON,
            0.035,
            bodies["getHealth"],
        ),
        exchange(
            RPC,
            "getNetwork",
            "POST",
            RPC,
            200,
            fixture_text("rpc/getNetwork_testnet_docs.json"),
            RPC_JSON,
            0.031,
            bodies["getNetwork"],
        ),
        exchange(
            RPC,
            "getLatestLedger",
            "POST",
            RPC,
            200,
            latest,
            RPC_JSON,
            0.058,
            bodies["getLatestLedger"],
        ),
    ]
    recording = Recording(
        network_passphrase=TESTNET,
        timeout_seconds=TIMEOUT,
        endpoints=(
            RecordedEndpoint(HORIZON, "horizon", 0.097),
            RecordedEndpoint(RPC, "rpc", 0.058),
        ),
        exchanges=tuple(exchanges),
        started_at=OBSERVED_AT,
        finished_at=OBSERVED_AT + timedelta(seconds=0.097),
        now=NOW,
    )
    return recording.to_json()


def render() -> str:
    return json.dumps(build_recording(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
