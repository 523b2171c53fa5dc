"""Stacking: how an ensemble learns to combine its members from out-of-fold scores.

A member's scores on the users it was trained on are optimistic, and by different amounts for
different members (boosted trees fit their training users much more closely than ridge), so
standardising with in-sample spreads or weighting by in-sample fit rewards overfitting. Here an
inner K-fold inside the training users gives every member an *out-of-fold* score for every
training user; the ensemble standardises with the mean and spread of those scores and learns
non-negative weights on them.

The weights of one situation minimise the squared error between the centred, standardised
label and the weighted sum of the centred, standardised member scores, subject to w >= 0
(non-negative least squares). Because the feasible set is a cone (closed under positive
scaling), the direction it picks is also the non-negative combination with the largest Pearson
correlation with the label, the official statistic; only that direction matters, so the weights
are normalised to sum to 1. `shrink` pulls them toward equal weights (a few hundred users give
noisy weights), and `share` fits one set of weights for the four situations (4x the rows).

`cross` adds a second level that learns across situations: each situation's final score is a
ridge regression (penalty by leave-one-out) of its label on the four blended out-of-fold
scores, so a situation can borrow from the others' predictions (the labels of acc, bank and it
correlate 0.5-0.8).
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from typing import Any

import numpy as np
from scipy.optimize import nnls

from ltr.errors import LtrError

#: Options of a learned ensemble (`ModelSpec.params` of an ensemble without weights).
STACKING_DEFAULTS: dict[str, Any] = {
    "inner_folds": 5,
    "share": False,
    "shrink": 0.0,
    "cross": False,
}
#: Penalties the cross-situation ridge chooses from by leave-one-out.
CROSS_ALPHAS: np.ndarray = np.logspace(-2, 4, 13)


def stacking_options(params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` merged over the defaults and validated; a bad one is an LtrError naming it."""
    unknown = sorted(set(params) - set(STACKING_DEFAULTS))
    if unknown:
        raise LtrError(
            f"unknown ensemble option(s) {', '.join(unknown)} "
            f"(known: {', '.join(STACKING_DEFAULTS)})"
        )
    options = {**STACKING_DEFAULTS, **params}
    folds = options["inner_folds"]
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise LtrError(f"ensemble option inner_folds must be an integer >= 2, not {folds!r}")
    shrink = options["shrink"]
    if isinstance(shrink, bool) or not isinstance(shrink, Real) or not 0.0 <= float(shrink) <= 1.0:
        raise LtrError(f"ensemble option shrink must be a number from 0 to 1, not {shrink!r}")
    for name in ("share", "cross"):
        if not isinstance(options[name], bool):
            raise LtrError(f"ensemble option {name} must be true or false, not {options[name]!r}")
    return options


def standardise(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, spread) per column; a constant column gets spread 1 so it stays finite."""
    spread = scores.std(axis=0)
    return scores.mean(axis=0), np.where(spread > 0, spread, 1.0)


def nonnegative_weights(scores: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Non-negative weights (summing to 1) of the columns of `scores` (n x m) whose weighted
    sum best fits `target` (n) after centring: the non-negative combination of largest Pearson
    correlation with the target. No column with a positive share of the fit -> equal weights."""
    scores = np.asarray(scores, dtype=float)
    target = np.asarray(target, dtype=float)
    weights, _ = nnls(scores - scores.mean(axis=0), target - target.mean())
    total = weights.sum()
    if not np.isfinite(total) or total <= 0:
        return np.full(scores.shape[1], 1.0 / scores.shape[1])
    normalised: np.ndarray = weights / total
    return normalised


def member_weights(
    scores: np.ndarray, labels: np.ndarray, *, share: bool, shrink: float
) -> np.ndarray:
    """(situations x members) weights from standardised out-of-fold `scores` (n x 4 x m) and
    `labels` (n x 4): per situation, or one set shared by all (`share`), pulled toward equal
    weights by `shrink`."""
    n, k, m = scores.shape
    spread = labels.std(axis=0)
    target = (labels - labels.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    if share:
        shared = nonnegative_weights(scores.transpose(1, 0, 2).reshape(n * k, m), target.T.ravel())
        weights = np.tile(shared, (k, 1))
    else:
        weights = np.stack([nonnegative_weights(scores[:, j, :], target[:, j]) for j in range(k)])
    shrunk: np.ndarray = (1.0 - shrink) * weights + shrink / m
    return shrunk


def blend(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per situation, the weighted sum of standardised member scores: (n x 4 x m) -> (n x 4)."""
    blended: np.ndarray = np.einsum("njm,jm->nj", scores, weights)
    return blended


def cross_situation_mix(blended: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(4 x 4) matrix M: situation j's final score is ``blended @ M[:, j]`` (blended scores
    standardised), a ridge regression of label j on the four blended scores, its penalty
    chosen by leave-one-out."""
    from sklearn.linear_model import RidgeCV

    mix = np.zeros((blended.shape[1], labels.shape[1]))
    for j in range(labels.shape[1]):
        model = RidgeCV(alphas=CROSS_ALPHAS).fit(blended, labels[:, j])
        mix[:, j] = model.coef_
    return mix
