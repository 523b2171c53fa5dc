"""Repeated K-fold cross-validation over training users: the only honest yardstick here.

Features are computed once by the caller and sliced per fold; the folds depend only on the
users, K, R and the seed, so every model compared or tuned with the same seed sees the same
folds. Each fold scores the held-out users with the official statistic (Pearson per situation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedKFold

from ltr.errors import LtrError
from ltr.features import FeatureMatrix
from ltr.metrics import pearson_columns
from ltr.models import ModelSpec, build_model
from ltr.models.interface import aligned_labels
from ltr.situations import SITUATIONS
from ltr.stats import Comparison, corrected_t_test

#: Called after every fold with (fold number from 0, Pearson of every fold so far as an
#: (n_folds_done x 4) array). Optuna's pruning hooks in here; raising stops the run.
FoldCallback = Callable[[int, np.ndarray], None]


#: Fewest users a held-out fold may have: a Pearson correlation on fewer is mostly noise
#: (its standard error is about 1/sqrt(n - 3), over 0.24 below 20 users).
MIN_FOLD_USERS = 20


def check_folds(
    n_users: int, folds: int, repeats: int, *, min_fold_users: int = MIN_FOLD_USERS
) -> None:
    """Refuse fold counts that leave a held-out fold too small for a Pearson correlation:
    below 2 users it is undefined, below `min_fold_users` (20 by default) too noisy to rank
    models by. The message says how many users a fold would hold and how many folds fit."""
    if not _is_count(folds) or not 2 <= folds <= n_users // 2:
        raise LtrError(
            f"cannot make {folds!r} folds of {n_users} users "
            f"(need 2 <= folds <= {max(n_users // 2, 2)}: a held-out fold needs >= 2 users)"
        )
    if not _is_count(repeats) or repeats < 1:
        raise LtrError(f"repeats must be an integer >= 1, not {repeats!r}")
    smallest = n_users // folds
    if smallest < min_fold_users:
        most = n_users // min_fold_users
        advice = f"use at most {most} folds" if most >= 2 else f"{n_users} users are too few to CV"
        raise LtrError(
            f"cannot make {folds} folds of {n_users} users: a held-out fold would hold "
            f"{smallest} users, fewer than {min_fold_users} (a Pearson correlation on fewer is "
            f"mostly noise); {advice}"
        )


def _is_count(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def fold_indices(
    n_users: int, folds: int = 5, repeats: int = 3, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(train rows, held-out rows) for every fold of every repeat, deterministic by seed.

    Only the folds' existence is checked here (>= 2 users each); `cross_validate` also
    refuses folds too small to score (`MIN_FOLD_USERS`)."""
    check_folds(n_users, folds, repeats, min_fold_users=2)
    splitter = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    yield from splitter.split(np.arange(n_users))


