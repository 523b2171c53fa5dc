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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltr.data.dataset import Dataset
from ltr.errors import LtrError
from ltr.metrics import pearson_columns
from ltr.situations import SITUATIONS

#: Thresholds tried by `fit_base_threshold` unless told otherwise.
DEFAULT_GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(20))
#: Scores closer than this to the best one count as ties (broken towards the lower threshold).
TIE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class _Concepts:
    """One row per (image, concept) of a split: its max confidence and its ratings."""

    users: pd.Index  # every user of the split, in file order
    image_user: np.ndarray  # (images,) user code of each image
    image: np.ndarray  # (rows,) image code of each (image, concept) row
    confidence: np.ndarray  # (rows,) max confidence of the concept in the image
    ratings: np.ndarray  # (rows, 4) rating of the concept; 0 when unrated


def _concepts(dataset: Dataset, split: str) -> _Concepts:
    users = dataset.split_users(split)
    det = dataset.split_detections(split)
    user_code = users.get_indexer(det["user"])
    if (user_code < 0).any():  # the loaders guarantee this; a hand-built Dataset may not
        raise LtrError(
            f"{dataset.name}: split {split!r} has detections of user "
            f"{det['user'].iloc[int(np.flatnonzero(user_code < 0)[0])]!r}, who is not in the split"
        )
    keys = pd.DataFrame(
        {"user": user_code, "image": det["image"].to_numpy(), "concept": det["concept"].to_numpy()}
    )
    image_code = keys.groupby(["user", "image"], sort=False).ngroup().to_numpy()
    image_user = np.zeros(int(image_code.max()) + 1 if len(image_code) else 0, dtype=np.int64)
    image_user[image_code] = user_code
    per_concept = (
        pd.DataFrame(
            {
                "image": image_code,
                "concept": det["concept"].to_numpy(),
                "confidence": det["confidence"].to_numpy(dtype=float),
            }
        )
        .groupby(["image", "concept"], sort=False)["confidence"]
        .max()
        .reset_index()
    )
    ratings = (
        dataset.ratings[list(SITUATIONS)]
        .astype(float)
        .reindex(per_concept["concept"].to_numpy())
        .fillna(0.0)
        .to_numpy()
    )
    return _Concepts(
        users=users,
        image_user=image_user,
        image=per_concept["image"].to_numpy(dtype=np.int64),
        confidence=per_concept["confidence"].to_numpy(dtype=float),
        ratings=ratings,
    )


def _check_threshold(threshold: float) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise LtrError(f"BASE threshold {threshold!r} is not a number") from None
    if not math.isfinite(value):
        raise LtrError(f"BASE threshold {threshold!r} is not a finite number")
    return value


def _scores_at(concepts: _Concepts, threshold: float) -> np.ndarray:
    """(users, 4) BASE scores at one threshold (vectorised with bincount)."""
    n_images, n_users = len(concepts.image_user), len(concepts.users)
    keep = concepts.confidence >= threshold
    image = concepts.image[keep]
    weighted = concepts.ratings[keep] * concepts.confidence[keep, None]
    active = np.bincount(image, minlength=n_images) > 0
    owner = concepts.image_user[active]
    n_active = np.bincount(owner, minlength=n_users)
    scores = np.zeros((n_users, len(SITUATIONS)))
    for j in range(len(SITUATIONS)):
        image_sum = np.bincount(image, weights=weighted[:, j], minlength=n_images)
        user_sum = np.bincount(owner, weights=image_sum[active], minlength=n_users)
        np.divide(user_sum, n_active, out=scores[:, j], where=n_active > 0)
    return scores


def _frame(concepts: _Concepts, scores: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(scores, index=concepts.users.copy(), columns=list(SITUATIONS))


def base_scores(dataset: Dataset, split: str, threshold: float) -> pd.DataFrame:
    """BASE score of every user of `split`: index ``user`` (file order), columns `SITUATIONS`."""
    threshold = _check_threshold(threshold)
    concepts = _concepts(dataset, split)
    return _frame(concepts, _scores_at(concepts, threshold))


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
    concepts: _Concepts


def _grid_scores(dataset: Dataset, split: str, grid: Sequence[float]) -> _GridScores:
    thresholds = _grid(grid)
    concepts = _concepts(dataset, split)
    labels = dataset.split_labels(split)
    rows = concepts.users.get_indexer(labels.index)
    scores = np.stack([_scores_at(concepts, t)[rows] for t in thresholds])
    return _GridScores(thresholds, scores, labels, concepts)


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
    table["empty_users"] = [_empty_users(found.concepts, t) for t in found.thresholds]
    return table


def _empty_users(concepts: _Concepts, threshold: float) -> int:
    active_images = np.unique(concepts.image[concepts.confidence >= threshold])
    active_users = np.unique(concepts.image_user[active_images])
    return len(concepts.users) - len(active_users)


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
