"""Load benchmark of the incident endpoints: thousands of signed requests over loopback.

Starts real loopback Horizon and RPC servers (the recorded bodies from
``tests/fixtures/stellar``, with a fresh ledger close time), runs
``streampay-incident serve`` in a subprocess against them, then drives it with
many concurrent signed requests (``GET /health`` and ``POST /triage/payouts`` /
``/triage/settlements``) and prints p50/p99 latency per route, the error count
(must be zero) and how many probe rounds the burst caused (single-flight + TTL).

    python benchmarks/web_load.py [--requests 3000] [--concurrency 32] [--json]

A benchmark, not a test: numbers depend on the machine. Exit code 1 when any
request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from loopback import (  # noqa: E402 - the tests' loopback harness
    HORIZON_LEDGER,
    LoopbackServer,
    fixture_reply,
    horizon_routes,
    rfc3339,
    rpc_routes,
    unix,
)
from streampay_incident.auth import sign_request  # noqa: E402
from streampay_incident.stellar.networks import PUBLIC  # noqa: E402
from web_harness import free_port, serve_argv, wait_until_live  # noqa: E402

PREFIX = "/internal/incident"
KEY_ID = "bench"
SECRET = "benchmark-secret-" + "x" * 24
TX = "ab" * 32


def live_chain() -> tuple[dict, dict]:
    """Horizon and RPC routes whose latest ledger closed 'just now', on every request."""

    def root(_request):
        closed = rfc3339(datetime.now(UTC))
        return fixture_reply(
            "horizon/root_pubnet_2024-12.json",
            overrides={"history_latest_ledger_closed_at": closed},
        )

    def rpc(name: str, field: str):
        def reply(_request):
            return fixture_reply(
                name,
                overrides={"result": {field: unix(datetime.now(UTC)), **ledger(name)}},
            )

        return reply

    def ledger(name: str) -> dict:
        return (
            {"latestLedger": HORIZON_LEDGER} if "Health" in name else {"sequence": HORIZON_LEDGER}
        )

    horizon = horizon_routes(**{"GET /": root})
    rpc_ = rpc_routes(passphrase=PUBLIC, latest_ledger=HORIZON_LEDGER)
    rpc_["RPC getHealth"] = rpc("rpc/getHealth_healthy_v27_docs.json", "latestLedgerCloseTime")
    rpc_["RPC getLatestLedger"] = rpc("rpc/getLatestLedger_full_py.json", "closeTime")
    # getNetwork must name the public network, like the Horizon root.
    rpc_["RPC getNetwork"] = fixture_reply(
        "rpc/getNetwork_testnet_docs.json", overrides={"result": {"passphrase": PUBLIC}}
    )
    return horizon, rpc_


def payout_body(destinations: list[str], rows: int) -> bytes:
    """``rows`` payouts with one planted double payout (two transfers for one settlement)."""
    records = []
    for i in range(rows):
        records.append(
            {
                "payout_id": f"p{i}",
                "settlement_id": f"s{i}",
                "destination": destinations[i % len(destinations)],
                "asset": "native",
                "amount": f"{10 + i}.5",
                "status": "confirmed",
                "tx_hash": f"{i:064x}",
                "created_at": f"2026-11-27T02:{i % 60:02d}:00Z",
            }
        )
    records[-1] = {**records[-1], "settlement_id": "s0"}  # paid twice
    return json.dumps({"payouts": records}).encode()


def settlement_body() -> bytes:
    records = [
        {"settlement_id": "stl-dead", "status": "dead", "created_at": "2026-11-27T01:00:00Z"},
        {"settlement_id": "stl-new", "status": "pending", "created_at": "2026-11-27T02:59:00Z"},
        {
            "settlement_id": "stl-sub",
            "status": "processing",
            "tx_hash": TX,
            "created_at": "2026-11-27T01:00:00Z",
            "tx_max_time": "2026-11-27T01:30:00Z",
        },
    ]
    return "\n".join(json.dumps(r) for r in records).encode()


def signed(method: str, path: str, body: bytes = b"") -> dict[str, str]:
    return sign_request(method, path, body, service_name="bench", key_id=KEY_ID, secret=SECRET)


async def drive(
    base: str, total: int, concurrency: int, bodies: dict[str, bytes], mix: str = "mixed"
) -> dict:
    plan = []
    for i in range(total):
        if i % 2 == 0 or mix == "health":
            plan.append(("GET", f"{PREFIX}/health", b"", None, (200,)))
        elif i % 4 == 1:
            plan.append(
                ("POST", f"{PREFIX}/triage/payouts", bodies["payouts"], "application/json", (200,))
            )
        else:
            plan.append(
                (
                    "POST",
                    f"{PREFIX}/triage/settlements?now=2026-11-27T03:00:00Z",
                    bodies["settlements"],
                    "application/x-ndjson",
                    (200,),
                )
            )
    latencies: dict[str, list[float]] = {}
    errors: list[str] = []
    queue: asyncio.Queue = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)
    # Idle connections expire client-side before uvicorn's 5 s keep-alive timeout closes them,
    # so a request never races the server closing its connection.
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0
    )
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                method, path, body, ctype, ok = queue.get_nowait()
                headers = signed(method, path, body)
                if ctype:
                    headers["content-type"] = ctype
                started = time.perf_counter()
                try:
                    response = await client.request(method, path, headers=headers, content=body)
                    status = response.status_code
                except httpx.HTTPError as exc:
                    errors.append(f"{method} {path}: {type(exc).__name__}")
                    continue
                elapsed = time.perf_counter() - started
                route = path.split("?")[0].removeprefix(PREFIX)
                latencies.setdefault(route, []).append(elapsed)
                if status not in ok:
                    errors.append(f"{method} {path}: HTTP {status}")

        # Warm-up (not timed): the first triage imports stellar-sdk for StrKey checks.
        for method, path, body, ctype, _ok in plan[:3]:
            headers = signed(method, path, body)
            if ctype:
                headers["content-type"] = ctype
            await client.request(method, path, headers=headers, content=body)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
        metrics = await client.get(f"{PREFIX}/metrics", headers=signed("GET", f"{PREFIX}/metrics"))
    rounds = re.search(r"^streampay_incident_probe_rounds_total (\S+)$", metrics.text, re.M)
    return {
        "latencies": latencies,
        "errors": errors,
        "wall": wall,
        "probe_rounds": int(float(rounds.group(1))) if rounds else None,
        "server": server_quantiles(metrics.text),
    }


def server_quantiles(text: str) -> dict[str, dict[str, float]]:
    """Server-side p50/p99 per route from the app's request-duration histogram.

    Bucket resolution: the answer is the upper bound of the bucket holding the
    quantile. This is the time inside the app, without the load generator's
    own scheduling delays (a single Python process driving 32 connections).
    """
    from prometheus_client.parser import text_string_to_metric_families

    buckets: dict[str, list[tuple[float, float]]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "streampay_incident_http_request_duration_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                route = sample.labels["route"]
                buckets.setdefault(route, []).append((float(sample.labels["le"]), sample.value))
    out = {}
    for route, pairs in buckets.items():
        pairs.sort()
        total = pairs[-1][1]
        if not total:
            continue

        def quantile(q: float, pairs: list[tuple[float, float]] = pairs, total: float = total):
            return next(le for le, count in pairs if count >= q * total)

        out[route] = {
            "count": int(total),
            "p50_le_ms": quantile(0.5) * 1000,
            "p99_le_ms": quantile(0.99) * 1000,
        }
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--payout-rows", type=int, default=200)
    parser.add_argument("--health-ttl", default="5")
    parser.add_argument(
        "--mix",
        choices=["mixed", "health"],
        default="mixed",
        help="mixed: half GET /health, half triage POSTs; health: only GET /health",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    from stellar_sdk import Keypair

    destinations = [Keypair.random().public_key for _ in range(20)]
    bodies = {
        "payouts": payout_body(destinations, args.payout_rows),
        "settlements": settlement_body(),
    }
    horizon, rpc = live_chain()
    with LoopbackServer(horizon) as h, LoopbackServer(rpc) as r:
        port = free_port()
        env = {
            **os.environ,
            "INTERNAL_SERVICE_HMAC_KEYS": json.dumps({KEY_ID: SECRET}),
            "STREAMPAY_INCIDENT_HORIZON_URLS": h.url,
            "STREAMPAY_INCIDENT_RPC_URLS": r.url,
            "STREAMPAY_INCIDENT_NETWORK": "public",
            "STREAMPAY_INCIDENT_HEALTH_TTL": args.health_ttl,
        }
        server = subprocess.Popen(
            serve_argv(port, "error"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        base = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_until_live(base, server, timeout=30)
            except RuntimeError as exc:
                raise SystemExit(f"server did not start: {exc}") from None
            result = asyncio.run(drive(base, args.requests, args.concurrency, bodies, args.mix))
        finally:
            server.terminate()
            server.wait(timeout=10)

    all_latencies = [v for values in result["latencies"].values() for v in values]
    figures = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "payout_rows_per_post": args.payout_rows,
        "wall_seconds": round(result["wall"], 2),
        "requests_per_second": round(args.requests / result["wall"], 1),
        "p50_ms": round(statistics.median(all_latencies) * 1000, 1),
        "p99_ms": round(percentile(all_latencies, 0.99) * 1000, 1),
        "routes": {
            route: {
                "count": len(values),
                "p50_ms": round(statistics.median(values) * 1000, 1),
                "p99_ms": round(percentile(values, 0.99) * 1000, 1),
            }
            for route, values in sorted(result["latencies"].items())
        },
        "server_side": result["server"],
        "errors": len(result["errors"]),
        "probe_rounds": result["probe_rounds"],
        "health_ttl_seconds": float(args.health_ttl),
        "mix": args.mix,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(
            f"{args.requests} signed requests, {args.concurrency} concurrent, "
            f"{figures['wall_seconds']} s ({figures['requests_per_second']} req/s)"
        )
        print(f"all routes: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms")
        for route, f in figures["routes"].items():
            print(f"  {route:<22} n={f['count']:<5} p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms")
        print("server side (inside the app, histogram bucket upper bounds):")
        for route, f in sorted(figures["server_side"].items()):
            print(
                f"  {route:<30} n={f['count']:<5} p50 <= {f['p50_le_ms']:g} ms, "
                f"p99 <= {f['p99_le_ms']:g} ms"
            )
        print(f"errors: {figures['errors']}")
        print(f"probe rounds: {figures['probe_rounds']} (health TTL {args.health_ttl} s)")
    for line in result["errors"][:10]:
        print(f"  error: {line}", file=sys.stderr)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
