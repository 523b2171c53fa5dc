"""What every benchmark report (benchmarks/*.py) records about its run.

Timings only mean something next to the machine, the load and the library versions they were
measured with; the scripts put this header at the top of their JSON results, and end with
`write_report`.
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any


def run_metadata(benchmark: str) -> dict[str, Any]:
    """Name, UTC time, machine, 1-minute load average and the numeric libraries' versions."""
    return {
        "benchmark": benchmark,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": {name: version(name) for name in ("numpy", "pandas", "scipy")},
        "load_average_1min": os.getloadavg()[0],
    }


def write_report(
    benchmark: str, out: Path, fields: dict[str, Any], *, table: str | None = None
) -> dict[str, Any]:
    """Write a benchmark's JSON report and say where it went.

    Args:
        benchmark: The benchmark's name (the report's first field).
        out: The JSON file (its folder is made if needed; written atomically).
        fields: The results, after this run's `run_metadata`.
        table: A markdown table of the results: kept in the report and printed on stdout
            (then the line naming the file goes to stderr, so stdout holds the table alone).

    Returns:
        The report written.
    """
    from ltr.fileio import write_json_atomic

    report = {**run_metadata(benchmark), **fields}
    if table is not None:
        report["table"] = table
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, report)
    if table is not None:
        print(table)
    print(f"wrote {out}", file=sys.stdout if table is None else sys.stderr)
    return report
