"""Wall time of ``streampay-incident chain --timeout 2`` against 1, 10 and 50 hung endpoints.

One deadline bounds the whole run: however many endpoints hang (accept the
connection, read the request, never answer), the command should answer in
about ``--timeout`` seconds plus start-up, not ``--timeout`` times the count.

Each run starts the real command in a subprocess against loopback servers
(127.0.0.1 only, from ``tests/loopback.py``), half of them given as Horizon
and half as Stellar RPC. Usage::

    python benchmarks/hung_endpoints.py [--timeout 2] [--counts 1,10,50]

Exits 1 when any run takes longer than the timeout plus ``--slack`` seconds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from loopback import HANG, ServerPool  # noqa: E402

# The installed command, run by this interpreter.
CLI = [sys.executable, "-c", "from streampay_incident.cli import main; main()"]


def run_once(count: int, timeout: float) -> tuple[float, dict[str, object]]:
    """Wall time of one command run against ``count`` hung endpoints, and its JSON report."""
    with ServerPool.of(count, {"*": HANG}) as pool:
        args: list[str] = []
        for index, url in enumerate(pool.urls):
            args += ["--horizon" if index % 2 == 0 else "--rpc", url]
        command = [
            *CLI,
            "chain",
            *args,
            "--network",
            "public",
            "--timeout",
            str(timeout),
            "--format",
            "json",
        ]
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"command failed ({done.returncode}): {done.stderr}")
    return wall, json.loads(done.stdout)


def startup_seconds() -> float:
    """Time for the command to start and exit without probing (``--help``): the fixed cost."""
    started = time.monotonic()
    subprocess.run(
        [*CLI, "chain", "--help"],
        capture_output=True,
        check=True,
    )
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--counts", default="1,10,50")
    parser.add_argument("--slack", type=float, default=1.5, help="allowed seconds over --timeout")
    options = parser.parse_args()
    counts = [int(c) for c in options.counts.split(",")]
    startup = startup_seconds()
    print(f"streampay-incident chain --timeout {options.timeout:g}, hung loopback endpoints")
    print(f"command start-up alone (--help): {startup:.2f} s")
    print(f"{'endpoints':>9}  {'wall (s)':>8}  {'findings':>8}  status")
    worst_over = 0.0
    for count in counts:
        wall, report = run_once(count, options.timeout)
        findings = report["findings"]
        assert isinstance(findings, list)
        print(f"{count:>9}  {wall:>8.2f}  {len(findings):>8}  {report['status']}")
        worst_over = max(worst_over, wall - options.timeout)
    if worst_over > options.slack:
        print(f"FAIL: a run took {worst_over:.2f} s longer than --timeout", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
