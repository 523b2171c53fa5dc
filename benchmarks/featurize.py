"""Benchmark of `ltr.features.featurize`: wall time, peak memory, speed-up over the loop.

    python benchmarks/featurize.py                 # aware2023 (if present) + 10k and 100k synthetic
    python benchmarks/featurize.py --sizes 2000 --reference-sizes 2000   # quick run
    python benchmarks/featurize.py --families models     # only the presets' DEFAULT_FAMILIES

Every measurement runs in a fresh subprocess, so peak memory is that of one case only:
- ``time``: best wall time of `--repeats` calls of `featurize` on the whole data set (all splits),
  and the best CPU time (less sensitive to other processes on a shared machine);
- ``peak MiB``: tracemalloc peak during one call (numpy/scipy buffers are traced), and the growth
  of the process's max RSS over the call (``rss MiB``; 0 when loading the data peaked higher);
- ``reference``: one call of the plain Python loop (`tests/reference_features.py`), measured where
  it runs in reasonable time and extrapolated linearly in detections (and labelled so) elsewhere.

``--families``: ``all`` (default: every family, what `ltr cv/train` compute), ``models`` (the
presets' `DEFAULT_FAMILIES`) or a comma-separated list; the reference loop always computes all.

Prints a markdown table and writes JSON to benchmarks/results/featurize.json (git-ignored).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_AWARE = ROOT.parent / "shared" / "data" / "aware2023"


def _maxrss_mib() -> float:
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _load(spec: str, seed: int):
    """``aware2023:PATH`` or ``synthetic:N`` -> Dataset."""
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        from ltr.data.synthetic import generate_synthetic

        return generate_synthetic(int(arg), seed=seed).dataset
    from ltr.data.loading import load_dataset

    return load_dataset(arg)


def families_of(text: str) -> tuple[str, ...] | None:
    """``all`` -> None (every family), ``models`` -> the presets' DEFAULT_FAMILIES, else a list."""
    if text == "all":
        return None
    if text == "models":
        from ltr.models.registry import DEFAULT_FAMILIES

        return DEFAULT_FAMILIES
    from ltr.features.config import parse_families

    return parse_families(text)


