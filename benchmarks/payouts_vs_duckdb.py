"""Benchmark: ``streampay-incident payouts`` against DuckDB SQL computing the same five rules.

Writes a synthetic payout export (CSV) per size, with tens of thousands of
destinations and a few planted cases of each rule, then times, in the same
run and each as a child process:

* the tool: ``streampay-incident payouts FILE --format json`` (streams the
  file, validates every value: StrKey checksums, amounts, timestamps, memos);
* DuckDB: the same five rules as SQL over the same file (no validation).

It prints the median wall time of a few runs per size, the tool/DuckDB ratio,
each child's peak RSS (``os.wait4``), and checks both found the same number of
findings per rule. Results go to ``benchmarks/out/`` (gitignored).

    python benchmarks/payouts_vs_duckdb.py                  # 100k, 300k, 1M rows
    python benchmarks/payouts_vs_duckdb.py --sizes 100000 --runs 1

Target (issue 2): on 2 cores, ratio <= 4 and peak RSS <= 600 MB at 1M rows,
with time growing linearly.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
CODES = (
    "PAYOUT_DUPLICATE_TX_RECORD",
    "PAYOUT_DUPLICATE_SETTLEMENT",
    "PAYOUT_DUPLICATE_MEMO",
    "PAYOUT_IDEMPOTENCY_CONFLICT",
    "PAYOUT_SUSPECTED_REPEAT",
)
HEADER = [
    "payout_id",
    "settlement_id",
    "destination",
    "asset",
    "amount",
    "status",
    "tx_hash",
    "memo_type",
    "memo",
    "idempotency_key",
    "created_at",
    "ledger",
]
PLANTED_PER_RULE = 5
# The installed console script, as on-call runs it.
TOOL = (
    [shutil.which("streampay-incident")]
    if shutil.which("streampay-incident")
    else [sys.executable, "-c", "from streampay_incident.cli import main; main()"]
)
START = datetime(2026, 11, 24, tzinfo=UTC)
PAYOUTS_PER_SECOND = 4.0  # constant density, so every size has the same shape


# -- the data -------------------------------------------------------------------------------


def write_payouts(path: Path, rows: int, seed: int = 7, *, long_ids: bool = False) -> None:
    """A payout export of ``rows`` data rows (plus planted duplicates) at ``path``.

    ``long_ids``: like issue 14's export, settlement ids of 47 characters
    (``settlement-`` and a UUID) instead of 13, and a destination for every 20
    rows instead of 25 (50,000 per million rows).
    """
    from stellar_sdk import MuxedAccount, StrKey

    rnd = random.Random(seed)
    per_destination = 20 if long_ids else 25
    destinations = [
        StrKey.encode_ed25519_public_key(rnd.randbytes(32))
        for _ in range(max(rows // per_destination, 500))
    ]
    # A few muxed accounts behind some of those G addresses (exchanges' sub-accounts).
    destinations += [
        MuxedAccount(g, rnd.getrandbits(40)).account_muxed
        for g in rnd.sample(destinations, len(destinations) // 50)
    ]
    issuer = StrKey.encode_ed25519_public_key(rnd.randbytes(32))
    assets = ("native", "XLM", f"USDC:{issuer}", f"EURC:{issuer}")
    moment = START
    out: list[list[str]] = []
    normal = rows - PLANTED_PER_RULE * 5  # each planted case adds one row
    index = 0

    def settlement_id(index: int) -> str:
        if long_ids:
            return f"settlement-{uuid.UUID(int=rnd.getrandbits(128), version=4)}"
        return f"stl-{index:09d}"

    while len(out) < normal:
        index += 1
        moment += timedelta(seconds=rnd.expovariate(PAYOUTS_PER_SECOND))
        status = rnd.choices(("confirmed", "submitted", "pending", "failed"), (92, 2, 3, 3))[0]
        out.append(
            _row(
                rnd,
                index,
                settlement_id(index),
                rnd.choice(destinations),
                rnd.choice(assets),
                _amount(rnd),
                status,
                moment,
            )
        )
        if status == "failed" and len(out) < normal:
            # A retry: the failed attempt is followed by one that landed (not a finding).
            out.append(
                _row(
                    rnd,
                    f"{index}r",
                    out[-1][1],
                    out[-1][2],
                    out[-1][3],
                    out[-1][4],
                    "confirmed",
                    moment + timedelta(seconds=30),
                )
            )
    _plant(rnd, out, destinations, assets)
    assert len(out) == rows, (len(out), rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(out)


def _amount(rnd: random.Random) -> str:
    if rnd.random() < 0.02:
        return rnd.choice(("25", "100", "12.5", "0.5", "250.25"))  # hand-typed shapes
    return f"{rnd.randint(0, 4999)}.{rnd.randint(1, 9_999_999):07d}"  # as Horizon prints


def _row(
    rnd: random.Random,
    index: object,
    settlement_id: str,
    destination: str,
    asset: str,
    amount: str,
    status: str,
    moment: datetime,
) -> list[str]:
    tx_hash = "" if status == "pending" else rnd.randbytes(32).hex()
    if tx_hash and rnd.random() < 0.01:
        tx_hash = tx_hash.upper()
    memo_type, memo = "", ""
    pick = rnd.random()
    if pick < 0.12:
        memo_type, memo = rnd.choice(("text", "")), f"inv-{index}"
    elif pick < 0.20:
        memo_type, memo = "id", str(rnd.getrandbits(48))
    elif pick < 0.22:
        memo_type, memo = "hash", rnd.randbytes(32).hex()
    elif pick < 0.25:
        memo_type = "none"
    seconds = int((moment - START).total_seconds())
    ledger = str(50_000_000 + seconds // 5) if status == "confirmed" else ""
    return [
        f"po-{index}",
        settlement_id,
        destination,
        asset,
        amount,
        status,
        tx_hash,
        memo_type,
        memo,
        f"idem-{index}",
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ledger,
    ]


def _plant(
    rnd: random.Random, out: list[list[str]], destinations: list[str], assets: tuple[str, ...]
) -> None:
    """A few cases of each rule, far apart so they do not trigger each other."""
    step = max(len(out) // (PLANTED_PER_RULE * 5 + 1), 1)
    for case in range(PLANTED_PER_RULE * 5):
        base = out[step * (case + 1) - 1]
        rule = case % 5
        moment = datetime.fromisoformat(base[10]) + timedelta(seconds=1)
        twin = list(base)
        twin[0] = f"{base[0]}-planted{rule + 1}"
        twin[9] = f"{base[9]}-planted"
        twin[10] = (moment + timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        twin[5] = "confirmed"
        if rule == 0:  # the same transaction recorded twice (hash in upper case)
            base[5] = "confirmed"
            base[6] = base[6] or rnd.randbytes(32).hex()
            twin[6] = base[6].upper()
        elif rule == 1:  # one settlement paid by a second transaction
            base[5] = "confirmed"
            twin[6] = rnd.randbytes(32).hex()
            twin[4] = _amount(rnd)  # a different amount: not also a suspected repeat
        elif rule == 2:  # one memo paid for two settlements
            base[5], base[7], base[8] = "confirmed", "text", f"memo-{case}"
            base[6] = base[6] or rnd.randbytes(32).hex()
            twin[1] = f"{base[1]}-other"
            twin[2] = rnd.choice(destinations)
            twin[4] = _amount(rnd)
            twin[6] = rnd.randbytes(32).hex()
            twin[7], twin[8] = "text", f"memo-{case}"
            twin[9] = f"{base[9]}-memo"
        elif rule == 3:  # an idempotency key reused for another settlement and amount
            twin[0] = f"{base[0]}-planted4"
            twin[1] = f"{base[1]}-other"
            twin[4] = _amount(rnd)
            twin[6] = rnd.randbytes(32).hex()
            twin[7], twin[8] = "", ""
            twin[9] = base[9]
        else:  # the same payment made again for another settlement, 3 minutes later
            base[5] = "confirmed"
            base[6] = base[6] or rnd.randbytes(32).hex()
            twin[1] = f"{base[1]}-other"
            twin[6] = rnd.randbytes(32).hex()
            twin[7], twin[8] = "", ""
        out.insert(out.index(base) + 1, twin)


# -- DuckDB: the five rules as SQL (run in a child process) ---------------------------------

DUCKDB_SQL = {
    "load": """
        CREATE TABLE p AS
        SELECT payout_id, settlement_id, destination,
               CASE WHEN asset IN ('native', 'XLM') THEN 'native' ELSE asset END AS asset,
               CAST(amount AS DECIMAL(38, 7)) AS amount,
               status,
               lower(tx_hash) AS tx_hash,
               coalesce(memo_type, CASE WHEN memo IS NULL THEN 'none' ELSE 'text' END) AS memo_type,
               CASE WHEN memo IS NULL THEN NULL
                    WHEN memo_type = 'id' THEN CAST(CAST(memo AS UBIGINT) AS VARCHAR)
                    WHEN memo_type IN ('hash', 'return') THEN
                        CASE WHEN length(memo) = 64 THEN lower(memo)
                             ELSE lower(hex(from_base64(memo))) END
                    ELSE memo END AS memo,
               idempotency_key,
               CAST(created_at AS TIMESTAMPTZ) AS created_at,
               status IN ('submitted', 'confirmed') AS is_transfer,
               coalesce('tx:' || lower(tx_hash), 'payout:' || payout_id) AS transfer_key
        FROM read_csv(?, header = true, all_varchar = true)
    """,
    "PAYOUT_DUPLICATE_TX_RECORD": """
        SELECT tx_hash FROM p WHERE tx_hash IS NOT NULL GROUP BY tx_hash HAVING count(*) >= 2
    """,
    "PAYOUT_DUPLICATE_SETTLEMENT": """
        WITH candidates AS (
            SELECT settlement_id FROM p WHERE is_transfer GROUP BY 1 HAVING count(*) >= 2)
        SELECT settlement_id,
               count(DISTINCT transfer_key) FILTER (WHERE status = 'confirmed') >= 2 AS critical
        FROM p JOIN candidates USING (settlement_id)
        WHERE is_transfer
        GROUP BY settlement_id HAVING count(DISTINCT transfer_key) >= 2
    """,
    "PAYOUT_DUPLICATE_MEMO": """
        WITH candidates AS (
            SELECT memo_type, memo FROM p
            WHERE status = 'confirmed' AND memo_type <> 'none' AND memo IS NOT NULL
            GROUP BY ALL HAVING count(*) >= 2)
        SELECT memo_type, memo FROM p JOIN candidates USING (memo_type, memo)
        WHERE status = 'confirmed'
        GROUP BY ALL
        HAVING count(DISTINCT settlement_id) >= 2 AND count(DISTINCT transfer_key) >= 2
    """,
    "PAYOUT_IDEMPOTENCY_CONFLICT": """
        SELECT idempotency_key FROM p WHERE idempotency_key IS NOT NULL
        GROUP BY 1
        HAVING count(*) >= 2 AND (min(settlement_id) <> max(settlement_id)
            OR min(destination) <> max(destination) OR min(asset) <> max(asset)
            OR min(amount) <> max(amount))
    """,
    # Transfers whose memos are present and differ are never chained (each memo a class,
    # memo-less transfers in every class); a chain found in two classes counts once.
    "PAYOUT_SUSPECTED_REPEAT": """
        WITH groups AS (
            SELECT destination, asset, amount FROM p WHERE is_transfer
            GROUP BY ALL HAVING count(*) >= 2),
        transfers AS (
            SELECT destination, asset, amount, transfer_key, min(created_at) AS ts,
                   arg_min_null(CASE WHEN memo_type <> 'none' AND memo <> ''
                                     THEN memo_type || ':' || memo END,
                                (created_at, payout_id)) AS memo_key
            FROM p JOIN groups USING (destination, asset, amount)
            WHERE is_transfer GROUP BY destination, asset, amount, transfer_key),
        memos AS (
            SELECT DISTINCT destination, asset, amount, memo_key FROM transfers
            WHERE memo_key IS NOT NULL),
        split AS (
            SELECT destination, asset, amount FROM memos GROUP BY ALL HAVING count(*) >= 2),
        classed AS (
            SELECT t.*, CASE WHEN s.destination IS NULL THEN '' ELSE t.memo_key END AS class
            FROM transfers t LEFT JOIN split s USING (destination, asset, amount)
            WHERE s.destination IS NULL OR t.memo_key IS NOT NULL
            UNION ALL
            SELECT t.*, m.memo_key FROM transfers t
            JOIN split s USING (destination, asset, amount)
            JOIN memos m USING (destination, asset, amount)
            WHERE t.memo_key IS NULL),
        breaks AS (
            SELECT *, CASE WHEN ts - lag(ts) OVER w <= INTERVAL (?) SECOND THEN 0 ELSE 1 END AS b
            FROM classed
            WINDOW w AS (PARTITION BY destination, asset, amount, class
                         ORDER BY ts, transfer_key)),
        chains AS (
            SELECT *, sum(b) OVER (PARTITION BY destination, asset, amount, class
                                   ORDER BY ts, transfer_key ROWS UNBOUNDED PRECEDING) AS chain
            FROM breaks)
        SELECT DISTINCT destination, asset, amount, identity FROM (
            SELECT c.destination, c.asset, c.amount,
                   list_sort(list(DISTINCT c.transfer_key)) AS identity
            FROM chains c JOIN p
              ON p.transfer_key = c.transfer_key AND p.destination = c.destination
             AND p.asset = c.asset AND p.amount = c.amount AND p.is_transfer
            GROUP BY c.destination, c.asset, c.amount, c.class, c.chain
            HAVING count(DISTINCT c.transfer_key) >= 2 AND count(DISTINCT p.settlement_id) >= 2)
    """,
}


def duckdb_child(path: str, window_seconds: int) -> None:
    """Run the five rules in DuckDB and print ``{code: count}`` as JSON (child process)."""
    import duckdb

    con = duckdb.connect()
    con.execute(DUCKDB_SQL["load"], [path])
    counts = {}
    for code in CODES:
        params = [window_seconds] if code == "PAYOUT_SUSPECTED_REPEAT" else []
        counts[code] = len(con.execute(DUCKDB_SQL[code], params).fetchall())
    print(json.dumps(counts))


# -- timing ---------------------------------------------------------------------------------


def run_measured(argv: list[str]) -> tuple[float, float, str, int]:
    """(wall seconds, peak RSS MiB, stdout, exit code), the RSS from ``os.wait4`` on this child."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert child.stdout is not None
    out = child.stdout.read()
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen.wait
    peak_mib = usage.ru_maxrss / 1024  # Linux: KiB
    return wall, peak_mib, out.decode(), child.returncode


