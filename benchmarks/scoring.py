"""Benchmark of scoring detections tables: wall time, profiles per second and peak memory of
the driver and of each worker, local streaming vs a Dask LocalCluster, at several sizes.

    python benchmarks/scoring.py                                  # 100k and 1M profiles
    python benchmarks/scoring.py --sizes 100000 --engines local

Synthetic tables (`ltr data synth --format parquet`, 25,000 users per file) and a model (the
`default` preset, ridge + XGBoost, trained on 2,000 synthetic users of the same seed) are made
once under --workdir and reused. Every measurement runs in a fresh process, so its peak
resident memory (ru_maxrss) is its own: the driver's (with --engine dask it also hosts the
scheduler) and each Dask worker process's (reported by the workers themselves). Prints a
markdown table and writes JSON to benchmarks/results/scoring.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
GIB = 1024**3


def _peak_self() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def prepare(workdir: Path, sizes: list[int], users_per_file: int) -> dict[str, Any]:
    """The model and the tables (made once, reused)."""
    from ltr.data import load_dataset
    from ltr.data.parquet import open_table, write_synthetic_table
    from ltr.data.synthetic import write_synthetic
    from ltr.models import preset
    from ltr.workflow import train_model, training_set

    made: dict[str, Any] = {}
    model = workdir / "model"
    if not (model / "model.json").is_file():
        write_synthetic(workdir / "train", n_users=2000, seed=0)
        data = training_set(load_dataset(workdir / "train"), "train")
        train_model(data, preset("default").with_seed(0), model)
    for size in sizes:
        table = workdir / f"table-{size}"
        try:
            ready = open_table(table).n_users == size
        except Exception:
            ready = False
        if not ready:
            started = time.perf_counter()
            write_synthetic_table(table, size, seed=0, users_per_file=users_per_file)
            made[str(size)] = {"generate_seconds": time.perf_counter() - started}
    made["generate_peak_rss"] = _peak_self()
    return made


def one(args: argparse.Namespace) -> None:
    """A single measurement, in its own process: prints one JSON line."""
    from ltr.data.parquet import open_table
    from ltr.scoring import score_table

    table = open_table(args.table)
    started = time.perf_counter()
    summary = score_table(
        args.model, args.table, args.out, engine=args.engine, workers=args.workers
    )
    wall = time.perf_counter() - started
    row = {
        "users": summary.users,
        "rows": summary.rows,
        "files": summary.files,
        "engine": args.engine,
        "workers": args.workers if args.engine == "dask" else 1,
        "wall_seconds": wall,
        "profiles_per_second": summary.users / wall,
        "driver_peak_rss": _peak_self(),
        "worker_peak_rss": summary.worker_peak_rss,
        "table_bytes": sum(p.stat().st_size for p in table.files),
    }
    print(json.dumps(row))


def measure(workdir: Path, size: int, engine: str, workers: int) -> dict[str, Any]:
    out = workdir / f"scores-{size}-{engine}.parquet"
    command = [sys.executable, __file__, "--one", "--table", str(workdir / f"table-{size}")]
    command += ["--model", str(workdir / "model"), "--out", str(out), "--engine", engine]
    command += ["--workers", str(workers)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"measurement failed: {result.stderr[-3000:]}")
    row = json.loads(result.stdout.strip().splitlines()[-1])
    out.unlink(missing_ok=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--engines", default="local,dask")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--users-per-file", type=int, default=25_000)
    parser.add_argument("--workdir", type=Path, default=RESULTS / "scoring-data")
    parser.add_argument("--json", type=Path, default=RESULTS / "scoring.json")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--table", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="local", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        one(args)
        return 0

    sizes = [int(s) for s in args.sizes.split(",")]
    engines = args.engines.split(",")
    args.workdir.mkdir(parents=True, exist_ok=True)
    prepared = prepare(args.workdir, sizes, args.users_per_file)
    rows = []
    for size in sizes:
        for engine in engines:
            row = measure(args.workdir, size, engine, args.workers)
            row["load_average_1min"] = os.getloadavg()[0]
            rows.append(row)
            print(json.dumps(row), flush=True)

    print(
        "\n| profiles | engine | files | rows | wall | profiles/s | driver peak | worker peaks |"
        "\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    for row in rows:
        workers = sorted(row["worker_peak_rss"].values()) if row["engine"] == "dask" else []
        shown = ", ".join(f"{w / GIB:.2f}" for w in workers) + " GiB" if workers else "-"
        print(
            f"| {row['users']:,} | {row['engine']}"
            f"{' (' + str(row['workers']) + ' workers)' if row['engine'] == 'dask' else ''} | "
            f"{row['files']} | {row['rows']:,} | {row['wall_seconds']:.1f} s | "
            f"{row['profiles_per_second']:,.0f} | {row['driver_peak_rss'] / GIB:.2f} GiB | "
            f"{shown} |"
        )
    sys.path.insert(0, str(Path(__file__).parent))
    from run_metadata import write_report  # benchmarks/run_metadata.py, next to this script

    fields = {"prepared": prepared, "users_per_file": args.users_per_file, "rows": rows}
    write_report("scoring", args.json, fields)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
