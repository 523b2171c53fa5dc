"""Benchmark of one study shared by 1, 2 and 4 workers, on SQLite and on PostgreSQL: trials per
minute, time outside the learners, and the time spent in storage calls per trial.

    python benchmarks/tuning_scale.py                       # aware2023 train (else synthetic)
    python benchmarks/tuning_scale.py --workers 1,2 --storages sqlite --trials 6
    python benchmarks/tuning_scale.py --synthetic 400 --folds 3     # short trials

Each worker is a separate process running `ltr.tuning.tune` with one job on the same study
(as separate `ltr tune` commands or machines would), ridge family (the fastest trials, so the
storage's share is the largest), 5-fold x 1 CV, no pruning, `--trials` trials per worker. In
every worker the Optuna RDB storage's methods and the learners' fit/predict are timed (main
thread only: the heartbeat thread is not on a trial's path). Per worker: trials, wall time of
its trials, learner seconds, storage seconds. Trials per minute = all trials / (last worker's
end - first worker's start); start-up (imports, featurising) is reported apart.

PostgreSQL: a throwaway cluster (tests/services.py: initdb + pg_ctl, fsync off, loopback TCP);
SQLite: a file in a temporary folder. Prints a markdown table and writes JSON to
benchmarks/results/tuning_scale.json (git-ignored).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_AWARE = ROOT.parent / "shared" / "data" / "aware2023"
TIMES: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)


def _timed(category: str, func: Any) -> Any:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return func(*args, **kwargs)
        started = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            TIMES[category] += time.perf_counter() - started
            CALLS[category] += 1

    return wrapper


def _instrument() -> None:
    import optuna

    from ltr.models import learners

    for cls in (learners.LightGBMLearner, learners.XGBoostLearner, learners.RidgeLearner):
        cls.fit = _timed("learners", cls.fit)
        cls.predict = _timed("learners", cls.predict)
    rdb = optuna.storages.RDBStorage
    for name in dir(rdb):
        if name.startswith("_") or name in ("record_heartbeat",):
            continue
        if callable(getattr(rdb, name)) and not isinstance(rdb.__dict__.get(name), staticmethod):
            setattr(rdb, name, _timed("storage", getattr(rdb, name)))


def worker(args: argparse.Namespace) -> None:
    """One worker process: featurise, then run its trials on the shared study; one JSON line."""
    started = time.time()
    import optuna

    from ltr.tuning.objective import CVProtocol, load_tuning_data
    from ltr.tuning.runner import tune

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    data = load_tuning_data(args.data)
    _instrument()
    ready = time.time()
    outcome = tune(
        data,
        "scale",
        storage=args.storage,
        space=args.family,
        protocol=CVProtocol(args.folds, 1, 0),
        n_trials=args.trials,
        jobs=1,
        seed=args.index,
        pruner="none",
    )
    done = time.time()
    print(
        json.dumps(
            {
                "index": args.index,
                "startup_seconds": ready - started,
                "start": ready,
                "end": done,
                # its own trials (outcome.new_trials also counts the other workers' ones)
                "trials": args.trials,
                "finished": sum(outcome.new_trials.values()),
                "wall_seconds": done - ready,
                "learner_seconds": TIMES["learners"],
                "storage_seconds": TIMES["storage"],
                "storage_calls": CALLS["storage"],
            }
        )
    )


def run(url: str, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    """`workers` worker processes on one new study at `url`."""
    from ltr.tuning.objective import CVProtocol, load_tuning_data
    from ltr.tuning.studies import StudySettings, open_study

    open_study(
        "scale",
        url,
        load_tuning_data(args.data),
        StudySettings(args.family, CVProtocol(args.folds, 1, 0)),
    )
    command = [sys.executable, __file__, "--worker", "--data", str(args.data), "--storage", url]
    command += ["--family", args.family, "--folds", str(args.folds), "--trials", str(args.trials)]
    processes = [
        subprocess.Popen([*command, "--index", str(i)], stdout=subprocess.PIPE, text=True)
        for i in range(workers)
    ]
    rows = []
    for process in processes:
        output = process.communicate()[0]
        if process.returncode:
            raise SystemExit(f"worker failed ({process.returncode})")
        rows.append(json.loads(output.strip().splitlines()[-1]))
    trials = sum(r["trials"] for r in rows)
    span = max(r["end"] for r in rows) - min(r["start"] for r in rows)
    busy = sum(r["wall_seconds"] for r in rows)
    learners = sum(r["learner_seconds"] for r in rows)
    storage = sum(r["storage_seconds"] for r in rows)
    return {
        "workers": workers,
        "trials": trials,
        "span_seconds": span,
        "trials_per_minute": 60 * trials / span,
        "seconds_per_trial_per_worker": busy / trials,
        "outside_learners_share": (busy - learners) / busy,
        "storage_seconds_per_trial": storage / trials,
        "storage_share": storage / busy,
        "storage_calls_per_trial": sum(r["storage_calls"] for r in rows) / trials,
        "startup_seconds_mean": sum(r["startup_seconds"] for r in rows) / workers,
        "load_average_1min": os.getloadavg()[0],
        "per_worker": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="data folder (default aware2023)")
    parser.add_argument(
        "--synthetic", type=int, default=0, help="use a synthetic set of this many users instead"
    )
    parser.add_argument("--family", default="ridge")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=12, help="trials per worker")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--storages", default="sqlite,postgresql")
    parser.add_argument("--json", type=Path, default=RESULTS / "tuning_scale.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="ltr-tuning-scale-"))
    if args.data is None:
        if DEFAULT_AWARE.is_dir() and not args.synthetic:
            args.data = DEFAULT_AWARE
        else:
            from ltr.data.synthetic import write_synthetic

            args.data = tmp / "synth"
            write_synthetic(args.data, n_users=args.synthetic or 1000, seed=0)
    counts = [int(w) for w in args.workers.split(",")]
    results = []
    server = None
    try:
        for storage in args.storages.split(","):
            if storage == "postgresql":
                sys.path.insert(0, str(ROOT / "tests"))
                from services import PostgresServer

                server = PostgresServer.start()
            for workers in counts:
                if storage == "sqlite":
                    url = f"sqlite:///{tmp / f'scale-{workers}.db'}"
                else:
                    assert server is not None
                    url = server.url(server.create_database(f"scale_{workers}"))
                row = {"storage": storage, **run(url, workers, args)}
                results.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "per_worker"}), flush=True)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    base = {r["storage"]: r["trials_per_minute"] for r in results if r["workers"] == counts[0]}
    print(
        "\n| storage | workers | trials/min | x vs 1 worker | s/trial (per worker) "
        "| outside learners"
        " | storage s/trial | storage share | storage calls/trial |"
        "\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    for r in results:
        print(
            f"| {r['storage']} | {r['workers']} | {r['trials_per_minute']:.1f} | "
            f"{r['trials_per_minute'] / base[r['storage']]:.2f} | "
            f"{r['seconds_per_trial_per_worker']:.2f} | {100 * r['outside_learners_share']:.1f}% | "
            f"{r['storage_seconds_per_trial']:.3f} | {100 * r['storage_share']:.1f}% | "
            f"{r['storage_calls_per_trial']:.0f} |"
        )
    sys.path.insert(0, str(Path(__file__).parent))
    from run_metadata import write_report  # benchmarks/run_metadata.py, next to this script

    fields = {
        "data": str(args.data),
        "family": args.family,
        "folds": args.folds,
        "trials_per_worker": args.trials,
    }
    write_report("tuning_scale", args.json, {**fields, "rows": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
