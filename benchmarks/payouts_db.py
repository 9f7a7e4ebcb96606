"""Benchmark: ``payouts --db`` pushed down into PostgreSQL against ``--engine python``.

Starts the tests' throwaway PostgreSQL cluster (as ``settlements_db.py`` does),
fills ``settlement_outbox`` server-side with N payout attempts shaped like
StreamPay's (uuid ids, ``settlement:<stream>:<ledger>`` event keys, jsonb
payloads naming a 9-decimal amount, an asset, one of 5,000 real destinations
(some muxed) and a tx hash in either case; every status; a few repeats and
shared hashes, so the rules find something), then times, as child processes,

    streampay-incident payouts --db postgresql://... --now ... --format json
    streampay-incident payouts --db postgresql://... --now ... --format json --engine python

with each one's peak RSS from ``os.wait4`` (the client's: the server's work
and memory are PostgreSQL's), and checks that both reports are the same.

    python benchmarks/payouts_db.py                         # 100k and 1M rows
    python benchmarks/payouts_db.py --sizes 100000 --runs 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

from settlements_db import TOOL  # noqa: E402 - the same tool command

from pg_cluster import (  # noqa: E402 - the tests' cluster helper
    DATABASE,
    READER,
    READER_PASSWORD,
    SUPERUSER,
    PostgresCluster,
    start_cluster,
    stop_cluster,
)

NOW = "2026-11-27T03:00:00Z"
DESTINATIONS = 5000
CREDIT = "USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"
# Every row selected by the default filter (updated "now" by the server's clock).
FILL = f"""
truncate settlement_outbox;
insert into settlement_outbox (id, event_key, event_type, aggregate_id, payload, status,
    attempts, max_attempts, available_at, created_at, updated_at)
select
    md5(i::text)::uuid,
    'settlement:stream-' || (i % 50000) || ':' || (53000000 + i),
    'stream.settled',
    'stream-' || (i % 50000),
    jsonb_build_object(
        'streamId', 'stream-' || (i % 50000), 'ledger', 53000000 + i,
        'amount', (1 + k % 997) || '.500000000',
        'asset', case when k % 3 = 0 then '{CREDIT}' else 'native' end,
        'destination', d.address,
        'transactionHash', case when i % 2 = 0 then upper(h) else h end),
    (array['succeeded', 'succeeded', 'succeeded', 'processing', 'pending', 'failed', 'dead']
        )[1 + i % 7]::settlement_outbox_status,
    1 + i % 8, 8,
    t0, t0 + (k % 43200) * interval '1 minute' + (i - k) * interval '2 minutes',
    now() at time zone 'utc'
from generate_series(1, {{rows}}) as i,
    -- one row in 1000 pays again what the row before it paid, 2 minutes later (rule 5);
    -- one in 200 records the hash of the row before it, in the other case (rule 1)
    lateral (select case when i % 1000 = 999 then i - 1 else i end as k,
                    md5((i - j)::text) || md5((i + 1 - j)::text) as h
             from (select (i % 200 = 101)::int as j) as shared) as keyed
join bench_destinations d on d.n = keyed.k % {DESTINATIONS},
     (select timestamp '2026-10-27 00:00:00' as t0) as base;
analyze settlement_outbox;
"""


def destinations() -> list[str]:
    """Valid account ids and some muxed ones (StrKey checksums: judged by Python)."""
    from stellar_sdk import Keypair, MuxedAccount

    accounts = [Keypair.random().public_key for _ in range(DESTINATIONS)]
    return [MuxedAccount(a, n).account_muxed if n % 10 == 0 else a for n, a in enumerate(accounts)]


def prepare(cluster: PostgresCluster) -> None:
    import psycopg

    with psycopg.connect(
        host=str(cluster.socket_dir), port=cluster.port, user=SUPERUSER, dbname=DATABASE,
        autocommit=True,
    ) as conn:  # fmt: skip
        conn.execute("create table bench_destinations (n integer primary key, address text)")
        with conn.cursor().copy("copy bench_destinations from stdin") as copy:
            for n, address in enumerate(destinations()):
                copy.write_row([n, address])
        conn.execute(f"grant select on bench_destinations to {READER}")


def report(argv: list[str], env: dict[str, str], out: Path) -> tuple[float, int, dict[str, Any]]:
    """(seconds, peak RSS in KiB, the JSON report without generated_at) of a child process."""
    started = time.perf_counter()
    with out.open("wb") as stdout:
        child = subprocess.Popen(argv, env=env, stdout=stdout, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    assert child.stderr is not None
    error = child.stderr.read().decode()
    child.stderr.close()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{argv[3:5]} failed: {error}")
    doc = json.loads(out.read_text(encoding="utf-8"))
    doc.pop("generated_at")
    return elapsed, usage.ru_maxrss, doc


def run_size(cluster: PostgresCluster, rows: int, runs: int, workdir: Path) -> dict[str, float]:
    cluster.admin(FILL.format(rows=rows), timeout=3600)
    # Hint bits and the visibility map set now, not by whichever run reads the table first.
    cluster.admin("vacuum analyze settlement_outbox", timeout=3600)
    env = {**os.environ, "PGPASSWORD": READER_PASSWORD}
    env.pop("STREAMPAY_INCIDENT_DATABASE_URL", None)
    base = [*TOOL, "payouts", "--db", cluster.dsn(), "--now", NOW, "--format", "json"]
    base += ["--timeout", "1800"]
    results: dict[str, float] = {}
    docs = {}
    for name, argv in (("pushdown", base), ("python", [*base, "--engine", "python"])):
        samples = [report(argv, env, workdir / f"{name}.json") for _ in range(runs)]
        results[f"{name}_s"] = statistics.median(s[0] for s in samples)
        results[f"{name}_rss_mib"] = max(s[1] for s in samples) / 1024
        docs[name] = samples[0][2]
    if docs["pushdown"] != docs["python"]:
        raise SystemExit(f"{rows} rows: the push-down's report is not the reference's")
    findings = docs["python"]["findings"]
    results["findings"] = len(findings) if isinstance(findings, list) else 0
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cluster = start_cluster()
    try:
        prepare(cluster)
        with tempfile.TemporaryDirectory(prefix="payouts-db-") as tmp:
            print(f"load average at the start: {os.getloadavg()}", flush=True)
            print(
                "| rows | push-down | `--engine python` | ratio | push-down peak RSS "
                "| `--engine python` peak RSS | findings |"
            )
            print("|---|---|---|---|---|---|---|")
            for rows in args.sizes:
                r = run_size(cluster, rows, args.runs, Path(tmp))
                print(
                    f"| {rows:,} | {r['pushdown_s']:.1f} s | {r['python_s']:.1f} s "
                    f"| {r['python_s'] / r['pushdown_s']:.1f}x | {r['pushdown_rss_mib']:.0f} MiB "
                    f"| {r['python_rss_mib']:.0f} MiB | {r['findings']:.0f} |",
                    flush=True,
                )
            print(f"load average at the end: {os.getloadavg()}", flush=True)
    finally:
        stop_cluster(cluster)


if __name__ == "__main__":
    main()