@dataclass(frozen=True)
class CVResult:
    """Per-fold Pearson of one model, plus out-of-fold scores of every repeat.

    Attributes:
        name: The model's name in tables and reports.
        spec: The spec cross-validated.
        fold_pearson: ``(folds x repeats) x 4`` Pearson correlations, one row per fold
            (repeat-major), columns `SITUATIONS`.
        oof: ``repeats x users x 4`` out-of-fold scores.
        users: The users, in the row order of `oof`.
        folds: K.
        repeats: R.
        seed: Seed of the folds.
        seconds: Wall time of the whole cross-validation.
        extra: Anything a caller wants to keep with the result.
    """

    name: str
    spec: ModelSpec
    fold_pearson: np.ndarray
    oof: np.ndarray  # (repeats, users, 4)
    users: pd.Index
    folds: int
    repeats: int
    seed: int
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_situation(self) -> pd.Series:
        """Mean Pearson over the folds, per situation."""
        return pd.Series(self.fold_pearson.mean(axis=0), index=list(SITUATIONS))

    @property
    def per_situation_std(self) -> pd.Series:
        """Spread across folds of the Pearson, per situation."""
        return pd.Series(self.fold_pearson.std(axis=0, ddof=1), index=list(SITUATIONS))

    @property
    def fold_means(self) -> np.ndarray:
        """Mean Pearson over the four situations, one value per fold."""
        means: np.ndarray = self.fold_pearson.mean(axis=1)
        return means

    @property
    def mean(self) -> float:
        """The CV estimate of the official score: mean over folds and situations."""
        return float(self.fold_means.mean())

    @property
    def std(self) -> float:
        """Spread across folds of the per-fold mean Pearson."""
        return float(self.fold_means.std(ddof=1)) if len(self.fold_means) > 1 else 0.0

    def versus(self, other: CVResult, level: float = 0.95) -> Comparison:
        """This model minus `other` over the same folds: the corrected resampled t-test.

        Args:
            other: A result on the same users, folds, repeats and seed.
            level: Confidence level of the interval.

        Returns:
            The mean per-fold difference of the mean Pearson, its interval and p-value.

        Raises:
            LtrError: The two were not cross-validated on the same folds.
        """
        same = (self.folds, self.repeats, self.seed, list(self.users)) == (
            other.folds,
            other.repeats,
            other.seed,
            list(other.users),
        )
        if not same:
            raise LtrError(
                f"{self.name} and {other.name} were not cross-validated on the same folds"
            )
        return corrected_t_test(self.fold_means, other.fold_means, folds=self.folds, level=level)

    def penalised(self, k: float = 1.0) -> float:
        """mean - k * std: prefers configurations that are good on every fold."""
        return self.mean - k * self.std

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (the spec, the settings and every fold's figures)."""
        return {
            "name": self.name,
            "spec": self.spec.to_dict(),
            "folds": self.folds,
            "repeats": self.repeats,
            "seed": self.seed,
            "n_users": len(self.users),
            "mean_pearson": self.mean,
            "std_pearson": self.std,
            "per_situation": self.per_situation.to_dict(),
            "per_situation_std": self.per_situation_std.to_dict(),
            "fold_pearson": self.fold_pearson.tolist(),
            "seconds": round(self.seconds, 3),
        }


def cross_validate(
    spec: ModelSpec,
    features: FeatureMatrix,
    labels: pd.DataFrame,
    *,
    folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
    threads: int = 1,
    name: str | None = None,
    on_fold: FoldCallback | None = None,
) -> CVResult:
    """Repeated K-fold cross-validation of one model on labelled users.

    The folds depend only on the users, `folds`, `repeats` and `seed`, so models compared with
    one seed see the same folds. Each fold is scored with the official statistic (Pearson per
    situation) on its held-out users.

    Args:
        spec: The model.
        features: The users' features (computed once, shared by every fold).
        labels: Labels indexed by user, columns `SITUATIONS`; every user must have them.
        folds: K; a held-out fold must keep at least `MIN_FOLD_USERS` users.
        repeats: R, each with its own shuffle.
        seed: Seed of the folds (the model keeps its own seed).
        threads: Threads per learner.
        name: The name in tables (default: the spec's learner).
        on_fold: Called after every fold with its index and the Pearson of the folds so far
            (``folds_done x 4``); Optuna's pruning hooks in here.

    Returns:
        Every fold's Pearson and the out-of-fold scores.

    Raises:
        LtrError: Too few users for `folds`, or invalid `folds` / `repeats`.
        ModelError: A user has features but no labels.

    Example:
        >>> from ltr.data.synthetic import generate_synthetic
        >>> from ltr.features import featurize
        >>> from ltr.models import preset
        >>> dataset = generate_synthetic(n_users=100, seed=0).dataset
        >>> result = cross_validate(
        ...     preset("ridge"), featurize(dataset, "train"), dataset.split_labels("train"),
        ...     folds=3, repeats=1,
        ... )
        >>> result.fold_pearson.shape, -1 < result.mean < 1
        ((3, 4), True)
    """
    import time

    started = time.perf_counter()
    y = aligned_labels(features, labels)
    n = len(y)
    check_folds(n, folds, repeats)
    oof = np.zeros((repeats, n, len(SITUATIONS)))
    scores = []
    for step, (train, held) in enumerate(fold_indices(n, folds, repeats, seed)):
        model = build_model(spec, threads=threads)
        model.fit(features.take(train), labels)
        predicted = model.predict_array(features.take(held))
        oof[step // folds, held] = predicted
        scores.append(pearson_columns(predicted, y[held]))
        if on_fold is not None:
            on_fold(step, np.asarray(scores))
    return CVResult(
        name=name or spec.learner,
        spec=spec,
        fold_pearson=np.nan_to_num(np.asarray(scores), nan=0.0),
        oof=oof,
        users=features.users,
        folds=folds,
        repeats=repeats,
        seed=seed,
        seconds=time.perf_counter() - started,
    )
