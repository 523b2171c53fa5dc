"""What every benchmark report (benchmarks/*.py) records about its run.

Timings only mean something next to the machine, the load and the library versions they were
measured with; the scripts put this header at the top of their JSON results.
"""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from importlib.metadata import version
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
