"""Benchmark of how fast `ltr` starts: wall time of `ltr --version`, `ltr --help` and
`ltr cv --help` in fresh processes (the way a person runs them), median over N runs.

    python benchmarks/cli_startup.py            # 20 runs each
    python benchmarks/cli_startup.py --runs 5

Target: a median under 0.3 s on an idle machine, which holds only while the command modules
import no heavy library at import time (tests/test_cli_help.py checks that part, never the
time: the machines are shared and timed tests would be flaky). Prints a markdown table and
writes JSON to benchmarks/results/cli_startup.json (git-ignored).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TARGET_SECONDS = 0.3
CASES: dict[str, list[str]] = {
    "ltr --version": ["--version"],
    "ltr --help": ["--help"],
    "ltr cv --help": ["cv", "--help"],
}


def ltr_command() -> list[str]:
    """The installed `ltr` script next to this Python, else the same entry point via -c."""
    script = Path(sys.executable).with_name("ltr")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from ltr.cli.main import main; main()"]


def measure(args: list[str], runs: int) -> dict[str, Any]:
    command = [*ltr_command(), *args]
    subprocess.run(command, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "command": " ".join(args),
        "runs": runs,
        "median_s": round(median, 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
        "under_target": median < TARGET_SECONDS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per command (default 20)")
    parser.add_argument("--out", type=Path, default=RESULTS / "cli_startup.json")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_metadata import write_report  # benchmarks/run_metadata.py, next to this script

    results = {name: measure(case, args.runs) for name, case in CASES.items()}
    lines = [
        f"| command | median (s) | min (s) | max (s) | < {TARGET_SECONDS} s |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, r in results.items():
        mark = "yes" if r["under_target"] else "no"
        lines.append(
            f"| `{name}` | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['max_s']:.3f} | {mark} |"
        )
    fields = {"target_s": TARGET_SECONDS, "results": results}
    write_report("cli_startup", args.out, fields, table="\n".join(lines))


if __name__ == "__main__":
    main()