def worker(spec: str, impl: str, repeats: int, seed: int, families: str) -> dict[str, Any]:
    """Measure one (data set, implementation) case in this process."""
    from ltr.features import FeatureConfig, featurize

    # The plain-loop featuriser is the tests' oracle and lives with them.
    sys.path.insert(0, str(ROOT / "tests"))
    from reference_features import featurize_reference

    config = FeatureConfig(families=families_of(families) if impl == "vectorised" else None)
    run = featurize if impl == "vectorised" else featurize_reference
    dataset = _load(spec, seed)
    gc.collect()
    rss_before = _maxrss_mib()
    times, cpu_times = [], []
    matrix = None
    for _ in range(repeats):
        matrix = None
        gc.collect()
        start, cpu_start = time.perf_counter(), time.process_time()
        matrix = run(dataset, None, config)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    rss_growth = max(_maxrss_mib() - rss_before, 0.0)
    result: dict[str, Any] = {
        "data": spec,
        "impl": impl,
        "families": families if impl == "vectorised" else "all",
        "users": int(matrix.shape[0]),
        "features": int(matrix.shape[1]),
        "detections": int(len(dataset.detections)),
        "images": int(len(dataset.images)),
        "nnz": int(matrix.values.nnz),
        "sparse_mib": (matrix.values.data.nbytes + matrix.values.indices.nbytes) / 2**20,
        "seconds": min(times),
        "all_seconds": times,
        "cpu_seconds": min(cpu_times),
        "load_average": os.getloadavg()[0],
        "rss_growth_mib": rss_growth,
    }
    if impl == "vectorised":  # the loop's dicts would make tracemalloc itself the bottleneck
        matrix = None
        gc.collect()
        tracemalloc.start()
        run(dataset, None, config)
        result["traced_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return result


def measure(spec: str, impl: str, repeats: int, seed: int, families: str) -> dict[str, Any]:
    """Run `worker` in a fresh interpreter and return its JSON result."""
    command = [sys.executable, __file__, "--worker", spec, impl, str(repeats), "--seed", str(seed)]
    command += ["--families", families]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark case {spec} / {impl} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _label(spec: str) -> str:
    kind, _, arg = spec.partition(":")
    return f"synthetic {int(arg):,}" if kind == "synthetic" else Path(arg).name + " (all splits)"


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        "| data | families | users | detections | features | time (s) | CPU (s) "
        "| peak MiB (traced) | rss MiB | reference loop (s) | speed-up |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    lines = [header]
    for row in rows:
        fast, ref = row["vectorised"], row.get("reference")
        if ref is None:
            ref_cell, ratio_cell = "n/a", "n/a"
        else:
            mark = " (extrapolated)" if ref["extrapolated"] else ""
            ref_cell = f"{ref['seconds']:.1f}{mark}"
            ratio_cell = f"{ref['seconds'] / fast['seconds']:.0f}x{mark}"
        lines.append(
            f"| {_label(fast['data'])} | {fast['families']} | {fast['users']:,} "
            f"| {fast['detections']:,} "
            f"| {fast['features']:,} | {fast['seconds']:.2f} | {fast['cpu_seconds']:.2f} "
            f"| {fast['traced_peak_mib']:.0f} "
            f"| {fast['rss_growth_mib']:.0f} | {ref_cell} | {ratio_cell} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aware", type=Path, default=DEFAULT_AWARE, help="aware2023 folder")
    parser.add_argument("--sizes", default="10000,100000", help="synthetic user counts")
    parser.add_argument(
        "--reference-sizes", default="10000", help="synthetic sizes where the loop is measured"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per case (best)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--families", default="all", help="all, models (DEFAULT_FAMILIES) or a comma list"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "featurize.json")
    parser.add_argument("--worker", nargs=3, metavar=("DATA", "IMPL", "REPEATS"), help="internal")
    args = parser.parse_args(argv)

    if args.worker:
        spec, impl, repeats = args.worker
        print(json.dumps(worker(spec, impl, int(repeats), args.seed, args.families)))
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    measured = {int(s) for s in args.reference_sizes.split(",") if s.strip()}
    specs = [f"synthetic:{n}" for n in sizes]
    if args.aware.is_dir():
        specs.insert(0, f"aware2023:{args.aware}")
    else:
        print(f"({args.aware} not found: aware2023 skipped)", file=sys.stderr)

    rows: list[dict[str, Any]] = []
    for spec in specs:
        print(f"measuring {_label(spec)} ...", file=sys.stderr, flush=True)
        fast = measure(spec, "vectorised", args.repeats, args.seed, args.families)
        row: dict[str, Any] = {"vectorised": fast}
        n = int(spec.partition(":")[2]) if spec.startswith("synthetic") else None
        if n is None or n in measured:
            ref = measure(spec, "reference", 1, args.seed, "all")
            row["reference"] = {**ref, "extrapolated": False}
        rows.append(row)
    # Extrapolate the loop linearly in detections from the largest measured synthetic case.
    basis = [r for r in rows if "reference" in r and r["vectorised"]["data"].startswith("synth")]
    if basis:
        base = max(basis, key=lambda r: r["vectorised"]["detections"])["reference"]
        per_detection = base["seconds"] / base["detections"]
        for row in rows:
            if "reference" not in row:
                detections = row["vectorised"]["detections"]
                row["reference"] = {
                    "seconds": per_detection * detections,
                    "extrapolated": True,
                    "from": base["data"],
                }

    from run_metadata import write_report  # benchmarks/run_metadata.py, next to this script

    write_report("featurize", args.out, {"rows": rows}, table=table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
