r"""A Pearson-native LambdaMART-style objective for gradient-boosted trees.

The challenge scores a run by the Pearson correlation between scores and labels per situation.
Ranking objectives (lambdarank, rank:pairwise, rank:ndcg) optimise the *order* only and lose
0.04-0.09 to plain regression; regression optimises the magnitudes but also spends capacity on
the label scale and offset, which Pearson ignores. This objective boosts the correlation itself,
query by query, like LambdaMART boosts NDCG: each query's items get the gradient of a per-query
loss, and trees are fitted to those gradients with a positive, bounded Hessian.

Loss
----
A query q holds n items with scores s and labels y (a situation's training users, or a random
sub-query of them). With the centred scores a = s - mean(s), the standardised labels
z = (y - mean(y)) / sd(y) (population sd; z = 0 when the labels of the query are constant) and
the *smoothed* score spread

    V = mean(a^2),    D = sqrt(V + eps),   eps > 0,

the smoothed correlation and the loss are

    r = mean(a z) / D,        L_q = n (1 - r),        L = sum over queries of L_q.

For eps -> 0, r is the Pearson correlation of s and y; eps keeps it defined when all scores are
equal (the start of boosting: a = 0, D = sqrt(eps), r = 0). r, and everything below, depends on
the labels only through z, so it is unchanged when the labels of a query are scaled by a > 0
and shifted. The weight n makes every item count the same whatever the size of its query.

Gradient
--------
With the sums over the query's items, n r = sum(a z) / D, and since z sums to 0,
d sum(a z) / d s_i = z_i and d V / d s_i = 2 a_i / n, so d D / d s_i = a_i / (n D):

    d(n r)/d s_i = z_i / D - sum(a z) a_i / (n D^3) = (z_i - r a_i / D) / D,

    g_i = d L_q / d s_i = (r a_i / D - z_i) / D.

At the start (a = 0) g_i = -z_i / sqrt(eps): the first trees fit the standardised labels, like
regression. Later, -g is z minus its projection on the standardised scores a / D, i.e. the part
of the labels the scores do not yet explain; for eps -> 0 it is orthogonal to a (sum(g a) =
-n r eps / D^2), so trees change the direction of the scores, not their scale, which Pearson
does not see anyway.

Hessian
-------
Differentiating g once more (P = I - 11^T/n is the centring projector):

    H = d^2 L_q / ds ds^T = (z a^T + a z^T) / (n D^3) + (r / D^2) P - 3 r a a^T / (n D^4).

H is not positive semi-definite (the loss is not convex: at the start H = 0, and r < 0 gives
negative curvature) and not diagonal, so it cannot go to the trees as it is. Its spectrum is
simple, though. On the n - 3 directions orthogonal to 1, a and z, H v = (r / D^2) v; the
constant direction has eigenvalue 0 (H 1 = 0); on span{a, z}, in the orthonormal basis
e1 = a / |a|, e2 = the part of z orthogonal to a, with rho = V / D^2 in [0, 1) and r^2 <= rho,

    D^2 H = [[3 r (1 - rho), sqrt(rho - r^2)], [sqrt(rho - r^2), r]].

Its largest eigenvalue, with t = 3 r (1 - rho) + r its trace,

    (t + sqrt((3 r (1 - rho) - r)^2 + 4 (rho - r^2))) / 2,

is at most 2 / sqrt(3) over every admissible (r, rho): it equals 2 / sqrt(3) exactly when
r = 1 / sqrt(3) (any rho >= 1/3; the square root is then sqrt(3) rho) and is smaller elsewhere
(checked on a fine grid of (r, rho), and by the tests against finite-difference Hessians).
The other eigenvalues of D^2 H, r and 0, are below it too. Hence

    h_i = (2 / sqrt(3)) / D^2    for every item of the query,

a constant diagonal with h I >= H in the positive semi-definite order: the quadratic model
g.d + h |d|^2 / 2 lies above the second-order expansion of the loss in every direction d, so the
leaf values -sum(g) / sum(h) are conservative Newton steps (a diagonal of the exact H could be
zero or negative, and the back-ends would divide by it).
It is positive and finite (D >= sqrt(eps)), scales like the exact curvature when the scores are
rescaled (s -> c s, eps -> c^2 eps gives g / c and h / c^2, the same trees with leaf values
times c), and at the start it is the regression Hessian up to the constant 2 / sqrt(3).

eps therefore only sets the unit of the scores: with no L2 penalty and min_sum_hessian = 0 the
boosted model is the same for every eps up to a scale factor. Together with the back-ends' L2
penalty (lambda_l2 / lambda) and minimum leaf Hessian it acts as a regulariser: the larger the
scores grow against sqrt(eps), the smaller the Hessians and the stronger a fixed penalty (in
repeated CV, LightGBM with eps = 10 and lambda_l2 = 1 gives the same figures as eps = 1 and
lambda_l2 = 10, to four decimals).

Sub-queries are the formulation's business (`ModelSpec.subqueries`): the objective takes any
query ids. Re-drawing random sub-queries every boosting round (a stochastic objective, like
LambdaMART's sampled pairs) was tried and dropped: -0.001 to +0.004 mean Pearson in repeated CV
on the two real training sets, within fold noise (docs/results.md, "The Pearson objective").

Everything is vectorised: per-query sums are `np.bincount` over integer query codes, so a round
costs a handful of passes over the items, whatever the number of queries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ltr.errors import LtrError

#: Largest eigenvalue of the exact per-query Hessian times D^2 (see the module docstring).
HESSIAN_BOUND = 2.0 / math.sqrt(3.0)
#: Default smoothing of the score spread: with eps = 1 the first trees fit the standardised
#: labels on their own scale.
DEFAULT_EPS = 1.0
#: Labels whose spread within a query is below this fraction of their size count as constant.
CONSTANT_LABELS = 1e-10


def query_codes(query_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(code per item in 0..Q-1, size of every query) for any query ids, sorted or not."""
    _, codes, counts = np.unique(np.asarray(query_ids), return_inverse=True, return_counts=True)
    return codes.reshape(-1).astype(np.int64), counts.astype(np.int64)


