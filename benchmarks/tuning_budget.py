"""Does tuning pay? Budget and fidelity measurements of `ltr tune` on the real data.

    python benchmarks/tuning_budget.py fidelity --data ../shared/data/aware2023 --trials 30
    python benchmarks/tuning_budget.py budget --data ../shared/data/aware2023
    python benchmarks/tuning_budget.py table            # both sets' JSON as markdown

``fidelity``: a study of the default family with no pruning (every trial runs every fold of the
search protocol, 5-fold x 2, seed 0), so each trial's running mean is known fold by fold. The
pruners are then replayed on exactly those trials, in their order, by Optuna itself (an
in-memory study with that pruner is told each trial's recorded fold values and asked whether
to prune): how many folds each pruner spends, and what it finds, against running everything.
Also the rank correlation between the running mean after k folds and the full mean (how much
a cheap look tells).

``budget``: one study tuned for 60 s, then resumed up to 5 min, then up to 30 min in all (wall
clock, as `ltr tune --timeout` does), with the default pruner. After each stage the chosen
trial (mean - 0.5 std) is re-scored like `ltr tune` does (the fresh rescoring seed, study seed
+ 1000) and, for this report, on CV seeds 1 and 2 (5-fold x 3 each), which play no part in
choosing; the default preset is scored on the same folds. Reported per stage: trials (and
folds) per minute, the search figure, the rescoring, and tuned - default on seeds 1 and 2
(30 paired folds; corrected resampled t-test with K = 5) for the raw tuned model and for what
`ltr train --study` trains (the tuned spec only if it beat the default on the rescoring).

Results: JSON in benchmarks/results/ (git-ignored). Long: run with nohup and a log.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATA = ROOT.parent / "shared" / "data"
#: CV seeds of this report's fresh folds: never the search's (0) nor the rescoring's (1000).
REPORT_SEEDS = (1, 2)


def _now() -> str:
    return time.strftime("%H:%M:%S")


def _log(*parts: Any) -> None:
    print(_now(), *parts, flush=True)


# ------------------------------------------------------------------------------ fidelity
def collect(data: Any, trials: int, storage: str, seed: int) -> list[dict[str, Any]]:
    """`trials` trials of the default family, no pruning: every fold's score of each."""
    import optuna

    from ltr.tuning.runner import tune
    from ltr.tuning.studies import load_existing_study

    started = time.perf_counter()
    tune(data, "fidelity", storage=storage, n_trials=trials, seed=seed, pruner="none")
    wall = time.perf_counter() - started
    study = load_existing_study("fidelity", storage)
    rows = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state != optuna.trial.TrialState.COMPLETE:
            continue
        rows.append(
            {
                "number": trial.number,
                "value": trial.value,
                "fold_pearson": trial.user_attrs["cv"]["fold_pearson"],
                "seconds": trial.user_attrs["cv"]["seconds"],
            }
        )
    _log(f"collected {len(rows)} complete trials in {wall:.0f} s")
    return rows


def replay(rows: list[dict[str, Any]], pruner: str) -> dict[str, Any]:
    """Optuna's own pruner decisions on the recorded trials, in order."""
    import optuna

    from ltr.tuning.runner import make_pruner

    # named: Hyperband puts a trial in a bracket by a hash of the study name and trial number
    study = optuna.create_study(
        study_name="replay", direction="maximize", pruner=make_pruner(pruner)
    )
    folds_spent = 0
    seconds_spent = 0.0
    complete: list[int] = []
    curve: list[tuple[int, float]] = []  # (folds spent, best complete full mean so far)
    for row in rows:
        folds = np.asarray(row["fold_pearson"]).mean(axis=1)
        per_fold = row["seconds"] / len(folds)
        trial = study.ask()
        pruned = False
        for step in range(len(folds)):
            running = float(folds[: step + 1].mean())
            trial.report(running, step)
            folds_spent += 1
            seconds_spent += per_fold
            if step + 1 < len(folds) and trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, float(folds.mean()))
            complete.append(row["number"])
        best = max((r["value"] for r in rows if r["number"] in complete), default=float("nan"))
        curve.append((folds_spent, best))
    values = {row["number"]: row["value"] for row in rows}
    best_all = max(values, key=lambda n: values[n])
    found = max(complete, key=lambda n: values[n])
    return {
        "pruner": pruner,
        "folds": folds_spent,
        "seconds": round(seconds_spent, 1),
        "complete": len(complete),
        "found": found,
        "found_value": values[found],
        "best": best_all,
        "best_value": values[best_all],
        "regret": values[best_all] - values[found],
        "best_kept": best_all in complete,
        "curve": curve,
        # best full mean found when a budget of B folds ran out (the trial in progress then
        # does not count): the equal-compute comparison of the pruners
        "found_within": {b: _within(curve, b) for b in FOLD_BUDGETS},
    }


