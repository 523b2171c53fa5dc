"""Benchmark of `generate_synthetic`: wall time, CPU time and peak memory by number of users.

    python benchmarks/synthetic_generation.py                    # 20,000 and 100,000 users
    python benchmarks/synthetic_generation.py --sizes 1000,20000 --repeats 1

(The test suite only checks, without a clock, that generation is vectorised: the number of
Python calls does not grow with the number of users.) Each size runs in a fresh subprocess;
``peak MiB`` is the growth of the process's max RSS over the first call. Prints a markdown table
and writes JSON to benchmarks/results/synthetic_generation.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(users: int, repeats: int, seed: int) -> dict[str, Any]:
    from ltr.data.synthetic import generate_synthetic

    generate_synthetic(10, seed=seed)  # imports out of the way
    before = _maxrss_mib()
    times, cpu_times, detections = [], [], 0
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        data = generate_synthetic(users, seed=seed)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        detections = len(data.dataset.detections)
        del data
    return {
        "users": users,
        "detections": detections,
        "seconds": min(times),
        "all_seconds": times,
        "cpu_seconds": min(cpu_times),
        "peak_rss_growth_mib": _maxrss_mib() - before,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000", help="synthetic user counts")
    parser.add_argument("--repeats", type=int, default=3, help="calls per size (best)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "synthetic_generation.json")
    parser.add_argument("--worker", nargs=2, metavar=("USERS", "REPEATS"), help="internal")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(int(args.worker[0]), int(args.worker[1]), args.seed)))
        return 0

    rows = []
    for users in (int(s) for s in args.sizes.split(",") if s.strip()):
        print(f"measuring {users:,} users ...", file=sys.stderr, flush=True)
        command = [sys.executable, __file__, "--worker", str(users), str(args.repeats)]
        done = subprocess.run(
            [*command, "--seed", str(args.seed)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"{users} users failed:\n{done.stderr}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    lines = [
        "| users | detections | time (s) | CPU (s) | peak MiB |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['users']:,} | {r['detections']:,} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} "
        f"| {r['peak_rss_growth_mib']:.0f} |"
        for r in rows
    ]
    from run_metadata import write_report  # benchmarks/run_metadata.py, next to this script

    write_report("synthetic_generation", args.out, {"rows": rows}, table="\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
