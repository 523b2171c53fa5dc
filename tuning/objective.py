"""The objective: repeated K-fold CV Pearson of a trial's model on the training users.

Features are computed once per process (`TuningData`) and every trial is cross-validated on the
same folds (`CVProtocol`: K, repeats and seed are part of the study's identity), so trials are
compared on equal terms and a pruner can compare them fold by fold. After every fold the
running mean is reported to Optuna; a pruner stops a trial that is already behind.

Every trial records, as user attributes:
- ``spec``: the exact `ModelSpec` it evaluated (``ltr train --study`` rebuilds it from this);
- ``cv``: mean and spread across folds, per-situation means and spreads, every fold's Pearson;
- ``worker``: host, process id and process start time of the worker that ran it, so a later
  run can tell a trial whose process died (kill -9) from one that is still running.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from ltr.cv import cross_validate
from ltr.features import FeatureMatrix
from ltr.situations import SITUATIONS
from ltr.tuning.space import SearchSpace
from ltr.workflow import TrainingSet

#: Called after every fold with (trial number, folds done, total folds, running mean).
FoldProgress = Callable[[int, int, int, float], None]


@dataclass(frozen=True)
class CVProtocol:
    """The folds every trial of a study is scored on."""

    folds: int = 5
    repeats: int = 2
    seed: int = 0

    @property
    def n_folds(self) -> int:
        return self.folds * self.repeats

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def text(self) -> str:
        return f"{self.folds}-fold x {self.repeats} repeats, seed {self.seed}"


def training_fingerprint(features: FeatureMatrix, labels: pd.DataFrame) -> str:
    """A hash of exactly what the objective sees: users, feature names and values, labels.

    Narrower than `Dataset.fingerprint` on purpose: adding the labels of another split does not
    change what a study tuned on, so it does not invalidate the study.
    """
    digest = hashlib.sha256()
    digest.update("\n".join(map(str, features.users)).encode())
    digest.update("\n".join(map(str, features.columns["name"])).encode())
    values = features.values
    for part in (values.indptr, values.indices, values.data):
        digest.update(np.ascontiguousarray(part).tobytes())
    y = labels.loc[features.users, list(SITUATIONS)].to_numpy(dtype=float)
    digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class TuningData:
    """Features and labels of the training users, computed once, plus what identifies them.

    Picklable, so worker processes receive it instead of featurising again.
    """

    features: FeatureMatrix
    labels: pd.DataFrame
    name: str
    source: str
    split: str
    feature_config: dict[str, Any]
    fingerprint: str

    @classmethod
    def from_training_set(cls, data: TrainingSet) -> TuningData:
        dataset = data.dataset
        return cls(
            features=data.features,
            labels=data.labels.loc[data.features.users, list(SITUATIONS)],
            name=dataset.name,
            source=str(dataset.source) if dataset.source else dataset.name,
            split=data.split,
            feature_config=data.config.to_dict(),
            fingerprint=training_fingerprint(data.features, data.labels),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "split": self.split,
            "n_users": int(self.features.shape[0]),
            "n_features": int(self.features.shape[1]),
            "feature_config": self.feature_config,
            "fingerprint": self.fingerprint,
        }


def process_start(pid: int) -> int | None:
    """Start time of process `pid` in clock ticks since boot (Linux), None if unknown.

    With the pid it identifies a process even after the pid is reused.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[19]) if len(fields) > 19 else None  # field 22 of proc(5)


def boot_id() -> str | None:
    """This boot of this machine (Linux), None if unknown: with the host name it tells whether
    a trial's process id means anything here (two machines may share a host name)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def worker_identity() -> dict[str, Any]:
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "boot": boot_id(),
        "pid": pid,
        "start": process_start(pid),
    }


def fold_summary(fold_pearson: np.ndarray, seconds: float) -> dict[str, Any]:
    """The ``cv`` trial attribute for the folds done so far."""
    scores = np.nan_to_num(np.asarray(fold_pearson, dtype=float), nan=0.0)
    fold_means = scores.mean(axis=1)
    n = len(fold_means)
    return {
        "mean": float(fold_means.mean()),
        "std": float(fold_means.std(ddof=1)) if n > 1 else 0.0,
        "per_situation": dict(zip(SITUATIONS, map(float, scores.mean(axis=0)), strict=True)),
        "per_situation_std": dict(
            zip(
                SITUATIONS,
                map(float, scores.std(axis=0, ddof=1) if n > 1 else np.zeros(4)),
                strict=True,
            )
        ),
        "fold_pearson": np.round(scores, 6).tolist(),
        "folds_done": n,
        "seconds": round(seconds, 3),
    }


class CVObjective:
    """``objective(trial) -> mean CV Pearson`` for one search space on one training set."""

    def __init__(
        self,
        space: SearchSpace,
        data: TuningData,
        protocol: CVProtocol,
        *,
        threads: int = 1,
        on_fold: FoldProgress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.space = space
        self.data = data
        self.protocol = protocol
        self.threads = threads
        self.on_fold = on_fold
        self.should_stop = should_stop

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker_identity())
        spec = self.space.sample(trial).with_seed(self.protocol.seed)
        trial.set_user_attr("spec", spec.to_dict())
        started = time.perf_counter()
        total = self.protocol.n_folds

        def after_fold(step: int, scores: np.ndarray) -> None:
            running = float(np.nan_to_num(scores, nan=0.0).mean())
            if self.on_fold is not None:
                self.on_fold(trial.number, step + 1, total, running)
            if self.should_stop is not None and self.should_stop():
                trial.set_user_attr("error", "interrupted (Ctrl-C or a stop request)")
                raise KeyboardInterrupt("the tuning run was stopped")
            trial.report(running, step)
            if step + 1 < total and trial.should_prune():
                trial.set_user_attr("cv", fold_summary(scores, time.perf_counter() - started))
                raise optuna.TrialPruned(f"fold {step + 1}/{total}: running mean {running:.4f}")

        try:
            result = cross_validate(
                spec,
                self.data.features,
                self.data.labels,
                folds=self.protocol.folds,
                repeats=self.protocol.repeats,
                seed=self.protocol.seed,
                threads=self.threads,
                on_fold=after_fold,
            )
        except (optuna.TrialPruned, KeyboardInterrupt):
            raise
        except Exception as error:
            trial.set_user_attr("error", f"{type(error).__name__}: {error}")
            raise
        summary = fold_summary(result.fold_pearson, result.seconds)
        trial.set_user_attr("cv", summary)
        return float(summary["mean"])


def load_tuning_data(data_dir: str | Path, split: str = "train") -> TuningData:
    """Load a data folder (either layout) and featurise its labelled split once."""
    from ltr.data import load_dataset
    from ltr.workflow import training_set

    return TuningData.from_training_set(training_set(load_dataset(data_dir), split))
