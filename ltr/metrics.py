"""The challenge's score: per-situation Pearson correlation over users, and its mean.

The official figure is `scipy.stats.pearsonr` between a run and the ground truth in each of the
four situations, averaged. Spearman and Kendall are reported next to it as secondary figures (they
say whether a model ranks users well even when its scale is off). `score_run` is the careful,
user-facing scorer; `pearson_columns` is the same Pearson without checks, for tuning loops.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ltr.errors import LtrError
from ltr.situations import SITUATIONS

#: Statistics of a `Scores`, in display order; "pearson" is the official one.
STATISTICS: tuple[str, ...] = ("pearson", "spearman", "kendall")


@dataclass(frozen=True)
class Scores:
    """Correlations of a run with the ground truth, per situation.

    Attributes:
        pearson: Pearson correlation per situation (index `SITUATIONS`): the official statistic.
        spearman: Spearman rank correlation per situation.
        kendall: Kendall's tau-b per situation.
        n_users: The users scored.
    """

    pearson: pd.Series
    spearman: pd.Series
    kendall: pd.Series
    n_users: int

    @property
    def official(self) -> float:
        """The challenge's score: the mean over situations of the Pearson correlation (NaN if
        a situation's is: never the mean of the other three)."""
        return self.mean("pearson")

    def mean(self, statistic: str = "pearson") -> float:
        """The mean over the four situations of one statistic.

        Args:
            statistic: ``pearson`` (the official score), ``spearman`` or ``kendall``.

        Returns:
            The mean.
        """
        return float(self.statistic(statistic).mean(skipna=False))

    def statistic(self, name: str) -> pd.Series:
        """One statistic per situation.

        Args:
            name: ``pearson``, ``spearman`` or ``kendall``.

        Returns:
            The statistic, indexed by situation.

        Raises:
            ValueError: `name` is not one of the three.
        """
        if name not in STATISTICS:
            raise ValueError(f"unknown statistic {name!r} (expected one of {STATISTICS})")
        values: pd.Series = getattr(self, name)
        return values

    def table(self) -> pd.DataFrame:
        """One row per statistic, columns `SITUATIONS` + ``mean``."""
        rows = {name: [*self.statistic(name).to_list(), self.mean(name)] for name in STATISTICS}
        return pd.DataFrame.from_dict(rows, orient="index", columns=[*SITUATIONS, "mean"])


