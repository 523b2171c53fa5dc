"""Optuna studies made of hand-written trials, for report tests that need no tuning run."""

from __future__ import annotations

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from ltr.situations import SITUATIONS

FOLDS = 4


def fake_study(n_complete: int, n_pruned: int = 0, *, extra_params: int = 0) -> optuna.Study:
    """A study like `ltr tune`'s: a shared ``alpha``, a constant ``calibration``, a ``gbdt``
    choice whose parameters are conditional (``xgb.eta`` for two thirds of the trials,
    ``lgbm.num_leaves`` for the rest), `extra_params` more shared floats, and per trial the
    ``cv`` and ``spec`` attributes and running means fold by fold."""
    rng = np.random.default_rng(0)
    study = optuna.create_study(study_name="demo", direction="maximize")
    study.set_user_attr(
        "ltr:identity",
        {
            "space": {"name": "ensemble", "version": 1, "hash": "0123456789abcdef"},
            "data": {"name": "synth", "split": "train", "n_users": 90, "n_features": 1026},
            "cv": {"folds": FOLDS, "repeats": 1, "seed": 0},
        },
    )
    for number in range(n_complete + n_pruned):
        xgb = number % 3 != 2
        params: dict[str, object] = {
            "alpha": float(rng.uniform(0.1, 10)),
            "calibration": "none",
            "gbdt": "xgb" if xgb else "lgbm",
        }
        dists: dict[str, optuna.distributions.BaseDistribution] = {
            "alpha": FloatDistribution(0.1, 10, log=True),
            "calibration": CategoricalDistribution(["none", "normal"]),
            "gbdt": CategoricalDistribution(["xgb", "lgbm"]),
        }
        if xgb:
            params["xgb.eta"] = float(rng.uniform(0.01, 0.3))
            dists["xgb.eta"] = FloatDistribution(0.01, 0.3)
        else:
            params["lgbm.num_leaves"] = int(rng.integers(4, 64))
            dists["lgbm.num_leaves"] = IntDistribution(4, 64)
        for j in range(extra_params):
            params[f"extra_{j:02d}"] = float(rng.uniform(0, 1))
            dists[f"extra_{j:02d}"] = FloatDistribution(0, 1)
        level = 0.45 + 0.02 * np.log(params["alpha"]) + (0.1 * params.get("xgb.eta", 0.1))
        folds = level + rng.normal(0, 0.03, size=(FOLDS, len(SITUATIONS)))
        running = np.cumsum(folds.mean(axis=1)) / np.arange(1, FOLDS + 1)
        pruned = number >= n_complete
        steps = 2 if pruned else FOLDS
        study.add_trial(
            create_trial(
                state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
                value=None if pruned else float(running[-1]),
                params=params,
                distributions=dists,
                intermediate_values={s: float(running[s]) for s in range(steps)},
                user_attrs={
                    "spec": {"learner": "ensemble", "seed": 0, "params": {"alpha": 1.0}},
                    "cv": {
                        "mean": float(running[-1]),
                        "std": float(folds.mean(axis=1).std()),
                        "per_situation": dict(zip(SITUATIONS, folds.mean(axis=0), strict=True)),
                        "per_situation_std": dict(zip(SITUATIONS, folds.std(axis=0), strict=True)),
                        "fold_pearson": folds.tolist(),
                        "seconds": 1.0,
                    },
                }
                if not pruned
                else {},
            )
        )
    return study
