"""Benchmark of `ltr tune`: trials per minute, and where a trial's time goes.

    python benchmarks/tuning.py                          # aware2023 train, LightGBM + XGBoost
    python benchmarks/tuning.py --families ensemble --trials 6 --jobs 1

For each model family, runs a real study (SQLite file in a temporary folder, TPE, 5-fold x 1
CV, the family's search space, 1 learner thread, no pruning so every trial does all its folds)
in this process and times, by wrapping the functions involved:

- ``learners``: the back-ends' own fit/predict (LightGBM/XGBoost/ridge, including their
  dataset construction);
- ``folding``: slicing the feature matrix per fold (`FeatureMatrix.take/select/dense/
  for_situation`);
- ``metric``: Pearson per fold;
- ``optuna``: everything of a trial outside the objective (sampler, storage writes) plus the
  objective's own calls to Optuna (report, should_prune, user attributes);
- ``other``: the rest of the objective (label alignment, grades, stacking...);
- ``featurise``: featurising the training split, once per process, shared by every trial
  (shown amortised over the trials run).

Then the same configurations (enqueued) run again through `tuning.tune` with ``--jobs``
spawned worker processes (default 2, one per core), worker start-up included: the trials per
minute of a real parallel `ltr tune`.

"Outside the learners" = everything but ``learners``, as a share of the trial time. The
machine's 1-minute load average is recorded: other processes slow every figure down.
Prints a markdown table and writes JSON to benchmarks/results/tuning.json (git-ignored).
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_AWARE = ROOT.parent / "shared" / "data" / "aware2023"

TIMES: dict[str, float] = defaultdict(float)
_ACTIVE: list[str] = []


def _timed(category: str, func: Any) -> Any:
    """Wrap `func` so its wall time is added to `category` (outermost timed call only)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _ACTIVE:  # nested in another timed call: counted there
            return func(*args, **kwargs)
        _ACTIVE.append(category)
        started = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            TIMES[category] += time.perf_counter() - started
            _ACTIVE.pop()

    return wrapper


def _instrument() -> None:
    import optuna

    import ltr.cv
    from ltr.features.matrix import FeatureMatrix
    from ltr.models import learners

    for cls in (learners.LightGBMLearner, learners.XGBoostLearner, learners.RidgeLearner):
        cls.fit = _timed("learners", cls.fit)
        cls.predict = _timed("learners", cls.predict)
    for name in ("take", "select", "dense", "for_situation"):
        setattr(FeatureMatrix, name, _timed("folding", getattr(FeatureMatrix, name)))
    ltr.cv.pearson_columns = _timed("metric", ltr.cv.pearson_columns)
    for name in ("report", "should_prune", "set_user_attr"):
        setattr(
            optuna.trial.Trial,
            name,
            _timed("optuna_in_objective", getattr(optuna.trial.Trial, name)),
        )


def run_family(data: Any, family: str, trials: int, folds: int, seed: int) -> dict[str, Any]:
    import optuna

    from ltr.tuning.objective import CVObjective, CVProtocol
    from ltr.tuning.runner import make_sampler
    from ltr.tuning.space import get_space
    from ltr.tuning.storage import open_storage

    space = get_space(family)
    protocol = CVProtocol(folds=folds, repeats=1, seed=seed)
    objective = CVObjective(space, data, protocol, threads=1)
    objective_seconds = []

    def timed_objective(trial: optuna.Trial) -> float:
        started = time.perf_counter()
        try:
            return objective(trial)
        finally:
            objective_seconds.append(time.perf_counter() - started)

    TIMES.clear()
    with tempfile.TemporaryDirectory() as tmp:
        study = optuna.create_study(
            storage=open_storage(f"sqlite:///{tmp}/bench.db"),
            direction="maximize",
            sampler=make_sampler(seed),
            pruner=optuna.pruners.NopPruner(),
        )
        study.enqueue_trial(dict(space.defaults))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        study.optimize(timed_objective, n_trials=trials)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        values = [t.value for t in study.trials if t.value is not None]
        params = [t.params for t in study.trials]
    inside = sum(objective_seconds)
    parts = {
        "learners": TIMES["learners"],
        "folding": TIMES["folding"],
        "metric": TIMES["metric"],
        "optuna": (wall - inside) + TIMES["optuna_in_objective"],
    }
    parts["other"] = wall - sum(parts.values())
    return {
        "family": family,
        "trials": trials,
        "folds": folds,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "trials_per_minute": 60 * trials / wall,
        "seconds_per_trial": wall / trials,
        "parts_seconds": parts,
        "best_value": max(values) if values else None,
        "load_average_1min": os.getloadavg()[0],
        "params": params,
    }


