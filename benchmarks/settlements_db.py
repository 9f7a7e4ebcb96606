"""Benchmark: ``streampay-incident settlements --db`` streaming outbox rows from PostgreSQL.

Starts the tests' throwaway PostgreSQL cluster (``tests/pg_cluster.py``: the
server binaries, as root through ``runuser -u postgres``), fills
``settlement_outbox`` server-side with N rows shaped like StreamPay's (uuid
ids, ``settlement:<stream>:<ledger>`` event keys, a jsonb payload holding the
tx hash; 70% settled within the day, 20% in flight, 10% stuck in every way),
then times, as a child process, what on-call runs:

    streampay-incident settlements --db postgresql://... --now ... --format json

(no chain lookups: no --horizon/--rpc), with its peak RSS from ``os.wait4``,
per size. The same rows exported with ``psql -At`` and read from the file are
the baseline. The report goes to /dev/null.

``--transport`` also measures the transport alone, in child processes that
only count the rows: the tool's server-side cursor against a plain
(client-side) psycopg cursor, which holds the whole result set at once.

    python benchmarks/settlements_db.py                      # 100k, 300k, 1M rows
    python benchmarks/settlements_db.py --sizes 100000 --runs 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from pg_cluster import (  # noqa: E402 - the tests' cluster helper
    READER_PASSWORD,
    PostgresCluster,
    start_cluster,
    stop_cluster,
)

TOOL = (
    [shutil.which("streampay-incident")]
    if shutil.which("streampay-incident")
    else [sys.executable, "-c", "from streampay_incident.cli import main; main()"]
)
NOW = "2026-11-27T03:00:00Z"
# Rows are generated relative to the server's clock so the default filter
# (unsettled, or updated in the last 24 hours) keeps every one of them.
FILL = """
truncate settlement_outbox;
insert into settlement_outbox (id, event_key, event_type, aggregate_id, payload, status,
    attempts, max_attempts, available_at, lease_until, last_error, created_at, updated_at)
select
    md5(i::text)::uuid,
    'settlement:stream-' || (i % 50000) || ':' || (53000000 + i),
    'stream.settled',
    'stream-' || (i % 50000),
    case when i % 10 = 9 and i % 20 = 9 then
        jsonb_build_object('streamId', 'stream-' || (i % 50000), 'ledger', 53000000 + i)
    else jsonb_build_object('streamId', 'stream-' || (i % 50000), 'ledger', 53000000 + i,
        'transactionHash', md5(i::text) || md5((i + 1)::text), 'amount', '12.500000000')
    end,
    (case when i % 10 < 7 then 'succeeded' when i % 10 < 9 then 'processing'
          else (array['pending', 'failed', 'dead'])[1 + (i / 10) % 3] end
    )::settlement_outbox_status,
    1 + i % 8, 8,
    t0 + interval '1 minute',
    case when i % 10 in (7, 8) then t0 + interval '10 minutes' end,
    case when i % 10 = 9 then 'timeout waiting for confirmation' end,
    t0 - interval '1 hour',
    -- settled rows updated "now" by the server's clock: the default filter keeps every row
    case when i % 10 < 7 then now() at time zone 'utc' else t0 end
from generate_series(1, {rows}) as i,
     (select timestamp '2026-11-27 02:30:00' as t0) as base;
analyze settlement_outbox;
"""


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """(seconds, peak RSS in KiB, exit code) of a child process."""
    started = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        child = subprocess.Popen(argv, env=env, stdout=devnull, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    assert child.stderr is not None
    error = child.stderr.read().decode()
    child.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{argv[:3]} exited {code}: {error}")
    return elapsed, usage.ru_maxrss, code


def run_size(cluster: PostgresCluster, rows: int, runs: int, workdir: Path) -> dict[str, float]:
    cluster.admin(FILL.format(rows=rows), timeout=1800)
    env = {**os.environ, "PGPASSWORD": READER_PASSWORD}
    env.pop("STREAMPAY_INCIDENT_DATABASE_URL", None)
    export = workdir / f"outbox-{rows}.jsonl"
    with export.open("w", encoding="utf-8") as handle:
        subprocess.run(
            [
                "psql",
                "-X",
                "-At",
                "-d",
                cluster.dsn(),
                "-c",
                "select row_to_json(t) from settlement_outbox t order by created_at, id",
            ],
            env=env,
            stdout=handle,
            check=True,
        )
    common = ["--now", NOW, "--format", "json", "--timeout", "900"]
    db = [*TOOL, "settlements", "--db", cluster.dsn(), *common]
    file = [*TOOL, "settlements", str(export), *common]
    results: dict[str, float] = {}
    for name, argv in (("db", db), ("file", file)):
        samples = [timed(argv, env) for _ in range(runs)]
        results[f"{name}_s"] = statistics.median(s[0] for s in samples)
        results[f"{name}_rss_mib"] = max(s[1] for s in samples) / 1024
    results["export_mib"] = export.stat().st_size / 2**20
    export.unlink()
    return results


TRANSPORT = {
    "server-side cursor (the tool)": (
        "from streampay_incident.io.outbox_db import OutboxQuery, stream_outbox_json\n"
        "n = sum(1 for _ in stream_outbox_json({dsn!r}, OutboxQuery(), timeout=900))\n"
    ),
    "client-side cursor (fetchall)": (
        "import psycopg\n"
        "with psycopg.connect({dsn!r}) as c:\n"
        "    rows = c.execute('select row_to_json(t)::text from settlement_outbox t').fetchall()\n"
        "    n = len(rows)\n"
    ),
}


def transport(cluster: PostgresCluster) -> None:
    env = {**os.environ, "PGPASSWORD": READER_PASSWORD}
    for name, code in TRANSPORT.items():
        seconds, rss, _ = timed([sys.executable, "-c", code.format(dsn=cluster.dsn())], env)
        print(f"| {name} | {seconds:.2f} s | {rss / 1024:.0f} MiB |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--transport", action="store_true", help="also time the transport alone")
    args = parser.parse_args()
    cluster = start_cluster()
    try:
        with tempfile.TemporaryDirectory(prefix="settlements-db-") as tmp:
            print(
                "| rows | --db | file (psql -At export) | --db peak RSS | file peak RSS "
                "| export size | --db per row |"
            )
            print("|---|---|---|---|---|---|---|")
            for rows in args.sizes:
                r = run_size(cluster, rows, args.runs, Path(tmp))
                print(
                    f"| {rows:,} | {r['db_s']:.2f} s | {r['file_s']:.2f} s "
                    f"| {r['db_rss_mib']:.0f} MiB | {r['file_rss_mib']:.0f} MiB "
                    f"| {r['export_mib']:.0f} MiB | {r['db_s'] / rows * 1e6:.1f} us |",
                    flush=True,
                )
            if args.transport:
                print(f"\n| transport of {args.sizes[-1]:,} rows | time | peak RSS |")
                print("|---|---|---|")
                transport(cluster)
    finally:
        stop_cluster(cluster)


if __name__ == "__main__":
    main()