def unit_centred(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """`values` divided by the power of two just above their largest absolute value along
    `axis`, then centred: what the Pearson correlation is computed from.

    The correlation does not change when a column is scaled, but scipy's centring and norms
    overflow on finite values near the float limit (a sum of 1e308s is inf: NaN, or 0 for
    alternating signs). Scaled, every value lies in (-1, 1), so nothing overflows; a power of
    two changes only exponents, so ordinary columns give scipy's result bit for bit before the
    centring. Centring here as well as in the Pearson formula (a second pass, which removes the
    rounding error of the first mean) keeps a tiny spread around a huge offset exact too.
    Non-finite values are left as they are (their correlation is NaN).

    Args:
        values: Scores or labels, the users along `axis`.
        axis: The axis of the users.

    Returns:
        The scaled, centred values (float64).

    Example:
        >>> unit_centred(np.array([1e308, -1e308, 1e308])).round(3).tolist()
        [0.371, -0.742, 0.371]
    """
    values = np.asarray(values, dtype=float)
    top = np.max(np.abs(values), axis=axis, keepdims=True)
    exponent = np.where(np.isfinite(top), np.frexp(top)[1], 0)  # top = m * 2**e, 0.5 <= m < 1
    scaled = np.ldexp(values, -exponent)
    with np.errstate(invalid="ignore"):  # a column holding inf or NaN stays NaN
        centred: np.ndarray = scaled - scaled.mean(axis=axis, keepdims=True)
    return centred


def pearson_columns(pred: np.ndarray, truth: np.ndarray, axis: int = 0) -> np.ndarray:
    """Pearson correlation of `pred` and `truth` along `axis` (users), for every other slice.

    Follows ``scipy.stats.pearsonr(pred, truth, axis=axis).statistic`` step by step (same
    centring, overflow-safe scaling, clipping to [-1, 1] and rounding for two observations; the
    results agree to ~1e-15, the tests check it), but without p-values, warnings or input
    checks, so cross-validation can score many folds and the four situations in one call. Each
    slice is scaled and centred first (`unit_centred`), so any finite values give their
    correlation, even where scipy's sums overflow.

    Args:
        pred: Scores, e.g. ``users x 4``, or ``folds x users x 4`` with ``axis=1``.
        truth: Labels, broadcast against `pred`.
        axis: The axis of the users.

    Returns:
        One correlation per slice (``4`` values for ``users x 4``); NaN where a slice is
        constant.

    Raises:
        ValueError: Fewer than two users.

    Example:
        >>> import numpy as np
        >>> truth = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.5]])
        >>> pearson_columns(truth * 2 + 1, truth).round(6).tolist()
        [1.0, 1.0]
    """
    x = np.asarray(pred, dtype=float)
    y = np.asarray(truth, dtype=float)
    x, y = np.broadcast_arrays(x, y)
    n = x.shape[axis]
    if n < 2:
        raise ValueError("Pearson correlation needs at least two observations")
    const = np.all(x == np.take(x, [0], axis=axis), axis=axis) | np.all(
        y == np.take(y, [0], axis=axis), axis=axis
    )
    x, y = unit_centred(x, axis), unit_centred(y, axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = x - x.mean(axis=axis, keepdims=True)
        ym = y - y.mean(axis=axis, keepdims=True)
        xmax = np.abs(xm).max(axis=axis, keepdims=True)
        ymax = np.abs(ym).max(axis=axis, keepdims=True)
        normx = xmax * np.linalg.norm(xm / xmax, axis=axis, keepdims=True)
        normy = ymax * np.linalg.norm(ym / ymax, axis=axis, keepdims=True)
        r = np.sum((xm / normx) * (ym / normy), axis=axis)
    r = np.clip(r, -1.0, 1.0)
    if n == 2:
        r = np.round(r)
    return np.where(const, np.nan, r)


def _examples(users: Collection[object], count: int = 3) -> str:
    shown = ", ".join(repr(u) for u in list(users)[:count])
    return shown + (", ..." if len(users) > count else "")


def _check_frame(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    missing = [s for s in SITUATIONS if s not in frame.columns]
    if missing:
        raise LtrError(f"{what} lacks situation column(s) {', '.join(missing)}")
    duplicated = frame.index[frame.index.duplicated()].unique()
    if len(duplicated):
        raise LtrError(
            f"{what} lists {len(duplicated)} user(s) more than once: {_examples(duplicated)}"
        )
    return situation_numbers(
        frame,
        lambda problem, record: LtrError(f"{what}: {record + ': ' if record else ''}{problem}"),
    )


def situation_numbers(
    frame: pd.DataFrame, error: Callable[[str, str | None], Exception]
) -> pd.DataFrame:
    """The four situation columns as float64, refusing non-numeric columns and non-finite
    values; `error(problem, record)` builds the exception (runs and label frames word it
    differently)."""
    values = frame[list(SITUATIONS)]
    for situation in SITUATIONS:
        dtype = values[situation].dtype
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            raise error(f"situation {situation!r} holds {dtype} values, not numbers", None)
    numbers = values.astype(float)
    array = numbers.to_numpy()
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        value = float(array[row, col])
        raise error(
            f"{value!r} is not a finite number ({int(bad.sum())} such value(s))",
            f"user {numbers.index[row]!r}, situation {SITUATIONS[col]!r}",
        )
    return numbers


def check_same_users(predictions: pd.Index, labels: pd.Index, what: str = "the run") -> None:
    """Raise a clear error naming (a few of) the missing and the extra users."""
    label_set, pred_set = set(labels), set(predictions)
    missing = [u for u in labels if u not in pred_set]
    extra = [u for u in predictions if u not in label_set]
    if not (missing or extra):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} labelled user(s) missing from {what}: {_examples(missing)}")
    if extra:
        parts.append(f"{len(extra)} user(s) in {what} without a label: {_examples(extra)}")
    raise LtrError(f"{what} and the labels do not cover the same users: " + "; ".join(parts))


def _check_not_constant(values: np.ndarray, what: str, situation: str) -> None:
    if np.all(values == values[0]):
        raise LtrError(
            f"{what} is constant in situation {situation!r} ({float(values[0])!r} for all "
            f"{len(values)} users): the Pearson correlation is undefined"
        )


def score_run(predictions: pd.DataFrame, labels: pd.DataFrame, *, name: str = "run") -> Scores:
    """Score a run against labels exactly as the challenge does, plus Spearman and Kendall.

    Args:
        predictions: The run: index user, columns `SITUATIONS`.
        labels: The ground truth, same shape.
        name: What the predictions are, in messages (e.g. the run file's path).

    Returns:
        The correlations per situation; `Scores.official` is the challenge's score, the mean
        Pearson over the four situations.

    Raises:
        LtrError: The users differ (the message names a few and counts them), a situation
            column is missing or not numeric, a value is not finite, fewer than two users, or
            a situation is constant in the run or the labels (no correlation exists).

    Example:
        >>> import pandas as pd
        >>> labels = pd.DataFrame(
        ...     {"acc": [1.0, 2.0, 3.0], "bank": [0.0, 1.0, 0.5], "it": [3.0, 1.0, 2.0],
        ...      "wait": [1.0, 0.0, 2.0]},
        ...     index=pd.Index(["u1", "u2", "u3"], name="user"),
        ... )
        >>> run = labels * 2 + 1  # any increasing linear map has a Pearson correlation of 1
        >>> round(score_run(run, labels).official, 6)
        1.0
    """
    pred = _check_frame(predictions, name)
    truth = _check_frame(labels, "the labels")
    check_same_users(pred.index, truth.index, name)
    if len(truth) < 2:
        raise LtrError(f"{name}: a correlation needs at least 2 users, got {len(truth)}")
    pred = pred.loc[truth.index]
    results: dict[str, dict[str, float]] = {stat: {} for stat in STATISTICS}
    for situation in SITUATIONS:
        x = pred[situation].to_numpy()
        y = truth[situation].to_numpy()
        _check_not_constant(x, f"the prediction of {name}", situation)
        _check_not_constant(y, "the ground truth", situation)
        # scipy's Pearson of the scaled, centred values: the same correlation, without
        # overflow on huge finite values (`unit_centred`)
        pearson = stats.pearsonr(unit_centred(x), unit_centred(y)).statistic
        results["pearson"][situation] = float(pearson)
        results["spearman"][situation] = float(stats.spearmanr(x, y).statistic)
        results["kendall"][situation] = float(stats.kendalltau(x, y).statistic)
    series = {k: pd.Series(v, name=k).reindex(list(SITUATIONS)) for k, v in results.items()}
    return Scores(n_users=len(truth), **series)