def run_parallel(data: Any, family: str, params: list[dict], folds: int, jobs: int) -> float:
    """Wall seconds of `ltr tune`'s own parallel run (`jobs` spawned workers, SQLite) over
    exactly the configurations of the one-process run (enqueued), worker start-up included."""
    from ltr.tuning.objective import CVProtocol
    from ltr.tuning.runner import tune
    from ltr.tuning.studies import StudySettings, open_study

    protocol = CVProtocol(folds=folds, repeats=1, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        study, *_ = open_study("bench", url, data, StudySettings(family, protocol))
        for values in params[1:]:  # the first one, the default, is enqueued already
            study.enqueue_trial(values)
        started = time.perf_counter()
        tune(data, "bench", storage=url, n_trials=len(params), jobs=jobs, pruner="none")
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_AWARE, help="data folder")
    parser.add_argument("--families", default="lgbm-regression,xgb-regression")
    parser.add_argument("--trials", type=int, default=12, help="trials per family")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--jobs", type=int, default=2, help="also time the same trials with J workers (1: skip)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "tuning.json")
    args = parser.parse_args(argv)

    import optuna

    from ltr.tuning.objective import load_tuning_data

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    data = load_tuning_data(args.data)
    featurise = time.perf_counter() - started
    _instrument()
    rows = []
    for family in args.families.split(","):
        row = run_family(data, family.strip(), args.trials, args.folds, args.seed)
        row["parts_seconds"]["featurise (amortised)"] = featurise / args.trials
        if args.jobs > 1:
            wall = run_parallel(data, family.strip(), row["params"], args.folds, args.jobs)
            row["trials_per_minute_parallel"] = 60 * args.trials / wall
        rows.append(row)

    print(
        f"{data.name} {data.split}: {data.features.shape[0]} users, "
        f"{data.features.shape[1]} features; featurised once in {featurise:.2f} s; "
        f"{args.folds}-fold CV, {args.trials} trials per family, 1 thread, no pruning\n"
    )
    names = ["learners", "folding", "metric", "optuna", "other", "featurise (amortised)"]
    parallel = f" trials/min, {args.jobs} workers |" if args.jobs > 1 else ""
    print(
        "| family | trials/min, 1 process |"
        + parallel
        + " s/trial | "
        + " | ".join(names)
        + " | outside learners | load |"
    )
    print("|" + " --- |" * (len(names) + 5 + (args.jobs > 1)))
    for row in rows:
        parts = row["parts_seconds"]
        total = sum(parts.values())
        shares = [f"{100 * parts[n] / total:.1f}%" for n in names]
        outside = 100 * (total - parts["learners"]) / total
        row["outside_learners_share"] = outside / 100
        print(
            f"| {row['family']} | {row['trials_per_minute']:.1f} | "
            + (f"{row['trials_per_minute_parallel']:.1f} | " if args.jobs > 1 else "")
            + f"{row['seconds_per_trial']:.2f} | "
            + " | ".join(shares)
            + f" | **{outside:.1f}%** | {row['load_average_1min']:.1f} |"
        )
    from run_metadata import write_report  # benchmarks/run_metadata.py, next to this script

    fields = {"data": str(args.data), "featurise_seconds": featurise, "jobs": args.jobs}
    write_report("tuning", args.out, {**fields, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
