"""Benchmark: ``payouts --engine duckdb`` against bare DuckDB SQL and ``--engine python``.

On the same synthetic export per size (``payouts_vs_duckdb.write_payouts``: 1 row
in 25 to a new destination, so 40,000 destinations per million rows, long
settlement ids, every rule planted a few times), in the same run and each as a
child process, it times:

* ``duckdb``: ``streampay-incident payouts FILE --format json --engine duckdb``
  (reads and validates every value, runs the five rules in SQL, prints the report);
* ``bare``: DuckDB SQL computing the same five rule groups, no validation, no
  evidence (``payouts_vs_duckdb.py --duckdb-child``);
* ``python``: ``--engine python``, the reference (skipped above ``--python-max`` rows).

It prints the median wall time of ``--runs`` runs, each child's peak RSS
(``os.wait4``), the duckdb/bare ratio, and checks that the two engines' reports
hold the same findings. Results go to ``benchmarks/out/payouts_engines.json``.

    python benchmarks/payouts_engines.py                         # 100k and 1M rows
    python benchmarks/payouts_engines.py --sizes 10000000 --runs 1 --python-max 1000000

Targets (issue 14): at 1M rows, duckdb within 1.5x of bare and peak RSS <= 400 MB;
at 10M rows, peak RSS under 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from payouts_vs_duckdb import CODES, OUT, TOOL, run_children, write_payouts  # noqa: E402


def _findings(report: str) -> list[dict[str, object]]:
    return json.loads(report)["findings"]


def bench(size: int, runs: int, window: int, python_max: int) -> dict[str, object]:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"payouts-{size}.csv"
    if not path.exists():
        started = time.perf_counter()
        write_payouts(path, size)
        print(f"  wrote {path.name} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    tool = [*TOOL, "payouts", str(path), "--format", "json", "--repeat-window", f"{window}s"]
    argvs = {
        "duckdb": [*tool, "--engine", "duckdb"],
        "bare": [sys.executable, str(Path(__file__).parent / "payouts_vs_duckdb.py"),
                 "--duckdb-child", str(path), "--window", str(window)],
        "python": [*tool, "--engine", "python"],
    }  # fmt: skip
    if size > python_max:
        del argvs["python"]
    times, rss, outputs, _loads = run_children(argvs, runs, f" on {path}")
    result: dict[str, object] = {
        "rows": size,
        "file_mib": round(path.stat().st_size / 2**20, 1),
        "runs": runs,
    }
    for name in argvs:
        result[f"{name}_seconds"] = round(statistics.median(times[name]), 2)
        result[f"{name}_peak_rss_mib"] = round(max(rss[name]))
    result["duckdb_over_bare"] = round(
        statistics.median(times["duckdb"]) / statistics.median(times["bare"]), 2
    )
    found = _findings(outputs["duckdb"])
    result["findings"] = len(found)
    # The bare SQL counts the same rule groups (without evidence): the counts must agree.
    counts = {code: sum(1 for f in found if f["code"] == code) for code in CODES}
    result["same_counts_as_bare"] = counts == json.loads(outputs["bare"])
    if "python" in outputs:
        result["python_over_duckdb"] = round(
            statistics.median(times["python"]) / statistics.median(times["duckdb"]), 2
        )
        result["same_findings"] = _findings(outputs["duckdb"]) == _findings(outputs["python"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=int, default=600, help="repeat window in seconds")
    parser.add_argument("--python-max", type=int, default=1_000_000,
                        help="skip the python engine above this many rows")  # fmt: skip
    args = parser.parse_args()
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        result = bench(size, args.runs, args.window, args.python_max)
        results.append(result)
        print(json.dumps(result), flush=True)
    load = os.getloadavg()
    doc = {
        "benchmark": "payouts_engines",
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpus": os.cpu_count(),
        "load_average_1_5_15": [round(x, 1) for x in load],
        "python": sys.version.split()[0],
        "results": results,
    }
    (OUT / "payouts_engines.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results: {OUT / 'payouts_engines.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