#: Fold budgets of the equal-compute comparison (the default trial alone takes 10).
FOLD_BUDGETS = (20, 30, 50, 80, 120)


def _within(curve: list[tuple[int, float]], budget: int) -> float | None:
    found = [best for spent, best in curve if spent <= budget]
    return found[-1] if found else None


def fidelity_path(name: str) -> Path:
    return RESULTS / f"tuning_fidelity_{name}.json"


def fidelity(args: argparse.Namespace) -> None:
    """Collect the no-pruning trials (saved at once), then replay the pruners on them."""
    from run_metadata import run_metadata

    from ltr.fileio import write_json_atomic
    from ltr.tuning.objective import load_tuning_data

    data = load_tuning_data(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        rows = collect(data, args.trials, f"sqlite:///{tmp}/fidelity.db", args.seed)
    report = {**run_metadata("tuning_budget.fidelity"), "data": data.name, "rows": rows}
    write_json_atomic(fidelity_path(data.name), report)
    replay_saved(data.name)


def replay_saved(name: str) -> dict[str, Any]:
    """Replay every pruner on the saved trials of data set `name`; adds the results to its
    JSON and prints them."""
    from scipy.stats import spearmanr

    from ltr.fileio import write_json_atomic
    from ltr.tuning.runner import PRUNERS

    path = fidelity_path(name)
    report = json.loads(path.read_text())
    rows = report["rows"]
    finals = np.array([r["value"] for r in rows])
    correlation = {}
    n_folds = len(rows[0]["fold_pearson"])
    for k in range(1, n_folds):
        early = [np.asarray(r["fold_pearson"]).mean(axis=1)[:k].mean() for r in rows]
        correlation[k] = float(spearmanr(early, finals).statistic)
    report["trials"] = len(rows)
    report["rank_correlation_with_full_mean"] = correlation
    report["replays"] = [replay(rows, pruner) for pruner in PRUNERS]
    write_json_atomic(path, report)
    for replayed in report["replays"]:
        _log(json.dumps(replayed))
    _log("rank correlation", json.dumps(correlation))
    _log(f"wrote {path}")
    return report


def rows_from_db(path: Path, study: str = "fidelity") -> list[dict[str, Any]]:
    """The complete trials of a (copied) fidelity study database, for a replay of a
    collection that was stopped early."""
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    found = optuna.load_study(study_name=study, storage=storage)
    return [
        {
            "number": t.number,
            "value": t.value,
            "fold_pearson": t.user_attrs["cv"]["fold_pearson"],
            "seconds": t.user_attrs["cv"]["seconds"],
        }
        for t in found.get_trials(deepcopy=False)
        if t.state == optuna.trial.TrialState.COMPLETE
    ]


# -------------------------------------------------------------------------------- budget
def _cv(data: Any, spec: Any, seed: int) -> np.ndarray:
    """Per-fold mean Pearson of `spec`, 5-fold x 3 with CV seed `seed`."""
    from ltr.cv import cross_validate

    result = cross_validate(spec, data.features, data.labels, folds=5, repeats=3, seed=seed)
    return result.fold_means


def _versus(tuned: np.ndarray, default: np.ndarray) -> dict[str, Any]:
    from ltr.stats import corrected_t_test

    test = corrected_t_test(tuned, default, folds=5)
    return {
        k: (None if isinstance(v, float) and not np.isfinite(v) else v)
        for k, v in test.to_dict().items()
    }


def _report_figures(data: Any, spec: Any) -> dict[str, Any]:
    folds = np.concatenate([_cv(data, spec, seed) for seed in REPORT_SEEDS])
    return {"mean": float(folds.mean()), "fold_means": folds.tolist()}


def budget(args: argparse.Namespace) -> None:
    """Tune in stages (cumulative wall-clock budgets), rescore and report after each."""
    from run_metadata import run_metadata

    from ltr.fileio import write_json_atomic
    from ltr.models import ModelSpec
    from ltr.tuning.objective import load_tuning_data
    from ltr.tuning.rescore import default_spec, rescore_trial
    from ltr.tuning.runner import tune
    from ltr.tuning.studies import chosen_trial, load_existing_study

    data = load_tuning_data(args.data)
    out = RESULTS / f"tuning_budget_{data.name}.json"
    storage = f"sqlite:///{args.storage}" if args.storage else None
    tmp = None
    if storage is None:
        tmp = tempfile.TemporaryDirectory()
        storage = f"sqlite:///{tmp.name}/budget.db"
    report: dict[str, Any] = {
        **run_metadata("tuning_budget.budget"),
        "data": data.name,
        "n_users": int(data.features.shape[0]),
        "search": "5-fold x 2, CV seed 0",
        "pruner": args.pruner,
        "report_seeds": list(REPORT_SEEDS),
        "stages": [],
    }
    spent = 0.0
    cpu = 0.0
    default_figures: dict[str, Any] | None = None
    for stage in args.budgets:
        _log(f"{data.name}: tuning up to {stage} s in all ({spent:.0f} s spent)")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        tune(
            data,
            "budget",
            storage=storage,
            timeout=max(1.0, stage - spent),
            seed=args.seed,
            pruner=args.pruner,
        )
        spent += time.perf_counter() - wall0
        cpu += time.process_time() - cpu0
        study = load_existing_study("budget", storage)
        trials = study.get_trials(deepcopy=False)
        states: dict[str, int] = {}
        for t in trials:
            states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
        folds = sum(len(t.intermediate_values) for t in trials)
        score = chosen_trial(study)
        _log(
            f"{data.name}: {len(trials)} trials {states}; chosen trial {score.number}, "
            f"search {score.mean:.4f}; rescoring"
        )
        rescoring = rescore_trial(data, study, score.number)
        default = default_spec(study)
        if default_figures is None:
            _log(f"{data.name}: default on report seeds {REPORT_SEEDS}")
            default_figures = _report_figures(data, default)
            report["default"] = {"spec": default.to_dict(), **default_figures}
        tuned_spec = ModelSpec.from_dict(rescoring.tuned_spec)
        if tuned_spec == default:
            tuned_figures = default_figures
        else:
            _log(f"{data.name}: trial {score.number} on report seeds {REPORT_SEEDS}")
            tuned_figures = _report_figures(data, tuned_spec)
        tuned_folds = np.asarray(tuned_figures["fold_means"])
        default_folds = np.asarray(default_figures["fold_means"])
        raw = None if tuned_spec == default else _versus(tuned_folds, default_folds)
        trained = tuned_folds if rescoring.tuned_wins else default_folds
        row = {
            "budget_seconds": stage,
            "tuning_wall_seconds": round(spent, 1),
            "tuning_cpu_seconds": round(cpu, 1),
            "load_average_1min": os.getloadavg()[0],
            "trials": len(trials),
            "states": states,
            "folds": folds,
            "trials_per_minute": 60 * len(trials) / spent,
            "folds_per_minute": 60 * folds / spent,
            "chosen_trial": score.number,
            "chosen_is_default": tuned_spec == default,
            "search_mean": score.mean,
            "search_default_mean": next(
                (t.value for t in trials if t.number == 0 and t.value is not None), None
            ),
            "rescoring": rescoring.to_dict(),
            "tuned_report_mean": tuned_figures["mean"],
            "default_report_mean": default_figures["mean"],
            "tuned_minus_default": raw,
            "train_study_uses": "tuned" if rescoring.tuned_wins else "default",
            "trained_minus_default": None if not rescoring.tuned_wins else raw,
            "trained_report_mean": float(trained.mean()),
            "tuned_spec": rescoring.tuned_spec,
        }
        report["stages"].append(row)
        write_json_atomic(out, report)
        _log(
            f"{data.name}: stage {stage} s: "
            + json.dumps(
                {
                    k: row[k]
                    for k in (
                        "trials",
                        "folds",
                        "chosen_trial",
                        "search_mean",
                        "tuned_report_mean",
                        "default_report_mean",
                        "tuned_minus_default",
                        "train_study_uses",
                    )
                }
            )
        )
    if tmp is not None:
        tmp.cleanup()
    _log(f"wrote {out}")


def _fmt(versus: dict[str, Any] | None) -> str:
    if versus is None:
        return "0 (the default)"
    p = versus["p_value"]
    return (
        f"{versus['mean']:+.4f} [{versus['low']:+.4f}, {versus['high']:+.4f}], "
        f"p = {'-' if p is None else f'{p:.2f}'}"
    )


def table(args: argparse.Namespace) -> None:
    """Markdown tables of the saved results (budget and fidelity) for the README."""
    print(
        "| data | budget | trials (complete / pruned) | trials/min | folds/min | chosen | "
        "search mean | rescoring: tuned - default | seeds 1+2: tuned - default (raw) | "
        "`train --study` trains | trained - default |"
    )
    print("|" + " --- |" * 11)
    for name in args.names:
        path = RESULTS / f"tuning_budget_{name}.json"
        if not path.is_file():
            continue
        report = json.loads(path.read_text())
        for row in report["stages"]:
            states = row["states"]
            rescored = row["rescoring"]["comparison"]
            seconds = row["budget_seconds"]
            label = f"{seconds // 60} min" if seconds >= 120 else f"{seconds} s"
            print(
                f"| {name} | {label} | {row['trials']} "
                f"({states.get('complete', 0)} / {states.get('pruned', 0)}) | "
                f"{row['trials_per_minute']:.1f} | {row['folds_per_minute']:.1f} | "
                f"{row['chosen_trial']} | {row['search_mean']:.4f} | {_fmt(rescored)} | "
                f"{_fmt(row['tuned_minus_default'])} | {row['train_study_uses']} | "
                f"{_fmt(row['trained_minus_default'])} |"
            )
    for name in args.names:
        path = fidelity_path(name)
        if not path.is_file():
            continue
        report = json.loads(path.read_text())
        print(
            f"\n{name}: {report['trials']} trials without pruning; rank correlation of the "
            "running mean after k folds with the full mean: "
            + ", ".join(
                f"{k}: {v:.2f}" for k, v in report["rank_correlation_with_full_mean"].items()
            )
        )
        default = report["rows"][0]["value"]
        budgets = list(report["replays"][0]["found_within"])
        print(
            "| pruner | folds spent | share of no pruning | complete | found - default | "
            "regret vs best of all | " + " | ".join(f"within {b} folds" for b in budgets) + " |"
        )
        print("|" + " --- |" * (6 + len(budgets)))
        total = max(r["folds"] for r in report["replays"])
        for r in report["replays"]:
            within = [r["found_within"][b] for b in budgets]
            print(
                f"| {r['pruner']} | {r['folds']} | {r['folds'] / total:.0%} | {r['complete']} | "
                f"{r['found_value'] - default:+.4f} | {r['regret']:.4f} | "
                + " | ".join("-" if w is None else f"{w - default:+.4f}" for w in within)
                + " |"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fid = sub.add_parser("fidelity", help="no-pruning trials, pruners replayed on them")
    fid.add_argument("--data", type=Path, default=DATA / "aware2023")
    fid.add_argument("--trials", type=int, default=30)
    fid.add_argument("--seed", type=int, default=0)
    rep = sub.add_parser("replay", help="replay the pruners on saved fidelity trials")
    rep.add_argument("names", nargs="+", help="data set names (aware2023, lervup2021)")
    rep.add_argument(
        "--from-db", type=Path, help="read the trials from a copy of a fidelity study database"
    )
    bud = sub.add_parser("budget", help="tune for 60 s, 5 min, 30 min; rescore; report")
    bud.add_argument("--data", type=Path, default=DATA / "aware2023")
    bud.add_argument("--budgets", type=int, nargs="+", default=[60, 300, 1800])
    bud.add_argument("--seed", type=int, default=0)
    bud.add_argument("--pruner", default="halving")
    bud.add_argument("--storage", type=Path, help="SQLite file to keep the study in")
    tab = sub.add_parser("table", help="markdown tables of the saved results")
    tab.add_argument("names", nargs="*", default=["aware2023", "lervup2021"])
    args = parser.parse_args(argv)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sys.path.insert(0, str(Path(__file__).parent))
    if args.command == "fidelity":
        fidelity(args)
    elif args.command == "replay":
        for name in args.names:
            if args.from_db is not None:
                from run_metadata import run_metadata

                from ltr.fileio import write_json_atomic

                report = {
                    **run_metadata("tuning_budget.fidelity"),
                    "data": name,
                    "rows": rows_from_db(args.from_db),
                    "note": f"trials read from {args.from_db.name} (collection stopped early)",
                }
                write_json_atomic(fidelity_path(name), report)
            replay_saved(name)
    elif args.command == "budget":
        budget(args)
    else:
        table(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
