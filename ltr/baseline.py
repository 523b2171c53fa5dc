"""BASE, the organisers' baseline: a confidence-weighted sum of concept ratings per image.

Definition (ImageCLEFaware; Nguyen et al., WACV 2022), per user and situation:

    BASE(user) = mean over the user's *active* images of
                 sum over concepts c of  rating(c) x max confidence of c in the image

* a detection is kept when its confidence >= the threshold; the others are ignored;
* an image is *active* when it keeps at least one detection (of any concept);
* a concept without a rating counts 0 (its detections still make the image active);
* images are identified by (user, image): in the research layout image ids are only unique
  per user;
* a user without any active image scores 0 in every situation, the neutral value (ratings are
  centred near 0), instead of being dropped: every user of a split must be scored.

One global threshold is chosen by grid search on a labelled split (`fit_base_threshold`): the
grid value with the highest mean Pearson over the four situations; thresholds whose score is
undefined (every user gets the same score) are skipped; ties (within 1e-12) go to the *lowest*
threshold, the one that keeps the most detections. The default grid is 0.00, 0.05, ..., 0.95:
both real data sets only list detections with confidence >= 0.3, so every value up to 0.30
keeps everything, and the grid also covers data that lists weaker detections.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltr.data.dataset import Dataset
from ltr.errors import LtrError
from ltr.features import FeatureConfig, featurize
from ltr.features.config import threshold_label
from ltr.metrics import pearson_columns
from ltr.situations import SITUATIONS

#: Thresholds tried by `fit_base_threshold` unless told otherwise.
DEFAULT_GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(20))
#: Scores closer than this to the best one count as ties (broken towards the lower threshold).
TIE_TOLERANCE = 1e-12


def _check_threshold(threshold: float) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise LtrError(f"BASE threshold {threshold!r} is not a number") from None
    if not math.isfinite(value):
        raise LtrError(f"BASE threshold {threshold!r} is not a finite number")
    return value


def _scores_by_threshold(
    dataset: Dataset, split: str, thresholds: Iterable[float]
) -> tuple[pd.Index, np.ndarray]:
    """Users of `split` and their (thresholds, users, 4) BASE scores.

    BASE is the featuriser's ``base`` family (one implementation, shared with every model).
    """
    config = FeatureConfig(families=("base",), thresholds=tuple(thresholds))
    matrix = featurize(dataset, split, config)
    names = list(matrix.columns["name"])
    values = matrix.dense()
    scores = np.stack(
        [
            values[:, [names.index(f"base@{threshold_label(t)}:{s}") for s in SITUATIONS]]
            for t in config.thresholds
        ]
    )
    return matrix.users, scores


def base_scores(dataset: Dataset, split: str, threshold: float) -> pd.DataFrame:
    """BASE score of every user of `split`: index ``user`` (file order), columns `SITUATIONS`."""
    users, scores = _scores_by_threshold(dataset, split, [_check_threshold(threshold)])
    return pd.DataFrame(scores[0], index=users.copy(), columns=list(SITUATIONS))


def _grid(grid: Sequence[float]) -> np.ndarray:
    values = np.array([_check_threshold(t) for t in grid], dtype=float)
    if not len(values):
        raise LtrError("the BASE threshold grid is empty")
    return np.unique(values)  # sorted ascending: ties go to the first, lowest, threshold


@dataclass(frozen=True)
class _GridScores:
    thresholds: np.ndarray  # (thresholds,) ascending
    scores: np.ndarray  # (thresholds, labelled users, 4)
    labels: pd.DataFrame  # the labelled users, in the order of `scores`
    empty_users: np.ndarray  # (thresholds,) users of the split without an active image


def _grid_scores(dataset: Dataset, split: str, grid: Sequence[float]) -> _GridScores:
    thresholds = _grid(grid)
    users, scores = _scores_by_threshold(dataset, split, thresholds)
    labels = dataset.split_labels(split)
    rows = users.get_indexer(labels.index)
    # a user's best confidence says up to which threshold it keeps an active image
    best_per_user = dataset.split_detections(split).groupby("user")["confidence"].max()
    best = best_per_user.reindex(users).fillna(-np.inf).to_numpy()
    empty = np.array([(best < t).sum() for t in thresholds])
    return _GridScores(thresholds, scores[:, rows], labels, empty)


def _best(means: np.ndarray) -> int | None:
    """Index of the best finite mean, ties to the lowest index; None when none is finite."""
    finite = np.isfinite(means)
    if not finite.any():
        return None
    best = np.nanmax(np.where(finite, means, np.nan))
    return int(np.flatnonzero(finite & (means >= best - TIE_TOLERANCE))[0])


def choose_threshold(candidates: dict[float, np.ndarray], labels: np.ndarray) -> float:
    """The threshold whose (users x 4) BASE scores have the best mean Pearson with `labels`.

    The same rule as `fit_base_threshold` (ties to the lowest threshold), for callers that
    already hold the scores, such as the BASE model reading featuriser columns.
    """
    thresholds = np.array(sorted(candidates), dtype=float)
    scores = np.stack([candidates[t] for t in thresholds])
    means = pearson_columns(scores, np.asarray(labels, dtype=float)[None], axis=1).mean(axis=1)
    best = _best(means)
    if best is None:
        raise LtrError("no BASE threshold gives a defined correlation on these users")
    return float(thresholds[best])


def threshold_table(
    dataset: Dataset, split: str = "train", grid: Sequence[float] = DEFAULT_GRID
) -> pd.DataFrame:
    """Pearson of BASE with the labels of `split` at every grid threshold.

    Index ``threshold`` (ascending); columns `SITUATIONS`, ``mean`` (NaN when a situation's
    correlation is undefined) and ``empty_users`` (users without an active image, scored 0).
    """
    found = _grid_scores(dataset, split, grid)
    pearson = pearson_columns(found.scores, found.labels.to_numpy()[None], axis=1)
    table = pd.DataFrame(
        pearson, index=pd.Index(found.thresholds, name="threshold"), columns=list(SITUATIONS)
    )
    table["mean"] = pearson.mean(axis=1)
    table["empty_users"] = found.empty_users
    return table


def fit_base_threshold(
    dataset: Dataset, split: str = "train", grid: Sequence[float] = DEFAULT_GRID
) -> float:
    """The grid threshold with the best mean Pearson on `split`'s labels (ties: the lowest)."""
    found = _grid_scores(dataset, split, grid)
    means = pearson_columns(found.scores, found.labels.to_numpy()[None], axis=1).mean(axis=1)
    best = _best(means)
    if best is None:
        raise LtrError(
            f"{dataset.name}: no BASE threshold in the grid gives a defined correlation on split "
            f"{split!r} (at each of the {len(found.thresholds)} thresholds, all users or all "
            "labels are equal in some situation)"
        )
    return float(found.thresholds[best])


