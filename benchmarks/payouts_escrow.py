"""Benchmark: ``payouts --escrow --chain-payments FILE`` on DuckDB against ``--engine python``.

On the synthetic export of ``payouts_vs_duckdb.write_payouts`` (1M rows: about
2.9 days at 4 payouts a second), the incident question is "did what left the
escrow in the last ``--window-minutes`` match the rows?". The chain file holds
one Horizon payment record (JSON Lines) per confirmed row with a tx hash
created in that window, with a few planted faults: a row's payment missing
(``ESCROW_RECORD_NOT_ON_CHAIN``), an amount one stroop off
(``ESCROW_AMOUNT_MISMATCH``) and payments no row records
(``ESCROW_UNRECORDED_OUTFLOW``). ``--since``/``--until`` are the window, so
every confirmed row before it is listed in ``ESCROW_OUTSIDE_WINDOW``'s evidence
(the reference's report does that, on every engine).

Each engine runs as a child process (wall time, peak RSS from ``os.wait4``);
the two reports must be identical byte for byte (``--now`` is given). Results
go to ``benchmarks/out/payouts_escrow.json``.

    python benchmarks/payouts_escrow.py                 # 1M rows, a 60-minute window
    python benchmarks/payouts_escrow.py --rows 100000 --runs 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from payouts_vs_duckdb import OUT, TOOL, run_children, write_payouts  # noqa: E402

# A fixed escrow account (a valid StrKey; nothing here signs anything).
ESCROW = "GCNL55IJTH2HX26HLNIGYD2JIQLTBAQL3SVPNZA6PXK7NAVHU423WOTE"
MISSING_EVERY, MISMATCH_EVERY, UNRECORDED = 500, 700, 5


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_chain(export: Path, path: Path, minutes: int) -> tuple[datetime, datetime, int]:
    """Horizon payment records for the confirmed rows of ``export``'s last ``minutes``.

    Returns the window (since, until) and how many records were written.
    """
    from stellar_sdk import MuxedAccount

    from streampay_incident.amounts import format_stroops, parse_stroops
    from streampay_incident.io.payout_fields import parse_time

    with export.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    until = max(parse_time(r["created_at"]) for r in rows)
    since = until - timedelta(minutes=minutes)
    written = 0
    with path.open("w", encoding="utf-8") as out:
        recent = [r for r in rows if r["status"] == "confirmed" and r["tx_hash"]]
        recent = [r for r in recent if parse_time(r["created_at"]) >= since]
        for index, row in enumerate(recent):
            if index % MISSING_EVERY == 1:
                continue  # the payout row says confirmed; nothing left the escrow
            amount = parse_stroops(row["amount"]) + (index % MISMATCH_EVERY == 2)
            out.write(json.dumps(_record(row, amount, index, MuxedAccount, format_stroops)) + "\n")
            written += 1
        for extra in range(UNRECORDED):
            row = dict(recent[extra], tx_hash=f"{extra + 1:064x}")
            out.write(json.dumps(_record(row, 1, 10**9 + extra, MuxedAccount, format_stroops)))
            out.write("\n")
            written += 1
    return since, until, written


def _record(row: dict[str, str], amount: int, index: int, muxed: type, fmt: object) -> dict:
    destination = row["destination"]
    record = {
        "id": str(2**40 + index),
        "type": "payment",
        "transaction_hash": row["tx_hash"].lower(),
        "transaction_successful": True,
        "created_at": row["created_at"][:19] + "Z",
        "from": ESCROW,
        "to": destination,
        "amount": fmt(amount),  # type: ignore[operator]
    }
    if destination.startswith("M"):
        record["to"] = muxed.from_account(destination).account_id  # type: ignore[attr-defined]
        record["to_muxed"] = destination
    if row["asset"] in ("native", "XLM"):
        record["asset_type"] = "native"
    else:
        code, issuer = row["asset"].split(":")
        record.update(asset_type="credit_alphanum4", asset_code=code, asset_issuer=issuer)
    return record


def bench(rows: int, runs: int, minutes: int) -> dict[str, object]:
    OUT.mkdir(parents=True, exist_ok=True)
    export = OUT / f"payouts-{rows}.csv"
    if not export.exists():
        write_payouts(export, rows)
    chain = OUT / f"escrow-chain-{rows}-{minutes}m.jsonl"
    since, until, payments = write_chain(export, chain, minutes)
    tool = [*TOOL, "payouts", str(export), "--format", "json", "--escrow", ESCROW,
            "--chain-payments", str(chain), "--since", _stamp(since), "--until", _stamp(until),
            "--now", _stamp(until + timedelta(hours=1))]  # fmt: skip
    argvs = {"duckdb": [*tool, "--engine", "duckdb"], "python": [*tool, "--engine", "python"]}
    times, rss, outputs, loads = run_children(argvs, runs)
    report = json.loads(outputs["duckdb"])
    outside = next(f for f in report["findings"] if f["code"] == "ESCROW_OUTSIDE_WINDOW")
    result: dict[str, object] = {
        "rows": rows,
        "window_minutes": minutes,
        "chain_payments": payments,
        "rows_outside_window": len(outside["evidence"]["payout_ids"]),
        "report_mib": round(len(outputs["duckdb"]) / 2**20, 1),
        "escrow_findings": {
            code: sum(1 for f in report["findings"] if f["code"] == code)
            for code in sorted({f["code"] for f in report["findings"]})
            if code.startswith("ESCROW_")
        },
        "runs": runs,
        "same_report": outputs["duckdb"] == outputs["python"],
        "load_average_1m_during": [round(x, 1) for x in loads],
    }
    for name in argvs:
        result[f"{name}_seconds"] = round(statistics.median(times[name]), 2)
        result[f"{name}_peak_rss_mib"] = round(max(rss[name]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--window-minutes", type=int, default=60)
    args = parser.parse_args()
    started = time.perf_counter()
    result = bench(args.rows, args.runs, args.window_minutes)
    print(json.dumps(result), flush=True)
    doc = {
        "benchmark": "payouts_escrow",
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpus": os.cpu_count(),
        "load_average_1_5_15": [round(x, 1) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "seconds": round(time.perf_counter() - started),
        "result": result,
    }
    (OUT / "payouts_escrow.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results: {OUT / 'payouts_escrow.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