def _means(values: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    means: np.ndarray = np.bincount(codes, weights=values, minlength=len(counts)) / counts
    return means


def standardised_labels(labels: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """z = (y - mean) / sd within every query (population sd); 0 for constant-label queries.

    The loss sees the labels only through z: that is what makes it invariant to the scale and
    offset of the labels, query by query.
    """
    y = np.asarray(labels, dtype=np.float64)
    centred = y - _means(y, codes, counts)[codes]
    sd = np.sqrt(_means(centred * centred, codes, counts))
    size = _means(np.abs(y), codes, counts)
    usable = sd > CONSTANT_LABELS * np.maximum(size, np.finfo(float).tiny)
    scale = np.where(usable, sd, 1.0)
    return np.where(usable[codes], centred / scale[codes], 0.0)


def _query_terms(
    scores: np.ndarray, z: np.ndarray, codes: np.ndarray, counts: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centred scores a per item, smoothed spread D per query, smoothed r per query)."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    a = s - _means(s, codes, counts)[codes]
    spread = np.sqrt(_means(a * a, codes, counts) + eps)
    r = _means(a * z, codes, counts) / spread
    return a, spread, r


def check_eps(eps: float) -> float:
    """`eps` as a float; an LtrError unless it is a finite number > 0 (``pearson_eps``)."""
    ok = isinstance(eps, (int, float)) and not isinstance(eps, bool)
    if not (ok and math.isfinite(eps) and eps > 0):
        raise LtrError(f"pearson_eps must be a finite number > 0, not {eps!r}")
    return float(eps)


def pearson_loss(
    scores: np.ndarray, labels: np.ndarray, query_ids: np.ndarray, eps: float = DEFAULT_EPS
) -> float:
    """sum over queries of n_q (1 - r_q), r_q the smoothed Pearson correlation of the query."""
    codes, counts = query_codes(query_ids)
    z = standardised_labels(labels, codes, counts)
    _, _, r = _query_terms(scores, z, codes, counts, check_eps(eps))
    return float(np.sum(counts * (1.0 - r)))


def pearson_gradients(
    scores: np.ndarray, labels: np.ndarray, query_ids: np.ndarray, eps: float = DEFAULT_EPS
) -> tuple[np.ndarray, np.ndarray]:
    """(gradient, Hessian bound) of `pearson_loss` per item, as the back-ends want them."""
    codes, counts = query_codes(query_ids)
    z = standardised_labels(labels, codes, counts)
    return _gradients(scores, z, codes, counts, check_eps(eps))


def _gradients(
    scores: np.ndarray, z: np.ndarray, codes: np.ndarray, counts: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    a, spread, r = _query_terms(scores, z, codes, counts, eps)
    d = spread[codes]
    grad = (r[codes] * a / d - z) / d
    hess = HESSIAN_BOUND / (d * d)
    return grad, hess


class PearsonObjective:
    """The Pearson loss of fixed labels and queries, as a custom objective of both back-ends.

    LightGBM 4 takes `lightgbm` as ``params["objective"]``, XGBoost `xgboost` as ``obj=`` of
    ``xgb.train``; both call it once per boosting round with the current raw scores of the
    training rows, in row order. The standardised labels are computed once.
    """

    def __init__(
        self,
        labels: np.ndarray,
        query_ids: np.ndarray,
        *,
        eps: float = DEFAULT_EPS,
    ) -> None:
        self.labels = np.asarray(labels, dtype=np.float64).reshape(-1)
        self.codes, self.counts = query_codes(query_ids)
        if len(self.codes) != len(self.labels):
            raise ValueError("labels and query_ids must have the same length")
        self.eps = check_eps(eps)
        self.z = standardised_labels(self.labels, self.codes, self.counts)

    def gradients(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(gradient, Hessian bound) at `scores`."""
        return _gradients(scores, self.z, self.codes, self.counts, self.eps)

    def lightgbm(self, preds: np.ndarray, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
        """LightGBM 4's callable objective: (preds, Dataset) -> (grad, hess)."""
        return self.gradients(preds)

    def xgboost(self, preds: np.ndarray, dmatrix: Any) -> tuple[np.ndarray, np.ndarray]:
        """XGBoost's ``obj``: (margins, DMatrix) -> (grad, hess)."""
        return self.gradients(preds)


#: The learner parameters of the objective (not back-end parameters), with their defaults.
OBJECTIVE_PARAMS: dict[str, Any] = {"pearson_eps": DEFAULT_EPS}


def split_objective_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(objective keyword arguments, the back-end's own parameters) from a learner's params.

    A misspelt ``pearson_*`` key is refused rather than passed on (the back-ends would only warn).
    """
    unknown = sorted(k for k in params if k.startswith("pearson_") and k not in OBJECTIVE_PARAMS)
    if unknown:
        raise LtrError(
            f"unknown Pearson objective parameter(s) {', '.join(unknown)} "
            f"(known: {', '.join(OBJECTIVE_PARAMS)})"
        )
    options = {k: params.get(k, default) for k, default in OBJECTIVE_PARAMS.items()}
    native = {k: v for k, v in params.items() if k not in OBJECTIVE_PARAMS}
    return {"eps": options["pearson_eps"]}, native
