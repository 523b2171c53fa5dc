"""Is model A better than model B? The corrected resampled t-test over cross-validation folds.

Repeated K-fold scores are not independent: every pair of folds shares most of its training
users, so a plain t-test over the K x R fold differences is far too confident. Nadeau and Bengio
(2003, "Inference for the generalization error") correct the variance of the mean difference:

    var(mean d) = (1 / J + n_test / n_train) * s^2,     J = K x R folds,

where s^2 is the sample variance of the per-fold differences d_j and n_test / n_train the ratio
of held-out to training users (1 / (K - 1) for K-fold). The statistic t = mean d / sqrt(var)
follows Student's t with J - 1 degrees of freedom (Bouckaert and Frank, 2004, for repeated
K-fold). Gains smaller than this corrected noise are not gains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ltr.errors import LtrError


@dataclass(frozen=True)
class Comparison:
    """A minus B over the same folds.

    Attributes:
        mean: Mean of the per-fold differences (A - B) of the mean Pearson.
        low: Lower end of the two-sided `level` confidence interval of that mean, corrected.
        high: Upper end of that interval.
        t: The corrected t statistic (NaN when every fold difference is 0, e.g. a model
            against itself).
        p_value: Its two-sided p-value (NaN likewise).
        folds: Number of fold differences (K x R).
        level: Confidence level of the interval.
    """

    mean: float
    low: float
    high: float
    t: float
    p_value: float
    folds: int
    level: float

    def to_dict(self) -> dict[str, float | int]:
        """The comparison as JSON-ready numbers."""
        return {
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "t": self.t,
            "p_value": self.p_value,
            "folds": self.folds,
            "level": self.level,
        }


def corrected_t_test(
    a: np.ndarray, b: np.ndarray, *, folds: int, level: float = 0.95
) -> Comparison:
    """Compare the per-fold scores of two models on the same repeated K-fold splits.

    Args:
        a: Model A's score on each fold (e.g. `CVResult.fold_means`).
        b: Model B's score on the same folds, in the same order.
        folds: K of the K-fold (sets the held-out / training ratio of the correction).
        level: Confidence level of the interval.

    Returns:
        A minus B: the mean difference, its corrected interval, t and p-value.

    Raises:
        LtrError: `a` and `b` differ in length or hold fewer than two folds, `folds` < 2, or
            `level` is not between 0 and 1.

    Example:
        >>> import numpy as np
        >>> a = np.array([0.52, 0.50, 0.55, 0.49, 0.51, 0.53])
        >>> b = np.array([0.50, 0.49, 0.52, 0.48, 0.50, 0.50])
        >>> result = corrected_t_test(a, b, folds=3)
        >>> round(result.mean, 4), result.folds
        (0.0183, 6)
        >>> result.low < result.mean < result.high
        True
    """
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise LtrError(f"cannot compare {a.size} fold scores with {b.size}: not the same folds")
    if folds < 2 or a.size < 2:
        raise LtrError("the corrected t-test needs K >= 2 folds and at least 2 fold scores")
    if not 0 < level < 1:
        raise LtrError(f"confidence level must be between 0 and 1, not {level}")
    diff = a - b
    n = diff.size
    mean = float(diff.mean())
    variance = float(diff.var(ddof=1)) * (1.0 / n + 1.0 / (folds - 1))
    quantile = float(stats.t.ppf(0.5 + level / 2.0, df=n - 1))
    if variance <= 0.0:  # every fold moved by the same amount: no noise to compare against
        t = math.copysign(math.inf, mean) if mean else math.nan
        p_value = 0.0 if mean else math.nan
        low = high = mean
    else:
        se = math.sqrt(variance)
        t = mean / se
        p_value = float(2.0 * stats.t.sf(abs(t), df=n - 1))
        low, high = mean - quantile * se, mean + quantile * se
    return Comparison(mean, low, high, t, p_value, n, level)
