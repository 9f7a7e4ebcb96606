"""Benchmark: ``payouts --engine duckdb`` against bare DuckDB SQL and ``--engine python``.

On the same synthetic export per size (``payouts_vs_duckdb.write_payouts``: 1 row
in 25 to a new destination, so 40,000 destinations per million rows, long
settlement ids, every rule planted a few times), in the same run and each as a
child process, it times:

* ``duckdb``: ``streampay-incident payouts FILE --format json --engine duckdb``
  (reads and validates every value, runs the five rules in SQL, prints the report);
* ``bare``: DuckDB SQL computing the same five rule groups, no validation, no
  evidence (``payouts_vs_duckdb.py --duckdb-child``);
* ``python``: ``--engine python``, the reference (skipped above ``--python-max`` rows);
* ``spark``: ``--engine spark --spark-master local[2]`` at the ``--spark-sizes`` only.

It prints the median wall time of ``--runs`` runs, each child's peak RSS
(``os.wait4``; for Spark also the peak of the driver and its JVM together,
sampled from ``/proc``), the duckdb/bare ratio, and checks that the engines'
reports hold the same findings. Results go to ``benchmarks/out/payouts_engines.json``.
The exports are written once to ``--data`` (a 10M-row CSV is 2.5 GB: put it in /tmp);
``--long-ids`` writes them in the shape of issue 14's export instead: settlement ids of
47 characters and 50,000 destinations per million rows.

    python benchmarks/payouts_engines.py                         # 100k and 1M rows
    python benchmarks/payouts_engines.py --sizes 10000000 --runs 1 --data /tmp/bench \
        --spark-sizes 10000000

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

from payouts_vs_duckdb import CODES, OUT, TOOL, run_measured, write_payouts  # noqa: E402

SPARK_MASTER = "local[2]"


def _findings(report: str) -> list[dict[str, object]]:
    return json.loads(report)["findings"]


def tree_rss_mib(pid: int) -> float:
    """The RSS of ``pid`` and all its descendants now, in MiB (0 once it is gone)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                total += next((int(x.split()[1]) for x in status if x.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo += [int(c) for c in children.read().split()]
        except (OSError, ValueError):
            continue
    return total / 1024


def run_tree_measured(argv: list[str]) -> tuple[float, float, float, str, int]:
    """As ``run_measured``, plus the peak RSS of the child's whole process tree (Spark's JVM
    is the driver's child), sampled every 0.2 s: (wall, child RSS, tree RSS, stdout, code)."""
    import subprocess
    import tempfile
    import threading

    peak = [0.0]
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                peak[0] = max(peak[0], tree_rss_mib(child.pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        _pid, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return wall, usage.ru_maxrss / 1024, peak[0], out.read().decode(), child.returncode


def bench(
    size: int, runs: int, window: int, python_max: int, data: Path, spark: bool, long_ids: bool
) -> dict[str, object]:
    data.mkdir(parents=True, exist_ok=True)
    path = data / f"payouts-{size}{'-long' if long_ids else ''}.csv"
    if not path.exists():
        started = time.perf_counter()
        write_payouts(path, size, long_ids=long_ids)
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
    if spark:
        argvs["spark"] = [*tool, "--engine", "spark", "--spark-master", SPARK_MASTER]
    times: dict[str, list[float]] = {name: [] for name in argvs}
    rss: dict[str, list[float]] = {name: [] for name in argvs}
    outputs: dict[str, str] = {}
    tree: list[float] = []
    load_before = os.getloadavg()
    for _ in range(runs):
        for name, argv in argvs.items():
            if name == "spark":
                wall, peak, tree_peak, out, code = run_tree_measured(argv)
                tree.append(tree_peak)
            else:
                wall, peak, out, code = run_measured(argv)
            if code not in (0, 1):
                raise SystemExit(f"{name} exited {code} on {path}")
            times[name].append(wall)
            rss[name].append(peak)
            outputs[name] = out
    result: dict[str, object] = {
        "rows": size,
        "long_ids": long_ids,
        "load_average_1_5_15_before": [round(x, 1) for x in load_before],
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
    if tree:
        result["spark_tree_peak_rss_mib"] = round(max(tree))
        result["spark_over_duckdb"] = round(
            statistics.median(times["spark"]) / statistics.median(times["duckdb"]), 2
        )
        result["spark_same_findings"] = _findings(outputs["spark"]) == found
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
    parser.add_argument("--data", type=Path, default=OUT, help="where the exports are written")
    parser.add_argument("--spark-sizes", default="", help="sizes to run --engine spark at too")
    parser.add_argument("--long-ids", action="store_true",
                        help="issue 14's shape: 47-character settlement ids, 50,000 "
                        "destinations per million rows")  # fmt: skip
    args = parser.parse_args()
    spark_sizes = {int(s) for s in args.spark_sizes.split(",") if s}
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        result = bench(
            size, args.runs, args.window, args.python_max, args.data, size in spark_sizes,
            args.long_ids,
        )  # fmt: skip
        results.append(result)
        print(json.dumps(result), flush=True)
    load = os.getloadavg()
    doc = {
        "benchmark": "payouts_engines",
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpus": os.cpu_count(),
        "load_average_1_5_15_at_end": [round(x, 1) for x in load],
        "python": sys.version.split()[0],
        "results": results,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "payouts_engines.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results: {OUT / 'payouts_engines.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