def run_children(
    argvs: dict[str, list[str]], runs: int, what: str = ""
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, str], list[float]]:
    """Each named child ``runs`` times, in turn: (wall seconds, peak RSS MiB, last stdout,
    the 1-minute load average before and after each child). A child exiting other than
    0 or 1 stops the benchmark."""
    times: dict[str, list[float]] = {name: [] for name in argvs}
    rss: dict[str, list[float]] = {name: [] for name in argvs}
    outputs: dict[str, str] = {}
    loads = [os.getloadavg()[0]]
    for _ in range(runs):
        for name, argv in argvs.items():
            wall, peak, out, code = run_measured(argv)
            if code not in (0, 1):
                raise SystemExit(f"{name} exited {code}{what}")
            times[name].append(wall)
            rss[name].append(peak)
            outputs[name] = out
            loads.append(os.getloadavg()[0])
    return times, rss, outputs, loads


def tool_counts(report_json: str) -> dict[str, int]:
    findings = json.loads(report_json)["findings"]
    return {code: sum(1 for f in findings if f["code"] == code) for code in CODES}


def bench(size: int, runs: int, window: int) -> dict[str, object]:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"payouts-{size}.csv"
    if not path.exists():
        started = time.perf_counter()
        write_payouts(path, size)
        print(f"  wrote {path.name} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    tool = [*TOOL, "payouts", str(path), "--format", "json", "--repeat-window", f"{window}s"]
    duck = [sys.executable, __file__, "--duckdb-child", str(path), "--window", str(window)]
    tool_times, tool_rss, duck_times, duck_rss = [], [], [], []
    tool_found = duck_found = None
    for _ in range(runs):
        wall, rss, out, code = run_measured(tool)
        if code not in (0, 1):
            raise SystemExit(f"streampay-incident exited {code} on {path}")
        tool_times.append(wall)
        tool_rss.append(rss)
        tool_found = tool_counts(out)
        wall, rss, out, code = run_measured(duck)
        if code != 0:
            raise SystemExit(f"duckdb child exited {code}")
        duck_times.append(wall)
        duck_rss.append(rss)
        duck_found = json.loads(out)
    tool_median = statistics.median(tool_times)
    duck_median = statistics.median(duck_times)
    return {
        "rows": size,
        "file_mib": round(path.stat().st_size / 2**20, 1),
        "tool_seconds": round(tool_median, 2),
        "duckdb_seconds": round(duck_median, 2),
        "ratio": round(tool_median / duck_median, 2),
        "tool_peak_rss_mib": round(max(tool_rss)),
        "duckdb_peak_rss_mib": round(max(duck_rss)),
        "tool_us_per_row": round(tool_median / size * 1e6, 2),
        "tool_findings": tool_found,
        "duckdb_findings": duck_found,
        "same_findings": tool_found == duck_found,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=int, default=600, help="repeat window in seconds")
    parser.add_argument("--duckdb-child", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.duckdb_child:
        duckdb_child(args.duckdb_child, args.window)
        return
    results = []
    print(
        f"{'rows':>9} {'tool s':>8} {'duckdb s':>9} {'ratio':>6} {'tool MiB':>9} "
        f"{'duckdb MiB':>10} {'us/row':>7} same"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        result = bench(size, args.runs, args.window)
        results.append(result)
        print(
            f"{result['rows']:>9} {result['tool_seconds']:>8} {result['duckdb_seconds']:>9} "
            f"{result['ratio']:>6} {result['tool_peak_rss_mib']:>9} "
            f"{result['duckdb_peak_rss_mib']:>10} {result['tool_us_per_row']:>7} "
            f"{result['same_findings']}",
            flush=True,
        )
    doc = {
        "benchmark": "payouts_vs_duckdb",
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "results": results,
    }
    (OUT / "payouts_vs_duckdb.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results: {OUT / 'payouts_vs_duckdb.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