def cross_validate_threshold(
    dataset: Dataset,
    split: str = "train",
    grid: Sequence[float] = DEFAULT_GRID,
    folds: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """Fit the threshold on all but one fold of `split`'s labelled users, score the held-out fold.

    Shows whether the chosen threshold is stable and gives an honest (out-of-sample) estimate of
    BASE. One row per fold: ``threshold`` chosen without the fold, `SITUATIONS` and ``mean``
    Pearson on the fold (NaN when undefined). Folds are a seeded random partition of the users.
    """
    found = _grid_scores(dataset, split, grid)
    thresholds, scores, labels = found.thresholds, found.scores, found.labels
    n = len(labels)
    if not 2 <= folds <= n // 2:
        raise LtrError(f"cannot make {folds} folds of {n} labelled users (need 2 <= folds <= n/2)")
    truth = labels.to_numpy()
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    rows = []
    for fold in range(folds):
        inner, outer = fold_of != fold, fold_of == fold
        means = pearson_columns(scores[:, inner], truth[None, inner], axis=1).mean(axis=1)
        best = _best(means)
        if best is None:
            rows.append([np.nan] * (len(SITUATIONS) + 2))
            continue
        held_out = pearson_columns(scores[best, outer], truth[outer])
        rows.append([thresholds[best], *held_out, held_out.mean()])
    return pd.DataFrame(
        rows,
        index=pd.RangeIndex(folds, name="fold"),
        columns=["threshold", *SITUATIONS, "mean"],
    )
