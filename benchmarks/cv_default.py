"""Benchmark of `ltr cv` with the default preset: wall and CPU time of the whole command
(5-fold x 3 repeats, seed 0) in a fresh process, as a person runs it.

    python benchmarks/cv_default.py                       # aware2023 under ../shared/data
    python benchmarks/cv_default.py --data PATH --runs 3

Target: under 60 s on aware2023 (600 training users) on 2 cores. The tests never time anything
(the machines are shared); this script reports the load average next to every figure, and the
CPU time, which depends less on other work. Prints a markdown table and writes JSON to
benchmarks/results/cv_default.json (git-ignored).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cli_startup import ltr_command
from run_metadata import write_report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "aware2023"
TARGET_SECONDS = 60.0


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_cv(data: Path, report: Path) -> dict[str, float]:
    """One `ltr cv DATA` of the default preset; its wall and CPU seconds and the load."""
    command = [*ltr_command(), "cv", str(data), "--seed", "0", "--report", str(report)]
    load = os.getloadavg()[0]
    cpu0, wall0 = children_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - wall0, children_cpu() - cpu0
    if done.returncode != 0:
        sys.exit(f"ltr cv failed: {done.stderr.strip()}")
    return {"wall_seconds": wall, "cpu_seconds": cpu, "load_average_1min": load}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "cv_default.json")
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            runs.append(time_cv(args.data, Path(tmp) / f"cv-{i}.json"))
    best = min(runs, key=lambda r: r["wall_seconds"])
    rows = [
        f"| {i + 1} | {r['wall_seconds']:.1f} | {r['cpu_seconds']:.1f} | "
        f"{r['load_average_1min']:.1f} |"
        for i, r in enumerate(runs)
    ]
    table = "\n".join(
        [
            f"`ltr cv {args.data.name}` (default preset, 5-fold x 3), "
            f"target {TARGET_SECONDS:.0f} s",
            "",
            "| run | wall (s) | CPU (s) | load (1 min) |",
            "| ---: | ---: | ---: | ---: |",
            *rows,
        ]
    )
    write_report(
        "cv_default",
        args.out,
        {
            "data": str(args.data),
            "runs": runs,
            "best_wall_seconds": best["wall_seconds"],
            "target_seconds": TARGET_SECONDS,
            "under_target": best["wall_seconds"] < TARGET_SECONDS,
        },
        table=table,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
