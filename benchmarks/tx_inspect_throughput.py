"""How many envelopes per second ``tx inspect`` and the settlement parser get through.

Envelopes: every decodable envelope in ``tests/fixtures/stellar`` (the 26
hash triples, the 50-record pubnet fee-bump corpus, the RPC getTransaction(s)
examples; the 2023 preview-protocol envelope is skipped: current XDR rejects
it), repeated to ``--count`` envelopes. Every hash in the triples is checked
before anything is timed.

Paths timed (median of ``--repeat`` runs, in-process unless noted):

- ``xdr decode only``: ``stellar_sdk.xdr.TransactionEnvelope.from_xdr_bytes``;
  the floor every path pays.
- ``hash (transaction_hashes)``: decode + hash slices of the raw bytes; what
  matching a hash needs.
- ``identity (settlements)``: + source account, sequence, time bounds; what
  ``settlements`` does per ``envelope_xdr``.
- ``inspect + JSON``: the full summary, rendered as ``tx inspect -`` prints it.
- ``sdk TransactionBuilder``: ``TransactionBuilder.from_xdr(...).hash_hex()``,
  the high-level parser, for comparison.
- ``classic: ...``: the same over classic (non-Soroban) envelopes only.
- ``CLI tx inspect -``: a real ``streampay-incident tx inspect -`` process over
  the same envelopes on stdin (start-up included).

Run: ``python benchmarks/tx_inspect_throughput.py [--count 20000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streampay_incident.stellar.envelope import (
    envelope_identity,
    inspect_transaction,
    transaction_hashes,
)
from streampay_incident.stellar.networks import PUBLIC, TESTNET

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "stellar"

Envelope = tuple[str, str]  # (envelope_xdr, network passphrase)


def load_envelopes() -> list[Envelope]:
    """Every decodable recorded envelope, with the network it was recorded on."""
    triples = json.loads((FIXTURES / "tx_hash_triples.json").read_text())["triples"]
    for t in triples:
        got = transaction_hashes(t["envelope_xdr"], network_passphrase=t["network_passphrase"])
        assert got[0] == t["expected_hash"], f"hash mismatch for {t['expected_hash']}"
    envelopes = [(t["envelope_xdr"], t["network_passphrase"]) for t in triples]
    corpus = json.loads((FIXTURES / "corpus" / "horizon_pubnet_transactions_50.json").read_text())
    envelopes += [(r["envelope_xdr"], PUBLIC) for r in corpus["records"]]
    rpc_files = (
        "getTransaction_SUCCESS_testnet_docs.json",
        "getTransaction_FAILED_testnet_docs.json",
        "getTransactions_docs.json",
    )
    for name in rpc_files:
        doc = json.loads((FIXTURES / "rpc" / name).read_text())["result"]
        for result in doc.get("transactions", [doc]):
            envelopes.append((result["envelopeXdr"], TESTNET))
    return envelopes


def repeat_to(envelopes: list[Envelope], count: int) -> list[Envelope]:
    return [envelopes[i % len(envelopes)] for i in range(count)]


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Median wall seconds of ``repeat`` runs."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from stellar_sdk import TransactionBuilder, xdr

    distinct = load_envelopes()
    envelopes = repeat_to(distinct, args.count)
    kinds = {"tx_v0": 0, "tx": 0, "tx_fee_bump": 0}
    classic_distinct: list[Envelope] = []
    for text, network in distinct:
        summary = inspect_transaction(text, network_passphrase=network)
        kinds[summary.envelope_type] += 1
        if all(op.type != "invoke_host_function" for op in summary.operations):
            classic_distinct.append((text, network))
    classic = repeat_to(classic_distinct, args.count)
    raw = [base64.b64decode(text) for text, _ in envelopes]
    mean_bytes = sum(len(b) for b in raw) / len(raw)

    def decode_only() -> None:
        for data in raw:
            xdr.TransactionEnvelope.from_xdr_bytes(data)

    def hashes() -> None:
        for text, network in envelopes:
            transaction_hashes(text, network_passphrase=network)

    def identity() -> None:
        for text, network in envelopes:
            envelope_identity(text, network_passphrase=network)

    def inspect_json() -> None:
        for text, network in envelopes:
            json.dumps(inspect_transaction(text, network_passphrase=network).to_json())

    def classic_hashes() -> None:
        for text, network in classic:
            transaction_hashes(text, network_passphrase=network)

    def classic_inspect() -> None:
        for text, network in classic:
            json.dumps(inspect_transaction(text, network_passphrase=network).to_json())

    sdk_sample = envelopes[: max(1, args.count // 4)]  # the slow path: a quarter is plenty

    def sdk_classic() -> None:
        for text, network in classic[: len(sdk_sample)]:
            TransactionBuilder.from_xdr(text, network).hash_hex()

    def sdk_builder() -> None:
        for text, network in sdk_sample:
            TransactionBuilder.from_xdr(text, network).hash_hex()

    rows: list[tuple[str, int, float]] = [
        ("xdr decode only", len(raw), timed(decode_only, args.repeat)),
        ("hash (transaction_hashes)", len(envelopes), timed(hashes, args.repeat)),
        ("identity (settlements)", len(envelopes), timed(identity, args.repeat)),
        ("inspect + JSON", len(envelopes), timed(inspect_json, args.repeat)),
        ("sdk TransactionBuilder", len(sdk_sample), timed(sdk_builder, args.repeat)),
        ("classic: hash", len(classic), timed(classic_hashes, args.repeat)),
        ("classic: inspect + JSON", len(classic), timed(classic_inspect, args.repeat)),
        ("classic: sdk TransactionBuilder", len(sdk_sample), timed(sdk_classic, args.repeat)),
    ]

    # The real command, one process per run, over the pubnet envelopes only (one --network).
    pubnet = [text for text, network in envelopes if network == PUBLIC]
    stdin = "".join(text + "\n" for text in pubnet).encode()
    command = [
        sys.executable,
        "-c",
        "from streampay_incident.cli import main; main()",
        "tx",
        "inspect",
        "-",
        "--network",
        "public",
    ]

    def cli() -> None:
        proc = subprocess.run(command, input=stdin, capture_output=True, check=True)
        assert proc.stdout.count(b"\n") == len(pubnet)

    rows.append(("CLI tx inspect - (process)", len(pubnet), timed(cli, args.repeat)))

    print(
        f"envelopes: {len(distinct)} distinct recorded ({kinds}; {len(classic_distinct)} classic), "
        f"mean {mean_bytes:.0f} bytes, repeated to {args.count}; median of {args.repeat} runs; "
        f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'path':<32} {'envelopes':>10} {'seconds':>9} {'envelopes/s':>12}")
    for name, n, seconds in rows:
        print(f"{name:<32} {n:>10} {seconds:>9.3f} {n / seconds:>12,.0f}")


if __name__ == "__main__":
    main()
